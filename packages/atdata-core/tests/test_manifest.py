"""Shard manifests: recorded while writing, carried by ShardURL, checked by every read."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import xxhash
from numpy.typing import NDArray

import atdata
import atdata._read.prefetch
from atdata import ShardURL
from atdata._read.prefetch import PrefetchStream
from atdata._read.shard import iter_chunks
from atdata.disk_store import DiskDataStore
from atdata.errors import InvalidArgument, ShardDigestMismatch, ShardError, ShardSizeMismatch
from atdata.manifest import CHUNK_SIZE, ChunkHasher, Manifest, ShardRecord, digest_stream
from atdata.writing import AtomicFileSink, ShardWriter


@atdata.packable
class Row:
    x: NDArray[np.float32]
    i: int


def _write(directory: Path, n: int, maxcount: int | None = None, width: int = 300) -> list[ShardURL]:
    """Shards of ``n`` samples and their URLs carrying the writer's manifest records."""
    paths: list[str] = []

    def open_sink(index: int) -> AtomicFileSink:
        paths.append(str(directory / f"s-{index}.tar"))
        return AtomicFileSink(paths[-1])

    with ShardWriter(open_sink, maxcount=maxcount) as writer:
        for i in range(n):
            writer.write(Row(x=np.full(width, i, np.float32), i=i))
    return [ShardURL(p, manifest=Manifest((s.record(p),))) for s, p in zip(writer.shards, paths)]


def _flip(path: str, offset: int) -> None:
    data = bytearray(Path(path).read_bytes())
    data[offset] ^= 0x01
    Path(path).write_bytes(bytes(data))


def test_writer_records_chunk_digests_of_the_bytes_written(tmp_path: Path) -> None:
    (url,) = _write(tmp_path, 3000)
    record = url.manifest.get(url)  # type: ignore[union-attr]
    data = Path(url).read_bytes()
    assert record is not None and record.size == len(data) and record.num_samples == 3000
    assert record.sha256 == hashlib.sha256(data).hexdigest()
    expected = [xxhash.xxh3_128_hexdigest(data[i : i + CHUNK_SIZE]) for i in range(0, len(data), CHUNK_SIZE)]
    assert list(record.chunks) == expected and len(expected) > 2
    assert digest_stream(io.BytesIO(data)) == (record.size, record.sha256, record.chunks)


@pytest.mark.parametrize("pieces", [[1, 1, 1], [5, 3], [4], [2, 1, 9], [0, 7]])
def test_chunk_hasher_is_independent_of_how_the_stream_is_cut(pieces: list[int]) -> None:
    data = bytes(range(256)) * 10
    hasher, pos = ChunkHasher(chunk_size=100), 0
    for piece in pieces * 200:
        hasher.update(data[pos : pos + piece * 37])
        pos = min(len(data), pos + piece * 37)
    hasher.update(data[pos:])
    assert hasher.finish() == tuple(xxhash.xxh3_128_hexdigest(data[i : i + 100]) for i in range(0, len(data), 100))


def test_write_shards_urls_carry_their_manifest_record(tmp_path: Path) -> None:
    store = DiskDataStore(tmp_path)
    samples = [Row(x=np.zeros(4, np.float32), i=i) for i in range(10)]
    urls = store.write_shards(iter(samples), prefix="p", maxcount=4)
    assert len(urls) == 3
    for url in urls:
        record = url.manifest.get(url)  # type: ignore[attr-defined]
        assert record is not None and (record.size, record.sha256) == (url.size, url.sha256)  # type: ignore[attr-defined]
        assert record.num_samples == url.num_samples  # type: ignore[attr-defined]


def test_manifest_json_round_trip_and_refusals(tmp_path: Path) -> None:
    urls = _write(tmp_path, 1200, maxcount=500)
    manifest = Manifest(tuple(u.manifest.shards[0] for u in urls))  # type: ignore[union-attr]
    assert Manifest.loads(manifest.dumps()) == manifest
    assert json.loads(manifest.dumps())["format"] == "atdata.manifest/1"
    with pytest.raises(InvalidArgument, match="not an atdata manifest"):
        Manifest.from_json({"shards": []})
    bad = manifest.to_json()
    bad["shards"][0]["chunks"] = bad["shards"][0]["chunks"][:-1]
    with pytest.raises(InvalidArgument, match="chunk digests"):
        Manifest.from_json(bad)
    with pytest.raises(InvalidArgument, match="chunk_hash='md5' is not supported"):
        ShardRecord("u", 10, 1, "0" * 64, ("0" * 32,), chunk_hash="md5")


def test_shard_url_keeps_manifest_through_pickle_json_and_brace_expansion(tmp_path: Path) -> None:
    urls = _write(tmp_path, 1200, maxcount=500)
    records = tuple(u.manifest.shards[0] for u in urls)  # type: ignore[union-attr]
    pattern = ShardURL(str(tmp_path / "s-{0..2}.tar"), manifest=Manifest(records))
    assert str(pattern) == str(tmp_path / "s-{0..2}.tar") and json.dumps([pattern]) == json.dumps([str(pattern)])
    again = pickle.loads(pickle.dumps(pattern))
    assert again == pattern and again.manifest == pattern.manifest
    assert ShardURL.from_json(str(pattern), json.loads(json.dumps(pattern.to_json()))).manifest == pattern.manifest
    shards = atdata.Dataset[Row](pattern).shard_list
    assert [s.manifest.shards for s in shards] == [(r,) for r in records]  # type: ignore[attr-defined]


def test_intact_shards_read_verified_and_equal_unverified(tmp_path: Path) -> None:
    urls = _write(tmp_path, 5000, maxcount=2000)
    verified = [i for b in atdata.Dataset[Row](urls).ordered(batch_size=32) for i in b.i]
    plain = [i for b in atdata.Dataset[Row]([str(u) for u in urls]).ordered(batch_size=32) for i in b.i]
    assert verified == plain == list(range(5000))


def test_flipped_byte_raises_before_any_sample_of_its_chunk(tmp_path: Path) -> None:
    (url,) = _write(tmp_path, 3000)
    record = url.manifest.get(url)  # type: ignore[union-attr]
    assert record is not None
    _flip(url, CHUNK_SIZE + 1000)  # inside chunk 1
    seen: list[str] = []
    with pytest.raises(ShardDigestMismatch) as caught:
        for chunk in iter_chunks(url):
            seen += chunk.keys
    message = str(caught.value)
    assert repr(str(url)) in message and "chunk 1" in message and f"bytes {CHUNK_SIZE}-{2 * CHUNK_SIZE - 1}" in message
    assert record.chunks[1] in message and isinstance(caught.value, ShardError)
    unit = 2048  # each sample is one 2 KiB tar unit here: 512 of them fill chunk 0 exactly
    assert len(seen) == CHUNK_SIZE // unit
    assert [s.i for s in atdata.Dataset[Row](str(url)).ordered()][: len(seen)] == list(range(len(seen)))


def test_plain_string_reads_unverified(tmp_path: Path) -> None:
    (url,) = _write(tmp_path, 3000)
    _flip(url, CHUNK_SIZE + 1000)
    assert len(list(atdata.Dataset[Row](str(url)).ordered())) == 3000  # a float payload byte: still decodes


@pytest.mark.parametrize("change", ["truncate", "append"])
def test_shard_shorter_or_longer_than_recorded(tmp_path: Path, change: str) -> None:
    (url,) = _write(tmp_path, 1000)
    data = Path(url).read_bytes()
    Path(url).write_bytes(data[:-1024] if change == "truncate" else data + b"\0" * 512)
    word = "shorter" if change == "truncate" else "longer"
    with pytest.raises(ShardSizeMismatch, match=f"is {word} than its manifest records: {len(data)} bytes recorded"):
        list(atdata.Dataset[Row](url).ordered())


# -- shards whose URL carries only a whole-shard sha256 (e.g. a record published to ATProto) --

_REMOTE: dict[str, bytes] = {}
atdata.register_opener("wholetest", lambda url: io.BytesIO(_REMOTE[str(url)]))


def _sha256_only(tmp_path: Path, n: int = 3000, remote: bool = False) -> tuple[ShardURL, bytes]:
    """One shard and a URL carrying its sha256 and size but no chunk digests."""
    (url,) = _write(tmp_path, n)
    data = Path(url).read_bytes()
    target = f"wholetest://{tmp_path.name}/s-0.tar" if remote else str(url)
    _REMOTE[target] = data
    return ShardURL(target, sha256=hashlib.sha256(data).hexdigest(), size=len(data)), data


@pytest.mark.parametrize("remote", [False, True], ids=["local-file", "prefetched-stream"])
def test_sha256_only_url_reads_equal_when_intact(tmp_path: Path, remote: bool) -> None:
    url, _ = _sha256_only(tmp_path, remote=remote)
    assert [i for b in atdata.Dataset[Row](url).ordered(batch_size=32) for i in b.i] == list(range(3000))
    assert [i for b in atdata.Dataset[Row]([url]).shuffled(batch_size=32, seed=1) for i in b.i] != []


@pytest.mark.parametrize("remote", [False, True], ids=["local-file", "prefetched-stream"])
def test_sha256_only_url_with_a_flipped_byte_yields_no_sample(tmp_path: Path, remote: bool) -> None:
    url, data = _sha256_only(tmp_path, remote=remote)
    damaged = bytearray(data)
    damaged[len(data) - 3000] ^= 0x01  # near the end: the first chunks alone would still decode
    if remote:
        _REMOTE[str(url)] = bytes(damaged)
    else:
        Path(url).write_bytes(bytes(damaged))
    seen: list[int] = []
    with pytest.raises(ShardDigestMismatch) as caught:
        for batch in atdata.Dataset[Row](url).ordered(batch_size=32):
            seen += list(batch.i)
    message = str(caught.value)
    assert seen == [] and repr(str(url)) in message
    assert hashlib.sha256(damaged).hexdigest() in message and str(url.sha256) in message
    with pytest.raises(ShardDigestMismatch):  # a plain stream (no prefetcher) is checked the same way
        list(iter_chunks(url, stream=io.BytesIO(bytes(damaged))))


@pytest.mark.parametrize("change", ["truncate", "append"])
def test_sha256_only_url_shorter_or_longer_than_recorded(tmp_path: Path, change: str) -> None:
    url, data = _sha256_only(tmp_path, n=500, remote=True)
    _REMOTE[str(url)] = data[:-1024] if change == "truncate" else data + b"\0" * 512
    word = "shorter" if change == "truncate" else "longer"
    with pytest.raises(ShardSizeMismatch, match=f"is {word} than recorded: {len(data)} bytes recorded"):
        list(atdata.Dataset[Row](url).ordered())


def test_a_manifest_takes_precedence_over_the_whole_shard_check(tmp_path: Path) -> None:
    (url,) = _write(tmp_path, 3000)
    record = url.manifest.get(url)  # type: ignore[union-attr]
    assert record is not None
    both = url.with_facts(sha256=record.sha256, size=record.size)
    _flip(url, CHUNK_SIZE + 1000)
    seen: list[str] = []
    with pytest.raises(ShardDigestMismatch, match="chunk 1"):  # checked chunk by chunk: chunk 0's samples came
        for chunk in iter_chunks(both):
            seen += chunk.keys
    assert len(seen) == CHUNK_SIZE // 2048


def test_a_prefetched_shard_checked_whole_spills_past_the_held_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(atdata._read.prefetch, "SPOOL", 4 * 65536)  # 4 small chunks held, the rest spilled
    url, data = _sha256_only(tmp_path, n=3000, remote=True)
    keys = [k for c in iter_chunks(url, stream=PrefetchStream(url, chunk=65536)) for k in c.keys]
    assert keys == [k for c in iter_chunks(str(url)) for k in c.keys] and len(keys) == 3000
    _REMOTE[str(url)] = data[:-2000] + bytes([data[-2000] ^ 1]) + data[-1999:]  # in the spilled part
    with pytest.raises(ShardDigestMismatch, match=str(url.sha256)):
        next(iter_chunks(url, stream=PrefetchStream(url, chunk=65536)))
