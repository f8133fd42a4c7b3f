"""Verified reads: a shard's bytes reach the tar walker only after their chunk's digest matched.

A shard URL that carries a manifest (:mod:`atdata.manifest`; an index entry's
``data_urls`` items do) is read through a :class:`ChunkVerifier`. The shard reader
(:mod:`atdata._read.shard`) shows it every buffer it read before walking it; the
verifier hashes the bytes it has not seen yet, chunk by chunk, compares each finished
chunk with the manifest, and says how much of the buffer is verified. Only that much is
walked, so a sample whose bytes reach into an unverified or damaged chunk is never
decoded or yielded; the samples before the damage are.

Every byte is hashed once, in the buffer in which it first arrived. A buffer starting
with bytes read before (the unfinished member a local read reads again) relies on the
earlier check of those bytes: a file rewritten while it is being read is not detected.

A URL that carries only a whole-shard ``sha256`` (and perhaps its ``size``), with no
chunk digests, as the shards of a dataset record published to ATProto do (the record
lists one sha256 per shard), cannot be checked piece by piece: the whole shard is read
and hashed (:class:`WholeShardCheck`) before the walker sees a byte of it. A prefetched
shard is checked on its prefetch thread (:class:`~atdata._read.prefetch.PrefetchStream`:
its read buffers are held, up to :data:`SPOOL` bytes, then the rest spills to a temporary
file), so the next shards download and hash while the current one is decoded;
:func:`whole_shard_checked` checks a local file in place (then read again from the page
cache) or any other stream into a spool. The cost is one sha256 pass (~0.6 ms/MB with
the CPU's SHA extensions) and the wait for the whole shard before its first sample.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from typing import BinaryIO, cast

import xxhash

from ..errors import ShardDigestMismatch, ShardSizeMismatch
from ..manifest import ShardRecord
from .buffers import CHUNK, read_into
from .tarformat import Buffer

__all__ = ["SPOOL", "ChunkVerifier", "WholeShardCheck", "whole_shard_checked", "whole_shard_digest"]

#: Bytes of a shard checked whole that are held in memory; the rest spills to a temporary file.
SPOOL = 64 << 20


class ChunkVerifier:
    """Checks one shard's bytes against its manifest record as they are read.

    Parameters
    ----------
    url
        The shard, named in every error.
    record
        What the manifest recorded for it.
    """

    __slots__ = ("url", "record", "_hash", "_hashed", "verified")

    def __init__(self, url: str, record: ShardRecord) -> None:
        self.url = url
        self.record = record
        self._hash = xxhash.xxh3_128()
        self._hashed = 0  # shard bytes hashed so far
        self.verified = 0  # shard bytes of chunks whose digest matched

    @property
    def complete(self) -> bool:
        """Every recorded byte was read and matched."""
        return self.verified == self.record.size

    def check(self, buf: Buffer, base: int, final: bool) -> int:
        """Hash the new bytes of ``buf`` (which starts at shard offset ``base``).

        ``final`` says the shard has no bytes after ``buf``. Returns how many leading bytes
        of ``buf`` are verified (all of it once the last chunk matched).

        Raises
        ------
        ShardDigestMismatch
            A chunk's digest differs from the manifest's.
        ShardSizeMismatch
            The shard has more bytes than recorded, or (``final``) fewer.
        """
        size, chunk_size = self.record.size, self.record.chunk_size
        end = base + len(buf)
        if min(end, size) > self._hashed:
            view = memoryview(buf)
            pos, stop = self._hashed - base, min(end, size) - base
            while pos < stop:
                take = min(stop - pos, chunk_size - self._hashed % chunk_size)
                self._hash.update(view[pos : pos + take])
                pos += take
                self._hashed += take
                if self._hashed % chunk_size == 0 or self._hashed == size:
                    self._finish_chunk()
        if end > size:
            raise ShardSizeMismatch(
                f"shard {self.url!r} is longer than its manifest records: {size} bytes recorded, "
                f"at least {end} present; restore the shard from a good copy or re-insert the dataset"
            )
        if final and end < size:
            raise ShardSizeMismatch(
                f"shard {self.url!r} is shorter than its manifest records: {size} bytes recorded, {end} present "
                f"(truncated?); restore the shard from a good copy or re-insert the dataset"
            )
        return max(0, min(self.verified - base, len(buf)))

    def _finish_chunk(self) -> None:
        index = (self._hashed - 1) // self.record.chunk_size
        actual = self._hash.hexdigest()
        self._hash.reset()
        expected = self.record.chunks[index]
        if actual != expected:
            start, stop = self.record.chunk_range(index)
            raise ShardDigestMismatch(
                f"shard {self.url!r}: chunk {index} (bytes {start}-{stop - 1}) has {self.record.chunk_hash} "
                f"digest {actual}, but the manifest recorded {expected}: the shard is damaged; restore it from "
                "a good copy, or delete it and re-insert the dataset (a re-insert reuses stored shards that "
                "still have their recorded sizes, so a damaged one must be gone first)"
            )
        self.verified = self._hashed


def whole_shard_digest(url: str) -> str | None:
    """The whole-shard sha256 a URL carries (a ``ShardURL`` fact), None for a plain string."""
    digest = getattr(url, "sha256", None)
    return digest if isinstance(digest, str) and digest else None


class WholeShardCheck:
    """The sha256 and size of a shard's bytes, fed in order, against what its URL records.

    Parameters
    ----------
    url
        The shard (a ``ShardURL`` with ``sha256`` and perhaps ``size``), named in every error.
    """

    __slots__ = ("url", "expected", "size", "seen", "_hash")

    def __init__(self, url: str) -> None:
        self.url = url
        self.expected = whole_shard_digest(url)
        self.size: int | None = getattr(url, "size", None)
        self.seen = 0
        self._hash = hashlib.sha256()

    def update(self, piece: Buffer) -> None:
        """Hash the next bytes; raises ``ShardSizeMismatch`` as soon as they pass the recorded size."""
        self.seen += len(piece)
        if self.size is not None and self.seen > self.size:
            raise ShardSizeMismatch(
                f"shard {self.url!r} is longer than recorded: {self.size} bytes recorded, at least {self.seen} "
                "present; no sample of it was read: restore the shard from a good copy or publish the dataset again"
            )
        self._hash.update(piece)

    def finish(self) -> None:
        """After the last byte: compare size and sha256 with the record.

        Raises
        ------
        ShardSizeMismatch
            Fewer bytes than recorded.
        ShardDigestMismatch
            Another sha256 than recorded (names the shard and both digests).
        """
        if self.size is not None and self.seen != self.size:
            raise ShardSizeMismatch(
                f"shard {self.url!r} is shorter than recorded: {self.size} bytes recorded, {self.seen} present "
                "(truncated?); no sample of it was read: restore the shard from a good copy or publish the "
                "dataset again"
            )
        actual = self._hash.hexdigest()
        if self.expected is not None and actual != self.expected:
            raise ShardDigestMismatch(
                f"shard {self.url!r} has sha256 {actual}, but {self.expected} was recorded for it: the shard was "
                "changed or damaged since; no sample of it was read: restore it from a good copy or publish the "
                "dataset again"
            )


def whole_shard_checked(url: str, source: BinaryIO) -> BinaryIO:
    """``source``'s bytes, readable from the start, once they matched the sha256 (and size) ``url`` carries.

    A local file is hashed in place and rewound (the same object is returned); any other
    source is copied into a spooled temporary file while it is hashed, and the copy is
    returned (the caller closes both). Nothing is returned, so nothing is walked, before
    the whole shard matched. (A prefetched shard is checked on its thread instead:
    :class:`~atdata._read.prefetch.PrefetchStream`.)

    Raises
    ------
    ShardDigestMismatch, ShardSizeMismatch
        As :meth:`WholeShardCheck.finish` (a longer shard as soon as it is found).
    """
    check = WholeShardCheck(url)
    spool = None if isinstance(source, io.FileIO) else tempfile.SpooledTemporaryFile(max_size=SPOOL)  # noqa: SIM115
    try:
        buf = bytearray(CHUNK)
        with memoryview(buf) as view:
            while got := read_into(source, view):
                with view[:got] as piece:
                    check.update(piece)
                    if spool is not None:
                        spool.write(piece)
                if got < len(buf):
                    break
        check.finish()
    except BaseException:
        if spool is not None:
            spool.close()
        raise
    result = cast(BinaryIO, spool if spool is not None else source)
    result.seek(0)
    return result
