"""Writing samples into WebDataset tar shards.

:class:`ShardWriter` encodes samples as POSIX (pax) tar members named
``{__key__}.msgpack`` and streams them into *sinks* that a callback opens, one per
shard, rolling over to a new shard at ``maxcount`` samples or ``maxsize`` bytes. It
knows nothing about where the bytes go: :func:`write_samples` gives it local files,
``AbstractDataStore.write_shards`` gives it store objects (S3 multipart uploads, files
renamed into place). A sink only ever becomes visible under its final name through
``commit()``, so a failure never leaves a half shard behind.

Samples are accepted in three shapes, so re-sharding never decodes:

- a packable sample (anything with ``.as_wds``),
- a ``{"__key__": str, "msgpack": bytes}`` dict (what ``sample.as_wds`` returns, with
  the key overridden as the spec's examples do),
- a raw ``(key, msgpack_bytes)`` pair, as ``Dataset.raw_samples()`` yields them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

from ._shard_pattern import check_pattern, shard_path
from ._tar_member import BLOCK, END_OF_ARCHIVE, ZEROS, member_header, sample_record
from .errors import InvalidArgument
from .manifest import ChunkHasher, ShardRecord

__all__ = [
    "AtomicFileSink",
    "ShardInfo",
    "ShardSink",
    "ShardWriter",
    "check_limits",
    "sample_record",
    "write_samples",
]

log = logging.getLogger(__name__)

# Progress is reported at most every this many bytes (and at every shard end), so a
# per-sample callback never dominates the cost of writing small samples.
_PROGRESS_EVERY = 4 << 20
# Payloads smaller than this are joined with their header into one write.
_JOIN_BELOW = 64 << 10


class ShardSink(Protocol):
    """Where one shard's bytes go. Nothing is visible under the final name before ``commit``."""

    def write(self, data: bytes, /) -> Any: ...

    def commit(self) -> None:
        """Make the shard durable and visible under its final name."""

    def abort(self) -> None:
        """Discard everything written; safe to call more than once."""


@dataclass(frozen=True)
class ShardInfo:
    """What was written into one finished shard.

    ``sha256`` is the hex digest of the whole tar file and ``chunks`` the digests of its
    fixed-size chunks (:class:`atdata.manifest.ChunkHasher`), both computed while
    streaming, so a reader can verify a shard without the writer ever holding it in memory.
    """

    index: int
    count: int
    size: int
    sha256: str
    chunks: tuple[str, ...] = ()

    def record(self, url: str) -> ShardRecord:
        """This shard's manifest record, for the URL it was stored under."""
        return ShardRecord(url, self.size, self.count, self.sha256, self.chunks)


def check_limits(maxcount: int | None, maxsize: int | None) -> None:
    """Raise :class:`InvalidArgument` unless both limits are None or positive ints."""
    for name, value in (("maxcount", maxcount), ("maxsize", maxsize)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise InvalidArgument(f"{name}={value!r} is invalid: pass a positive int, or None for no limit")


def _type_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class ShardWriter:
    """Stream samples into tar shards, opening a new sink at each rollover.

    Parameters
    ----------
    open_sink
        Called with the shard index (0, 1, ...) when a shard starts; returns its sink.
        Shards open lazily, so no empty shard is ever written.
    maxcount
        At most this many samples per shard (None: no limit).
    maxsize
        At most this many bytes per shard, tar framing included (None: no limit). A
        single sample larger than ``maxsize`` still gets a shard of its own.
    progress
        Called as ``progress(bytes_delta, shards_delta)`` every few MiB and at each
        finished shard, e.g. to drive a progress bar.

    Use as a context manager: leaving the ``with`` body on an exception aborts the open shard;
    shards already committed are listed in :attr:`shards` for the caller to clean up.
    """

    def __init__(
        self,
        open_sink: Callable[[int], ShardSink],
        *,
        maxcount: int | None = None,
        maxsize: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        check_limits(maxcount, maxsize)
        self._open_sink = open_sink
        self._maxcount = maxcount
        self._maxsize = maxsize
        self._progress = progress
        self._sink: ShardSink | None = None
        self._hash = hashlib.sha256()
        self._chunks = ChunkHasher()
        self._count = 0
        self._size = 0
        self._unreported = 0
        self._last_key: str | None = None
        self._sample_type: type | None = None
        self._type_position = 0
        self.shards: list[ShardInfo] = []

    def write(self, sample: Any) -> None:
        """Append one sample (packable sample, ``as_wds`` dict or ``(key, bytes)`` pair).

        Raises
        ------
        InvalidArgument
            A bad sample, a key equal to the previous one, or a packable sample whose
            class differs from the first packable sample's: one writer holds one type.
        """
        cls = sample.__class__
        if cls is not self._sample_type and cls is not tuple and cls is not dict:
            self._check_type(sample)
        key, payload = sample_record(sample)
        if key == self._last_key:
            # Consecutive equal keys would merge into one sample when read back.
            raise InvalidArgument(f"sample key {key!r} repeats the previous sample's key: keys must be unique")
        header = member_header(key + ".msgpack", len(payload))
        pad = -len(payload) % BLOCK
        nbytes = len(header) + len(payload) + pad
        if self._sink is not None and self._full(nbytes):
            self._finish_shard()
        if self._sink is None:
            self._sink = self._open_sink(len(self.shards))
        if len(payload) < _JOIN_BELOW:  # one call per sample beats avoiding a small copy
            chunks: tuple[bytes, ...] = (b"".join((header, payload, ZEROS[:pad])),)
        else:
            chunks = (header, payload, ZEROS[:pad]) if pad else (header, payload)
        for chunk in chunks:
            self._sink.write(chunk)
            self._hash.update(chunk)
            self._chunks.update(chunk)
        self._last_key = key
        self._count += 1
        self._size += nbytes
        self._unreported += nbytes
        if self._progress is not None and self._unreported >= _PROGRESS_EVERY:
            self._progress(self._unreported, 0)
            self._unreported = 0

    def _check_type(self, sample: Any) -> None:
        # Readers decode a whole dataset with one sample type, so a second type would only
        # fail later, at read time. Dicts and (key, bytes) pairs carry no type to compare.
        if isinstance(sample, (tuple, Mapping)) or not hasattr(sample, "as_wds"):
            return
        position = sum(shard.count for shard in self.shards) + self._count
        if self._sample_type is None:
            self._sample_type, self._type_position = sample.__class__, position
            return
        raise InvalidArgument(
            f"sample at position {position} has type {_type_name(sample.__class__)}, but the first "
            f"packable sample (position {self._type_position}) has type {_type_name(self._sample_type)}: "
            "write one sample type per call (one dataset per type)"
        )

    def _full(self, nbytes: int) -> bool:
        if self._maxcount is not None and self._count >= self._maxcount:
            return True
        return self._maxsize is not None and self._size + nbytes + len(END_OF_ARCHIVE) > self._maxsize

    def _finish_shard(self) -> None:
        sink, self._sink = self._sink, None
        assert sink is not None  # only called with an open shard
        try:
            sink.write(END_OF_ARCHIVE)
            sink.commit()
        except BaseException:
            sink.abort()
            raise
        self._hash.update(END_OF_ARCHIVE)
        self._chunks.update(END_OF_ARCHIVE)
        self._size += len(END_OF_ARCHIVE)
        info = ShardInfo(len(self.shards), self._count, self._size, self._hash.hexdigest(), self._chunks.finish())
        self.shards.append(info)
        if self._progress is not None:
            self._progress(self._unreported + len(END_OF_ARCHIVE), 1)
        self._hash = hashlib.sha256()
        self._chunks = ChunkHasher()
        self._count = self._size = self._unreported = 0

    def close(self) -> list[ShardInfo]:
        """Finish the open shard (if any) and return every shard written."""
        if self._sink is not None:
            self._finish_shard()
        return self.shards

    def abort(self) -> None:
        """Discard the open shard; committed shards stay (see :attr:`shards`)."""
        sink, self._sink = self._sink, None
        if sink is not None:
            sink.abort()

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class AtomicFileSink:
    """A local file written under a temporary name and renamed into place on commit.

    The temporary name sits in the same directory (so the rename is atomic) and
    starts with ``.`` and ends in ``.tmp``, so globs like ``data-*.tar`` never match a
    half-written file.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        directory, name = os.path.split(self.path)
        os.makedirs(directory or ".", exist_ok=True)
        self._tmp = os.path.join(directory, f".{name}.{uuid.uuid4().hex[:12]}.tmp")
        self._file = open(self._tmp, "xb", buffering=1 << 20)  # noqa: SIM115 - closed in commit/abort

    def write(self, data: bytes, /) -> int:
        return self._file.write(data)

    def commit(self) -> None:
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        self._file.close()
        try:
            os.unlink(self._tmp)
        except FileNotFoundError:
            pass


def write_samples(
    samples: Iterable[Any],
    pattern: str | os.PathLike[str],
    maxcount: int | None = None,
    maxsize: int | None = None,
) -> list[str]:
    """Write samples into local tar shards; returns the shard paths in order.

    Parameters
    ----------
    samples
        Packable samples, ``as_wds`` dicts or ``(key, msgpack_bytes)`` pairs (e.g.
        ``Dataset.raw_samples()``, which re-shards without decoding anything).
    pattern
        Shard path (or ``file://`` URL) with a placeholder for the shard index:
        ``"data-%06d.tar"`` or ``"data-{:06d}.tar"``. Without a placeholder only one shard may be written,
        so ``maxcount`` and ``maxsize`` must then be None.
    maxcount, maxsize
        Roll over to a new shard at this many samples / bytes (see :class:`ShardWriter`).

    Each shard is written under a temporary name and renamed when complete. If
    anything fails, the shards this call wrote are deleted before the error propagates.

    Raises
    ------
    InvalidArgument
        Bad limits, a pattern that cannot number several shards, or a bad sample.
    UnsupportedURL
        A URL scheme other than ``file://`` (``s3://``, ``http://``...): nothing is written.
    """
    pattern = os.fspath(pattern) if isinstance(pattern, os.PathLike) else pattern
    check_limits(maxcount, maxsize)
    path_pattern = check_pattern(pattern, limited=maxcount is not None or maxsize is not None)
    paths: list[str] = []

    def open_sink(index: int) -> AtomicFileSink:
        paths.append(shard_path(path_pattern, index))
        return AtomicFileSink(paths[-1])

    writer = ShardWriter(open_sink, maxcount=maxcount, maxsize=maxsize)
    try:
        with writer:
            for sample in samples:
                writer.write(sample)
    except BaseException:
        for shard in writer.shards:
            _unlink_quietly(paths[shard.index])
        raise
    return [shard_path(pattern, index) for index in range(len(paths))]


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError as exc:
        log.warning("could not remove shard %s after a failed write: %s", path, exc)
