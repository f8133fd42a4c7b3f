"""Shard manifests: what each shard was when written, so readers check bytes before decoding them.

A manifest records, for every shard of a write, its URL, size, sample count, whole-file
sha256, and the digests of its fixed-size *chunks* (``chunk_size`` bytes each, the
last one shorter). The writer computes all of it while streaming the shard (no second
pass); a reader hashes each chunk as its bytes arrive and hands a chunk to the tar
walker only once its digest matched, so no sample from a damaged byte range is ever
decoded (:mod:`atdata._read.verify`).

Chunks use XXH3-128 (``xxhash``), not sha256: measured on a CPU without SHA extensions,
sha256 hashes at ~0.25 GB/s, slower than the reader decodes (with them ~1.7 GB/s, still
as much CPU as decoding), while XXH3-128 runs at ~6 GB/s, so verified reads stay within 10% of unverified ones. The
chunk digests catch corruption (flipped bits, torn writes, truncation); the whole-file
sha256 is the cryptographic check.

Wire format (JSON, UTF-8; the core README shows an example)::

    {"format": "atdata.manifest/1",
     "shards": [{"url": "s3://bucket/prefix/data--<run>--000000.tar",
                 "size": 1049600, "num_samples": 1000,
                 "sha256": "<64 hex digits of the whole file>",
                 "chunk_hash": "xxh3-128", "chunk_size": 1048576,
                 "chunks": ["<32 hex digits>", "<32 hex digits>"]}]}

``chunks[i]`` is the digest of bytes ``[i * chunk_size, min((i + 1) * chunk_size, size))``,
so there are ``ceil(size / chunk_size)`` of them. A manifest travels with the URLs it
describes (the ``manifest`` of an index entry's ``data_urls`` items), is stored with the
index entry, and is written beside the shards in the hive.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import xxhash

from .errors import InvalidArgument

__all__ = [
    "CHUNK_HASH",
    "CHUNK_SIZE",
    "FORMAT",
    "ChunkHasher",
    "Manifest",
    "ShardRecord",
    "digest_stream",
    "shard_record",
]

#: The manifest format this module writes and reads.
FORMAT = "atdata.manifest/1"
#: The chunk digest algorithm.
CHUNK_HASH = "xxh3-128"
#: Bytes per chunk: the read path's first remote read and a divisor of its later reads
#: (:mod:`atdata._read.buffers`), so a chunk is checked as soon as it has arrived.
CHUNK_SIZE = 1 << 20

_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class ChunkHasher:
    """Digests of consecutive ``chunk_size``-byte chunks of a stream fed piece by piece."""

    __slots__ = ("chunk_size", "digests", "_hash", "_filled")

    def __init__(self, chunk_size: int = CHUNK_SIZE) -> None:
        self.chunk_size = chunk_size
        self.digests: list[str] = []
        self._hash = xxhash.xxh3_128()
        self._filled = 0  # bytes of the current chunk hashed so far

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Hash the next bytes of the stream."""
        n = len(data)
        room = self.chunk_size - self._filled
        if n < room:
            self._hash.update(data)
            self._filled += n
            return
        view = memoryview(data)
        pos = 0
        while n - pos >= room:
            self._hash.update(view[pos : pos + room])
            self.digests.append(self._hash.hexdigest())
            self._hash.reset()
            pos += room
            room = self.chunk_size
        self._filled = n - pos
        if self._filled:
            self._hash.update(view[pos:])

    def finish(self) -> tuple[str, ...]:
        """Every chunk's digest, the last (shorter) one included."""
        if self._filled:
            self.digests.append(self._hash.hexdigest())
            self._hash.reset()
            self._filled = 0
        return tuple(self.digests)


def digest_stream(stream: BinaryIO, chunk_size: int = CHUNK_SIZE) -> tuple[int, str, tuple[str, ...]]:
    """The size, sha256 and chunk digests of everything ``stream`` holds, in one pass.

    What a check of a stored shard compares with its record, computed the way the writer does.
    """
    whole, chunks, size = hashlib.sha256(), ChunkHasher(chunk_size), 0
    while True:
        data = stream.read(8 * chunk_size)
        if not data:
            return size, whole.hexdigest(), chunks.finish()
        whole.update(data)
        chunks.update(data)
        size += len(data)


@dataclass(frozen=True)
class ShardRecord:
    """One shard of a manifest: what was measured while it was written."""

    url: str
    size: int
    num_samples: int
    sha256: str
    chunks: tuple[str, ...]
    chunk_size: int = CHUNK_SIZE
    chunk_hash: str = CHUNK_HASH

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", str(self.url))  # never a str subclass carrying a manifest
        object.__setattr__(self, "chunks", tuple(self.chunks))
        for name in ("size", "num_samples", "chunk_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name != "num_samples" else 0):
                raise InvalidArgument(f"shard record of {self.url!r}: {name}={value!r} is invalid")
        if self.chunk_hash != CHUNK_HASH:
            raise InvalidArgument(
                f"shard record of {self.url!r}: chunk_hash={self.chunk_hash!r} is not supported (this atdata "
                f"reads {CHUNK_HASH!r}); upgrade atdata"
            )
        if not isinstance(self.sha256, str) or not _HEX64.fullmatch(self.sha256):
            raise InvalidArgument(f"shard record of {self.url!r}: sha256={self.sha256!r} is not 64 hex digits")
        expected = -(-self.size // self.chunk_size)
        if len(self.chunks) != expected or not all(isinstance(c, str) and _HEX32.fullmatch(c) for c in self.chunks):
            raise InvalidArgument(
                f"shard record of {self.url!r}: expected {expected} chunk digests of 32 hex digits for "
                f"{self.size} bytes in chunks of {self.chunk_size}, got {len(self.chunks)}"
            )

    def chunk_range(self, index: int) -> tuple[int, int]:
        """The byte range ``[start, end)`` chunk ``index`` covers."""
        start = index * self.chunk_size
        return start, min(start + self.chunk_size, self.size)

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "size": self.size,
            "num_samples": self.num_samples,
            "sha256": self.sha256,
            "chunk_hash": self.chunk_hash,
            "chunk_size": self.chunk_size,
            "chunks": list(self.chunks),
        }

    @classmethod
    def from_json(cls, data: Any) -> ShardRecord:
        """The record :meth:`to_json` gave; ``InvalidArgument`` for anything else."""
        keys = {"url", "size", "num_samples", "sha256", "chunk_hash", "chunk_size", "chunks"}
        if not isinstance(data, Mapping) or set(data) != keys or not isinstance(data["chunks"], list):
            raise InvalidArgument(f"a shard record is a JSON object with keys {sorted(keys)}, got {data!r:.200}")
        return cls(**{**data, "chunks": tuple(data["chunks"])})


@dataclass(frozen=True)
class Manifest:
    """The shard records of one write (or of the shards a URL names), in shard order."""

    shards: tuple[ShardRecord, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "shards", tuple(self.shards))
        if not all(isinstance(s, ShardRecord) for s in self.shards):
            raise InvalidArgument("Manifest(shards=...) takes ShardRecord objects")

    def get(self, url: str) -> ShardRecord | None:
        """The record of shard ``url``, or None when this manifest does not list it."""
        url = str(url)
        for record in self.shards:
            if record.url == url:
                return record
        return None

    def only(self, urls: Iterable[str]) -> Manifest:
        """The records of the shards ``urls`` names (a URL's own part of a larger manifest)."""
        wanted = {str(u) for u in urls}
        return Manifest(tuple(s for s in self.shards if s.url in wanted))

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "shards": [s.to_json() for s in self.shards]}

    def dumps(self) -> bytes:
        """The manifest as stored beside the shards (indented JSON, UTF-8)."""
        return json.dumps(self.to_json(), indent=1).encode()

    @classmethod
    def from_json(cls, data: Any) -> Manifest:
        """The manifest :meth:`to_json` gave; ``InvalidArgument`` for anything else."""
        if not isinstance(data, Mapping) or data.get("format") != FORMAT or not isinstance(data.get("shards"), list):
            raise InvalidArgument(
                f"not an atdata manifest (expected {{'format': {FORMAT!r}, 'shards': [...]}}): {data!r:.200}"
            )
        return cls(tuple(ShardRecord.from_json(s) for s in data["shards"]))

    @classmethod
    def loads(cls, raw: bytes | str) -> Manifest:
        """The manifest in the bytes :meth:`dumps` wrote."""
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise InvalidArgument(f"manifest is not JSON: {exc}") from exc
        return cls.from_json(data)


def shard_record(url: str) -> ShardRecord | None:
    """The record a shard URL carries (its ``manifest`` attribute), None for a plain string."""
    manifest = getattr(url, "manifest", None)
    return manifest.get(url) if isinstance(manifest, Manifest) else None
