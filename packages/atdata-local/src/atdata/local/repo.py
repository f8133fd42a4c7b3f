"""``Repo``: a data store and an index used together, so that no insert loses or orphans data.

An insert writes, in this order:

1. the sample schema into the index (published if new; a schema without an entry
   is harmless, and doing this first fails fast on a conflict or an unreachable
   Redis, before gigabytes are uploaded),
2. the shards ``{prefix}/data--{run}--{i:06d}.tar`` (``AbstractDataStore.write_shards``
   removes what it wrote if it fails),
3. the dataset's metadata ``{prefix}/data--{run}--metadata.msgpack`` (if it has any),
4. a content record ``{prefix}/content/{digest}--{run}.json`` (shard checksums, URLs),
5. the index entry, in ONE atomic write. Only this makes the data visible.

A failure before step 5 deletes what steps 2-4 wrote. A crash (SIGKILL, power loss)
leaves at worst objects that no entry references, never an entry without its data;
:meth:`Repo.gc` removes such objects once nothing has touched their run for a grace
period. The content digest (schema ref, shard checksums, metadata) makes inserting
identical content again reuse the stored shards, so it gets the same CID.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import logging
import os
import re
import time
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

import atdata
from atdata import schema as _schema
from atdata.errors import EntryNotFound, InvalidArgument, SchemaConflict, SchemaNotFound
from atdata.index_redis import LocalDatasetEntry, LocalIndex
from atdata.protocols import AbstractDataStore, ObjectInfo
from atdata.sample import DictSample, PackableSample
from atdata.urls import expand_urls
from atdata.writing import check_limits

from ._hive import Hive, parse_hive_path
from ._progress import InsertProgress

__all__ = ["DEFAULT_GRACE", "DEFAULT_MAXCOUNT", "DEFAULT_MAXSIZE", "GcReport", "Repo"]

log = logging.getLogger(__name__)

#: Default shard limits (webdataset's ``ShardWriter`` defaults): ``None`` means no limit.
DEFAULT_MAXCOUNT = 100_000
DEFAULT_MAXSIZE = 3_000_000_000
#: ``gc`` leaves a run alone while any of its objects is younger than this. Each shard
#: of an insert in progress renews its run, so this must exceed the time one shard takes.
DEFAULT_GRACE = timedelta(hours=1)

_RUN = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_DATA_KEY = re.compile(rf"data--(?P<run>{_RUN})--(?:\d{{6}}\.tar|metadata\.msgpack)")
_CONTENT_KEY = re.compile(rf"content/[0-9a-f]{{64}}--(?P<run>{_RUN})\.json")
_SHARD_SUFFIX = re.compile(r"--(\d{6})\.tar$")
_OWNER = "atdata-hive.json"  # which index owns the hive (see Repo._claim_hive)


@dataclasses.dataclass(frozen=True)
class GcReport:
    """What :meth:`Repo.gc` found and removed.

    ``removed`` lists the URLs deleted (or, with ``dry_run``, that would be);
    ``kept_recent`` counts unreferenced objects spared because their run is younger
    than the grace period (an insert may still be running).
    """

    removed: list[str]
    removed_bytes: int
    kept_recent: int
    referenced: int
    dry_run: bool

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return dataclasses.asdict(self)


class Repo:
    """Datasets stored as shards under ``hive_path`` and indexed in Redis.

    Parameters
    ----------
    s3_credentials
        Path to a ``.env`` file, a dict (``AWS_ENDPOINT``, ``AWS_ACCESS_KEY_ID``,
        ``AWS_SECRET_ACCESS_KEY``), or None for the environment (boto3's chain). Must
        be None when ``hive_path`` is a local directory.
    hive_path
        ``"bucket/prefix"`` (or ``"s3://bucket/prefix"``) for S3, or a local directory:
        ``"file:///data/hive"``, an absolute path, or one starting with ``./``, ``../``
        or ``~``. A plain ``"a/b"`` always means bucket ``a``, prefix ``b``.
    redis
        A ready ``redis.Redis`` client, or a ``redis://`` URL; None connects as
        ``LocalIndex()`` does (``**index_kwargs``, ``$ATDATA_REDIS_URL``, localhost:6379).
    **index_kwargs
        ``key_prefix=`` and redis-py connection options, passed to ``LocalIndex``.

    Raises
    ------
    InvalidArgument
        At construction, for a bad ``hive_path``, a ``redis=`` that is neither a client
        nor a Redis URL, a keyword redis-py does not take, or ``index=``/``data_store=``
        (Repo takes neither: the message says what to pass). Nothing is written.

    Attributes
    ----------
    index : LocalIndex
        Where entries and schemas live.
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
        if isinstance(redis, str):
            self.index = LocalIndex.from_url(redis, **index_kwargs)
        else:
            self.index = LocalIndex(redis=redis, **index_kwargs)
        # Build the client now (redis-py connects only on the first command), so an
        # unknown connection keyword or a malformed URL fails here, not at first insert.
        self.index.redis  # noqa: B018

    @property
    def store(self) -> AbstractDataStore:
        """The data store shards are written to."""
        return self._hive.store

    @property
    def prefix(self) -> str:
        """The key prefix under :attr:`store` (``""`` for a local directory hive)."""
        return self._hive.prefix

    def __repr__(self) -> str:
        return f"Repo({self.store!r}, prefix={self.prefix!r}, index={self.index!r})"

    # -- insert -----------------------------------------------------------------------

    def insert(
        self,
        dataset: Any,
        *,
        name: str,
        cache_local: bool = False,
        maxcount: int | None = DEFAULT_MAXCOUNT,
        maxsize: int | None = DEFAULT_MAXSIZE,
        schema_ref: str | None = None,
        metadata: dict[str, Any] | None = None,
        progress: bool | InsertProgress = False,
    ) -> tuple[LocalDatasetEntry, atdata.Dataset[Any]]:
        """Copy ``dataset`` into the hive as new shards and index it under ``name``.

        Samples are copied as stored (``dataset.raw_samples()``): never decoded or
        re-encoded. Inserting identical content (same samples and shard limits, schema
        and dataset metadata) again reuses the stored shards: same CID, no new entry.

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
            A published schema (``local://schemas/{module}.{Class}@{version}``) for data
            whose sample type is not a packable class. With a packable class it is
            published under that version if new, and must match its fields.
        metadata
            JSON-serialisable metadata for the index entry (not part of the CID).
        progress
            True for a tqdm bar (bytes, shards, samples/s), or an ``InsertProgress``.

        Returns
        -------
        (LocalDatasetEntry, atdata.Dataset)
            The entry, and the stored dataset: ``.url`` is the brace URL of the new
            shards, ``.shard_list`` their URLs; it reads the same samples in the same order.

        Raises
        ------
        InvalidArgument
            Bad name, limits, metadata or dataset; an empty dataset. Nothing is written.
        SchemaConflict, SchemaNotFound
            ``schema_ref`` does not fit the sample type, or is not published.
        StoreError, IndexConnectionError
            The store or Redis failed; the objects this insert wrote were removed.
        """
        _check_insert_args(name, metadata, cache_local)
        check_limits(maxcount, maxsize)  # before the hive claim and schema publish below
        with _source_samples(dataset) as samples:
            sample_type, schema_ref = self._resolve_schema(dataset, schema_ref)  # the first write, as documented
            self._claim_hive()
            meta_bytes = _dataset_metadata(dataset)
            tracker = (
                progress
                if isinstance(progress, InsertProgress)
                else InsertProgress(bar=bool(progress), description=name)
            )
            try:
                shards = self.store.write_shards(
                    tracker.count(samples),
                    prefix=self.prefix,
                    maxcount=maxcount,
                    maxsize=maxsize,
                    cache_local=cache_local,
                    progress=tracker.report,
                )
            finally:
                if tracker is not progress:
                    tracker.close()
        run = _run_of(shards[0])
        written = [self._hive.key(f"data--{run}--{i:06d}.tar") for i in range(len(shards))]
        try:
            return self._publish(run, shards, written, sample_type, schema_ref, meta_bytes, name, metadata)
        except BaseException as exc:
            self._undo(written, exc)
            raise

    def _publish(
        self,
        run: str,
        shards: list[str],
        written: list[str],
        sample_type: type,
        schema_ref: str,
        meta_bytes: bytes | None,
        name: str,
        metadata: dict[str, Any] | None,
    ) -> tuple[LocalDatasetEntry, atdata.Dataset[Any]]:
        """Steps 3-5 of an insert; every key written goes into ``written`` (for cleanup)."""
        metadata_url = None
        if meta_bytes is not None:
            written.append(self._hive.key(f"data--{run}--metadata.msgpack"))
            metadata_url = self.store.write_bytes(written[-1], meta_bytes)
        digest = _content_digest(schema_ref, shards, meta_bytes)
        existing = self._find_content(digest, schema_ref)
        if existing is not None:
            # Identical content is already indexed: drop the copy, reuse the original.
            log.info("content of %r is already stored as %s: reusing it", name, existing["data_urls"])
            self.store.delete(list(written))
            written.clear()
            urls, metadata_url = existing["data_urls"], existing.get("metadata_url")
        else:
            urls = [_brace_url(shards)]
            record = {
                "schema_ref": schema_ref,
                "data_urls": urls,
                "metadata_url": metadata_url,
                "shards": [
                    {"url": str(s), "sha256": s.sha256, "size": s.size, "num_samples": s.num_samples}  # type: ignore[attr-defined]
                    for s in shards
                ],
            }
            written.append(self._hive.key(f"content/{digest}--{run}.json"))
            self.store.write_bytes(written[-1], json.dumps(record, indent=1).encode())
        stored: atdata.Dataset[Any] = atdata.Dataset(
            urls[0] if len(urls) == 1 else urls, metadata_url, sample_type=sample_type
        )
        try:
            entry = self.index.add_entry(stored, name=name, schema_ref=schema_ref, metadata=metadata)
        except BaseException as exc:
            if written and self._maybe_indexed(schema_ref, urls):
                # The write may have landed (reply lost): its objects must stay; gc decides later.
                exc.add_note(
                    f"atdata: the index write may have landed, so the {len(written)} object(s) of this insert "
                    "were kept; if no entry refers to them, `atdata gc` removes them"
                )
                written.clear()
            raise
        written.clear()  # indexed: from here on the objects belong to the entry
        return entry, stored

    def _maybe_indexed(self, schema_ref: str, urls: list[str]) -> bool:
        """After a failed index write: could the entry exist anyway (reply lost)?"""
        try:
            self.index.get_entry(_entry_cid(schema_ref, urls))
        except EntryNotFound:
            return False
        except Exception:  # noqa: BLE001 - cannot tell: keeping the objects is the safe side
            return True
        return True

    def _undo(self, written: list[str], exc: BaseException) -> None:
        """Remove what a failed insert wrote (``written`` is emptied once the entry may exist)."""
        if not written:
            return
        try:
            self.store.delete(written)
        except Exception as cleanup:  # noqa: BLE001 - reported on the original error
            log.error("could not remove %s after a failed insert: %s", written, cleanup)
            exc.add_note(f"atdata: {len(written)} object(s) of this insert remain; `atdata gc` removes them")

    def _claim_hive(self) -> None:
        """Record which index owns the hive, or refuse a hive another index owns.

        gc treats whatever the repo's index does not reference as garbage, so two
        indexes writing into one hive would delete each other's data.
        """
        owner = self._hive_owner()
        if owner is None:
            record = {"key_prefix": self.index.key_prefix, "index": repr(self.index)}
            self.store.write_bytes(self._hive.key(_OWNER), json.dumps(record, indent=1).encode())
        elif owner.get("key_prefix") != self.index.key_prefix:
            raise InvalidArgument(
                f"hive {self.store.url_for(self._hive.root_key)!r} belongs to the index with key_prefix="
                f"{owner.get('key_prefix')!r} ({owner.get('index')}), not {self.index.key_prefix!r}: use that "
                "key_prefix, or another hive_path"
            )

    def _hive_owner(self) -> dict[str, Any] | None:
        key = self._hive.key(_OWNER)
        for info in self.store.list_objects(key):
            if info.key == key:
                with self.store.open_read(info.url) as stream:
                    return dict(json.loads(stream.read()))
        return None

    def _resolve_schema(self, dataset: Any, schema_ref: str | None) -> tuple[type, str]:
        """The stored dataset's sample type and the (published) schema ref of the insert."""
        sample_type: Any = getattr(dataset, "sample_type", None)
        packable = (
            isinstance(sample_type, type) and issubclass(sample_type, PackableSample) and sample_type is not DictSample
        )
        if schema_ref is None:
            if not packable:
                raise InvalidArgument(
                    f"cannot tell the schema of {repr(dataset)[:200]}: use atdata.Dataset[YourSampleClass](...) "
                    "or pass schema_ref= of a published schema"
                )
            return sample_type, self.index.publish_schema(sample_type, version=None)
        ref = _schema.parse_schema_ref(schema_ref)
        try:
            record = self.index.get_schema(schema_ref)
        except SchemaNotFound:
            if not packable:
                raise SchemaNotFound(
                    f"schema_ref={schema_ref!r} is not published in {self.index!r}: publish it with "
                    "repo.index.publish_schema(SampleClass, version=...)"
                ) from None
            return sample_type, self.index.publish_schema(sample_type, version=ref.version)
        if not packable:
            return self.index.decode_schema(schema_ref), schema_ref
        if not _schema.same_fields(record, _schema.to_record(sample_type, ref.version)):
            raise SchemaConflict(
                f"schema_ref={schema_ref!r} has other fields than {sample_type.__qualname__}: pass the ref "
                "of this class's schema, or schema_ref=None to publish it"
            )
        return sample_type, schema_ref

    def _find_content(self, digest: str, schema_ref: str) -> dict[str, Any] | None:
        """The content record of an indexed entry with this digest, if there is one."""
        for info in self.store.list_objects(self._hive.key(f"content/{digest}--")):
            with self.store.open_read(info.url) as stream:
                record = json.loads(stream.read())
            try:
                self.index.get_entry(_entry_cid(schema_ref, record["data_urls"]))
            except EntryNotFound:
                continue  # a crashed or removed insert's record: gc's business
            return record
        return None

    # -- gc ---------------------------------------------------------------------------

    def gc(self, grace: timedelta | float = DEFAULT_GRACE, *, dry_run: bool = False, force: bool = False) -> GcReport:
        """Delete objects under the hive that no index entry references.

        Only what inserts write is considered (``data--{run}--*`` shards and metadata,
        ``content/*`` records); other objects under the prefix are left alone. A run is
        removed only when none of its objects is referenced by any entry of
        :attr:`index` AND all of them are older than ``grace``, so an insert in progress
        (which writes a shard every so often) is never touched.

        Parameters
        ----------
        grace
            A ``timedelta`` or seconds. Must exceed the time one shard takes to write.
        dry_run
            Report what would be removed without deleting anything.
        force
            Delete even when the index holds no entry at all (see Raises).

        Raises
        ------
        InvalidArgument
            The hive belongs to an index with another ``key_prefix``; or the index is
            empty while the hive holds inserted data (a reset or wrong Redis would make
            gc delete everything: pass ``force=True`` if that is really meant).
        IndexConnectionError, StoreError
            Redis or the store failed; nothing is deleted unless the index was read whole.
        """
        seconds = grace.total_seconds() if isinstance(grace, timedelta) else grace
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise InvalidArgument(f"grace={grace!r} is invalid: pass a timedelta or a number of seconds >= 0")
        owner = self._hive_owner()
        if owner is not None and owner.get("key_prefix") != self.index.key_prefix:
            raise InvalidArgument(
                f"refusing gc: hive {self.store.url_for(self._hive.root_key)!r} belongs to the index with key_prefix="
                f"{owner.get('key_prefix')!r} ({owner.get('index')}), not {self.index.key_prefix!r}; its entries "
                "would all look unreferenced. Run gc with that key_prefix"
            )
        referenced = self._referenced_urls()
        runs: dict[str, list[ObjectInfo]] = {}
        for info in self.store.list_objects(self._hive.root_key):
            relative = info.key[len(self._hive.root_key) :]
            match = _DATA_KEY.fullmatch(relative) or _CONTENT_KEY.fullmatch(relative)
            if match is not None:
                runs.setdefault(match["run"], []).append(info)
        cutoff = time.time() - seconds
        doomed: list[ObjectInfo] = []
        kept_recent = 0
        for objects in runs.values():
            if any(info.url in referenced for info in objects):
                continue
            if max(info.mtime for info in objects) > cutoff:
                kept_recent += len(objects)
                continue
            doomed.extend(objects)
        if doomed and not referenced and not force and not dry_run:
            raise InvalidArgument(
                f"refusing gc: {self.index!r} has no entries, so all {len(doomed)} object(s) under "
                f"{self.store.url_for(self._hive.root_key)!r} look unreferenced. If the index was reset or this is "
                "the wrong Redis, gc would delete every dataset; pass force=True (atdata gc --force) if you mean it"
            )
        if doomed and not dry_run:
            self.store.delete(info.key for info in doomed)
            log.info("gc removed %d objects under %s", len(doomed), self.store.url_for(self._hive.root_key))
        return GcReport(
            removed=[info.url for info in doomed],
            removed_bytes=sum(info.size for info in doomed),
            kept_recent=kept_recent,
            referenced=len(referenced),
            dry_run=dry_run,
        )

    def _referenced_urls(self) -> set[str]:
        referenced: set[str] = set()
        for content in self.index.contents:  # every CID, older versions included
            referenced.update(expand_urls(content.data_urls))
        return referenced


# -- helpers ----------------------------------------------------------------------------


_NOT_INDEX_KWARGS = {
    "index": "to use an existing LocalIndex, pass its connection: redis=index.redis, key_prefix=index.key_prefix",
    "data_store": "Repo writes to the store hive_path= names: 'bucket/prefix' for S3 (with s3_credentials=), "
    "or a directory such as './hive' or 'file:///data/hive' (a DiskDataStore)",
}
_NOT_INDEX_KWARGS["store"] = _NOT_INDEX_KWARGS["data_store"]


def _check_not_index_kwargs(index_kwargs: Mapping[str, Any]) -> None:
    """Refuse the arguments users reach for that Repo does not take (they would otherwise
    reach redis-py as connection options and fail only at the first command)."""
    for name, hint in _NOT_INDEX_KWARGS.items():
        if name in index_kwargs:
            raise InvalidArgument(f"Repo({name}={index_kwargs[name]!r:.200}): Repo has no {name}= argument; {hint}")


def _check_insert_args(name: Any, metadata: Any, cache_local: Any) -> None:
    """Validate what the index would refuse, before anything is uploaded."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgument(f"name={name!r} is invalid: pass a non-empty string such as 'training-v1'")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise InvalidArgument(f"metadata must be a dict or None, got {type(metadata).__name__}")
        try:
            json.dumps(metadata, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(f"metadata must be JSON-serialisable (str keys, plain values): {exc}") from exc
    if not isinstance(cache_local, bool):
        raise InvalidArgument(f"cache_local={cache_local!r} is invalid: pass True or False")


@contextlib.contextmanager
def _source_samples(dataset: Any) -> Iterator[Iterator[Any]]:
    """``dataset.raw_samples()``, refused if empty before anything is written, and closed on
    exit: a failed insert stops the source's reader (prefetch threads, open shards) at once."""
    raw = getattr(dataset, "raw_samples", None)
    if not callable(raw):
        raise InvalidArgument(
            f"cannot insert a {type(dataset).__name__}: pass an atdata.Dataset (write samples to tar shards "
            "with atdata.write_samples first)"
        )
    samples = iter(raw())
    try:
        first = next(samples, None)
        if first is None:
            raise InvalidArgument(f"dataset {repr(dataset)[:200]} has no samples: nothing to insert")
        yield itertools.chain([first], samples)
    finally:
        close = getattr(samples, "close", None)  # generators have it; other iterators need none
        if close is not None:
            close()


def _dataset_metadata(dataset: Any) -> bytes | None:
    """The bytes at ``dataset.metadata_url``, copied as stored (checked to be a msgpack map first)."""
    url = getattr(dataset, "metadata_url", None)
    if url is None or getattr(dataset, "metadata", None) is None:  # .metadata validates the map
        return None
    with atdata.open_url(url) as stream:
        return stream.read()


def _run_of(url: str) -> str:
    match = re.search(rf"data--({_RUN})--\d{{6}}\.tar$", url)
    if match is None:
        raise AssertionError(f"unexpected shard URL {url!r}")  # write_shards broke its naming contract
    return match[1]


def _entry_cid(schema_ref: str, data_urls: list[str]) -> str:
    """The CID the index gives an entry of this content (its own rule, not a copy of it)."""
    return LocalDatasetEntry(name="", schema_ref=schema_ref, data_urls=list(data_urls)).cid


def _brace_url(shards: list[str]) -> str:
    """One URL for all shards: ``.../data--{run}--{000000..000009}.tar`` (or the one shard's URL)."""
    if len(shards) == 1:
        return str(shards[0])
    last = _SHARD_SUFFIX.search(shards[-1])
    assert last is not None
    return _SHARD_SUFFIX.sub(f"--{{000000..{last[1]}}}.tar", str(shards[0]))


def _content_digest(schema_ref: str, shards: list[Any], meta_bytes: bytes | None) -> str:
    content = {
        "schema_ref": schema_ref,
        "shards": [[s.sha256, s.size, s.num_samples] for s in shards],
        "metadata": hashlib.sha256(meta_bytes).hexdigest() if meta_bytes is not None else None,
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
