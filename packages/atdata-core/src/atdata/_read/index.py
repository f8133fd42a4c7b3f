"""Where every sample of a local shard lies: learnt by walking the shard once, kept per process.

A reader that is one of several (a DataLoader worker, a rank) yields only its own
rounds of the epoch's stream (:mod:`atdata._read.deal`), but to know where its samples
are it must walk every shard, and for a shuffled loader push every sample through the
shuffle buffer: with two workers each did nearly all of the single-process work. So
while such a reader walks a local shard, a :class:`IndexRecorder` notes where each
sample's msgpack member lies; from the next epoch on (persistent workers keep it), the
reader reads only its own samples of the file (:mod:`atdata._read.indexed`).

An index is trusted only for the file it was made from: the file's identity (device,
inode, size, modification and change times) is compared when it is opened again, and a verified
shard's bytes are checked against its manifest then, before any sample is taken. Any
difference, or any failure, sends the reader back to walking the shard, so what it
yields (and where it fails) is exactly what the walk gives. Only shards walked whole
without an error are indexed, up to :data:`MAX_SAMPLES` samples per process.
"""

from __future__ import annotations

import mmap
import os
import weakref
from dataclasses import dataclass

import numpy as np

from ..manifest import shard_record
from ..openers import local_path
from .tarformat import Buffer
from .tarwalk import SampleViews, Walked
from .verify import ChunkVerifier, WholeShardCheck, whole_shard_digest

__all__ = ["MAX_SAMPLES", "SHARD_INDEXES", "IndexRecorder", "MappedShard", "ShardIndex", "ShardIndexes"]

#: Samples indexed per process at most (about 100 bytes each); shards beyond are walked.
MAX_SAMPLES = 4_000_000

Identity = tuple[int, int, int, int, int]


@dataclass(frozen=True, slots=True)
class ShardIndex:
    """Each sample of one shard: its key and the file offsets of its msgpack member.

    ``step`` is the distance between consecutive members when they are all of one size
    at one stride (WebDataset's writer, fixed-shape samples), else None.
    """

    identity: Identity
    keys: list[str]
    starts: np.ndarray
    ends: np.ndarray
    step: int | None


class MappedShard:
    """An indexed shard opened for one epoch: its index, and its bytes read range by range.

    Ordered runs map their range (:meth:`map`), so each mapping is gone once nothing views
    it; shuffled samples are read one by one (:meth:`read`), so nothing of the file stays
    resident. The file closes when the object goes.
    """

    __slots__ = ("url", "index", "fd", "__weakref__")

    def __init__(self, url: str, index: ShardIndex, fd: int) -> None:
        self.url = url
        self.index = index
        self.fd = fd
        weakref.finalize(self, os.close, fd)

    def map(self, start: int = 0, end: int | None = None) -> tuple[memoryview, int]:
        """Bytes ``start:end`` of the shard (at least), read-only, and the shard offset of the first."""
        size = self.index.identity[2]
        offset = start - start % mmap.ALLOCATIONGRANULARITY
        length = (size if end is None else end) - offset
        if length <= 0:  # nothing to map (empty members at the end of a page)
            return memoryview(b""), start
        return memoryview(mmap.mmap(self.fd, length, access=mmap.ACCESS_READ, offset=offset)), offset


class IndexRecorder:
    """Collects the sample offsets of one shard's walk, chunk by chunk (see ``iter_chunks``)."""

    def __init__(self, indexes: ShardIndexes, url: str, path: str, identity: Identity) -> None:
        self._indexes = indexes
        self._url = url
        self._path = path
        self._identity = identity
        self._keys: list[str] = []
        self._starts: list[np.ndarray] = []
        self._ends: list[np.ndarray] = []

    def chunk(self, buf: Buffer, base: int, walked: Walked) -> None:
        """Note the samples ``walked`` found in ``buf``, which starts at shard offset ``base``."""
        if not walked.keys:
            return
        views = walked.views
        if isinstance(views, SampleViews):
            starts, ends = np.asarray(views.starts, np.int64), np.asarray(views.ends, np.int64)
        else:  # the general walker's views (shards not in WebDataset's layout): by address
            origin = _address(buf)
            starts = np.fromiter((_address(v) - origin for v in views), np.int64, len(views))
            ends = starts + np.fromiter(map(len, views), np.int64, len(views))
        self._keys += walked.keys
        self._starts.append(starts + base)
        self._ends.append(ends + base)

    def finish(self) -> None:
        """The walk ended without an error: keep the index if the file did not change meanwhile."""
        if _identity(self._path) != self._identity or not self._keys:
            return
        starts = np.concatenate(self._starts)
        ends = np.concatenate(self._ends)
        step = None
        sizes, steps = ends - starts, np.diff(starts)
        if (sizes == sizes[0]).all() and (len(steps) == 0 or (steps == steps[0]).all()):
            step = int(steps[0]) if len(steps) else int(sizes[0])
        self._indexes.keep(self._url, ShardIndex(self._identity, self._keys, starts, ends, step))


class ShardIndexes:
    """The indexes of one process's shards, by URL."""

    def __init__(self, limit: int = MAX_SAMPLES) -> None:
        self._limit = limit
        self._by_url: dict[str, ShardIndex] = {}
        self._samples = 0

    def recorder(self, url: str) -> IndexRecorder | None:
        """A recorder for a walk of ``url``: None when it is remote, indexed or over the limit."""
        path = local_path(url)
        if path is None or url in self._by_url or self._samples >= self._limit:
            return None
        identity = _identity(path)
        return IndexRecorder(self, url, path, identity) if identity is not None else None

    def keep(self, url: str, index: ShardIndex) -> None:
        if url not in self._by_url and self._samples + len(index.keys) <= self._limit:
            self._by_url[url] = index
            self._samples += len(index.keys)

    def known(self, url: str) -> bool:
        return url in self._by_url

    def open(self, url: str) -> MappedShard | None:
        """``url`` mapped with its index, if the file is still the one indexed and its bytes
        match what its URL records; else None (and the index is dropped): walk it."""
        index = self._by_url.get(url)
        path = local_path(url)
        if index is None or path is None:
            return None
        try:
            if _identity(path) != index.identity or not index.identity[2]:
                raise OSError("changed since it was indexed")
            shard = MappedShard(url, index, os.open(path, os.O_RDONLY))
            if _identity(shard.fd) != index.identity:
                raise OSError("changed while it was opened")
            _verify(shard)
        except Exception:  # the walk reads it again, and says what is wrong with it, if anything
            self._drop(url)
            return None
        return shard

    def _drop(self, url: str) -> None:
        index = self._by_url.pop(url, None)
        if index is not None:
            self._samples -= len(index.keys)


def _verify(shard: MappedShard) -> None:
    """Raise unless the shard's bytes match what its URL records (a manifest, or a sha256), if anything."""
    url, record = shard.url, shard_record(shard.url)
    if record is None and whole_shard_digest(url) is None:
        return
    data, _ = shard.map()
    with data:
        if record is not None:
            verifier = ChunkVerifier(url, record)
            verifier.check(data, 0, True)
            if not verifier.complete:
                raise OSError("not verified whole")
        else:
            check = WholeShardCheck(url)
            check.update(data)
            check.finish()


def _identity(file: str | int) -> Identity | None:
    """Device, inode, size, modification and change times of a path or an open descriptor."""
    try:
        st = os.stat(file)
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _address(buf: Buffer) -> int:
    """Where ``buf``'s bytes start in memory."""
    return int(np.frombuffer(buf, np.uint8).ctypes.data) if len(buf) else 0


#: This process's indexes (each DataLoader worker process has its own).
SHARD_INDEXES = ShardIndexes()
