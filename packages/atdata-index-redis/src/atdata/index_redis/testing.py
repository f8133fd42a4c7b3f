"""``LocalIndexConformance``: core's index suite, wired to LocalIndex's keys (needs pytest).

Subclasses supply only ``index_factory`` (fakeredis, a real server, a cluster); the
raw-key helpers read Redis directly, bypassing the index under test.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from atdata.errors import EntryNotFound, InvalidArgument
from atdata.manifest import Manifest, ShardRecord
from atdata.protocols import AbstractIndex
from atdata.shard_url import ShardURL
from atdata.testing.index import REF, FakeDataset, IndexConformance

from ._entry import content_cid
from ._index import LocalIndex

__all__ = ["LocalIndexConformance", "raw_keys"]


def raw_keys(index: AbstractIndex) -> set[str]:
    """Every key of ``index`` on its server (SCAN over its hash-tagged prefix)."""
    assert isinstance(index, LocalIndex)
    return {k.decode() if isinstance(k, bytes) else k for k in index.redis.scan_iter(match=index.key_pattern)}


class LocalIndexConformance(IndexConformance):
    def raw_keys(self, index: AbstractIndex) -> set[str]:
        return raw_keys(index)

    def bookkeeping_keys(self, index: AbstractIndex) -> set[str]:
        # The sequence counter outlives the entries, so versions stay ordered after a removal;
        # the index id outlives them too (hives record it as their owner).
        assert isinstance(index, LocalIndex)
        return {"{" + index.key_prefix + "}seq", "{" + index.key_prefix + "}id"}

    def test_index_id_is_created_once_and_kept(self, index: AbstractIndex) -> None:
        assert isinstance(index, LocalIndex)
        # Fresh index objects (nothing cached) on the same server, racing to create the id.
        clones = [LocalIndex(redis=index.redis, key_prefix=index.key_prefix) for _ in range(6)]
        ids: list[str] = []
        threads = [threading.Thread(target=lambda c=c: ids.append(c.index_id)) for c in clones]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(set(ids)) == 1 and ids[0].startswith("idx-")  # created once, atomically
        entry = index.add_entry(FakeDataset("i.tar"), name="i", schema_ref=REF)
        index.remove_entry(entry)
        assert index.index_id == ids[0]  # kept when the index is emptied

    def test_a_name_passed_as_cid_is_told_to_use_get_entry_by_name(self, index: AbstractIndex) -> None:
        with pytest.raises(EntryNotFound, match=r"'my-dataset' is not a CID.*get_entry_by_name"):
            index.get_entry("my-dataset")
        with pytest.raises(EntryNotFound) as missing:  # a well-formed CID that is absent: no such hint
            index.get_entry("bafyreigjxcip2h2frngwbnz5axe7se673qtjbl3mbqgdjzyaq6wtcpaom4")
        assert "not a CID" not in str(missing.value)

    def test_added_entry_equals_the_stored_one(self, index: AbstractIndex) -> None:
        # JSON turns int keys into strings and tuples into lists: add_entry must not hand
        # back metadata that get_entry will never return.
        metadata: Any = {1: "a", "shape": (2, 3)}  # int key: what the annotation forbids, JSON coerces
        entry = index.add_entry(FakeDataset("j.tar"), name="j", schema_ref=REF, metadata=metadata)
        assert entry.metadata == {"1": "a", "shape": [2, 3]}
        assert entry == index.get_entry(entry.cid) == index.get_entry_by_name("j")

    @pytest.mark.parametrize("bad", [None, "", 3])
    def test_rename_and_remove_name_a_bad_cid_or_name(self, index: AbstractIndex, bad: Any) -> None:
        assert isinstance(index, LocalIndex)
        index.add_entry(FakeDataset("r.tar"), name="r", schema_ref=REF)
        with pytest.raises(InvalidArgument, match=f"CID or name.*got {bad!r}"):
            index.rename_entry(bad, "other")
        with pytest.raises(InvalidArgument, match=f"CID or name.*got {bad!r}"):
            index.remove_entry(bad)
        assert index.get_entry_by_name("r").data_urls == ["r.tar"]

    def test_shard_url_facts_are_stored_and_returned_outside_the_cid(self, index: AbstractIndex) -> None:
        # An entry's data_urls carry their shard manifest (what verified reads check); the
        # CID covers the plain URL strings only, so it equals the CID of the bare URLs.
        record = ShardRecord("m-0.tar", 2048, 1, "a" * 64, ("b" * 32,))
        url = ShardURL("m-{0..0}.tar", manifest=Manifest((record,)))
        entry = index.add_entry(FakeDataset(url), name="m", schema_ref=REF)
        assert entry.cid == content_cid(REF, ["m-{0..0}.tar"])
        for got in (entry, index.get_entry(entry.cid), index.get_entry_by_name("m")):
            (stored,) = got.data_urls
            assert isinstance(stored, ShardURL) and str(stored) == "m-{0..0}.tar"
            assert stored.manifest == Manifest((record,))
        plain = index.add_entry(FakeDataset("p.tar"), name="p", schema_ref=REF)
        assert type(index.get_entry(plain.cid).data_urls[0]) is str
