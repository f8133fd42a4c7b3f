"""Property (issue 13): a byte flipped anywhere in a shard is caught before any sample from its chunk is yielded.

Hypothesis picks the samples (how many, how large), the shard limit, the manifest's
chunk size (small, so a few KiB of data spans many chunks), the read (a local file, or a
stream through an opener, the path remote shards take), the batch size, and the byte to
flip. The shards are real files on disk; each URL carries the manifest of its shard. The
read must raise a ``ShardError``, and before it, yield only original samples, in order,
none of whose tar bytes (header to padded end) lie in the damaged chunk. URLs carrying
only a whole-shard sha256 (no chunk digests) must yield none of the damaged shard.
"""

from __future__ import annotations

import tarfile
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from numpy.typing import NDArray

import atdata
from atdata import ShardURL
from atdata.errors import ShardDigestMismatch, ShardError
from atdata.manifest import Manifest, ShardRecord, digest_stream

_SCHEME = "flipprop"
atdata.register_opener(_SCHEME, lambda url: open(str(url).removeprefix(f"{_SCHEME}://"), "rb"))  # noqa: SIM115


@atdata.packable
class Piece:
    index: int
    payload: NDArray[np.uint8]


def _pieces(sizes: list[int]) -> list[Piece]:
    return [Piece(index=i, payload=np.full(size, i % 251, np.uint8)) for i, size in enumerate(sizes)]


def _recorded(path: str, url: str, chunk_size: int) -> ShardURL:
    """``url`` carrying a manifest of the shard at ``path`` measured with ``chunk_size``-byte chunks."""
    with open(path, "rb") as stream:
        size, sha256, chunks = digest_stream(stream, chunk_size)
    with tarfile.open(path) as tar:
        count = len(tar.getmembers())
    record = ShardRecord(url, size, count, sha256, chunks, chunk_size=chunk_size)
    return ShardURL(url, manifest=Manifest((record,)))


def _byte_ranges(path: str) -> dict[int, tuple[int, int]]:
    """Sample index -> ``[start, end)`` of its tar member: header, data and padding."""
    ranges = {}
    with tarfile.open(path) as tar:
        for member in tar.getmembers():
            end = member.offset_data + -(-member.size // 512) * 512
            ranges[int(member.name.split(".")[0])] = (member.offset, end)
    return ranges


@given(
    sizes=st.lists(st.integers(0, 3000), min_size=2, max_size=40),
    maxcount=st.integers(1, 40),
    chunk_size=st.sampled_from([512, 1000, 2048, 4096]),
    stream=st.booleans(),
    batch_size=st.sampled_from([None, 1, 3, 16]),
    data=st.data(),
)
def test_a_flipped_byte_is_caught_before_any_sample_of_its_chunk(
    sizes: list[int], maxcount: int, chunk_size: int, stream: bool, batch_size: int | None, data: st.DataObject
) -> None:
    originals = _pieces(sizes)
    with tempfile.TemporaryDirectory() as directory:
        samples = [{**p.as_wds, "__key__": f"{p.index:06d}"} for p in originals]
        paths = [str(p) for p in atdata.write_samples(samples, str(Path(directory) / "s-%06d.tar"), maxcount)]
        urls = [_recorded(p, f"{_SCHEME}://{p}" if stream else p, chunk_size) for p in paths]
        damaged = data.draw(st.integers(0, len(paths) - 1), label="shard")
        ranges = _byte_ranges(paths[damaged])  # before the damage: tarfile may not read it after
        offset = data.draw(st.integers(0, Path(paths[damaged]).stat().st_size - 1), label="offset")
        shard = bytearray(Path(paths[damaged]).read_bytes())
        shard[offset] ^= 1 << data.draw(st.integers(0, 7), label="bit")
        Path(paths[damaged]).write_bytes(bytes(shard))

        seen: list[Piece] = []
        raised: ShardError | None = None
        try:
            for item in atdata.Dataset[Piece](urls).ordered(batch_size=batch_size):
                seen.extend([item] if batch_size is None else list(item))
        except ShardError as exc:
            raised = exc
        event("samples yielded before the damage" if seen else "damage in the first chunk read")
        assert raised is not None, f"a flipped bit at byte {offset} of shard {damaged} was read back"
        assert str(paths[damaged]) in str(raised)
        assert [p.index for p in seen] == list(range(len(seen)))  # originals, in order, nothing skipped
        assert all(np.array_equal(p.payload, originals[p.index].payload) for p in seen)
        start = offset // chunk_size * chunk_size
        in_damaged_chunk = [i for i, (lo, hi) in ranges.items() if lo < start + chunk_size and hi > start]
        assert not {p.index for p in seen} & set(in_damaged_chunk)


@given(
    sizes=st.lists(st.integers(0, 3000), min_size=2, max_size=40),
    maxcount=st.integers(1, 40),
    stream=st.booleans(),
    batch_size=st.sampled_from([None, 1, 16]),
    data=st.data(),
)
def test_a_flipped_byte_in_a_shard_carrying_only_its_sha256_yields_none_of_it(
    sizes: list[int], maxcount: int, stream: bool, batch_size: int | None, data: st.DataObject
) -> None:
    """URLs carrying a whole-shard sha256 and size, no manifest (as an ATProto entry record
    gives): the damaged shard is refused before any of its samples; the shards before it read whole."""
    originals = _pieces(sizes)
    with tempfile.TemporaryDirectory() as directory:
        samples = [{**p.as_wds, "__key__": f"{p.index:06d}"} for p in originals]
        paths = [str(p) for p in atdata.write_samples(samples, str(Path(directory) / "s-%06d.tar"), maxcount)]
        urls = []
        for path in paths:
            with open(path, "rb") as source:
                size, sha256, _ = digest_stream(source)
            urls.append(ShardURL(f"{_SCHEME}://{path}" if stream else path, sha256=sha256, size=size))
        damaged = data.draw(st.integers(0, len(paths) - 1), label="shard")
        before = sum(len(tarfile.open(p).getmembers()) for p in paths[:damaged])
        shard = bytearray(Path(paths[damaged]).read_bytes())
        offset = data.draw(st.integers(0, len(shard) - 1), label="offset")
        shard[offset] ^= 1 << data.draw(st.integers(0, 7), label="bit")
        Path(paths[damaged]).write_bytes(bytes(shard))

        seen: list[Piece] = []
        with pytest.raises(ShardDigestMismatch) as raised:
            for item in atdata.Dataset[Piece](urls).ordered(batch_size=batch_size):
                seen.extend([item] if batch_size is None else list(item))
        assert str(paths[damaged]) in str(raised.value) and str(urls[damaged].sha256) in str(raised.value)
        assert [p.index for p in seen] == list(range(len(seen)))  # originals, in order, none of the damaged shard
        assert len(seen) == before if batch_size in (None, 1) else len(seen) <= before  # (a batch may be unfinished)
        assert all(np.array_equal(p.payload, originals[p.index].payload) for p in seen)
