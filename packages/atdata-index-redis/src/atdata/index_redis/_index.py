"""LocalIndex: datasets by name and by CID, and sample schemas, in one Redis.

Names are pointers and content is stored once: each name is its own entry (its own
versions and metadata); several names may point at one CID, whose content record is
kept while any name has it as a version. Every key of one index lives under
``{key_prefix}`` (braces included: a Redis Cluster hash tag), so an index is one
cluster slot and every multi-key change is one atomic Lua script (see ``_scripts``).
Reads by CID or by name take one round trip; listing streams with SSCAN in batches,
never loading the whole index.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from atdata.errors import AmbiguousEntry, EntryNotFound, InvalidArgument
from atdata.protocols import AbstractIndex, DatasetLike

from . import _scripts
from ._checks import check_cid_or_name, check_name, check_schema_ref, data_urls, not_a_cid_hint, now
from ._connection import ConnectionSpec, translate_errors
from ._entry import LocalDatasetEntry, StoredContent, _text, content_cid, content_json, metadata_json
from ._legacy import MIGRATE, legacy_rows
from ._listing import ListingMethods
from ._schemas import SchemaMethods

__all__ = ["LocalIndex"]

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "atdata:"
_T = TypeVar("_T")


class LocalIndex(SchemaMethods, ListingMethods, AbstractIndex):  # type: ignore[misc]  # all_entries: list is invariant
    """An index of datasets and sample schemas in Redis (or Redis Cluster).

    Parameters
    ----------
    redis : redis.Redis, redis.cluster.RedisCluster or str, optional
        A ready client, or a ``redis://``/``rediss://``/``unix://`` URL (as ``from_url``).
        Without it, one is built from ``**redis_kwargs`` (passed to ``redis.Redis``
        unchanged), else from ``$ATDATA_REDIS_URL``, else the Redis that ``atdata local
        up`` recorded (``~/.atdata/servers.json``), else localhost:6379.
    key_prefix : str
        Isolates indexes that share one Redis; keys are ``{key_prefix}kind:id``.
    **redis_kwargs
        ``host``, ``port``, ``db``, ``password``, ... exactly as ``redis.Redis`` takes them.

    Raises
    ------
    InvalidArgument
        At construction: a keyword ``redis.Redis`` does not take, a bad port, a string
        that is not a Redis URL (the message names what was given, never a password).
    IndexConnectionError
        On first use, when the server cannot be reached or refuses the credentials.

    Examples
    --------
    >>> index = LocalIndex(host="localhost", port=6379, db=1)       # doctest: +SKIP
    >>> index = LocalIndex.from_url("redis://localhost:6379/0")     # doctest: +SKIP
    """

    def __init__(self, redis: Any = None, *, key_prefix: str = DEFAULT_PREFIX, **redis_kwargs: Any) -> None:
        if isinstance(redis, str):  # a URL, as Repo(redis=...) and the CLI take it
            self._setup(ConnectionSpec.from_url(redis, redis_kwargs), key_prefix, client=None)
            return
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
        index = cls.__new__(cls)
        index._setup(ConnectionSpec.from_url(url, redis_kwargs, source="url"), key_prefix, client=None)
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
        self._layout_checked = False
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
    def owner_record(self) -> dict[str, str]:
        """What a hive's owner record holds about this index: its :attr:`index_id`.

        Not the key prefix: another Redis database, another server or a flushed Redis
        with the same prefix is another index (with another id), and must not gc the hive.
        """
        return {"index_id": self.index_id}

    @property
    def redis(self) -> Any:
        """The redis-py client of this process (built on first use)."""
        if self._client is None:
            with translate_errors(self._spec):  # a cluster client connects right away
                self._client = self._spec.connect()
        return self._client

    def _checked(self) -> Any:
        """The client, once entries of the first layout are converted (see ``_legacy``).

        One EXISTS per index object, on its first command (not on ``.redis``, which
        never talks to the server).
        """
        client = self.redis
        if not self._layout_checked:
            with translate_errors(self._spec):
                if client.exists(self._key("entries")):
                    rows = legacy_rows(client, self._base)
                    converted = client.eval(MIGRATE, 1, self._key("entries"), self._base, *rows)
                    log.warning("%r: converted %s entries of the earlier key layout", self, converted)
            self._layout_checked = True
        return client

    @property
    def index_id(self) -> str:
        """This index's identity, e.g. ``'idx-2f1c...'``: what a hive records as its owner.

        Created once, atomically, by the first caller in any process (``SET NX`` of
        ``{key_prefix}id``), then kept in Redis with the index: every client of this
        Redis, database and ``key_prefix`` reads the same id, and it survives removing
        every entry. Another database or prefix, or a flushed Redis, is another index
        with another id. Read from Redis on every access (one round trip), never cached,
        so a flush is noticed.
        """
        return _text(self._run("INDEX_ID", self._key("id"), f"idx-{uuid.uuid4().hex}"))

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
                script = self._scripts[name] = self._checked().register_script(getattr(_scripts, name))
            return script(keys=[key], args=[self._base, *args])

    # -- entries ----------------------------------------------------------------------

    def add_entry(
        self,
        dataset: DatasetLike,
        *,
        name: str,
        schema_ref: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> LocalDatasetEntry:
        """Index ``dataset`` under ``name`` and return its entry.

        ``data_urls`` are the dataset's URLs as given (``dataset.url``; a brace pattern
        stays one unexpanded URL). The CID depends only on ``schema_ref`` and
        ``data_urls``; content already stored under that CID is reused, and every other
        name pointing at it stays as it is. Adding the same content under the same name
        again returns the same entry (``metadata``, when given, replaces that version's).

        Parameters
        ----------
        dataset : atdata.Dataset
            Anything with ``url`` (str or list of str) or ``shard_list``, and
            ``sample_type`` when ``schema_ref`` is None.
        name : str
            The name; re-using it for new content makes that its newest version.
        schema_ref : str, optional
            Defaults to the schema of ``dataset.sample_type``, published if needed.
        metadata : dict, optional
            JSON-serialisable metadata of this version (not part of the CID), kept as JSON
            gives it back: tuples become lists and keys strings, in the returned entry too.

        Raises
        ------
        InvalidArgument
            Empty name, no URLs, or metadata that is not JSON-serialisable.
        InvalidSchemaRef
            ``schema_ref`` is neither ``local://schemas/{name}@{semver}`` nor an ``at://`` URI.
        """
        check_name(name)
        urls = data_urls(dataset)
        meta = "" if metadata is None else metadata_json(metadata)  # validated before publishing a schema
        if schema_ref is None:
            schema_ref = self._schema_ref_for(dataset)
        else:
            check_schema_ref(schema_ref)
        cid = content_cid(schema_ref, urls)
        values = self._run(
            "ADD", self._key("content:", cid), cid, name, content_json(cid, schema_ref, urls), meta, now()
        )
        log.debug("indexed %s as %r (%s)", cid, name, schema_ref)
        # Built from what is stored, so it equals what get_entry_by_name returns: re-added
        # without metadata, the stored metadata stands; and JSON's view of it (str keys, lists).
        return LocalDatasetEntry.from_values(*values)

    def update_metadata(self, entry: LocalDatasetEntry, metadata: dict[str, Any] | None) -> LocalDatasetEntry:
        """Replace the metadata of exactly this version (``entry.name`` at ``entry.cid``).

        Unlike re-adding the entry, this never changes which version the name points at,
        so recording something about an older version (e.g. where ``atdata.promote``
        published it) leaves the name's newest version the newest.

        Raises
        ------
        EntryNotFound
            The name no longer has that version (removed or renamed meanwhile).
        InvalidArgument
            ``metadata`` is not JSON-serialisable.
        """
        meta = "null" if metadata is None else metadata_json(metadata)
        values = self._run("SET_METADATA", self._key("named:", entry.name), entry.name, entry.cid, meta)
        if not values:
            raise EntryNotFound(f"{entry.name!r} has no version {entry.cid} in {self!r} (removed or renamed?)")
        return LocalDatasetEntry.from_values(*values)

    def get_entry(self, cid: str) -> LocalDatasetEntry:
        """The entry with this CID; when several names share it, the first name's.

        "First" is the name that took this content earliest and still has it as a
        version; adding further names never changes the answer. ``get_content(cid).names``
        lists them all.

        Raises
        ------
        EntryNotFound
            No entry has that CID.
        """
        values = self._run("GET_BY_CID", self._key("content:", cid), cid) if isinstance(cid, str) else None
        if not values:
            raise EntryNotFound(f"no entry with CID {cid!r} in {self!r}{not_a_cid_hint(str(cid))}")
        return LocalDatasetEntry.from_values(*values)

    def get_entry_by_name(self, name: str) -> LocalDatasetEntry:
        """The newest version under ``name`` (one round trip: name -> CID -> entry).

        Raises
        ------
        EntryNotFound
            No entry has that name.
        """
        values = self._run("GET_BY_NAME", self._key("history:", name), name) if isinstance(name, str) else None
        if not values:
            raise EntryNotFound(f"no entry named {name!r} in {self!r}")
        return LocalDatasetEntry.from_values(*values)

    def get_entry_versions(self, name: str) -> list[LocalDatasetEntry]:
        """Every version of ``name``, newest first.

        Raises
        ------
        EntryNotFound
            No entry has that name.
        """
        check_cid_or_name(name)
        versions = self._run("VERSIONS", self._key("history:", name), name)
        if not versions:
            raise EntryNotFound(f"no entry named {name!r} in {self!r}")
        return [LocalDatasetEntry.from_values(*v) for v in versions]

    def get_content(self, cid: str) -> StoredContent:
        """The content record of ``cid`` and every name having it as a version.

        Raises
        ------
        EntryNotFound
            No entry has that CID.
        """
        check_cid_or_name(cid)
        found = self._run("FETCH_CONTENTS", self._key("contents"), cid)[0]
        if not found:
            raise EntryNotFound(f"no entry with CID {cid!r} in {self!r}{not_a_cid_hint(cid)}")
        return StoredContent.from_values(found[0], found[1:])

    def rename_entry(self, entry: LocalDatasetEntry | str, new_name: str) -> LocalDatasetEntry:
        """Move one version to ``new_name``, where it becomes the newest; returns it there.

        ``entry`` is an entry (exactly that name's version), a name (its newest
        version), or a CID that one name uses. The old name falls back to its previous
        version, or disappears if it had none; no other name changes. One atomic step.

        Raises
        ------
        EntryNotFound
            Nothing has that CID or name (or the entry is no longer there).
        AmbiguousEntry
            A CID that several names share: rename by name, or pass the entry.
        InvalidArgument
            ``entry`` is not an entry or a non-empty string; ``new_name`` is empty.
        """
        check_name(new_name)
        return self._change("RENAME", entry, new_name, LocalDatasetEntry.from_values, verb="rename")

    def remove_entry(self, entry: LocalDatasetEntry | str) -> None:
        """Delete one version: an entry, a name's newest version, or a CID one name uses.

        Atomic: the name then resolves to its previous version, or is gone; no other
        name changes. The content record goes with its last name; the shards themselves
        are the data store's business and stay where they are. A string that is both a
        CID and a name means the CID.

        Raises
        ------
        EntryNotFound
            Nothing has that CID or name (or the entry is no longer there).
        AmbiguousEntry
            A CID that several names share (the message lists them): remove by name, or
            pass the entry. A name a user gave is never dropped by another name's removal.
        InvalidArgument
            ``entry`` is not an entry or a non-empty string.
        """
        name, cid = self._change("REMOVE", entry, None, lambda *values: values, verb="remove")
        log.debug("removed %r's version %s", _text(name), _text(cid))

    def _change(self, script: str, entry: Any, new_name: str | None, build: Callable[..., _T], *, verb: str) -> _T:
        """Run RENAME or REMOVE on what ``entry`` denotes and turn its status into a result or error."""
        if isinstance(entry, LocalDatasetEntry):
            target = ("entry", entry.name, entry.cid)
        else:
            check_cid_or_name(entry)
            target = ("key", entry, "")
        args = (*target, new_name) if new_name is not None else target
        reply = self._run(script, self._key("names"), *args)
        if not reply:
            what = (
                f"entry {entry.name!r} ({entry.cid})" if target[0] == "entry" else f"entry with CID or name {entry!r}"
            )
            raise EntryNotFound(f"no {what} in {self!r}")
        status, *values = reply
        if _text(status) == "shared":
            names = ", ".join(repr(_text(n)) for n in values)
            raise AmbiguousEntry(
                f"CID {entry!r} is shared by the names {names}: {verb} one of them by name "
                f"(e.g. index.{verb}_entry({_text(values[0])!r}{', ...' if new_name else ''})) or pass its entry"
            )
        return build(*values)
