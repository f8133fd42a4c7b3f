"""Readers of several (workers, ranks) read indexed shards: the same samples as the walk, or the walk.

From its second epoch on, a worker reads a local shard it walked whole through its index
(:mod:`atdata._read.index`, :mod:`atdata._read.indexed`). These tests read every
combination the walk reads, then check that the indexed epoch gives the same items in
the same order, that it really skips the walk, and that any change to a shard (or a
shard no longer matching its manifest) sends the reader back to the walk.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import webdataset as wds
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

import atdata
from atdata._read import order as order_module
from atdata._read.index import ShardIndexes
from atdata._read.indexed import shuffled_positions
from atdata._read.order import Plan, _permuted
from atdata.errors import ShardDigestMismatch
from atdata.manifest import Manifest, ShardRecord, digest_stream


@atdata.packable
class Row:
    features: NDArray[np.float32]
    label: int
    name: str


def row(i: int, width: int = 8) -> Row:
    return Row(features=np.full(width, i, np.float32), label=i, name=f"n{i}")


def write(directory: Path, samples: list[Row], per_shard: int) -> list[str]:
    paths = []
    for s in range(0, len(samples), per_shard):
        path = directory / f"part-{s // per_shard:04d}.tar"
        with wds.TarWriter(str(path)) as sink:
            for i in range(s, min(len(samples), s + per_shard)):
                sink.write({**samples[i].as_wds, "__key__": f"{i:06d}"})
        paths.append(str(path))
    return paths


@pytest.fixture(autouse=True)
def fresh_indexes(monkeypatch: pytest.MonkeyPatch) -> ShardIndexes:
    """Each test starts with no shard indexed (the loader reads this process-wide cache)."""
    indexes = ShardIndexes()
    monkeypatch.setattr("atdata._read.loader.SHARD_INDEXES", indexes)
    return indexes


def worker_items(loader: atdata.Loader, workers: int, epoch: int) -> list[Any]:
    """What ``workers`` DataLoader workers of ``loader`` yield in ``epoch``, in delivery order."""
    parts = []
    for worker in range(workers):
        loader.set_epoch(epoch)
        parts.append(list(loader.iter_worker(worker, workers)))
    return [item for turn in _interleave(parts) for item in turn]


def _interleave(parts: list[list[Any]]) -> list[list[Any]]:
    longest = max(map(len, parts))
    return [[part[i] for part in parts if i < len(part)] for i in range(longest)]


def flat(items: list[Any]) -> list[tuple[int, str, bytes]]:
    out = []
    for item in items:
        batch = item if isinstance(item, atdata.SampleBatch) else None
        samples = list(batch) if batch is not None else [item]
        out += [(s.label, s.name, s.features.tobytes()) for s in samples]
    return out


LOADERS = {
    "ordered/7": lambda ds: ds.ordered(batch_size=7),
    "ordered/1": lambda ds: ds.ordered(),
    "shuffled/5": lambda ds: ds.shuffled(buffer_size=40, batch_size=5, seed=3, pool_shards=2),
    "shuffled/1": lambda ds: ds.shuffled(buffer_size=9, seed=4),
}


@pytest.mark.parametrize("how", list(LOADERS))
@pytest.mark.parametrize("widths", ["one-size", "mixed-sizes"])
def test_an_indexed_epoch_yields_what_the_walk_yields(
    tmp_path: Path, how: str, widths: str, fresh_indexes: ShardIndexes, monkeypatch: pytest.MonkeyPatch
) -> None:
    samples = [row(i, 8 if widths == "one-size" else 1 + i % 37) for i in range(230)]
    ds = atdata.Dataset[Row](write(tmp_path, samples, 60))
    make = LOADERS[how]
    walked = worker_items(make(ds), 2, epoch=1)  # the first epoch walks, and indexes every shard
    assert all(fresh_indexes.known(url) for url in ds.shard_list)

    real_walk = order_module.iter_chunks

    def no_walk(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an indexed shard was walked")

    for epoch in (1, 2):
        single = make(ds)
        single.set_epoch(epoch)
        expected = flat(list(single))  # one reader: walked
        monkeypatch.setattr(order_module, "iter_chunks", no_walk)
        got = flat(worker_items(make(ds), 2, epoch))
        monkeypatch.setattr(order_module, "iter_chunks", real_walk)
        if epoch == 1:
            assert got == flat(walked)
        assert got == expected
    assert sorted(got) == sorted((s.label, s.name, s.features.tobytes()) for s in samples)


def test_a_resumed_indexed_epoch_repeats_and_loses_nothing(tmp_path: Path) -> None:
    ds = atdata.Dataset[Row](write(tmp_path, [row(i) for i in range(200)], 50))
    make = LOADERS["shuffled/5"]
    worker_items(make(ds), 2, epoch=0)  # index
    whole = make(ds)
    whole.set_epoch(1)
    reference = flat(list(whole.iter_worker(0, 2)))
    first = make(ds)
    first.set_epoch(1)
    it = first.iter_worker(0, 2)
    head = [next(it) for _ in range(6)]
    resumed = make(ds)
    resumed.load_state_dict(first.state_dict())
    assert flat(head + list(resumed.iter_worker(0, 2))) == reference


def test_a_changed_shard_is_walked_again(tmp_path: Path, fresh_indexes: ShardIndexes) -> None:
    paths = write(tmp_path, [row(i) for i in range(120)], 40)
    ds = atdata.Dataset[Row](paths)
    worker_items(ds.ordered(batch_size=8), 2, epoch=0)
    assert fresh_indexes.known(paths[1])
    other = tmp_path / "other"
    other.mkdir()
    rewritten = write(other, [row(1000 + i, 3) for i in range(40)], 40)[0]
    os.replace(rewritten, paths[1])  # another file (inode, size) under the same name
    got = flat(worker_items(ds.ordered(batch_size=8), 2, epoch=1))
    assert [label for label, _, _ in got] == [*range(40), *range(1000, 1040), *range(80, 120)]


def test_a_shard_damaged_since_it_was_indexed_fails_as_the_walk_does(
    tmp_path: Path, fresh_indexes: ShardIndexes
) -> None:
    paths = write(tmp_path, [row(i, 300) for i in range(60)], 30)
    urls = []
    for path in paths:
        with open(path, "rb") as stream:
            size, sha256, chunks = digest_stream(stream, chunk_size=4096)
        urls.append(atdata.ShardURL(path, manifest=Manifest((ShardRecord(path, size, 30, sha256, chunks, 4096),))))
    ds = atdata.Dataset[Row](urls)
    worker_items(ds.ordered(batch_size=4), 2, epoch=0)
    assert fresh_indexes.known(urls[1])
    stat = os.stat(paths[1])
    with open(paths[1], "r+b") as file:  # one byte flipped in place, times kept: only the digests tell
        file.seek(20_000)
        byte = file.read(1)
        file.seek(20_000)
        file.write(bytes([byte[0] ^ 0xFF]))
    os.utime(paths[1], ns=(stat.st_atime_ns, stat.st_mtime_ns))
    loader = ds.ordered(batch_size=4)
    with pytest.raises(ShardDigestMismatch, match="chunk 4"):
        worker_items(loader, 2, epoch=1)
    assert not fresh_indexes.known(urls[1])  # dropped: the walk reads it from now on


def test_only_readers_of_several_index_and_local_shards_only(tmp_path: Path, fresh_indexes: ShardIndexes) -> None:
    ds = atdata.Dataset[Row](write(tmp_path, [row(i) for i in range(50)], 25))
    list(ds.ordered(batch_size=5))  # one reader: nothing to skip, nothing indexed
    assert not any(fresh_indexes.known(url) for url in ds.shard_list)
    assert fresh_indexes.recorder("s3://bucket/part-0000.tar") is None
    small = ShardIndexes(limit=30)
    for url in ds.shard_list:  # 25 samples each: the second would pass the limit
        list(order_module.iter_chunks(url, recorder=small.recorder(url)))
    assert small.known(ds.shard_list[0]) and not small.known(ds.shard_list[1])


def _buffer_shuffle(items: list[int], chunks: list[int], size: int, rng: np.random.Generator) -> list[int]:
    """``order._shuffled``'s buffer over ``items`` arriving in chunks of the given lengths."""
    half, buffer, out, pos = max(1, size // 2), [], [], 0
    for n in chunks:
        buffer += items[pos : pos + n]
        pos += n
        while len(buffer) >= size:
            mixed = _permuted(buffer[:size], rng)  # type: ignore[arg-type]
            out += mixed[:half]
            buffer = mixed[half:] + buffer[size:]
    return out + _permuted(buffer, rng)  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None)
@given(
    total=st.integers(0, 300),
    size=st.integers(1, 80),
    chunk=st.integers(1, 120),
    seed=st.integers(0, 2**32),
)
def test_shuffled_positions_are_the_buffer_order_whatever_the_reads(
    total: int, size: int, chunk: int, seed: int
) -> None:
    plan = Plan([["a"]], True, size, seed, 0)
    chunks = [chunk] * (total // chunk) + ([total % chunk] if total % chunk else [])
    rng = np.random.Generator(np.random.PCG64(order_module.derive_seed(seed, 0, 0)))
    expected = _buffer_shuffle(list(range(total)), chunks, size, rng)
    assert shuffled_positions(total, plan, 0).tolist() == expected
