"""The narrow interfaces that index and storage backends implement.

Core owns them so that ``Repo``, the CLI and third-party backends depend on a contract
rather than on Redis or S3. Each protocol keeps few abstract methods; helpers built on
them live here as concrete methods, so every backend gets them for free and the
conformance suites in ``atdata.testing`` check one behaviour everywhere.
"""

from __future__ import annotations

import abc
import logging
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol, runtime_checkable

from .errors import AtdataError, InvalidArgument, StoreError
from .writing import ShardSink, ShardWriter, check_limits

__all__ = ["AbstractDataStore", "AbstractIndex", "IndexEntry", "ObjectInfo", "ShardSink", "WrittenShard"]

log = logging.getLogger(__name__)


@runtime_checkable
class IndexEntry(Protocol):
    """What every index entry exposes, whichever index produced it."""

    @property
    def name(self) -> str: ...

    @property
    def schema_ref(self) -> str: ...

    @property
    def data_urls(self) -> list[str]: ...

    @property
    def metadata(self) -> dict[str, Any] | None: ...

    @property
    def cid(self) -> str: ...


class AbstractIndex(abc.ABC):
    """An index of datasets (by CID and by name) and of sample schemas."""

    @abc.abstractmethod
    def add_entry(
        self,
        dataset: Any,
        *,
        name: str,
        schema_ref: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> IndexEntry:
        """Index ``dataset`` under ``name``; idempotent for identical content.

        Names are pointers: content already indexed under another name is shared, and
        that other name stays as it was.
        """

    @abc.abstractmethod
    def get_entry(self, cid: str) -> IndexEntry:
        """The entry with this CID (several names sharing it: the first name's); raises ``EntryNotFound``."""

    @abc.abstractmethod
    def get_entry_by_name(self, name: str) -> IndexEntry:
        """The newest version under this name (its ``name`` is this name); raises ``EntryNotFound``."""

    @property
    @abc.abstractmethod
    def entries(self) -> Iterator[IndexEntry]:
        """Stream one entry per name (its newest version) without loading them all at once."""

    @abc.abstractmethod
    def remove_entry(self, cid_or_name: Any) -> None:
        """Remove one version of one name: an entry, a name's newest, or a CID one name uses.

        Raises ``EntryNotFound``; ``AmbiguousEntry`` (naming them) for a CID several names
        share: no other name is ever dropped.
        """

    @abc.abstractmethod
    def publish_schema(
        self, sample_type: type, *, version: str | None = "1.0.0", description: str | None = None
    ) -> str:
        """Store the schema of ``sample_type``; returns its schema ref."""

    @abc.abstractmethod
    def get_schema(self, ref: str) -> dict[str, Any]:
        """The schema record stored under ``ref``; raises ``SchemaNotFound``."""

    @abc.abstractmethod
    def list_schemas(self) -> Iterator[dict[str, Any]]:
        """Every stored schema record."""

    @property
    def all_entries(self) -> list[IndexEntry]:
        """One entry per name as a list (loads them all: prefer ``entries`` for large indexes)."""
        return list(self.entries)

    def decode_schema(self, ref: str) -> type:
        """Reconstruct a packable sample class from the schema stored under ``ref``."""
        from .schema import from_record

        return from_record(self.get_schema(ref))


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object, as ``AbstractDataStore.list_objects`` reports it.

    ``size`` and ``mtime`` (POSIX seconds) let a garbage collector skip objects
    younger than its grace period without reading them.
    """

    key: str
    url: str
    size: int
    mtime: float


class WrittenShard(str):
    """The URL of a shard ``write_shards`` wrote, with what was measured while writing it.

    A plain ``str`` everywhere a URL is expected; ``sha256`` (hex digest of the whole
    tar), ``size`` (bytes) and ``num_samples`` let callers record checksums next to the
    data so readers can verify it. (Not ``count``: that would hide ``str.count``.)
    """

    sha256: str
    size: int
    num_samples: int

    def __new__(cls, url: str, *, sha256: str, size: int, num_samples: int) -> WrittenShard:
        shard = super().__new__(cls, url)
        shard.sha256, shard.size, shard.num_samples = sha256, size, num_samples
        return shard

    def __reduce__(self) -> tuple[Any, ...]:
        return (_written_shard, (str(self), self.sha256, self.size, self.num_samples))


def _written_shard(url: str, sha256: str, size: int, num_samples: int) -> WrittenShard:
    return WrittenShard(url, sha256=sha256, size=size, num_samples=num_samples)


class AbstractDataStore(abc.ABC):
    """Object storage for shards, addressed by key under one root (a bucket, a directory).

    Backends implement six primitives: ``open_write``, ``open_read``, ``delete``,
    ``list_objects``, ``url_for`` and ``supports_streaming``. ``write_shards`` and
    ``write_bytes`` are built on them once, here, so the failure rule holds for every
    backend: if a write fails, open writers are aborted and every shard the call wrote
    is deleted before the error is raised, so nothing half-written survives.

    Stores travel into DataLoader workers: subclasses pickle only their parameters
    and create clients lazily in each process.
    """

    @abc.abstractmethod
    def open_write(self, key: str) -> ShardSink:
        """A writer for ``key`` (``write(bytes)``, ``commit()``, ``abort()``).

        Nothing is visible under ``key`` until ``commit()`` returns; ``abort()``
        discards everything written (open multipart uploads, temp files).
        """

    @abc.abstractmethod
    def open_read(self, url: str) -> BinaryIO:
        """A readable stream of the object at ``url``; raises ``ObjectNotFound``."""

    @abc.abstractmethod
    def delete(self, keys: Iterable[str]) -> None:
        """Delete these keys; keys that do not exist are ignored."""

    @abc.abstractmethod
    def list_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every committed object whose key starts with ``prefix`` (string prefix, as S3)."""

    @abc.abstractmethod
    def url_for(self, key: str) -> str:
        """The full URL (``s3://bucket/key``, ``file:///root/key``) readers open."""

    @abc.abstractmethod
    def supports_streaming(self) -> bool:
        """True when shards can be written while they are produced, without a local copy."""

    def write_bytes(self, key: str, data: bytes) -> str:
        """Store ``data`` under ``key`` atomically (e.g. dataset metadata); returns its URL.

        Raises
        ------
        InvalidArgument
            ``data`` is not bytes-like (a str, say: encode it first); nothing is written.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidArgument(
                f"write_bytes({key!r}, ...) takes bytes, got {type(data).__name__}: encode text first (e.g. text.encode())"
            )
        writer = self.open_write(key)
        try:
            writer.write(data)
            writer.commit()
        except BaseException:
            writer.abort()
            raise
        return self.url_for(key)

    def write_shards(
        self,
        dataset: Any,
        *,
        prefix: str = "",
        maxcount: int | None = None,
        maxsize: int | None = None,
        cache_local: bool = False,
        progress: bool | Callable[[int, int], None] | None = None,
    ) -> list[str]:
        """Write the samples of ``dataset`` as shards ``{prefix}/data--{uuid}--{i:06d}.tar``.

        Parameters
        ----------
        dataset
            A ``Dataset`` (its ``raw_samples()`` are copied without decoding) or any
            iterable of samples in a shape ``ShardWriter`` accepts.
        prefix
            Key prefix (a "directory") under the store's root.
        maxcount, maxsize
            Roll over to a new shard at this many samples / bytes.
        cache_local
            Write each shard to a local temporary file first, then copy it to the
            store (fewer, larger requests; needs local disk for one shard at a time).
        progress
            ``True`` for a tqdm bar (bytes and shards), or a callable
            ``progress(bytes_delta, shards_delta)``.

        Returns
        -------
        list[str]
            The shard URLs in order, each a :class:`WrittenShard` carrying its sha256.

        Raises
        ------
        StoreError
            The store failed, or the samples could not be read (the cause is chained).
            The shards this call wrote are deleted first.
        InvalidArgument
            Bad limits or a bad sample (raised before or while writing; cleaned up too).
        """
        check_limits(maxcount, maxsize)
        if not isinstance(prefix, str) or "://" in prefix:
            raise InvalidArgument(
                f"prefix={prefix!r} is invalid: pass a key prefix inside the store such as 'datasets/v1' "
                "(not a URL: the store already names its bucket or directory)"
            )
        prefix = prefix.strip("/")
        run = uuid.uuid4()
        keys: list[str] = []
        commits: list[Future[None]] = []
        committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="atdata-commit")

        def open_sink(index: int) -> ShardSink:
            # Commit of shard i overlaps with filling shard i+1, never more: waiting
            # here bounds both memory and the work lost if a commit fails.
            for done in commits[:-1] if commits else []:
                done.result()
            keys.append(f"{prefix}/data--{run}--{index:06d}.tar" if prefix else f"data--{run}--{index:06d}.tar")
            sink = _LocalCopySink(self, keys[-1]) if cache_local else self.open_write(keys[-1])
            return _BackgroundCommit(sink, committer, commits)

        report, close_bar = _progress_callback(progress)
        writer = ShardWriter(open_sink, maxcount=maxcount, maxsize=maxsize, progress=report)
        samples = dataset.raw_samples() if hasattr(dataset, "raw_samples") else dataset
        try:
            with writer:
                for sample in samples:
                    writer.write(sample)
            for done in commits:
                done.result()
        except BaseException as exc:
            self._undo_write(keys, commits, exc)
            if isinstance(exc, AtdataError) or not isinstance(exc, Exception):
                raise
            raise StoreError(
                f"writing shards to {self.url_for(prefix)!r} failed: {type(exc).__name__}: {exc} "
                f"(the {len(keys)} shard(s) of this write were removed)"
            ) from exc
        finally:
            committer.shutdown(wait=True)
            close_bar()
        return [
            WrittenShard(self.url_for(keys[shard.index]), sha256=shard.sha256, size=shard.size, num_samples=shard.count)
            for shard in writer.shards
        ]

    def _undo_write(self, keys: list[str], commits: list[Future[None]], exc: BaseException) -> None:
        # A commit still running could make a shard visible after we deleted it.
        for done in commits:
            try:
                done.result()
            except BaseException:  # noqa: BLE001, S110 - its error is the one being raised or a consequence
                pass
        try:
            self.delete(keys)
        except Exception as cleanup:  # noqa: BLE001 - reported on the original error
            log.error("could not remove shards %s after a failed write: %s", keys, cleanup)
            exc.add_note(f"atdata: these shards could not be removed and need a gc: {keys} ({cleanup})")


class _BackgroundCommit:
    """Runs a sink's ``commit`` on the committer thread so the next shard can fill meanwhile."""

    def __init__(self, sink: ShardSink, committer: ThreadPoolExecutor, commits: list[Future[None]]) -> None:
        self._sink, self._committer, self._commits = sink, committer, commits

    def write(self, data: bytes, /) -> Any:
        return self._sink.write(data)

    def commit(self) -> None:
        self._commits.append(self._committer.submit(self._sink.commit))

    def abort(self) -> None:
        self._sink.abort()


class _LocalCopySink:
    """``cache_local=True``: fill a local temporary file, then copy it to the store on commit."""

    _CHUNK = 8 << 20

    def __init__(self, store: AbstractDataStore, key: str) -> None:
        self._store, self._key = store, key
        self._file = tempfile.TemporaryFile(prefix="atdata-shard-")  # noqa: SIM115 - closed in commit/abort

    def write(self, data: bytes, /) -> int:
        return self._file.write(data)

    def commit(self) -> None:
        try:
            self._file.seek(0)
            writer = self._store.open_write(self._key)
            try:
                while chunk := self._file.read(self._CHUNK):
                    writer.write(chunk)
                writer.commit()
            except BaseException:
                writer.abort()
                raise
        finally:
            self._file.close()

    def abort(self) -> None:
        self._file.close()


def _progress_callback(
    progress: bool | Callable[[int, int], None] | None,
) -> tuple[Callable[[int, int], None] | None, Callable[[], None]]:
    if progress is None or progress is False:
        return None, lambda: None
    if callable(progress):
        return progress, lambda: None
    if progress is not True:
        raise InvalidArgument(f"progress={progress!r} is invalid: pass True, a callable, or None")
    try:
        from tqdm.auto import tqdm
    except ImportError as exc:
        raise InvalidArgument("progress=True needs tqdm: `pip install tqdm`, or pass a callable") from exc
    bar = tqdm(unit="B", unit_scale=True, unit_divisor=1024, desc="writing shards")
    shards = 0

    def report(nbytes: int, nshards: int) -> None:
        nonlocal shards
        if nshards:
            shards += nshards
            bar.set_postfix(shards=shards, refresh=False)
        bar.update(nbytes)

    return report, bar.close
