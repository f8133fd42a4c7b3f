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
"""

from __future__ import annotations

import xxhash

from ..errors import ShardDigestMismatch, ShardSizeMismatch
from ..manifest import ShardRecord
from .tarformat import Buffer

__all__ = ["ChunkVerifier"]


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
                f"a good copy or re-insert the dataset"
            )
        self.verified = self._hashed
