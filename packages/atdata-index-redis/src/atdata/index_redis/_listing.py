"""The listing half of LocalIndex: one entry per name, and every content record, streamed.

A mixin over the index's connection (``_key``, ``_run``, ``_checked``, ``_spec``), as
``_schemas`` is: SSCAN over a listing set in batches (inside the script for names) and one
script call per batch for what its members point at, so memory stays flat whatever the size of the index.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from ._connection import ConnectionSpec, translate_errors
from ._entry import LocalDatasetEntry, StoredContent, _text

__all__ = ["ListingMethods"]

_SCAN_BATCH = 500


class ListingMethods:
    """``entries``, ``contents`` and ``all_entries`` of ``LocalIndex``."""

    _spec: ConnectionSpec

    def _key(self, kind: str, ident: str = "") -> str:
        raise NotImplementedError

    def _run(self, name: str, key: str, *args: Any) -> Any:
        raise NotImplementedError

    def _checked(self) -> Any:
        raise NotImplementedError

    @property
    def entries(self) -> Iterator[LocalDatasetEntry]:
        """Stream one entry per name, its newest version (SSCAN in batches; constant memory).

        As with Redis SCAN, a name added or removed during the iteration may or may not
        be yielded. Older versions: ``get_entry_versions``; every CID: ``contents``.
        """
        key = self._key("names")
        with translate_errors(self._spec):
            if not self._checked().exists(key):  # an empty index lists without running a script
                return
        cursor: Any = 0
        while True:
            cursor, found = self._run("LIST_NAMES", key, cursor, _SCAN_BATCH)
            yield from (LocalDatasetEntry.from_fields(*values) for values in json.loads(found))
            if int(cursor) == 0:
                return

    @property
    def contents(self) -> Iterator[StoredContent]:
        """Stream every content record once, whatever the names pointing at it (what gc keeps)."""
        key = self._key("contents")
        cursor: int = 0
        while True:
            with translate_errors(self._spec):
                cursor, members = self._checked().sscan(key, cursor, count=_SCAN_BATCH)
            if members:
                found = self._run("FETCH_CONTENTS", key, *(_text(m) for m in members))
                yield from (StoredContent.from_values(values[0], values[1:]) for values in found if values)
            if int(cursor) == 0:
                return

    @property
    def all_entries(self) -> list[LocalDatasetEntry]:
        """One entry per name as a list (prefer ``entries`` for large indexes)."""
        seen: dict[str, LocalDatasetEntry] = {}
        for entry in self.entries:  # SSCAN may repeat an element during a rehash
            seen.setdefault(entry.name, entry)
        return list(seen.values())
