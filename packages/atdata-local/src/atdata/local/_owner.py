"""Which index owns a hive: the owner record ``atdata-hive.json`` at the hive's root.

gc treats whatever the repo's index does not reference as garbage, so two indexes
writing into one hive would delete each other's data. The first insert records the
index's ``owner_record`` (``AbstractIndex.owner_record``, plus its repr for people);
inserts and gc through an index whose record differs are refused.
"""

from __future__ import annotations

import json
from typing import Any

from atdata.errors import InvalidArgument
from atdata.protocols import AbstractIndex

from ._hive import Hive

__all__ = ["OWNER_NAME", "check_owner", "claim"]

OWNER_NAME = "atdata-hive.json"


def claim(hive: Hive, index: AbstractIndex) -> None:
    """Record ``index`` as the hive's owner, or refuse a hive another index owns."""
    owner = _read(hive)
    if owner is None:
        record = {**index.owner_record, "index": repr(index)}
        hive.store.write_bytes(hive.key(OWNER_NAME), json.dumps(record, indent=1).encode())
        return
    mismatch = _mismatch(hive, index, owner)
    if mismatch is not None:
        raise InvalidArgument(f"{mismatch}: use that index, or another hive_path")


def check_owner(hive: Hive, index: AbstractIndex) -> None:
    """Refuse gc through an index that does not own the hive (all its entries would look unreferenced)."""
    owner = _read(hive)
    mismatch = None if owner is None else _mismatch(hive, index, owner)
    if mismatch is not None:
        raise InvalidArgument(
            f"refusing gc: {mismatch}; its entries would all look unreferenced. Run gc through that index"
        )


def _mismatch(hive: Hive, index: AbstractIndex, owner: dict[str, Any]) -> str | None:
    mine = index.owner_record
    if all(owner.get(key) == value for key, value in mine.items()):
        return None
    theirs = ", ".join(f"{key}={owner.get(key)!r}" for key in mine)
    return (
        f"hive {hive.store.url_for(hive.root_key)!r} belongs to the index with {theirs} ({owner.get('index')}), "
        f"not {', '.join(f'{key}={value!r}' for key, value in mine.items())}"
    )


def _read(hive: Hive) -> dict[str, Any] | None:
    key = hive.key(OWNER_NAME)
    for info in hive.store.list_objects(key):
        if info.key == key:
            with hive.store.open_read(info.url) as stream:
                return dict(json.loads(stream.read()))
    return None
