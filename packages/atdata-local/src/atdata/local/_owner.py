"""Which index owns a hive: the owner record ``atdata-hive.json`` at the hive's root.

gc treats whatever the repo's index does not reference as garbage, so two indexes
writing into one hive would delete each other's data. The first insert records the
index's ``owner_record`` (``AbstractIndex.owner_record``: a ``LocalIndex``'s id, which
another database, server or a flushed Redis does not share), plus its repr for people;
inserts and gc through an index whose record differs are refused.

A hive that holds inserted data but no owner record (written before owner records, or
whose record was deleted) is never claimed silently: an empty index would then gc every
dataset in it. :func:`adopt` takes such a hive, or one whose owning index is gone, on the
user's explicit request, and records which inserts were already there, so gc keeps them.
"""

from __future__ import annotations

import json
import time
from typing import Any

from atdata.errors import HiveOwnedElsewhere
from atdata.protocols import AbstractIndex
from atdata.staging import InsertKeys

from ._hive import Hive

__all__ = ["OWNER_NAME", "adopt", "adopted_inserts", "check_owner", "claim", "read_owner"]

OWNER_NAME = "atdata-hive.json"
_ADOPT_HINT = (
    "if this index really owns the hive now (its Redis was reset, say), adopt it explicitly with "
    "Repo(...).adopt_hive() or `atdata adopt --hive-path ...`; gc then keeps every insert already in it"
)


def claim(hive: Hive, index: AbstractIndex) -> None:
    """Record ``index`` as the owner of a new hive, or refuse a hive it does not own."""
    owner = read_owner(hive)
    if owner is None:
        inserts = _inserts_in(hive)
        if inserts:
            raise HiveOwnedElsewhere(
                f"hive {_url(hive)!r} holds the data of {len(inserts)} insert(s) but no owner record "
                f"({OWNER_NAME}), so no index is known to own it: {_ADOPT_HINT}"
            )
        _write(hive, {**index.owner_record, "index": repr(index)})
        return
    _refuse_other_owner(hive, index, owner, "refusing to insert")


def check_owner(hive: Hive, index: AbstractIndex) -> dict[str, Any] | None:
    """The hive's owner record; refuses gc through an index that does not own the hive
    (all its entries would look unreferenced)."""
    owner = read_owner(hive)
    if owner is not None:
        _refuse_other_owner(hive, index, owner, "refusing gc (its datasets would all look unreferenced)")
    return owner


def adopt(hive: Hive, index: AbstractIndex) -> dict[str, Any]:
    """Make ``index`` the hive's owner, on purpose; returns the new owner record.

    The insert ids found in the hive are recorded under ``adopted.inserts``: their
    objects are referenced by no entry of ``index``, and gc must not take that as
    "unreferenced" (see :func:`adopted_inserts`). A hive ``index`` already owns is left
    as it is: its inserts are this index's own, and marking them kept would stop gc from
    ever collecting the ones it removes.
    """
    previous = read_owner(hive)
    if previous is not None and _owned_by(previous, index):
        return previous
    kept = sorted(set(_inserts_in(hive)) | set(adopted_inserts(previous)))
    record = {
        **index.owner_record,
        "index": repr(index),
        "adopted": {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "from": previous, "inserts": kept},
    }
    _write(hive, record)
    return record


def adopted_inserts(owner: dict[str, Any] | None) -> list[str]:
    """The insert ids an adoption found in the hive: gc keeps their objects."""
    adopted = (owner or {}).get("adopted") or {}
    return list(adopted.get("inserts", []))


def _owned_by(owner: dict[str, Any], index: AbstractIndex) -> bool:
    return all(owner.get(key) == value for key, value in index.owner_record.items())


def _refuse_other_owner(hive: Hive, index: AbstractIndex, owner: dict[str, Any], action: str) -> None:
    if _owned_by(owner, index):
        return
    mine = index.owner_record
    theirs = ", ".join(f"{key}={owner.get(key)!r}" for key in mine)
    raise HiveOwnedElsewhere(
        f"{action}: hive {_url(hive)!r} belongs to the index with {theirs} ({owner.get('index')}), not "
        f"{', '.join(f'{key}={value!r}' for key, value in mine.items())} ({index!r}). Use that index "
        f"(the same Redis server, database and key prefix), or another hive_path; {_ADOPT_HINT}"
    )


def _inserts_in(hive: Hive) -> list[str]:
    found = {InsertKeys.insert_id_of(info.key[len(hive.root_key) :]) for info in hive.store.list_objects(hive.root_key)}
    return sorted(i for i in found if i is not None)


def _url(hive: Hive) -> str:
    return hive.store.url_for(hive.root_key)


def _write(hive: Hive, record: dict[str, Any]) -> None:
    hive.store.write_bytes(hive.key(OWNER_NAME), json.dumps(record, indent=1).encode())


def read_owner(hive: Hive) -> dict[str, Any] | None:
    """The hive's owner record, or None."""
    key = hive.key(OWNER_NAME)
    for info in hive.store.list_objects(key):
        if info.key == key:
            with hive.store.open_read(info.url) as stream:
                return dict(json.loads(stream.read()))
    return None
