"""``IndexConformance``: the behaviour every ``AbstractIndex`` backend must have.

A backend's tests subclass it and provide two things::

    class TestIndexOnFakeredis(IndexConformance):
        @pytest.fixture
        def index_factory(self):              # makes fresh, empty, isolated indexes
            ...

        def raw_keys(self, index):            # every key the index owns, read WITHOUT the index
            ...

The same bodies then run on fakeredis and on real servers (valkey, a one-node valkey
cluster), so "atomic", "idempotent" and "consistent under concurrency" mean the same
everywhere. Methods beyond ``AbstractIndex`` (``get_entry_versions``, ``rename_entry``)
are capabilities: a backend without them skips those tests, nothing else.
"""

from __future__ import annotations

import pickle
import random
import threading
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test

from atdata.cid import generate_cid
from atdata.errors import AmbiguousEntry, AtdataError, EntryNotFound, InvalidArgument
from atdata.protocols import AbstractIndex, IndexEntry

from ._index_model import IndexMachine
from ._index_names import NameTests
from ._index_schemas import SchemaTests
from ._index_support import REF, SHARED_BODY, FakeDataset, make_sample_type, require
from .strategies import ENTRY_NAMES

__all__ = ["REF", "FakeDataset", "IndexConformance", "make_sample_type"]


class IndexConformance(NameTests, SchemaTests):
    """Test bodies shared by every index backend (no ``Test`` prefix: never collected itself)."""

    @pytest.fixture
    def index_factory(self) -> Callable[[], AbstractIndex]:
        """A callable making fresh, empty, isolated indexes, cleaned up after the test."""
        raise NotImplementedError

    @pytest.fixture
    def index(self, index_factory: Callable[[], AbstractIndex]) -> AbstractIndex:
        return index_factory()

    def raw_keys(self, index: AbstractIndex) -> set[str]:
        """Every key the index owns, read from the server directly."""
        raise NotImplementedError

    # -- entries ----------------------------------------------------------------------

    def test_add_then_get_by_name(self, index: AbstractIndex) -> None:
        ds = FakeDataset("data-{000000..000009}.tar")
        entry = index.add_entry(ds, name="my-dataset", schema_ref=REF, metadata={"description": "Training images"})
        assert entry.name == "my-dataset"
        assert entry.data_urls == ["data-{000000..000009}.tar"]  # the spec: brace pattern kept as given
        assert entry.schema_ref == REF
        assert entry.metadata == {"description": "Training images"}
        assert entry.cid.startswith("bafyrei")
        assert isinstance(entry, IndexEntry)
        assert index.get_entry_by_name("my-dataset") == entry
        assert index.get_entry(entry.cid) == entry

    def test_cid_is_the_content_cid(self, index: AbstractIndex) -> None:
        entry = index.add_entry(FakeDataset(["a.tar", "b.tar"]), name="x", schema_ref=REF, metadata={"m": 1})
        assert entry.data_urls == ["a.tar", "b.tar"]
        assert entry.cid == generate_cid({"schema_ref": REF, "data_urls": ["a.tar", "b.tar"]})
        other = index.add_entry(FakeDataset(["b.tar", "a.tar"]), name="x", schema_ref=REF)
        assert other.cid != entry.cid  # URL order is content

    def test_legacy_properties(self, index: AbstractIndex) -> None:
        entry: Any = index.add_entry(FakeDataset(["a.tar", "b.tar"]), name="x", schema_ref=REF)
        assert entry.wds_url == "a.tar"
        assert entry.sample_kind == REF

    def test_readding_identical_content_is_idempotent(self, index: AbstractIndex) -> None:
        first = index.add_entry(FakeDataset("d.tar"), name="n", schema_ref=REF, metadata={"v": 1})
        again = index.add_entry(FakeDataset("d.tar"), name="n", schema_ref=REF)
        assert again == first  # metadata=None keeps the stored metadata
        assert [e.cid for e in index.all_entries] == [first.cid]
        updated = index.add_entry(FakeDataset("d.tar"), name="n", schema_ref=REF, metadata={"v": 2})
        assert updated.cid == first.cid and updated.metadata == {"v": 2}
        assert index.get_entry(first.cid).metadata == {"v": 2}

    def test_metadata_none_round_trips(self, index: AbstractIndex) -> None:
        entry = index.add_entry(FakeDataset("d.tar"), name="n", schema_ref=REF)
        assert entry.metadata is None
        assert index.get_entry(entry.cid).metadata is None

    def test_unknown_cid_and_name_raise_entry_not_found(self, index: AbstractIndex) -> None:
        with pytest.raises(EntryNotFound, match="nope"):
            index.get_entry_by_name("nope")
        with pytest.raises(KeyError):  # existing `except KeyError` code keeps working
            index.get_entry("bafyreinope")
        with pytest.raises(EntryNotFound, match="bafyreinope"):
            index.get_entry("bafyreinope")
        with pytest.raises(EntryNotFound, match="nope"):
            index.remove_entry("nope")

    def test_name_reuse_points_to_newest_and_keeps_versions(self, index: AbstractIndex) -> None:
        v1 = index.add_entry(FakeDataset("v1.tar"), name="ds", schema_ref=REF)
        v2 = index.add_entry(FakeDataset("v2.tar"), name="ds", schema_ref=REF)
        assert index.get_entry_by_name("ds") == v2
        assert index.get_entry(v1.cid) == v1  # older versions stay reachable by CID
        versions = require(index, "get_entry_versions")
        assert [e.cid for e in versions("ds")] == [v2.cid, v1.cid]
        with pytest.raises(EntryNotFound, match="absent"):
            versions("absent")

    def test_readding_an_older_version_makes_it_newest(self, index: AbstractIndex) -> None:
        v1 = index.add_entry(FakeDataset("v1.tar"), name="ds", schema_ref=REF)
        v2 = index.add_entry(FakeDataset("v2.tar"), name="ds", schema_ref=REF)
        index.add_entry(FakeDataset("v1.tar"), name="ds", schema_ref=REF)
        assert index.get_entry_by_name("ds").cid == v1.cid
        versions = require(index, "get_entry_versions")
        assert [e.cid for e in versions("ds")] == [v1.cid, v2.cid]

    def test_remove_by_cid_and_by_name(self, index: AbstractIndex) -> None:
        v1 = index.add_entry(FakeDataset("v1.tar"), name="ds", schema_ref=REF)
        v2 = index.add_entry(FakeDataset("v2.tar"), name="ds", schema_ref=REF)
        index.remove_entry("ds")  # by name: the newest goes, the name falls back
        with pytest.raises(EntryNotFound):
            index.get_entry(v2.cid)
        assert index.get_entry_by_name("ds") == v1
        index.remove_entry(v1.cid)
        with pytest.raises(EntryNotFound):
            index.get_entry_by_name("ds")
        assert index.all_entries == []
        assert self.raw_keys(index) <= self.bookkeeping_keys(index)

    def bookkeeping_keys(self, index: AbstractIndex) -> set[str]:
        """Keys an emptied index may keep (counters); override when a backend has some."""
        return set()

    def test_removing_an_old_version_keeps_the_name(self, index: AbstractIndex) -> None:
        v1 = index.add_entry(FakeDataset("v1.tar"), name="ds", schema_ref=REF)
        v2 = index.add_entry(FakeDataset("v2.tar"), name="ds", schema_ref=REF)
        index.remove_entry(v1.cid)
        assert index.get_entry_by_name("ds") == v2

    def test_entries_streams_one_entry_per_name(self, index: AbstractIndex) -> None:
        newest = {
            f"n{i}": index.add_entry(FakeDataset(f"s-{i}.tar"), name=f"n{i}", schema_ref=REF) for i in range(1100)
        }
        for i in range(0, 1100, 100):  # a second version: listed instead of the first
            newest[f"n{i}"] = index.add_entry(FakeDataset(f"s-{i}-v2.tar"), name=f"n{i}", schema_ref=REF)
        stream = index.entries
        assert iter(stream) is stream  # a generator, not a list
        assert {e.name: e for e in stream} == newest
        assert sorted(e.name for e in index.all_entries) == sorted(newest)

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"name": "", "schema_ref": REF}, "name"),
            ({"name": "n", "schema_ref": "not-a-ref"}, "local://schemas"),
            ({"name": "n", "schema_ref": REF, "metadata": {"x": object()}}, "JSON"),
            ({"name": "n", "schema_ref": REF, "metadata": ["not", "a", "dict"]}, "dict"),
            ({"name": "n", "schema_ref": REF, "metadata": {"x": float("nan")}}, "JSON"),
        ],
    )
    def test_rejected_add_writes_nothing(self, index: AbstractIndex, kwargs: dict[str, Any], message: str) -> None:
        with pytest.raises(AtdataError, match=message):
            index.add_entry(FakeDataset("d.tar"), **kwargs)
        assert self.raw_keys(index) == set()

    @pytest.mark.parametrize("url", [None, [], "", ["ok.tar", 3]])
    def test_dataset_without_urls_is_rejected(self, index: AbstractIndex, url: Any) -> None:
        with pytest.raises(InvalidArgument, match="url"):
            index.add_entry(FakeDataset(url), name="n", schema_ref=REF)
        assert self.raw_keys(index) == set()

    def test_survives_pickle(self, index: AbstractIndex) -> None:
        """Indexes travel into DataLoader workers: only connection parameters are pickled."""
        clone = pickle.loads(pickle.dumps(index))
        assert type(clone) is type(index)
        assert repr(clone) == repr(index)

    def test_repr_names_no_secret(self, index: AbstractIndex) -> None:
        assert "password" not in repr(index).lower()

    # -- rename (capability) ----------------------------------------------------------

    def test_rename_moves_the_entry(self, index: AbstractIndex) -> None:
        rename = require(index, "rename_entry")
        old = index.add_entry(FakeDataset("old.tar"), name="a", schema_ref=REF)
        cur = index.add_entry(FakeDataset("cur.tar"), name="a", schema_ref=REF)
        moved = rename("a", "b")  # by name: the newest under "a"
        assert (moved.cid, moved.name) == (cur.cid, "b")
        assert index.get_entry_by_name("b").cid == cur.cid
        assert index.get_entry_by_name("a").cid == old.cid
        rename(old.cid, "b")
        assert index.get_entry_by_name("b").cid == old.cid
        with pytest.raises(EntryNotFound):
            index.get_entry_by_name("a")
        with pytest.raises(EntryNotFound, match="ghost"):
            rename("ghost", "c")
        with pytest.raises(InvalidArgument):
            rename("b", "")

    # -- concurrency ------------------------------------------------------------------

    def test_concurrent_adds_and_renames_stay_consistent(self, index: AbstractIndex) -> None:
        """8 threads add and rename at once; then every name resolves and every CID loads."""
        names = [f"name-{i}" for i in range(4)]
        errors: list[BaseException] = []
        has_rename = hasattr(index, "rename_entry")

        def work(worker: int) -> None:
            rng = random.Random(worker)
            try:
                for step in range(40):
                    url = f"w{worker}-{rng.randrange(12)}.tar"
                    entry = index.add_entry(FakeDataset(url), name=rng.choice(names), schema_ref=REF)
                    if has_rename and step % 3 == 0:
                        try:
                            index.rename_entry(rng.choice([entry.cid, rng.choice(names)]), rng.choice(names))  # type: ignore[attr-defined]
                        except (EntryNotFound, AmbiguousEntry):
                            pass  # another thread removed or moved it first, or shares its CID: allowed
                    if step % 10 == 9:
                        try:
                            index.remove_entry(rng.choice(names))
                        except EntryNotFound:
                            pass
            except BaseException as exc:  # surfaced below, in the test's own thread
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        self.assert_consistent(index)

    def assert_consistent(self, index: AbstractIndex) -> None:
        """Every listed name resolves to its own entry; every CID loads, under a name that has it."""
        entries = index.all_entries
        assert len({e.name for e in entries}) == len(entries)  # one entry per name
        for entry in entries:
            assert index.get_entry_by_name(entry.name) == entry
            by_cid = index.get_entry(entry.cid)
            assert by_cid.cid == entry.cid
            if hasattr(index, "get_entry_versions"):
                versions = index.get_entry_versions(entry.name)  # type: ignore[attr-defined]
                assert versions[0] == entry and len({v.cid for v in versions}) == len(versions)
                assert by_cid.cid in {v.cid for v in index.get_entry_versions(by_cid.name)}  # type: ignore[attr-defined]

    # -- properties -------------------------------------------------------------------

    @settings(suppress_health_check=SHARED_BODY)
    @given(
        urls=st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=4),
        version=st.tuples(st.integers(0, 20), st.integers(0, 20), st.integers(0, 20)),
        name=ENTRY_NAMES,
        metadata=st.none() | st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3),
    )
    def test_cid_stable_across_add_and_get(
        self, index: AbstractIndex, urls: list[str], version: tuple[int, int, int], name: str, metadata: Any
    ) -> None:
        ref = "local://schemas/prop.Sample@{}.{}.{}".format(*version)
        expected = generate_cid({"schema_ref": ref, "data_urls": urls})
        entry = index.add_entry(FakeDataset(urls), name=name, schema_ref=ref, metadata=metadata)
        assert entry.cid == expected
        assert index.get_entry(expected).cid == expected
        assert index.get_entry_by_name(name).cid == expected
        assert index.add_entry(FakeDataset(list(urls)), name=name, schema_ref=ref).cid == expected

    def test_stateful_against_a_model(self, index_factory: Callable[[], AbstractIndex]) -> None:
        """Random add/remove/rename/publish sequences; the index always matches a model."""
        run_state_machine_as_test(
            lambda: IndexMachine(index_factory()),  # type: ignore[arg-type]  # any factory works
            # Half the active profile's examples (each is a 25-step run): 15 in CI, 500 thorough.
            settings=settings(max_examples=max(10, settings().max_examples // 2), stateful_step_count=25),
        )
