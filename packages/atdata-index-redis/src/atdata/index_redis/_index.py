"""LocalIndex: datasets by CID and by name, and sample schemas, in one Redis.

Every key of one index lives under ``{key_prefix}`` (braces included: a Redis Cluster
hash tag), so an index is one cluster slot and every multi-key change is one atomic
Lua script (see ``_scripts``). Reads by CID or by name take one round trip; listing
streams with SSCAN in batches, never loading the whole index.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
from collections.abc import Iterator
from typing import Any

from atdata import schema as _schema
from atdata.cid import parse_cid
from atdata.errors import EntryNotFound, InvalidArgument, SchemaConflict, SchemaError, SchemaNotFound
from atdata.protocols import AbstractIndex

from . import _scripts
from ._connection import ConnectionSpec, translate_errors
from ._entry import LocalDatasetEntry, _text, content_cid, content_json
from ._scripts import ENTRY_FIELDS

__all__ = ["LocalIndex"]

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "atdata:"
_SCAN_BATCH = 500
_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")


class LocalIndex(AbstractIndex):
    """An index of datasets and sample schemas in Redis (or Redis Cluster).

    Parameters
    ----------
    redis : redis.Redis or redis.cluster.RedisCluster, optional
        A ready client. Without it, one is built from ``**redis_kwargs`` (passed to
        ``redis.Redis`` unchanged), else from ``$ATDATA_REDIS_URL``, else localhost:6379.
    key_prefix : str
        Isolates indexes that share one Redis; keys are ``{key_prefix}kind:id``.
    **redis_kwargs
        ``host``, ``port``, ``db``, ``password``, ... exactly as ``redis.Redis`` takes them.

    Raises
    ------
    IndexConnectionError
        On first use, when the server cannot be reached or refuses the credentials.

    Examples
    --------
    >>> index = LocalIndex(host="localhost", port=6379, db=1)       # doctest: +SKIP
    >>> index = LocalIndex.from_url("redis://localhost:6379/0")     # doctest: +SKIP
    """

    def __init__(self, redis: Any = None, *, key_prefix: str = DEFAULT_PREFIX, **redis_kwargs: Any) -> None:
        if redis is not None and redis_kwargs:
            raise InvalidArgument(
                f"pass either redis= (a ready client) or connection kwargs ({', '.join(sorted(redis_kwargs))}), not both"
            )
        if redis is not None:
            spec = ConnectionSpec.from_client(redis)
        else:
            spec = ConnectionSpec.from_environment(redis_kwargs)
        self._setup(spec, key_prefix, client=redis)

    @classmethod
    def from_url(cls, url: str, *, key_prefix: str = DEFAULT_PREFIX, **redis_kwargs: Any) -> LocalIndex:
        """An index on the Redis at ``url`` (``redis://``, ``rediss://``, ``unix://``).

        The URL is parsed by ``redis.Redis.from_url``; extra ``redis_kwargs`` go with it.
        """
        if not isinstance(url, str) or not url:
            raise InvalidArgument(f"from_url expects a URL such as 'redis://localhost:6379/0', got {url!r}")
        index = cls.__new__(cls)
        index._setup(ConnectionSpec(url=url, kwargs=dict(redis_kwargs)), key_prefix, client=None)
        return index

    def _setup(self, spec: ConnectionSpec, key_prefix: str, client: Any) -> None:
        if not isinstance(key_prefix, str) or not key_prefix or "{" in key_prefix or "}" in key_prefix:
            raise InvalidArgument(
                f"key_prefix must be a non-empty string without braces (it becomes the hash tag), got {key_prefix!r}"
            )
        self._spec = spec
        self._prefix = key_prefix
        self._base = "{" + key_prefix + "}"
        self._client = client
        self._scripts: dict[str, Any] = {}
        self._decoded: dict[str, type] = {}

    # -- connection -------------------------------------------------------------------

    @property
    def key_prefix(self) -> str:
        """The prefix that isolates this index (keys start with ``{key_prefix}``)."""
        return self._prefix

    @property
    def key_pattern(self) -> str:
        """A SCAN MATCH pattern for every key of this index (``{key_prefix}*``, glob-escaped)."""
        return re.sub(r"([*?\[\]\\])", r"\\\1", self._base) + "*"

    @property
    def redis(self) -> Any:
        """The redis-py client of this process (built on first use)."""
        if self._client is None:
            with translate_errors(self._spec):  # a cluster client connects right away
                self._client = self._spec.connect()
        return self._client

    def __getstate__(self) -> dict[str, Any]:
        # Only the connection parameters travel: sockets, locks and caches stay behind.
        return {"spec": self._spec, "prefix": self._prefix}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._setup(state["spec"], state["prefix"], client=None)

    def __repr__(self) -> str:
        kind = "RedisCluster" if self._spec.cluster else f"db={self._spec.db}"
        return f"LocalIndex({self._spec.endpoint}, {kind}, key_prefix={self._prefix!r})"

    def _key(self, kind: str, ident: str = "") -> str:
        return f"{self._base}{kind}{ident}"

    def _run(self, name: str, key: str, *args: Any) -> Any:
        script = self._scripts.get(name)
        with translate_errors(self._spec):
            if script is None:
                script = self._scripts[name] = self.redis.register_script(getattr(_scripts, name))
            return script(keys=[key], args=[self._base, *args])

    # -- entries ----------------------------------------------------------------------

    def add_entry(
        self,
        dataset: Any,
        *,
        name: str,
        schema_ref: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> LocalDatasetEntry:
        """Index ``dataset`` under ``name`` and return its entry.

        ``data_urls`` are the dataset's URLs as given (``dataset.url``; a brace pattern
        stays one unexpanded URL). The entry's CID depends only on ``schema_ref`` and
        ``data_urls``: adding the same content again returns the same entry (the name
        then points at it; ``metadata``, when given, replaces the stored one).

        Parameters
        ----------
        dataset : atdata.Dataset
            Anything with ``url`` (str or list of str) or ``shard_list``, and
            ``sample_type`` when ``schema_ref`` is None.
        name : str
            The name; re-using it for new content makes that the newest version.
        schema_ref : str, optional
            Defaults to the schema of ``dataset.sample_type``, published if needed.
        metadata : dict, optional
            JSON-serialisable metadata (not part of the CID), kept as JSON gives it back:
            tuples become lists and keys strings, in the returned entry too.

        Raises
        ------
        InvalidArgument
            Empty name, no URLs, or metadata that is not JSON-serialisable.
        InvalidSchemaRef
            ``schema_ref`` is not ``local://schemas/{module}.{Class}@{semver}``.
        """
        _check_name(name)
        data_urls = _data_urls(dataset)
        if schema_ref is None:
            content_json("", "", data_urls, metadata)  # validate before publishing a schema
            schema_ref = self._schema_ref_for(dataset)
        else:
            _check_schema_ref(schema_ref)
        cid = content_cid(schema_ref, data_urls)
        content = content_json(cid, schema_ref, data_urls, metadata)
        stored = self._run(
            "ADD", self._key("entry:", cid), cid, name, content, "1" if metadata is not None else "0", _now()
        )
        log.debug("indexed %s as %r (%s)", cid, name, schema_ref)
        # Built from what is stored, so it equals what get_entry returns: re-added without
        # metadata, the stored metadata stands; and JSON's view of metadata (str keys, lists).
        return LocalDatasetEntry.from_values(name, stored)

    def get_entry(self, cid: str) -> LocalDatasetEntry:
        """The entry with this CID.

        Raises
        ------
        EntryNotFound
            No entry has that CID.
        """
        with translate_errors(self._spec):
            name, content = self.redis.hmget(self._key("entry:", cid), ENTRY_FIELDS)
        if content is None:
            raise EntryNotFound(f"no entry with CID {cid!r} in {self!r}{_not_a_cid_hint(cid)}")
        return LocalDatasetEntry.from_values(name, content)

    def get_entry_by_name(self, name: str) -> LocalDatasetEntry:
        """The newest entry under ``name`` (one round trip: name -> CID -> entry).

        Raises
        ------
        EntryNotFound
            No entry has that name.
        """
        values = self._run("GET_BY_NAME", self._key("name:", name))
        if not values or values[1] is None:
            raise EntryNotFound(f"no entry named {name!r} in {self!r}")
        return LocalDatasetEntry.from_values(*values)

    def get_entry_versions(self, name: str) -> list[LocalDatasetEntry]:
        """Every entry that carries ``name``, newest first.

        Raises
        ------
        EntryNotFound
            No entry has that name.
        """
        with translate_errors(self._spec):
            cids = self.redis.zrevrange(self._key("versions:", name), 0, -1)
        entries = self._load([_text(c) for c in cids])
        if not entries:
            raise EntryNotFound(f"no entry named {name!r} in {self!r}")
        return entries

    def rename_entry(self, cid_or_name: str, new_name: str) -> LocalDatasetEntry:
        """Give an entry (by CID, or the newest under a name) the name ``new_name``.

        It becomes the newest version of ``new_name``; its old name falls back to the
        previous version, or disappears if it had none. One atomic step.

        Raises
        ------
        EntryNotFound
            Nothing has that CID or name.
        InvalidArgument
            ``cid_or_name`` is not a non-empty string.
        """
        _check_cid_or_name(cid_or_name)
        _check_name(new_name)
        values = self._run("RENAME", self._key("entry:", cid_or_name), cid_or_name, new_name)
        if not values:
            raise EntryNotFound(f"no entry with CID or name {cid_or_name!r} in {self!r}")
        return LocalDatasetEntry.from_values(*values)

    def remove_entry(self, cid_or_name: str) -> None:
        """Delete an entry (by CID, or the newest under a name) and its name mapping.

        Atomic: the name then points at its previous version, or is gone. The shards
        themselves are the data store's business and stay where they are. A string that
        is both an entry's CID and a name means the CID.

        Raises
        ------
        EntryNotFound
            Nothing has that CID or name.
        InvalidArgument
            ``cid_or_name`` is not a non-empty string.
        """
        _check_cid_or_name(cid_or_name)
        removed = self._run("REMOVE", self._key("entry:", cid_or_name), cid_or_name)
        if not removed:
            raise EntryNotFound(f"no entry with CID or name {cid_or_name!r} in {self!r}")
        log.debug("removed %s", _text(removed))

    @property
    def entries(self) -> Iterator[LocalDatasetEntry]:
        """Stream every entry (SSCAN in batches; constant memory).

        As with Redis SCAN, an entry added or removed during the iteration may or may
        not be yielded.
        """
        return self._iter_entries()

    def _iter_entries(self) -> Iterator[LocalDatasetEntry]:
        key = self._key("entries")
        cursor: int = 0
        while True:
            with translate_errors(self._spec):
                cursor, cids = self.redis.sscan(key, cursor, count=_SCAN_BATCH)
            yield from self._load([_text(c) for c in cids])
            if int(cursor) == 0:
                return

    @property
    def all_entries(self) -> list[LocalDatasetEntry]:  # type: ignore[override]  # list is invariant
        """Every entry as a list (prefer ``entries`` for large indexes)."""
        seen: dict[str, LocalDatasetEntry] = {}
        for entry in self._iter_entries():  # SSCAN may repeat an element during a rehash
            seen.setdefault(entry.cid, entry)
        return list(seen.values())

    def _load(self, cids: list[str]) -> list[LocalDatasetEntry]:
        """Fetch entries with one command; CIDs removed meanwhile are skipped."""
        if not cids:
            return []
        flat = self._run("FETCH", self._key("entries"), *cids)
        return [
            LocalDatasetEntry.from_values(name, content)
            for name, content in zip(flat[::2], flat[1::2])
            if content is not None
        ]

    # -- schemas ----------------------------------------------------------------------

    def publish_schema(
        self,
        sample_type: type,
        *,
        version: str | None = "1.0.0",
        description: str | None = None,
    ) -> str:
        """Store the schema of ``sample_type``; returns ``local://schemas/{module}.{Class}@{version}``.

        Publishing the same version with the same fields again is a no-op. With
        ``version=None`` the latest published version is reused if its fields match,
        else the next patch version is published (``1.0.0`` for the first).

        Raises
        ------
        SchemaConflict
            That version is already published with different fields.
        InvalidArgument
            ``version`` is not ``MAJOR.MINOR.PATCH``.
        """
        if version is not None:
            _check_version(version)
            return self._publish(sample_type, version, description)
        name = _schema_name(sample_type)
        for _ in range(5):  # another writer may take the next version first: retry
            latest = self._latest_version(name)
            if latest is not None:
                current = self._schema_record(name, latest)
                if _schema.same_fields(current, _schema.to_record(sample_type, latest)):
                    return _schema.schema_ref(sample_type, latest)
            try:
                return self._publish(sample_type, _next_patch(latest), description)
            except SchemaConflict:
                continue
        raise SchemaConflict(f"could not pick a new version for {name}: other writers keep publishing; retry")

    def _publish(self, sample_type: type, version: str, description: str | None) -> str:
        record = _schema.to_record(sample_type, version, description=description)
        ref = _schema.schema_ref(sample_type, version)
        name = _schema.parse_schema_ref(ref).name
        existing = self._run(
            "PUBLISH_SCHEMA", self._key("schema:", f"{name}@{version}"), name, version, json.dumps(record)
        )
        if existing and not _schema.same_fields(json.loads(existing), record):
            raise SchemaConflict(
                f"{ref} is already published with different fields; publish under a new version "
                f"(e.g. version={_next_patch(self._latest_version(name))!r}, or version=None for the next patch)"
            )
        return ref

    def get_schema(self, ref: str) -> dict[str, Any]:
        """The schema record stored under ``ref``.

        Raises
        ------
        InvalidSchemaRef
            ``ref`` is not ``local://schemas/{module}.{Class}@{semver}``.
        SchemaNotFound
            Nothing is published under ``ref``.
        """
        parsed = _schema.parse_schema_ref(ref)
        try:
            return self._schema_record(parsed.name, parsed.version)
        except SchemaNotFound:
            raise SchemaNotFound(f"no schema published as {ref!r} in {self!r}") from None

    def _schema_record(self, name: str, version: str) -> dict[str, Any]:
        with translate_errors(self._spec):
            raw = self.redis.get(self._key("schema:", f"{name}@{version}"))
        if raw is None:
            raise SchemaNotFound(f"no schema {name}@{version} in {self!r}")
        return json.loads(raw)

    def get_latest_schema(self, name: str) -> dict[str, Any]:
        """The record of the highest published version of ``name`` (``module.Class``).

        Raises
        ------
        SchemaNotFound
            No version of ``name`` is published.
        """
        latest = self._latest_version(name)
        if latest is None:
            raise SchemaNotFound(f"no schema named {name!r} in {self!r} (names are 'module.Class')")
        return self._schema_record(name, latest)

    def _latest_version(self, name: str) -> str | None:
        with translate_errors(self._spec):
            versions = [_text(v) for v in self.redis.smembers(self._key("schema_versions:", name))]
        return max(versions, key=_semver_key) if versions else None

    def list_schemas(self) -> Iterator[dict[str, Any]]:
        """Every published schema record (streamed with SSCAN)."""
        key = self._key("schemas")
        cursor: int = 0
        while True:
            with translate_errors(self._spec):
                cursor, members = self.redis.sscan(key, cursor, count=_SCAN_BATCH)
                pipe = self.redis.pipeline(transaction=False)
                for member in members:
                    pipe.get(self._key("schema:", _text(member)))
                raws = pipe.execute() if members else []
            yield from (json.loads(raw) for raw in raws if raw is not None)
            if int(cursor) == 0:
                return

    def decode_schema(self, ref: str) -> type:
        """A packable sample class generated from the schema under ``ref`` (cached per ref).

        Usable with ``atdata.Dataset[T]``; data written with the original class reads back.
        """
        cached = self._decoded.get(ref)
        if cached is None:
            # The ref's module (not atdata.schema) so that publishing the class gives back ``ref``.
            module = _schema.parse_schema_ref(ref).name.rpartition(".")[0]
            cached = self._decoded[ref] = _schema.from_record(self.get_schema(ref), module=module)
        return cached

    def _schema_ref_for(self, dataset: Any) -> str:
        """The ref of the dataset's sample type: a published version with the same fields, else a new one."""
        sample_type = getattr(dataset, "sample_type", None)
        if not isinstance(sample_type, type):
            raise InvalidArgument(
                f"cannot derive a schema_ref: {type(dataset).__name__} has no sample_type; pass schema_ref="
            )
        try:
            return self.publish_schema(sample_type, version=None)
        except SchemaConflict:
            raise
        except (SchemaError, InvalidArgument) as exc:  # same type, plus what to do in add_entry's terms
            raise type(exc)(f"{exc}; or pass schema_ref= to add_entry") from exc


# -- helpers ----------------------------------------------------------------------------


_second: tuple[int, str] = (0, "")


def _now() -> str:
    """UTC ISO-8601 with milliseconds; the formatted second is reused (bulk adds call this a lot)."""
    global _second
    now = time.time()
    whole = int(now)
    if _second[0] != whole:
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{_second[1]}.{int((now - whole) * 1000):03d}Z"


def _check_name(name: Any) -> None:
    if not isinstance(name, str) or not name.strip():
        raise InvalidArgument(f"an entry name must be a non-empty string, got {name!r}")


def _check_cid_or_name(value: Any) -> None:
    """Refuse what the scripts cannot take (redis-py would raise its own DataError for None)."""
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"expected an entry's CID or name (a non-empty string), got {value!r}")


def _data_urls(dataset: Any) -> list[str]:
    """The URLs an entry records: ``dataset.url`` as given, else its ``shard_list``."""
    url = getattr(dataset, "url", None)
    if url is None:
        url = getattr(dataset, "shard_list", None)
    urls = [url] if isinstance(url, str) else list(url) if isinstance(url, (list, tuple)) else None
    if not urls or not all(isinstance(u, str) and u for u in urls):
        raise InvalidArgument(
            f"cannot index {type(dataset).__name__}: it needs .url (a URL string or a list of them), got {url!r}"
        )
    return urls


def _check_schema_ref(ref: Any) -> None:
    if isinstance(ref, str):
        _check_str_schema_ref(ref)
    else:
        _schema.parse_schema_ref(ref)  # raises InvalidSchemaRef naming the value


@functools.lru_cache(maxsize=1024)
def _check_str_schema_ref(ref: str) -> None:
    """Validate a ref once: bulk adds repeat the same few refs thousands of times."""
    _schema.parse_schema_ref(ref)


def _check_version(version: Any) -> None:
    if not isinstance(version, str) or not _SEMVER.match(version):
        raise InvalidArgument(f"schema version must be MAJOR.MINOR.PATCH such as '1.0.0', got {version!r}")


def _semver_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _next_patch(version: str | None) -> str:
    if version is None:
        return "1.0.0"
    major, minor, patch = _semver_key(version)
    return f"{major}.{minor}.{patch + 1}"


def _schema_name(sample_type: type) -> str:
    """``module.Class`` as the schema ref spells it."""
    return _schema.parse_schema_ref(_schema.schema_ref(sample_type, "1.0.0")).name


def _not_a_cid_hint(cid: str) -> str:
    """Why a lookup missed when the caller passed something that is not a CID at all.

    The commonest cause is a dataset name passed to ``get_entry``; saying so beats a bare miss.
    """
    try:
        parse_cid(cid)
    except InvalidArgument:
        return f": {cid!r} is not a CID (CIDs look like 'bafyrei...'); to look up by name, use get_entry_by_name"
    return ""
