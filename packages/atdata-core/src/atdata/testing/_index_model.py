"""A hypothesis state machine: random add/rename/remove/publish runs against a plain model.

The model is the contract of names as pointers: each name has its own versions (CIDs,
newest last) and per-version metadata; a CID is stored once and shared; a change to one
name never touches another; a CID several names share is refused where one entry is
meant. After every step the index must match the model exactly: no name lost, every
name resolving to its own entry.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from atdata.errors import AmbiguousEntry, EntryNotFound, SchemaConflict
from atdata.protocols import AbstractIndex

from ._index_support import REF, FakeDataset, make_sample_type

__all__ = ["IndexMachine"]

_KEEP = object()  # attach without a metadata argument: the version keeps what it had


class IndexMachine(RuleBasedStateMachine):
    """The index under test against ``versions``/``meta``/``first``, its model."""

    def __init__(self, index: AbstractIndex) -> None:
        super().__init__()
        self.index = index
        self.versions: dict[str, list[str]] = {}  # name -> CIDs, oldest first
        self.meta: dict[tuple[str, str], Any] = {}  # (name, cid) -> that version's metadata
        self.first: dict[tuple[str, str], int] = {}  # (name, cid) -> when the name took the CID
        self.seq = 0
        self.schemas: dict[str, tuple[str, ...]] = {}  # ref -> field names

    names = Bundle("names")

    @rule(target=names, name=st.sampled_from(["a", "b", "c", "d"]))
    def new_name(self, name: str) -> str:
        return name

    # -- the model ----------------------------------------------------------------------

    def _newest(self, name: str) -> str | None:
        return self.versions[name][-1] if name in self.versions else None

    def _users(self, cid: str) -> list[str]:
        return sorted((n for n, c in self.first if c == cid), key=lambda n: self.first[(n, cid)])

    def _attach(self, name: str, cid: str, meta: Any = _KEEP) -> None:
        if self._newest(name) != cid:
            self.seq += 1
            history = self.versions.setdefault(name, [])
            if cid in history:
                history.remove(cid)
            history.append(cid)
            self.first.setdefault((name, cid), self.seq)
        if meta is _KEEP:
            self.meta.setdefault((name, cid), None)
        else:
            self.meta[(name, cid)] = meta

    def _detach(self, name: str, cid: str) -> None:
        self.versions[name].remove(cid)
        if not self.versions[name]:
            del self.versions[name]
        del self.meta[(name, cid)], self.first[(name, cid)]

    def _target(self, key: str) -> tuple[str, str] | list[str] | None:
        """What a CID-or-name denotes: (name, cid), the sharing names, or nothing."""
        users = self._users(key)
        if users:
            return (users[0], key) if len(users) == 1 else users
        cid = self._newest(key)
        return (key, cid) if cid is not None else None

    def _expect(self, key: str, call: Any) -> tuple[str, str] | None:
        """Call ``call(key)`` as the model says it goes; the (name, cid) it changed, if any."""
        target = self._target(key)
        if target is None:
            with pytest.raises(EntryNotFound):
                call(key)
            return None
        if isinstance(target, list):
            with pytest.raises(AmbiguousEntry) as refused:
                call(key)
            assert all(repr(n) in str(refused.value) for n in target)  # the message names every name
            return None
        call(key)
        return target

    # -- rules --------------------------------------------------------------------------

    @rule(name=names, shard=st.integers(0, 4), meta=st.none() | st.integers(0, 3))
    def add(self, name: str, shard: int, meta: int | None) -> None:
        metadata = None if meta is None else {"m": meta}
        entry = self.index.add_entry(FakeDataset(f"shard-{shard}.tar"), name=name, schema_ref=REF, metadata=metadata)
        self._attach(name, entry.cid, _KEEP if metadata is None else metadata)
        assert entry.name == name and entry.metadata == self.meta[(name, entry.cid)]

    def _key(self, name: str, by_cid: bool) -> str:
        cid = self._newest(name)
        return cid if by_cid and cid is not None else name

    @rule(key=names, by_cid=st.booleans(), new=names)
    def rename(self, key: str, by_cid: bool, new: str) -> None:
        rename = getattr(self.index, "rename_entry", None)
        if rename is None:
            return
        changed = self._expect(self._key(key, by_cid), lambda k: rename(k, new))
        if changed is None:
            return
        name, cid = changed
        if name == new:
            self._attach(name, cid)
        else:
            self._attach(new, cid, self.meta[(name, cid)])
            self._detach(name, cid)

    @rule(key=names, by_cid=st.booleans())
    def remove(self, key: str, by_cid: bool) -> None:
        changed = self._expect(self._key(key, by_cid), self.index.remove_entry)
        if changed is not None:
            self._detach(*changed)

    @rule(fields=st.sampled_from([("x",), ("x", "y")]), version=st.sampled_from(["1.0.0", "1.0.1"]))
    def publish(self, fields: tuple[str, ...], version: str) -> None:
        sample_type = make_sample_type("Machine", dict.fromkeys(fields, int))
        ref = f"local://schemas/conformance.Machine@{version}"
        if ref in self.schemas and self.schemas[ref] != fields:
            with pytest.raises(SchemaConflict):
                self.index.publish_schema(sample_type, version=version)
            return
        assert self.index.publish_schema(sample_type, version=version) == ref
        self.schemas.setdefault(ref, fields)

    # -- invariants ---------------------------------------------------------------------

    @invariant()
    def every_name_resolves_to_its_own_entry(self) -> None:
        listed = {e.name: (e.cid, e.metadata) for e in self.index.entries}
        assert listed == {n: (h[-1], self.meta[(n, h[-1])]) for n, h in self.versions.items()}
        for name, history in self.versions.items():
            entry = self.index.get_entry_by_name(name)
            assert (entry.name, entry.cid) == (name, history[-1])
            if hasattr(self.index, "get_entry_versions"):
                versions = self.index.get_entry_versions(name)  # type: ignore[attr-defined]
                assert [(e.name, e.cid, e.metadata) for e in versions] == [
                    (name, c, self.meta[(name, c)]) for c in reversed(history)
                ]

    @invariant()
    def every_cid_is_stored_once_for_its_names(self) -> None:
        cids = {c for _, c in self.first}
        for cid in cids:
            assert self.index.get_entry(cid).name == self._users(cid)[0]
        if hasattr(self.index, "contents"):
            stored = {c.cid: list(c.names) for c in self.index.contents}  # type: ignore[attr-defined]
            assert stored == {cid: self._users(cid) for cid in cids}

    @invariant()
    def schemas_match(self) -> None:
        stored = {(s["version"], tuple(f["name"] for f in s["fields"])) for s in self.index.list_schemas()}
        assert stored == {(ref.rsplit("@", 1)[1], fields) for ref, fields in self.schemas.items()}
