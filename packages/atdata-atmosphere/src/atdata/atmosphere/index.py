"""``AtmosphereIndex``: core's ``AbstractIndex`` over one repository's dataset records.

Reads need no login (``listRecords``/``getRecord`` are public): a repo is named by DID
or handle, default the client's own. Entries and schemas of both namespaces are read
(``science.alt.dataset.*`` and atdata 0.2's ``ac.foundation.dataset.*``); records of
the living namespace are validated against the lexicon. Entries are looked up by AT-URI,
by atdata content CID (the local entry's, kept in the record) or by name. An entry's
``data_urls`` carry each shard's recorded sha256 (:mod:`.records`), which core's reader
checks before yielding a sample of the shard, in any process. Writes go
through :func:`atdata.promote.promote_to_atmosphere`, which checksums and publishes
atomically; ``add_entry`` here says so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from atdata.errors import EntryNotFound, InvalidArgument, InvalidRecord, RecordNotFound, SchemaNotFound
from atdata.protocols import AbstractIndex
from atdata.schema import schema_ref, to_record

from ._publish import publish_schema
from .client import AtmosphereClient
from .lexicon import validate_record
from .records import ENTRY_COLLECTIONS, ENTRY_NSID, LEGACY_NAMESPACE, AtmosphereEntry, parse_entry
from .schemas import SCHEMA_NSID, from_atmosphere

__all__ = ["AtmosphereIndex"]

log = logging.getLogger(__name__)

_SCHEMA_COLLECTIONS = (SCHEMA_NSID, f"{LEGACY_NAMESPACE}.sampleSchema", f"{LEGACY_NAMESPACE}.schema")


class AtmosphereIndex(AbstractIndex):
    """The datasets and schemas of one ATProto repository.

    Parameters
    ----------
    client
        An :class:`AtmosphereClient` (logged in or not) on the PDS holding the repo.
    repo
        DID or handle; default the logged-in account's.
    """

    def __init__(self, client: AtmosphereClient, repo: str | None = None) -> None:
        self.client = client
        if repo is None:
            repo = client.did
            if repo is None:
                raise InvalidArgument(
                    "AtmosphereIndex(client) without repo= needs a logged-in client: pass repo=DID or handle"
                )
        self.repo = client.resolve_did(repo)

    def __repr__(self) -> str:
        return f"AtmosphereIndex({self.client.base_url!r}, repo={self.repo!r})"

    # -- entries --------------------------------------------------------------------

    @property
    def entries(self) -> Iterator[AtmosphereEntry]:
        """Every dataset entry of the repo (records that are not valid entries are skipped, logged)."""
        for collection in ENTRY_COLLECTIONS:
            for uri, cid, record in self.client.list_records(self.repo, collection):
                try:
                    yield self._entry(uri, cid, record)
                except InvalidRecord as exc:
                    log.warning("skipping %s: %s", uri, exc)

    def get_entry(self, cid: str) -> AtmosphereEntry:
        """The entry with this AT-URI, atdata content CID or record CID.

        Raises
        ------
        EntryNotFound
            No such entry in the repo.
        InvalidRecord
            The AT-URI holds a record that is not a valid dataset entry.
        """
        if isinstance(cid, str) and cid.startswith("at://"):
            try:
                record, record_cid = self.client.get_record(cid)
            except RecordNotFound as exc:
                raise EntryNotFound(f"no dataset entry at {cid}") from exc
            return self._entry(cid, record_cid, record)
        for entry in self.entries:
            if cid in (entry.cid, entry.record_cid):
                return entry
        raise EntryNotFound(f"no dataset entry with CID {cid!r} in {self!r}")

    def get_entry_by_name(self, name: str) -> AtmosphereEntry:
        """The newest entry (by ``createdAt``) named ``name``; raises ``EntryNotFound``."""
        found = [e for e in self.entries if e.name == name]
        if not found:
            raise EntryNotFound(f"no dataset entry named {name!r} in {self!r}")
        return max(found, key=lambda e: str(e.record.get("createdAt", "")))

    def add_entry(
        self, dataset: Any, *, name: str, schema_ref: str | None = None, metadata: dict[str, Any] | None = None
    ) -> AtmosphereEntry:
        """Not here: publish with ``atdata.promote.promote_to_atmosphere`` (checksummed, atomic)."""
        raise InvalidArgument(
            "AtmosphereIndex does not add entries directly: insert the dataset locally (Repo.insert), then "
            "atdata.promote.promote_to_atmosphere(entry, local_index, client), which checksums every shard and "
            "publishes atomically"
        )

    def remove_entry(self, cid_or_name: str) -> None:
        """Delete the entry record (AT-URI, CID or name) from the logged-in repo."""
        entry = (
            self.get_entry(cid_or_name)
            if cid_or_name.startswith(("at://", "bafy"))
            else self.get_entry_by_name(cid_or_name)
        )
        self.client.delete_record(entry.uri)

    def _entry(self, uri: str, cid: str, record: dict[str, Any]) -> AtmosphereEntry:
        if uri.split("/")[3] == ENTRY_NSID:
            validate_record(ENTRY_NSID, record)
        return parse_entry(uri, cid, record, blob_url=self.client.blob_url)

    # -- schemas --------------------------------------------------------------------

    def publish_schema(
        self, sample_type: type, *, version: str | None = "1.0.0", description: str | None = None
    ) -> str:
        """Publish ``sample_type``'s schema in the logged-in repo (idempotent); returns its AT-URI."""
        version = version or "1.0.0"
        return publish_schema(
            to_record(sample_type, version, description), schema_ref(sample_type, version), self.client
        )

    def get_schema(self, ref: str) -> dict[str, Any]:
        """The schema at AT-URI ``ref`` as a local-style record (``fields``); ``from_record`` reads it.

        Raises
        ------
        SchemaNotFound
            No record at ``ref``.
        """
        if not isinstance(ref, str) or not ref.startswith("at://"):
            raise InvalidArgument(f"atmosphere schema refs are AT-URIs (at://did/{SCHEMA_NSID}/...), got {ref!r}")
        try:
            record, _ = self.client.get_record(ref)
        except RecordNotFound as exc:
            raise SchemaNotFound(f"no schema record at {ref}") from exc
        if ref.split("/")[3] == SCHEMA_NSID:
            validate_record(SCHEMA_NSID, record)
        return from_atmosphere(record)

    def list_schemas(self) -> Iterator[dict[str, Any]]:
        """Every schema record of the repo (local-style, with ``"uri"`` added)."""
        for collection in _SCHEMA_COLLECTIONS:
            for uri, _cid, record in self.client.list_records(self.repo, collection):
                yield {**from_atmosphere(record), "uri": uri}
