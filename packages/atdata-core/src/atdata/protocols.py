"""The narrow interfaces that index and storage backends implement.

Core owns them so that ``Repo``, the CLI and third-party backends depend on a contract
rather than on Redis or S3. Each protocol keeps few abstract methods; helpers built on
them live here as concrete methods, so every backend gets them for free and the
conformance suites in ``atdata.testing`` check one behaviour everywhere.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol, cast, runtime_checkable

from .errors import InvalidArgument
from .names import check_hive_path_chars
from .shard_url import StorageLocation
from .staging import StagedInsert, WrittenShard
from .writing import ShardSink, check_limits

__all__ = [
    "AbstractDataStore",
    "AbstractIndex",
    "DatasetLike",
    "IndexEntry",
    "ObjectInfo",
    "SampleSource",
    "ShardSink",
    "WrittenShard",
]


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


class DatasetLike(Protocol):
    """What the package seams (``add_entry``, ``write_shards``, ``Repo.insert``) read of a dataset.

    :class:`atdata.Dataset` is one. An index names a dataset by these three members;
    seams that copy samples also call ``raw_samples()`` (and read ``metadata_url``),
    which they check at run time: an object lacking a member a seam needs is refused
    with ``InvalidArgument`` naming it. The protocol gives the annotations one meaning;
    it is not checked at run time itself.
    """

    @property
    def url(self) -> str | list[str]:
        """The shard URLs as given (a brace pattern stays one unexpanded URL)."""
        ...

    @property
    def shard_list(self) -> list[str]:
        """Every shard URL, expanded."""
        ...

    @property
    def sample_type(self) -> type | None:
        """The class samples decode to (None: unknown, then pass ``schema_ref=``)."""
        ...


class SampleSource(Protocol):
    """What a copy of a dataset reads (``write_shards``): its samples as raw bytes.

    :class:`atdata.Dataset` is one; so is anything with ``raw_samples()``.
    """

    def raw_samples(self) -> Iterator[tuple[str, bytes]]:
        """``(key, msgpack bytes)`` of every sample, in shard order, without decoding."""
        ...


class AbstractIndex(abc.ABC):
    """An index of datasets (by CID and by name) and of sample schemas."""

    @abc.abstractmethod
    def add_entry(
        self,
        dataset: DatasetLike,
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
    def contents(self) -> Iterator[Any]:
        """Every stored content (each with ``data_urls``), older versions included: what gc keeps.

        The default is :attr:`entries`, right for an index that keeps one version per name;
        an index that keeps older versions (``LocalIndex``) overrides it.
        """
        return iter(self.entries)

    @property
    def owner_record(self) -> dict[str, str]:
        """How this index names itself in the owner record of a hive it writes to.

        ``Repo`` stores it in a hive on first insert and refuses inserts and gc through an
        index whose record differs: gc deletes what its index does not reference, so two
        indexes sharing a hive would delete each other's data. Override it with values that
        are equal for the same index in every process and connection (``LocalIndex``: its
        ``index_id``, created once and kept in Redis); the default, the index's repr, is
        safe but strict.
        """
        return {"index": repr(self)}

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


class AbstractDataStore(abc.ABC):
    """Object storage for shards, addressed by key under one root (a bucket, a directory).

    Backends implement six primitives: ``open_write``, ``open_read``, ``object_size``,
    ``delete``, ``list_objects`` and ``url_for``. ``write_shards`` and ``write_bytes`` are built on
    them once (``write_shards`` through :mod:`atdata.staging`), so the failure rule
    holds for every backend: if a write fails, open writers are aborted and every shard
    the call wrote is deleted before the error is raised, so nothing half-written survives.

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
    def object_size(self, url: str) -> int | None:
        """The size in bytes of the object at ``url``, or None when there is none.

        One cheap request (a ``stat``, an S3 ``HEAD``), never a read of the object: what a
        check that a stored copy is still whole (``Repo`` before reusing it, ``verify``
        before hashing it) asks of every shard. A missing bucket or directory is None too.
        Any other failure (refused keys, an unreachable server) raises a ``StoreError``.
        """

    @abc.abstractmethod
    def delete(self, keys: Iterable[str]) -> None:
        """Delete these keys; keys that do not exist are ignored."""

    @abc.abstractmethod
    def list_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every committed object whose key starts with ``prefix`` (string prefix, as S3)."""

    @abc.abstractmethod
    def url_for(self, key: str) -> str:
        """The full URL (``s3://bucket/key``, ``file:///root/key``) readers open."""

    def supports_streaming(self) -> bool:
        """True: every store takes shards while they are produced (``write_shards`` streams).

        Not part of what a backend implements (nothing in atdata branches on it); kept
        because the spec's examples call it.
        """
        return True

    @property
    def location(self) -> StorageLocation | None:
        """Where this store lives, for readers in other processes (never a secret).

        ``write_shards`` puts it on every URL it returns (``WrittenShard.location``), so
        an index can record it and a fresh process can find the bucket. None (the
        default) for stores whose URLs say everything, such as local directories.
        """
        return None

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
        dataset: SampleSource | Iterable[Any],
        *,
        prefix: str = "",
        maxcount: int | None = None,
        maxsize: int | None = None,
        cache_local: bool = False,
        progress: bool | Callable[[int, int], None] | None = None,
    ) -> list[WrittenShard]:
        """Write the samples of ``dataset`` as shards ``{prefix}/data--{insert_id}--{i:06d}.tar``.

        One :class:`~atdata.staging.StagedInsert` of its own writes them (the naming rule
        is :class:`~atdata.staging.InsertKeys`); to stage shards as part of an insert that
        also commits an index entry, use a ``StagedInsert`` directly.

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
        list[WrittenShard]
            The shard URLs in order, each carrying its key, insert id, index, sha256 and
            the store's :attr:`location`.

        Raises
        ------
        StoreError
            The store failed, or the samples could not be read (the cause is chained).
            The shards this call wrote are deleted first.
        InvalidArgument
            Bad limits, a ``prefix`` holding URL or brace metacharacters (the returned
            URLs would not name the shards), or a bad sample (raised before or while
            writing; cleaned up too).
        """
        check_limits(maxcount, maxsize)
        check_hive_path_chars(prefix, "prefix")
        raw_samples = getattr(dataset, "raw_samples", None)
        # No raw_samples(): an iterable of the samples themselves.
        samples = raw_samples() if raw_samples is not None else cast("Iterable[Any]", dataset)
        return StagedInsert(self, prefix).write_shards(
            samples, maxcount=maxcount, maxsize=maxsize, cache_local=cache_local, progress=progress
        )
