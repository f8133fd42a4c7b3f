"""Dedup that never reuses a broken copy: an insert of content already stored checks the copy first.

Identical content (same content digest, :mod:`._content`) is stored once: a second insert
of it drops its fresh shards and indexes the stored copy's URLs. That is only safe while
the stored copy is whole, and storage loses objects (a deleted key, a truncated file). So
before reusing a copy, every shard its content record lists (and its metadata object) is
checked with the store's cheap :meth:`~atdata.AbstractDataStore.object_size` (a stat or a
HEAD, no read): each must exist with the recorded size. A copy that fails is *broken*:
the insert keeps its fresh upload instead, so re-inserting is how a user repairs a dataset.

Names whose newest version is a broken copy are repaired too: they get the copy the insert
reused or stored as their newest version (same content, so the same samples), keeping
their metadata. The broken version stays in their history (``get_entry_versions``) until
removed: versions are never dropped behind the user's back. Bit rot inside a shard of the
right size is not seen here (that needs a full read: ``Repo.verify``, and every verified read).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from atdata.cid import entry_cid
from atdata.errors import AtdataError, EntryNotFound, InvalidArgument
from atdata.manifest import Manifest
from atdata.protocols import AbstractDataStore, AbstractIndex, IndexEntry
from atdata.staging import InsertKeys

from ._content import Content

__all__ = ["Lookup", "damage", "find_copy", "repair_names"]

log = logging.getLogger(__name__)


@dataclass
class Lookup:
    """What the stored copies of one content digest are: the first whole one, and the broken ones."""

    record: dict[str, Any] | None = None
    entry: IndexEntry | None = None
    broken: list[str] = field(default_factory=list)  # CIDs of indexed copies missing a shard or short


def find_copy(index: AbstractIndex, store: AbstractDataStore, prefix: str, content: Content) -> Lookup:
    """Every indexed stored copy of ``content``, each checked shard by shard (see the module doc)."""
    found = Lookup()
    for info in store.list_objects(InsertKeys.content_prefix(prefix, content.digest)):
        with store.open_read(info.url) as stream:
            record: dict[str, Any] = json.loads(stream.read())
        cid = entry_cid(content.schema_ref, record["data_urls"])
        try:
            entry = index.get_entry(cid)
        except EntryNotFound:
            continue  # a crashed or removed insert's record: gc's business
        problem = damage(store, record, content.meta_bytes)
        if problem is not None:
            log.warning("the stored copy %s of this content is broken (%s): storing the fresh copy", cid, problem)
            found.broken.append(cid)
        elif found.entry is None:
            found.record, found.entry = record, entry
    return found


def damage(store: AbstractDataStore, record: dict[str, Any], meta_bytes: bytes | None) -> str | None:
    """What is wrong with the stored copy ``record`` describes (None: every object is there, full size)."""
    try:
        manifest = Manifest.from_json(record)
    except InvalidArgument:
        return "its content record lists no shard sizes (written by an older atdata)"
    expected = [(shard.url, shard.size) for shard in manifest.shards]
    if meta_bytes is not None and record.get("metadata_url"):
        expected.append((record["metadata_url"], len(meta_bytes)))
    for url, size in expected:
        found = store.object_size(url)
        if found is None:
            return f"{url} is missing"
        if found != size:
            return f"{url} has {found} bytes, {size} recorded"
    return None


def repair_names(index: AbstractIndex, broken: Iterable[str], dataset: Any, *, schema_ref: str, skip: str) -> list[str]:
    """Point every name whose newest version is a ``broken`` CID at ``dataset`` (the whole copy).

    ``skip`` is the name the insert itself just indexed. Returns the names repaired. A
    failure is logged, not raised: the insert itself has landed, and inserting again repairs
    the names left over.
    """
    broken = set(broken)
    if not broken:
        return []
    repaired: list[str] = []
    try:
        stale = [entry for entry in index.entries if entry.cid in broken and entry.name != skip]
        for entry in stale:
            index.add_entry(dataset, name=entry.name, schema_ref=schema_ref, metadata=entry.metadata)
            repaired.append(entry.name)
    except AtdataError as exc:
        log.warning("could not repair every name of a broken copy (%s); insert the content again to finish", exc)
    if repaired:
        log.info("names %s pointed at a broken copy: they now point at the whole one", repaired)
    return repaired
