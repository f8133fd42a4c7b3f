"""``Repo.gc``: delete what inserts staged and no index entry references.

Only objects an insert names (``InsertKeys.insert_id_of`` finds their insert id) are
considered; other objects under the prefix are left alone. Objects are grouped by
insert: an insert's objects go only when none is referenced by an entry AND all are
older than the grace period, so an insert in progress (which writes a shard every so
often) is never touched.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import timedelta
from typing import Any

from atdata.errors import InvalidArgument
from atdata.protocols import AbstractDataStore, AbstractIndex, ObjectInfo
from atdata.staging import InsertKeys
from atdata.urls import expand_urls

__all__ = ["GcReport", "collect", "grace_seconds"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class GcReport:
    """What :meth:`Repo.gc` found and removed.

    ``removed`` lists the URLs deleted (or, with ``dry_run``, that would be);
    ``kept_recent`` counts unreferenced objects spared because their run is younger
    than the grace period (an insert may still be running); ``kept_adopted`` counts
    objects of inserts the hive held when it was adopted (``Repo.adopt_hive``).
    """

    removed: list[str]
    removed_bytes: int
    kept_recent: int
    kept_adopted: int
    referenced: int
    dry_run: bool

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return dataclasses.asdict(self)


def grace_seconds(grace: Any) -> float:
    """``grace`` (a ``timedelta`` or seconds) in seconds; InvalidArgument if negative or not a number."""
    seconds = grace.total_seconds() if isinstance(grace, timedelta) else grace
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        raise InvalidArgument(f"grace={grace!r} is invalid: pass a timedelta or a number of seconds >= 0")
    return float(seconds)


def collect(
    index: AbstractIndex,
    store: AbstractDataStore,
    root_key: str,
    *,
    seconds: float,
    dry_run: bool,
    force: bool,
    keep: set[str] = frozenset(),  # type: ignore[assignment]
) -> GcReport:
    """Find (and unless ``dry_run``, delete) the unreferenced inserts under ``root_key``.

    ``keep``: insert ids never collected (what an adopted hive already held).
    """
    referenced = _referenced_urls(index)
    inserts: dict[str, list[ObjectInfo]] = {}
    for info in store.list_objects(root_key):
        insert_id = InsertKeys.insert_id_of(info.key[len(root_key) :])
        if insert_id is not None:
            inserts.setdefault(insert_id, []).append(info)
    cutoff = time.time() - seconds
    doomed: list[ObjectInfo] = []
    kept_recent = 0
    kept_adopted = 0
    for insert_id, objects in inserts.items():
        if insert_id in keep:
            kept_adopted += len(objects)
            continue
        if any(info.url in referenced for info in objects):
            continue
        if max(info.mtime for info in objects) > cutoff:
            kept_recent += len(objects)
            continue
        doomed.extend(objects)
    if doomed and not referenced and not force and not dry_run:
        raise InvalidArgument(
            f"refusing gc: {index!r} has no entries, so all {len(doomed)} object(s) under "
            f"{store.url_for(root_key)!r} look unreferenced. If the index was reset or this is "
            "the wrong Redis, gc would delete every dataset; pass force=True (atdata gc --force) if you mean it"
        )
    if doomed and not dry_run:
        store.delete(info.key for info in doomed)
        log.info("gc removed %d objects under %s", len(doomed), store.url_for(root_key))
    return GcReport(
        removed=[info.url for info in doomed],
        removed_bytes=sum(info.size for info in doomed),
        kept_recent=kept_recent,
        kept_adopted=kept_adopted,
        referenced=len(referenced),
        dry_run=dry_run,
    )


def _referenced_urls(index: AbstractIndex) -> set[str]:
    referenced: set[str] = set()
    for content in index.contents:  # every CID, older versions included
        referenced.update(expand_urls(content.data_urls))
    return referenced
