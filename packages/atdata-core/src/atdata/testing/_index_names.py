"""Names are pointers, content is stored once: the index suite's tests of that contract.

Issue 13, case 2: identical content added under a second name removed the first name.
Every name is its own entry (metadata, versions); names share a CID and its content; a
change to one name never touches another; a CID several names share is refused where
one entry is meant, with an error naming them.
"""

from __future__ import annotations

import pytest

from atdata.errors import AmbiguousEntry, EntryNotFound
from atdata.protocols import AbstractIndex

from ._index_support import REF, FakeDataset, require

__all__ = ["NameTests"]


class NameTests:
    """Name test bodies of ``IndexConformance`` (mixed in; never collected itself)."""

    def raw_keys(self, index: AbstractIndex) -> set[str]:
        raise NotImplementedError

    def bookkeeping_keys(self, index: AbstractIndex) -> set[str]:
        raise NotImplementedError

    def test_identical_content_under_a_second_name_keeps_the_first(self, index: AbstractIndex) -> None:
        train = index.add_entry(FakeDataset("t.tar"), name="train", schema_ref=REF, metadata={"split": "train"})
        copy = index.add_entry(FakeDataset("t.tar"), name="train-copy", schema_ref=REF, metadata={"note": "copy"})
        assert copy.cid == train.cid and copy.name == "train-copy"
        assert index.get_entry_by_name("train") == train  # its own metadata too
        assert index.get_entry_by_name("train-copy") == copy
        assert sorted((e.name, e.cid) for e in index.all_entries) == [("train", train.cid), ("train-copy", train.cid)]
        assert index.get_entry(train.cid) == train  # the first name that took the content
        contents = require(index, "get_content")(train.cid)
        assert (contents.cid, contents.names, contents.data_urls) == (train.cid, ("train", "train-copy"), ["t.tar"])

    def test_each_name_has_its_own_versions(self, index: AbstractIndex) -> None:
        a1 = index.add_entry(FakeDataset("1.tar"), name="a", schema_ref=REF)
        index.add_entry(FakeDataset("2.tar"), name="a", schema_ref=REF)
        b1 = index.add_entry(FakeDataset("1.tar"), name="b", schema_ref=REF)
        assert index.get_entry_by_name("b") == b1
        assert index.get_entry_by_name("a").data_urls == ["2.tar"]
        versions = require(index, "get_entry_versions")
        assert [e.data_urls for e in versions("a")] == [["2.tar"], ["1.tar"]]
        assert [e.name for e in versions("b")] == ["b"]
        index.remove_entry("a")  # a's newest goes; a falls back to its own 1.tar
        assert index.get_entry_by_name("a") == a1
        index.remove_entry("a")
        assert index.get_entry_by_name("b") == b1  # the shared content stays for b
        assert index.get_entry(b1.cid) == b1

    def test_removing_one_name_keeps_the_others(self, index: AbstractIndex) -> None:
        first = index.add_entry(FakeDataset("s.tar"), name="first", schema_ref=REF)
        second = index.add_entry(FakeDataset("s.tar"), name="second", schema_ref=REF)
        index.remove_entry("first")
        assert index.get_entry_by_name("second") == second
        assert index.get_entry(first.cid) == second  # the content now belongs to its one name
        with pytest.raises(EntryNotFound):
            index.get_entry_by_name("first")
        index.remove_entry(first.cid)  # one name left: the CID says which entry
        assert index.all_entries == []
        assert self.raw_keys(index) <= self.bookkeeping_keys(index)  # content went with its last name

    def test_a_shared_cid_is_refused_where_one_entry_is_meant(self, index: AbstractIndex) -> None:
        one = index.add_entry(FakeDataset("s.tar"), name="one", schema_ref=REF)
        index.add_entry(FakeDataset("s.tar"), name="two", schema_ref=REF)
        before = sorted((e.name, e.cid) for e in index.all_entries)
        with pytest.raises(AmbiguousEntry, match=r"'one', 'two'.*by name"):
            index.remove_entry(one.cid)
        if hasattr(index, "rename_entry"):
            with pytest.raises(AmbiguousEntry, match=r"'one', 'two'"):
                index.rename_entry(one.cid, "three")
        assert sorted((e.name, e.cid) for e in index.all_entries) == before  # nothing changed

    def test_an_entry_object_names_exactly_one_version(self, index: AbstractIndex) -> None:
        one = index.add_entry(FakeDataset("s.tar"), name="one", schema_ref=REF)
        two = index.add_entry(FakeDataset("s.tar"), name="two", schema_ref=REF)
        index.add_entry(FakeDataset("newer.tar"), name="one", schema_ref=REF)
        index.remove_entry(one)  # one's older version, not its newest, not two's
        assert [e.data_urls for e in require(index, "get_entry_versions")("one")] == [["newer.tar"]]
        assert index.get_entry_by_name("two") == two
        with pytest.raises(EntryNotFound, match="'one'"):
            index.remove_entry(one)  # gone already

    def test_renaming_one_name_keeps_the_others(self, index: AbstractIndex) -> None:
        rename = require(index, "rename_entry")
        index.add_entry(FakeDataset("s.tar"), name="src", schema_ref=REF, metadata={"m": 1})
        other = index.add_entry(FakeDataset("s.tar"), name="other", schema_ref=REF)
        moved = rename("src", "dst")
        assert (moved.name, moved.metadata) == ("dst", {"m": 1})  # the version moves with its metadata
        assert index.get_entry_by_name("other") == other
        assert index.get_entry_by_name("dst") == moved
        with pytest.raises(EntryNotFound):
            index.get_entry_by_name("src")
        assert rename(other, "dst").name == "dst"  # the same CID already under dst: other merges in
        assert sorted(e.name for e in index.all_entries) == ["dst"]
