"""``Repo``: a data store and an index used together, so that no insert loses or orphans data.

An insert is one :class:`atdata.staging.StagedInsert` (the failure rule lives there):

1. the sample schema is published into the index (if new; a schema without an entry
   is harmless, and doing this first fails fast on a conflict or an unreachable index,
   before gigabytes are uploaded) and the hive's owner is checked (``_owner``),
2. the insert stages its shards ``{prefix}/data--{insert_id}--{i:06d}.tar``,
3. the dataset's metadata ``{prefix}/data--{insert_id}--metadata.msgpack`` (if it has any),
4. and a content record ``{prefix}/content/{digest}--{insert_id}.json`` (``_content``):
   the shard manifest (size, sample count, sha256 and chunk digests of every shard) with
   the entry's schema ref and URLs; the entry's URL carries the same manifest, so reads
   of it are verified,
5. then commits: the index entry, in ONE atomic write. Only this makes the data visible.

Steps 3-5 are ``_commit.publish`` (which reuses identical content already indexed).

A failure before step 5 deletes what steps 2-4 staged. A crash (SIGKILL, power loss)
leaves at worst objects that no entry references, never an entry without its data;
:meth:`Repo.gc` (``_gc``) removes such objects once nothing has touched their insert
for a grace period. The content digest (schema ref, shard checksums, metadata) makes
inserting identical content again reuse the stored shards, so it gets the same CID, but
only once every shard of the stored copy was found with its recorded size; a broken copy
is replaced by the fresh one, and names pointing at it are repaired (``_dedup``).

Every insert takes one path in three calls: :meth:`Repo.stage_insert` (step 1; returns a
picklable ``PendingInsert``), the shards staged (step 2), :meth:`Repo.commit_insert`
(steps 3-5, shards in index order) or an abort. :meth:`Repo.insert` runs the three in
one process (the steps it shares with them are ``Repo._begin`` and ``Repo._commit``); an
insert whose shards many processes write (a Ray Data job: ``atdata.ray``) calls
``PendingInsert.write_shard`` in each worker (shard index = the worker's block index)
and ends with ``commit_insert`` or ``PendingInsert.abort`` (every object of the insert,
found by its id).

``Repo`` depends on the contracts only (``AbstractIndex``, ``AbstractDataStore``): the
spec's constructor builds a ``LocalIndex`` and the store ``hive_path`` names;
:meth:`Repo.from_parts` takes any index and store.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import atdata
from atdata.errors import InvalidArgument
from atdata.index_redis import LocalIndex
from atdata.names import check_hive_path_chars
from atdata.protocols import AbstractDataStore, AbstractIndex, DatasetLike, IndexEntry
from atdata.staging import StagedInsert, WrittenShard
from atdata.writing import check_limits

from . import _owner
from ._commit import publish
from ._content import Content
from ._gc import GcReport
from ._hive import Hive, parse_hive_path
from ._insert_args import SchemaPlan, check_insert_args, dataset_metadata, plan_schema, plan_type_schema, source_samples
from ._pending import PendingInsert
from ._progress import InsertProgress
from ._upkeep import DEFAULT_GRACE, HiveUpkeep
from ._verify import ShardCheck, VerifyReport

__all__ = [
    "DEFAULT_GRACE",
    "DEFAULT_MAXCOUNT",
    "DEFAULT_MAXSIZE",
    "GcReport",
    "PendingInsert",
    "Repo",
    "ShardCheck",
    "VerifyReport",
]

#: Default shard limits (webdataset's ``ShardWriter`` defaults): ``None`` means no limit.
DEFAULT_MAXCOUNT = 100_000
DEFAULT_MAXSIZE = 3_000_000_000


class Repo(HiveUpkeep):
    """Datasets stored as shards under ``hive_path`` and indexed in Redis.

    Parameters
    ----------
    s3_credentials
        Path to a ``.env`` file, a dict (``AWS_ENDPOINT``, ``AWS_ACCESS_KEY_ID``,
        ``AWS_SECRET_ACCESS_KEY``), or None: the environment (boto3's chain) when it sets
        ``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT``/``AWS_ENDPOINT_URL`` or ``AWS_PROFILE``, else
        the S3 server ``atdata local up`` recorded (its port and keys), if any. Must be None
        when ``hive_path`` is a local directory.
    hive_path
        ``"bucket/prefix"`` (or ``"s3://bucket/prefix"``) for S3, or a local directory:
        ``"file:///data/hive"``, an absolute path, or one starting with ``./``, ``../``
        or ``~``. A plain ``"a/b"`` always means bucket ``a``, prefix ``b``.
    redis
        A ready ``redis.Redis`` client, or a ``redis://`` URL; None connects as
        ``LocalIndex()`` does (``**index_kwargs``, ``$ATDATA_REDIS_URL``, the Redis
        ``atdata local up`` recorded, localhost:6379).
    **index_kwargs
        ``key_prefix=`` and redis-py connection options, passed to ``LocalIndex``.

    Any other index and store: :meth:`from_parts`.

    Raises
    ------
    InvalidArgument
        At construction, for a bad ``hive_path``, a ``redis=`` that is neither a client
        nor a Redis URL, a keyword redis-py does not take, or ``index=``/``data_store=``
        (the message points to :meth:`from_parts`). Nothing is written.

    Attributes
    ----------
    index : AbstractIndex
        Where entries and schemas live (a ``LocalIndex`` from this constructor).
    store : AbstractDataStore
        ``S3DataStore`` for S3 hives, ``DiskDataStore`` for local directories.
    prefix : str
        The key prefix under ``store`` where this repo writes.
    """

    def __init__(
        self,
        s3_credentials: str | os.PathLike[str] | Mapping[str, str] | None = None,
        hive_path: str | os.PathLike[str] | None = None,
        redis: Any = None,
        **index_kwargs: Any,
    ) -> None:
        _check_not_index_kwargs(index_kwargs)
        if hive_path is None:
            raise InvalidArgument(
                "Repo needs hive_path=: 'bucket/prefix' for S3, or a directory such as './hive' or 'file:///data/hive'"
            )
        self._hive: Hive = parse_hive_path(hive_path, s3_credentials)
        index = LocalIndex(redis=redis, **index_kwargs)  # a client or a URL
        # Build the client now (redis-py connects only on the first command), so an
        # unknown connection keyword or a malformed URL fails here, not at first insert.
        index.redis  # noqa: B018
        self.index: AbstractIndex = index

    @classmethod
    def from_parts(cls, index: AbstractIndex, store: AbstractDataStore, prefix: str = "") -> Repo:
        """A Repo over any index and any data store, writing under ``prefix`` in ``store``.

        Raises
        ------
        InvalidArgument
            ``index`` or ``store`` does not implement the contract, or ``prefix`` is not
            a key prefix (a URL, say, or one holding braces, ``?`` or ``#``). Nothing is written.
        """
        if not isinstance(index, AbstractIndex):
            raise InvalidArgument(f"index={index!r:.200} is not an atdata.AbstractIndex (e.g. a LocalIndex)")
        if not isinstance(store, AbstractDataStore):
            raise InvalidArgument(
                f"store={store!r:.200} is not an atdata.AbstractDataStore (e.g. an S3DataStore or DiskDataStore)"
            )
        if isinstance(prefix, str):
            check_hive_path_chars(prefix, "prefix")
        repo = cls.__new__(cls)
        repo._hive = Hive(store, StagedInsert(store, prefix).prefix)  # the staging rules check the prefix
        repo.index = index
        return repo

    @property
    def prefix(self) -> str:
        """The key prefix under :attr:`store` (``""`` for a local directory hive)."""
        return self._hive.prefix

    def __repr__(self) -> str:
        return f"Repo({self.store!r}, prefix={self.prefix!r}, index={self.index!r})"

    # -- insert -----------------------------------------------------------------------

    def insert(
        self,
        dataset: DatasetLike,
        *,
        name: str,
        cache_local: bool = False,
        maxcount: int | None = DEFAULT_MAXCOUNT,
        maxsize: int | None = DEFAULT_MAXSIZE,
        schema_ref: str | None = None,
        metadata: dict[str, Any] | None = None,
        progress: bool | InsertProgress = False,
    ) -> tuple[IndexEntry, atdata.Dataset[Any]]:
        """Copy ``dataset`` into the hive as new shards and index it under ``name``.

        Samples are copied as stored (``dataset.raw_samples()``): never re-encoded, but
        each is checked against the sample type first (field names and wire types, see
        :mod:`atdata.conform`), so no entry ever names samples its readers cannot decode.
        Inserting identical content (same samples and shard limits, schema
        and dataset metadata) again reuses the stored shards (same CID) once each was
        found with its recorded size; if one is missing or truncated, the fresh shards
        are kept instead (a new CID) and the names that pointed at the broken copy now
        point at them, so re-inserting repairs a damaged dataset.

        Parameters
        ----------
        dataset
            An ``atdata.Dataset``. Its sample type gives the schema unless ``schema_ref``
            is passed; its ``metadata`` (if any) is stored next to the shards.
        name
            The entry's name; inserting new content under a used name adds its newest version.
        cache_local
            Write each shard to a local temporary file, then upload it (False: stream).
        maxcount, maxsize
            Samples / bytes per shard (None: no limit).
        schema_ref
            Any ``local://schemas/{name}@{semver}`` (a module part is optional:
            ``local://schemas/Test@1.0.0``) or the ``at://`` URI of a published schema.
            Data whose sample type is not a packable class needs one published in
            :attr:`index` (its samples are checked against it). With a packable class it
            must have the class's fields if published; the class's own ref is published
            under that version if new; any other ref (another name, an ``at://`` URI) is
            recorded as given, the samples checked against the class.
        metadata
            JSON-serialisable metadata for the index entry (not part of the CID).
        progress
            True for a tqdm bar (bytes, shards, samples/s), or an ``InsertProgress``.

        Returns
        -------
        (IndexEntry, atdata.Dataset)
            The entry (a ``LocalDatasetEntry`` from a ``LocalIndex``), and the stored
            dataset: ``.url`` is the brace URL of the new shards, ``.shard_list`` their
            URLs; it reads the same samples in the same order.

        Raises
        ------
        InvalidArgument
            Bad name, limits, metadata or dataset; an empty dataset. Nothing is written.
        SchemaMismatch
            A sample's field names or wire types are not the sample type's (or a member
            is not msgpack): names the shard, member and both field lists. No entry is
            written and no staged shard is left (a mismatch in the first sample comes
            before anything is written at all).
        SchemaConflict, SchemaNotFound
            ``schema_ref`` does not fit the sample type, or is not published.
        StoreError, IndexConnectionError
            The store or Redis failed; the objects this insert wrote were removed.
        """
        check_insert_args(name, metadata, cache_local)
        check_limits(maxcount, maxsize)  # before the hive claim and schema publish below
        limits = {"maxcount": maxcount, "maxsize": maxsize, "cache_local": cache_local}
        plan = plan_schema(self.index, dataset, schema_ref)  # reads only
        with source_samples(dataset, plan.sample_type) as samples:  # each checked; the first before any write
            pending = self._begin(plan, name, metadata)  # the first write
            try:
                meta_bytes = dataset_metadata(dataset)
                shards = _stage_shards(pending.staged, samples, progress, name, limits)
            except BaseException as exc:
                pending.staged.abort(exc)  # what this insert staged, before the error propagates
                raise
        return self._commit(pending, shards, meta_bytes)

    def stage_insert(
        self,
        sample_type: type | None = None,
        *,
        name: str,
        schema_ref: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> PendingInsert:
        """Begin an insert whose shards other processes write: see :mod:`atdata.local._pending`.

        Publishes the schema and claims the hive, as :meth:`insert` does before its
        first shard; returns a picklable :class:`PendingInsert`. End it with
        :meth:`commit_insert` or :meth:`PendingInsert.abort`.

        Raises
        ------
        InvalidArgument, SchemaConflict, SchemaNotFound
            As :meth:`insert`; nothing is written.
        """
        check_insert_args(name, metadata, False)
        return self._begin(plan_type_schema(self.index, sample_type, schema_ref, sample_type), name, metadata)

    def _begin(self, plan: SchemaPlan, name: str, metadata: dict[str, Any] | None) -> PendingInsert:
        """Step 1 of every insert: the schema published (``plan``), the hive claimed, the transaction begun."""
        ref = plan.apply(self.index)
        _owner.claim(self._hive, self.index)
        return PendingInsert(StagedInsert(self.store, self.prefix), plan.sample_type, ref, name, metadata)

    def commit_insert(
        self, pending: PendingInsert, shards: Iterable[WrittenShard]
    ) -> tuple[IndexEntry, atdata.Dataset[Any]]:
        """Index the shards of ``pending`` as one entry, in shard-index order: one atomic write.

        Each index counts once (a retried writer's shard replaced its first attempt
        under the same key). On any failure every object of the insert is deleted.

        Raises
        ------
        InvalidArgument
            No shards (no samples), or shards of another insert; the insert is aborted.
        StoreError, IndexConnectionError
            As :meth:`insert`.
        """
        return self._commit(pending, shards, None)

    def _commit(
        self, pending: PendingInsert, shards: Iterable[WrittenShard], meta_bytes: bytes | None
    ) -> tuple[IndexEntry, atdata.Dataset[Any]]:
        """Steps 3-5 of every insert (``_commit.publish``), over its shards in index order;
        ``meta_bytes``: the dataset's metadata, stored beside the shards."""
        ordered = sorted({shard.shard_index: shard for shard in shards}.values(), key=lambda s: s.shard_index)
        try:
            if not ordered:
                raise InvalidArgument(f"nothing to insert as {pending.name!r}: the writers wrote no samples")
            pending.staged.adopt(ordered)
        except BaseException:
            pending.abort()
            raise
        with pending.staged as staged:
            content = Content(pending.schema_ref, ordered, meta_bytes)
            return publish(
                self.index, staged, content, pending.sample_type, name=pending.name, metadata=pending.metadata
            )


# -- helpers ----------------------------------------------------------------------------


_NOT_INDEX_KWARGS = {
    "index": "to use an existing LocalIndex, pass its connection: redis=index.redis, key_prefix=index.key_prefix "
    "(any index and store: Repo.from_parts(index, store, prefix))",
    "data_store": "Repo writes to the store hive_path= names: 'bucket/prefix' for S3 (with s3_credentials=), "
    "or a directory such as './hive' or 'file:///data/hive' (a DiskDataStore); any index and store: "
    "Repo.from_parts(index, store, prefix)",
}
_NOT_INDEX_KWARGS["store"] = _NOT_INDEX_KWARGS["data_store"]


def _check_not_index_kwargs(index_kwargs: Mapping[str, Any]) -> None:
    """Refuse the arguments users reach for that Repo does not take (they would otherwise
    reach redis-py as connection options and fail only at the first command)."""
    for name, hint in _NOT_INDEX_KWARGS.items():
        if name in index_kwargs:
            raise InvalidArgument(f"Repo({name}={index_kwargs[name]!r:.200}): Repo has no {name}= argument; {hint}")


def _stage_shards(
    staged: StagedInsert, samples: Any, progress: bool | InsertProgress, name: str, limits: dict[str, Any]
) -> list[WrittenShard]:
    """Step 2 of an insert: the shards, counted by ``progress`` (an ``InsertProgress`` or a bar flag)."""
    tracker = progress if isinstance(progress, InsertProgress) else InsertProgress(bar=bool(progress), description=name)
    try:
        return staged.write_shards(tracker.count(samples), progress=tracker.report, **limits)
    finally:
        if tracker is not progress:
            tracker.close()
