"""The end of every insert (steps 3-5 of :mod:`atdata.local.repo`): metadata and content record staged, entry committed.

Before the commit, identical content already indexed (found by the content digest's
records, ``content/{digest}--*.json``, naming an entry that exists) is reused if every
shard of it is still there at its recorded size (:mod:`._dedup`): the copy just staged is
dropped and the entry names the stored shards, so it gets the same CID. A broken stored
copy is not reused; the names pointing at it are repaired after the commit.
Otherwise the content record is staged beside the shards and the index entry is written
in one atomic write (``StagedInsert.commit``); a failed write that may have landed keeps
the objects for ``gc`` to judge.
"""

from __future__ import annotations

import logging
from typing import Any

import atdata
from atdata.cid import entry_cid
from atdata.errors import EntryNotFound
from atdata.protocols import AbstractIndex, IndexEntry
from atdata.shard_url import ShardURL
from atdata.staging import StagedInsert

from . import _dedup
from ._content import Content

__all__ = ["publish"]

log = logging.getLogger(__name__)


def publish(
    index: AbstractIndex,
    staged: StagedInsert,
    content: Content,
    sample_type: type,
    *,
    name: str,
    metadata: dict[str, Any] | None,
) -> tuple[IndexEntry, atdata.Dataset[Any]]:
    """Steps 3-5 of an insert: metadata and content record staged, then the entry committed."""
    store = staged.store
    metadata_url = None
    if content.meta_bytes is not None:
        metadata_url = staged.write_bytes(staged.keys.metadata, content.meta_bytes)
    found = _dedup.find_copy(index, store, staged.prefix, content)
    if found.record is not None and found.entry is not None:
        # Identical content is already indexed and whole: drop the copy, reuse the original.
        log.info("content of %r is already stored as %s: reusing it", name, found.record["data_urls"])
        staged.abort()
        metadata_url = found.record.get("metadata_url")
        urls = found.entry.data_urls  # the entry's own URLs: they carry the stored copy's manifest
    else:
        urls = staged.keys.urls(content.shards)
        staged.write_bytes(staged.keys.content(content.digest), content.record(urls, metadata_url))
    location = store.location
    if location is not None:  # where the bucket lives: the index records it for other processes
        urls = [
            url.with_facts(location=location) if isinstance(url, ShardURL) else ShardURL(url, location=location)
            for url in urls
        ]
    stored: atdata.Dataset[Any] = atdata.Dataset(
        urls[0] if len(urls) == 1 else urls, metadata_url, sample_type=sample_type
    )
    entry = staged.commit(
        lambda: index.add_entry(stored, name=name, schema_ref=content.schema_ref, metadata=metadata),
        may_have_landed=lambda: _maybe_indexed(index, content.schema_ref, urls),
    )
    _dedup.repair_names(index, found.broken, stored, schema_ref=content.schema_ref, skip=name)
    return entry, stored


def _maybe_indexed(index: AbstractIndex, schema_ref: str, urls: list[str]) -> bool:
    """After a failed index write: could the entry exist anyway (reply lost)?"""
    try:
        index.get_entry(entry_cid(schema_ref, urls))
    except EntryNotFound:
        return False
    except Exception:  # noqa: BLE001 - cannot tell: keeping the objects is the safe side
        return True
    return True
