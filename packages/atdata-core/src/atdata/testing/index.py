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

import hashlib
import keyword
import pickle
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

import atdata
from atdata.cid import generate_cid
from atdata.errors import (
    AtdataError,
    EntryNotFound,
    InvalidArgument,
    InvalidSchemaRef,
    SchemaConflict,
    SchemaNotFound,
)
from atdata.protocols import AbstractIndex, IndexEntry

__all__ = ["FakeDataset", "IndexConformance", "make_sample_type"]

REF = "local://schemas/conformance.Sample@1.0.0"

# The property tests below take the per-test ``index`` fixture (each example uses fresh
# names, so sharing it is safe) and run from several backend subclasses by design.
_SHARED_BODY = [HealthCheck.function_scoped_fixture, HealthCheck.differing_executors]


@dataclass
class FakeDataset:
    """Stands in for ``atdata.Dataset``: an index reads only ``url`` and ``sample_type``."""

    url: str | list[str]
    sample_type: type | None = None
    shard_list: list[str] = field(default_factory=list)


def make_sample_type(name: str, fields: dict[str, Any], module: str = "conformance") -> type:
    """A packable sample class built at run time (so the suite imports without side effects)."""
    return atdata.packable(type(name, (), {"__annotations__": dict(fields), "__module__": module}))


def _require(index: AbstractIndex, method: str) -> Callable[..., Any]:
    if not hasattr(index, method):
        pytest.skip(f"{type(index).__name__} has no {method}() (optional capability)")
    return getattr(index, method)


def _without_created_at(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "createdAt"}


class IndexConformance:
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
        versions = _require(index, "get_entry_versions")
        assert [e.cid for e in versions("ds")] == [v2.cid, v1.cid]
        with pytest.raises(EntryNotFound, match="absent"):
            versions("absent")

    def test_readding_an_older_version_makes_it_newest(self, index: AbstractIndex) -> None:
        v1 = index.add_entry(FakeDataset("v1.tar"), name="ds", schema_ref=REF)
        v2 = index.add_entry(FakeDataset("v2.tar"), name="ds", schema_ref=REF)
        index.add_entry(FakeDataset("v1.tar"), name="ds", schema_ref=REF)
        assert index.get_entry_by_name("ds").cid == v1.cid
        versions = _require(index, "get_entry_versions")
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

    def test_entries_streams_every_entry(self, index: AbstractIndex) -> None:
        cids = {index.add_entry(FakeDataset(f"s-{i}.tar"), name=f"n{i % 7}", schema_ref=REF).cid for i in range(1100)}
        stream = index.entries
        assert iter(stream) is stream  # a generator, not a list
        assert {e.cid for e in stream} == cids
        assert sorted(e.cid for e in index.all_entries) == sorted(cids)

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
        rename = _require(index, "rename_entry")
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
                        except EntryNotFound:
                            pass  # another thread removed or moved it first: allowed
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
        """Every listed entry loads; every entry's name resolves to an entry with that name."""
        entries = index.all_entries
        by_cid = {e.cid: e for e in entries}
        for entry in entries:
            assert index.get_entry(entry.cid) == entry
            newest = index.get_entry_by_name(entry.name)
            assert newest.name == entry.name and newest.cid in by_cid
            if hasattr(index, "get_entry_versions"):
                versions = index.get_entry_versions(entry.name)  # type: ignore[attr-defined]
                assert versions[0].cid == newest.cid
                assert entry.cid in {v.cid for v in versions}

    # -- properties -------------------------------------------------------------------

    @settings(suppress_health_check=_SHARED_BODY)
    @given(
        urls=st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=4),
        version=st.tuples(st.integers(0, 20), st.integers(0, 20), st.integers(0, 20)),
        name=st.text(min_size=1, max_size=20).filter(str.strip),
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
            lambda: _IndexMachine(index_factory()),  # type: ignore[arg-type]  # any factory works
            # Half the active profile's examples (each is a 25-step run): 15 in CI, 500 thorough.
            settings=settings(max_examples=max(10, settings().max_examples // 2), stateful_step_count=25),
        )

    # -- schemas ----------------------------------------------------------------------

    def test_publish_and_get_schema(self, index: AbstractIndex) -> None:
        sample_type = make_sample_type("ImageSample", {"image": atdata_ndarray(), "label": str})
        ref = index.publish_schema(sample_type, version="1.0.0", description="Image with label annotation")
        assert ref == "local://schemas/conformance.ImageSample@1.0.0"
        record = index.get_schema(ref)
        assert {"name", "version", "fields", "description", "createdAt"} <= set(record)
        assert record["version"] == "1.0.0"
        assert record["description"] == "Image with label annotation"
        assert [f["name"] for f in record["fields"]] == ["image", "label"]
        assert [(s["name"], s["version"]) for s in index.list_schemas()] == [(record["name"], "1.0.0")]

    def test_republishing_same_fields_is_idempotent(self, index: AbstractIndex) -> None:
        sample_type = make_sample_type("Same", {"x": int})
        ref = index.publish_schema(sample_type, version="1.0.0")
        first = index.get_schema(ref)
        assert index.publish_schema(sample_type, version="1.0.0") == ref
        assert index.get_schema(ref) == first  # createdAt included: nothing was rewritten

    def test_same_version_different_fields_conflicts(self, index: AbstractIndex) -> None:
        index.publish_schema(make_sample_type("Clash", {"x": int}), version="1.0.0")
        with pytest.raises(SchemaConflict, match="Clash@1.0.0"):
            index.publish_schema(make_sample_type("Clash", {"x": str}), version="1.0.0")

    def test_version_none_is_next_patch(self, index: AbstractIndex) -> None:
        v1 = make_sample_type("Evolving", {"x": int})
        assert index.publish_schema(v1, version=None).endswith("@1.0.0")
        assert index.publish_schema(v1, version=None).endswith("@1.0.0")  # unchanged fields: reused
        index.publish_schema(make_sample_type("Evolving", {"x": int, "y": str}), version="1.2.9")
        v3 = make_sample_type("Evolving", {"x": int, "y": str, "z": float})
        assert index.publish_schema(v3, version=None).endswith("@1.2.10")
        latest = _require(index, "get_latest_schema")("conformance.Evolving")
        assert latest["version"] == "1.2.10"
        assert [f["name"] for f in latest["fields"]] == ["x", "y", "z"]

    def test_bad_and_unknown_refs(self, index: AbstractIndex) -> None:
        with pytest.raises(InvalidSchemaRef, match="local://schemas/"):
            index.get_schema("schemas/Foo")
        with pytest.raises(SchemaNotFound, match="Nope"):
            index.get_schema("local://schemas/conformance.Nope@1.0.0")
        with pytest.raises(InvalidArgument, match="1.0.0"):
            index.publish_schema(make_sample_type("V", {"x": int}), version="one")

    def test_decode_schema_gives_a_usable_cached_class(self, index: AbstractIndex) -> None:
        import numpy as np

        original: Any = make_sample_type("Decodable", {"features": atdata_ndarray(), "label": int, "note": str})
        ref = index.publish_schema(original, version="2.0.0")
        decoded: Any = index.decode_schema(ref)  # a generated sample class
        sample = original(features=np.arange(4, dtype=np.float32), label=3, note="hi")
        back = decoded.from_bytes(sample.packed)
        assert back.label == 3 and back.note == "hi"
        np.testing.assert_array_equal(back.features, sample.features)
        assert original.from_bytes(back.packed).label == 3
        assert index.decode_schema(ref) is decoded  # cached per ref

    @settings(suppress_health_check=_SHARED_BODY)
    @given(
        fields=st.dictionaries(
            st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(lambda n: not keyword.iskeyword(n)),
            st.sampled_from(["int", "float", "str", "bool", "bytes", "ndarray", "list[str]", "optional[int]"]),
            min_size=1,
            max_size=5,
        ),
        version=st.tuples(st.integers(0, 9), st.integers(0, 9), st.integers(0, 9)),
    )
    def test_publish_get_decode_publish_is_a_fixed_point(
        self, index: AbstractIndex, fields: dict[str, str], version: tuple[int, int, int]
    ) -> None:
        semver = "{}.{}.{}".format(*version)
        # One class name per field set, types included: examples share the index, and two
        # with the same names but other types would rightly conflict at the same version.
        name = "Gen" + hashlib.sha256(repr(sorted(fields.items())).encode()).hexdigest()[:12]
        sample_type = make_sample_type(name, {k: _ANNOTATIONS[v]() for k, v in fields.items()}, module="prop")
        ref = index.publish_schema(sample_type, version=semver)
        record = index.get_schema(ref)
        decoded = index.decode_schema(ref)
        again = index.get_schema(index.publish_schema(decoded, version=semver))
        assert _without_created_at(again) == _without_created_at(record)

    def test_add_entry_derives_and_publishes_the_schema(self, index: AbstractIndex) -> None:
        sample_type = make_sample_type("Derived", {"x": int})
        entry = index.add_entry(FakeDataset("d.tar", sample_type=sample_type), name="d")
        assert entry.schema_ref == "local://schemas/conformance.Derived@1.0.0"
        assert index.get_schema(entry.schema_ref)["fields"][0]["name"] == "x"
        again = index.add_entry(FakeDataset("e.tar", sample_type=sample_type), name="e")
        assert again.schema_ref == entry.schema_ref  # published once, reused
        assert len(list(index.list_schemas())) == 1

    def test_add_entry_without_schema_ref_or_sample_type(self, index: AbstractIndex) -> None:
        with pytest.raises(InvalidArgument, match="schema_ref"):
            index.add_entry(FakeDataset("d.tar"), name="d")
        assert self.raw_keys(index) == set()


def atdata_ndarray() -> Any:
    from numpy.typing import NDArray

    return NDArray


_ANNOTATIONS: dict[str, Callable[[], Any]] = {
    "int": lambda: int,
    "float": lambda: float,
    "str": lambda: str,
    "bool": lambda: bool,
    "bytes": lambda: bytes,
    "ndarray": atdata_ndarray,
    "list[str]": lambda: list[str],
    "optional[int]": lambda: int | None,
}


class _IndexMachine(RuleBasedStateMachine):
    """LocalIndex-like behaviour against a plain model: cid -> (name, seq), newest seq wins."""

    def __init__(self, index: AbstractIndex) -> None:
        super().__init__()
        self.index = index
        self.model: dict[str, tuple[str, int]] = {}  # cid -> (name, sequence of last attach)
        self.seq = 0
        self.schemas: dict[str, tuple[str, ...]] = {}  # ref -> field names

    names = Bundle("names")

    @rule(target=names, name=st.sampled_from(["a", "b", "c", "d"]))
    def new_name(self, name: str) -> str:
        return name

    def _attach(self, cid: str, name: str) -> None:
        current = self.model.get(cid)
        if current is not None and current[0] == name and self._newest(name) == cid:
            return
        self.seq += 1
        self.model[cid] = (name, self.seq)

    def _newest(self, name: str) -> str | None:
        versions = [(seq, cid) for cid, (n, seq) in self.model.items() if n == name]
        return max(versions)[1] if versions else None

    def _resolve(self, key: str) -> str | None:
        return key if key in self.model else self._newest(key)

    @rule(name=names, shard=st.integers(0, 6))
    def add(self, name: str, shard: int) -> None:
        entry = self.index.add_entry(FakeDataset(f"shard-{shard}.tar"), name=name, schema_ref=REF)
        self._attach(entry.cid, name)
        assert entry.name == name

    @rule(key=names, new=names)
    def rename(self, key: str, new: str) -> None:
        if not hasattr(self.index, "rename_entry"):
            return
        cid = self._resolve(key)
        if cid is None:
            with pytest.raises(EntryNotFound):
                self.index.rename_entry(key, new)  # type: ignore[attr-defined]
            return
        assert self.index.rename_entry(key, new).cid == cid  # type: ignore[attr-defined]
        self._attach(cid, new)

    @rule(key=names, by_cid=st.booleans())
    def remove(self, key: str, by_cid: bool) -> None:
        cid = self._resolve(key)
        if cid is None:
            with pytest.raises(EntryNotFound):
                self.index.remove_entry(key)
            return
        self.index.remove_entry(cid if by_cid else key)
        del self.model[cid]

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

    @invariant()
    def matches_model(self) -> None:
        assert {e.cid: e.name for e in self.index.entries} == {c: n for c, (n, _) in self.model.items()}
        for name in {n for n, _ in self.model.values()}:
            assert self.index.get_entry_by_name(name).cid == self._newest(name)
            if hasattr(self.index, "get_entry_versions"):
                expected = sorted((c for c, (n, _) in self.model.items() if n == name), key=lambda c: -self.model[c][1])
                assert [e.cid for e in self.index.get_entry_versions(name)] == expected  # type: ignore[attr-defined]
        stored = {(s["version"], tuple(f["name"] for f in s["fields"])) for s in self.index.list_schemas()}
        assert stored == {(ref.rsplit("@", 1)[1], fields) for ref, fields in self.schemas.items()}
