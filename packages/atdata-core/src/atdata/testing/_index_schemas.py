"""The schema half of the index suite: publish, conflicts, versions, decode."""

from __future__ import annotations

import hashlib
import keyword
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atdata.errors import InvalidArgument, InvalidSchemaRef, SchemaConflict, SchemaNotFound
from atdata.protocols import AbstractIndex

from ._index_support import SHARED_BODY, FakeDataset, atdata_ndarray, make_sample_type, require

__all__ = ["SchemaTests"]


def _without_created_at(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "createdAt"}


class SchemaTests:
    """Schema test bodies of ``IndexConformance`` (mixed in; never collected itself)."""

    def raw_keys(self, index: AbstractIndex) -> set[str]:
        raise NotImplementedError

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

    def test_version_none_reuses_a_version_with_the_same_fields(self, index: AbstractIndex) -> None:
        v1 = make_sample_type("Evolving", {"x": int})
        assert index.publish_schema(v1, version=None).endswith("@1.0.0")
        assert index.publish_schema(v1, version=None).endswith("@1.0.0")  # unchanged fields: reused
        v2 = make_sample_type("Evolving", {"x": int, "y": str})
        assert index.publish_schema(v2, version="1.2.9").endswith("@1.2.9")  # evolved deliberately
        assert index.publish_schema(v2, version=None).endswith("@1.2.9")
        assert index.publish_schema(v1, version=None).endswith("@1.0.0")  # an older version still matches
        latest = require(index, "get_latest_schema")("conformance.Evolving")
        assert (latest["version"], [f["name"] for f in latest["fields"]]) == ("1.2.9", ["x", "y"])

    def test_automatic_publishing_never_versions_other_fields(self, index: AbstractIndex) -> None:
        """Issue 13 case 8: two scripts' ``__main__.TrainingSample`` with different fields."""
        ours = make_sample_type("TrainingSample", {"features": atdata_ndarray(), "label": int}, module="__main__")
        theirs = make_sample_type("TrainingSample", {"text": str}, module="__main__")
        first = index.add_entry(FakeDataset("ours.tar", sample_type=ours), name="ours")
        assert first.schema_ref == "local://schemas/__main__.TrainingSample@1.0.0"
        keys = self.raw_keys(index)
        with pytest.raises(SchemaConflict) as refused:
            index.add_entry(FakeDataset("theirs.tar", sample_type=theirs), name="theirs")
        message = str(refused.value)
        assert "features: ndarray, label: int" in message and "text: str" in message  # both field lists
        assert "publish_schema(TrainingSample, version='1.0.1')" in message  # how to publish deliberately
        assert self.raw_keys(index) == keys  # no entry, no schema version written
        with pytest.raises(SchemaConflict, match="text: str"):
            index.publish_schema(theirs, version=None)
        assert [s["version"] for s in index.list_schemas()] == ["1.0.0"]
        assert index.get_schema(first.schema_ref)["fields"][0]["name"] == "features"

    def test_description_given_after_an_insert_is_stored(self, index: AbstractIndex) -> None:
        """Issue 13 case 9: the spec's order, insert (publishes 1.0.0), then publish_schema(..., description=)."""
        sample_type = make_sample_type("Described", {"x": int})
        entry = index.add_entry(FakeDataset("d.tar", sample_type=sample_type), name="d")
        before = index.get_schema(entry.schema_ref)
        assert before["description"] is None
        ref = index.publish_schema(sample_type, version="1.0.0", description="Image with label annotation")
        assert ref == entry.schema_ref
        after = index.get_schema(ref)
        assert after == {**before, "description": "Image with label annotation"}  # createdAt, fields kept
        assert index.publish_schema(sample_type, version="1.0.0") == ref  # no description: kept
        assert index.get_schema(ref)["description"] == "Image with label annotation"

    @pytest.mark.parametrize(
        "ref",
        [
            "local://schemas/Test@1.0.0",  # no module part
            "local://schemas/my-pkg.sub.Thing@2.1.3-rc.1",
            "at://did:plc:abc123/science.alt.dataset.schema/3kabc2x",  # a schema published on ATProto
        ],
    )
    def test_any_local_name_and_published_at_uris_are_refs(self, index: AbstractIndex, ref: str) -> None:
        entry = index.add_entry(FakeDataset("r.tar"), name="r", schema_ref=ref)
        assert entry.schema_ref == ref and index.get_entry_by_name("r") == entry
        with pytest.raises(SchemaNotFound):  # valid, just not published here
            index.get_schema(ref)

    @pytest.mark.parametrize(
        "ref",
        ["local://schemas/Test", "local://schemas/@1.0.0", "local://schemas/Test@1.0", "local://schemas/a b@1.0.0"]
        + ["at://did:plc:abc", "https://example.com/schema.json", "Test@1.0.0"],
    )
    def test_malformed_refs_are_refused_naming_them(self, index: AbstractIndex, ref: str) -> None:
        with pytest.raises(InvalidSchemaRef) as refused:
            index.add_entry(FakeDataset("r.tar"), name="r", schema_ref=ref)
        assert repr(ref) in str(refused.value) and "local://schemas/" in str(refused.value)
        assert self.raw_keys(index) == set()

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

    @settings(suppress_health_check=SHARED_BODY)
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
