"""Schema codec: records, generated classes, schema refs."""

import json
import pickle
import subprocess
import sys
from datetime import datetime
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

import atdata
from atdata import schema
from atdata.errors import InvalidArgument, InvalidSchemaRef, SchemaError, UnsupportedFieldType
from atdata.sample import FieldSpec, fields_of


@atdata.packable
class ImageSample:
    image: NDArray[np.float32]
    raw: NDArray
    label: str
    tags: list[int]
    meta: dict[str, Any] | None


def image_sample() -> ImageSample:
    return ImageSample(image=np.ones((2, 2), np.float32), raw=np.arange(3), label="cat", tags=[1, 2], meta=None)


def without_created_at(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k != "createdAt"}


def test_record_has_the_spec_keys_and_documented_field_descriptors() -> None:
    record = schema.to_record(ImageSample, "1.0.0", description="Image with label")
    assert set(record) == {"name", "version", "fields", "description", "createdAt"}
    assert record["name"] == "ImageSample" and record["version"] == "1.0.0"
    assert record["description"] == "Image with label"
    assert record["fields"] == [
        {"name": "image", "fieldType": {"$type": "local#ndarray", "dtype": "float32"}, "optional": False},
        {"name": "raw", "fieldType": {"$type": "local#ndarray"}, "optional": False},
        {"name": "label", "fieldType": {"$type": "local#primitive", "primitive": "str"}, "optional": False},
        {
            "name": "tags",
            "fieldType": {"$type": "local#array", "items": {"$type": "local#primitive", "primitive": "int"}},
            "optional": False,
        },
        {"name": "meta", "fieldType": {"$type": "local#dict"}, "optional": True},
    ]
    assert record["createdAt"].endswith("Z")
    assert datetime.fromisoformat(record["createdAt"].replace("Z", "+00:00")).utcoffset().total_seconds() == 0
    assert json.loads(json.dumps(record)) == record


def test_generated_class_has_the_same_fields_and_reads_original_data_and_back() -> None:
    record = schema.to_record(ImageSample, "1.0.0")
    Generated = schema.from_record(record)
    assert Generated.__name__ == "ImageSample"
    assert fields_of(Generated) == fields_of(ImageSample)
    original = image_sample()
    generated = Generated.from_bytes(original.packed)
    assert generated.label == "cat" and generated.image.dtype == np.float32
    assert ImageSample.from_bytes(generated.packed) == original


def test_record_round_trip_is_a_fixed_point() -> None:
    first = schema.to_record(ImageSample, "2.1.0", "d")
    second = schema.to_record(schema.from_record(first), "2.1.0", "d")
    assert without_created_at(second) == without_created_at(first)


def test_from_record_is_cached_per_name_version_and_fields() -> None:
    record = schema.to_record(ImageSample, "1.0.0")
    assert schema.from_record(record) is schema.from_record(dict(record, description="other"))
    assert schema.from_record(record) is not schema.from_record(dict(record, version="1.0.1"))
    narrower = dict(record, fields=record["fields"][:2])
    assert schema.from_record(narrower) is not schema.from_record(record)


def test_trailing_optional_fields_default_to_none() -> None:
    Generated = schema.from_record(schema.to_record(ImageSample, "1.0.0"))
    sample = Generated(image=np.zeros(1, np.float32), raw=np.zeros(1), label="x", tags=[])
    assert sample.meta is None


def test_module_of_generated_class_and_its_ref() -> None:
    record = schema.to_record(ImageSample, "1.0.0")
    Generated = schema.from_record(record, module="mymodule")
    assert schema.schema_ref(Generated, "1.0.0") == "local://schemas/mymodule.ImageSample@1.0.0"
    assert schema.from_record(dict(record, name="pkg.mod.Thing")).__module__ == "pkg.mod"


def test_generated_classes_and_their_samples_pickle_across_processes() -> None:
    Generated = schema.from_record(schema.to_record(ImageSample, "1.0.0"))
    sample = Generated.from_bytes(image_sample().packed)
    assert pickle.loads(pickle.dumps(Generated)) is Generated
    assert pickle.loads(pickle.dumps(sample)) == sample
    script = "import pickle, sys; s = pickle.loads(sys.stdin.buffer.read()); print(type(s).__name__, s.label)"
    out = subprocess.run([sys.executable, "-c", script], input=pickle.dumps(sample), capture_output=True, check=True)
    assert out.stdout.decode().split() == ["ImageSample", "cat"]


def test_records_of_the_original_atdata_project_decode() -> None:
    upstream = {
        "name": "ImageSample",
        "version": "1.0.0",
        "fields": [
            {"name": "image", "fieldType": {"$type": "local#ndarray", "dtype": "float32"}, "optional": False},
            {"name": "label", "fieldType": {"$type": "local#primitive", "primitive": "str"}, "optional": False},
            {"name": "note", "fieldType": {"$type": "local#primitive", "primitive": "str"}, "optional": True},
        ],
        "$ref": "atdata://local/schema/ImageSample@1.0.0",
        "createdAt": "2025-01-01T00:00:00+00:00",
    }
    assert [(s.name, s.kind, s.optional) for s in fields_of(schema.from_record(upstream))] == [
        ("image", "ndarray", False),
        ("label", "str", False),
        ("note", "str", True),
    ]


def test_same_fields_ignores_created_at_and_description() -> None:
    a = schema.to_record(ImageSample, "1.0.0", "one")
    b = dict(schema.to_record(ImageSample, "1.0.0", "two"), createdAt="2000-01-01T00:00:00Z")
    assert schema.same_fields(a, b)
    assert not schema.same_fields(a, dict(a, version="1.0.1"))
    assert not schema.same_fields(a, dict(a, fields=a["fields"][1:]))
    spelled_out = json.loads(json.dumps(a))
    del spelled_out["fields"][1]["optional"]  # omitted optional means False
    assert schema.same_fields(a, spelled_out)


@pytest.mark.parametrize(
    ("record", "error", "match"),
    [
        ([], SchemaError, "must be a dict"),
        ({"name": "x y", "version": "1.0.0", "fields": []}, SchemaError, "'name'"),
        ({"name": "X", "version": "1", "fields": []}, SchemaError, "semver"),
        ({"name": "X", "version": "1.0.0", "fields": {}}, SchemaError, "'fields' must be a list"),
        ({"name": "X", "version": "1.0.0", "fields": ["a"]}, SchemaError, "must be a dict"),
        ({"name": "X", "version": "1.0.0", "fields": [{"name": "class"}]}, SchemaError, "identifier"),
        ({"name": "X", "version": "1.0.0", "fields": [{"name": "a", "optional": "no"}]}, SchemaError, "'optional'"),
        (
            {"name": "X", "version": "1.0.0", "fields": [{"name": "a", "fieldType": {"$type": "local#ref"}}]},
            UnsupportedFieldType,
            "local#ref",
        ),
        (
            {
                "name": "X",
                "version": "1.0.0",
                "fields": [{"name": "a", "fieldType": {"$type": "local#ndarray", "dtype": "nope"}}],
            },
            UnsupportedFieldType,
            "unknown dtype",
        ),
        (
            {
                "name": "X",
                "version": "1.0.0",
                "fields": [{"name": "a", "fieldType": {"$type": "local#ndarray", "dtype": "O"}}],
            },
            UnsupportedFieldType,
            "X.a",
        ),
        (
            {
                "name": "X",
                "version": "1.0.0",
                "fields": [{"name": "a", "fieldType": {"$type": "local#array", "items": {"$type": "local#ndarray"}}}],
            },
            UnsupportedFieldType,
            "local#array",
        ),
        (
            {
                "name": "X",
                "version": "1.0.0",
                "fields": [{"name": "a", "fieldType": {"$type": "local#primitive", "primitive": ["str"]}}],
            },
            UnsupportedFieldType,
            r"field 'a' has a type descriptor this atdata cannot read: .*\['str'\]",
        ),
        (
            {"name": "X", "version": "1.0.0", "fields": [{"name": "__init__", "fieldType": {"$type": "local#dict"}}]},
            SchemaError,
            "'__init__'.*reserved",
        ),
        (
            {"name": "X", "version": "1.0.0", "fields": [{"name": "a", "fieldType": {"$type": "local#dict"}}] * 2},
            SchemaError,
            "duplicate",
        ),
    ],
)
def test_malformed_records_raise_schema_errors(record: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        schema.from_record(record)


def test_to_record_validates_version_and_type() -> None:
    with pytest.raises(InvalidArgument, match="semver"):
        schema.to_record(ImageSample, "v1")
    with pytest.raises(InvalidArgument, match="not a sample type"):
        schema.to_record(dict, "1.0.0")
    with pytest.raises(InvalidArgument, match="DictSample"):
        schema.to_record(atdata.DictSample, "1.0.0")


def test_schema_ref_and_parse_schema_ref() -> None:
    ref = schema.schema_ref(ImageSample, "1.0.0")
    assert ref == f"local://schemas/{__name__}.ImageSample@1.0.0"
    parsed = schema.parse_schema_ref("local://schemas/mymodule.ImageSample@1.2.3-rc.1+build.5")
    assert parsed == schema.SchemaRef(name="mymodule.ImageSample", version="1.2.3-rc.1+build.5")
    assert (parsed.module, parsed.class_name) == ("mymodule", "ImageSample")
    assert str(parsed) == "local://schemas/mymodule.ImageSample@1.2.3-rc.1+build.5"


@pytest.mark.parametrize(
    ("ref", "name", "module"),
    [
        ("local://schemas/Test@1.0.0", "Test", ""),  # the module part is optional (issue 13)
        ("local://schemas/ImageSample@1.0.0", "ImageSample", ""),
        ("local://schemas/my-pkg.sub.Thing@2.1.3-rc.1", "my-pkg.sub.Thing", "my-pkg.sub"),
        ("local://schemas/mymodule.Image-Sample@1.0.0", "mymodule.Image-Sample", "mymodule"),
    ],
)
def test_any_dotted_name_is_a_local_ref(ref: str, name: str, module: str) -> None:
    parsed = schema.parse_schema_ref(ref)
    assert (parsed.name, parsed.module, str(parsed)) == (name, module, ref)
    assert schema.check_schema_ref(ref) == parsed


def test_check_schema_ref_takes_the_at_uri_of_a_published_schema() -> None:
    assert schema.check_schema_ref("at://did:plc:abc123/science.alt.dataset.schema/3kabc2x") is None
    with pytest.raises(InvalidSchemaRef, match="parse_schema_ref|local://schemas/"):
        schema.parse_schema_ref("at://did:plc:abc123/science.alt.dataset.schema/3kabc2x")  # local refs only
    with pytest.raises(InvalidSchemaRef, match=r"'at://did:plc:abc'.*AUTHORITY/COLLECTION/RKEY"):
        schema.check_schema_ref("at://did:plc:abc")


@pytest.mark.parametrize(
    "ref",
    [
        "mymodule.ImageSample@1.0.0",
        "Test@1.0.0",
        "local://schemas/mymodule.ImageSample",
        "local://schemas/my module.ImageSample@1.0.0",
        "local://schemas/.ImageSample@1.0.0",
        "local://schemas/@1.0.0",
        "local://schemas/mymodule.ImageSample@1.0",
        "local://schemas/mymodule.ImageSample@01.0.0",
        "local://schemas/mymodule.ImageSample@latest",
        "atdata://local/schema/ImageSample@1.0.0",
        "https://example.com/schema.json",
        42,
    ],
)
def test_invalid_schema_refs_show_the_expected_forms(ref: Any) -> None:
    for check in (schema.parse_schema_ref, schema.check_schema_ref):
        with pytest.raises(InvalidSchemaRef) as refused:
            check(ref)
        assert repr(ref) in str(refused.value)
        assert "local://schemas/{name}@{semver}" in str(refused.value) and "at://" in str(refused.value)
    assert issubclass(InvalidSchemaRef, ValueError)


def test_schema_ref_rejects_bad_versions() -> None:
    with pytest.raises(InvalidSchemaRef, match="'1'"):
        schema.schema_ref(ImageSample, "1")


def test_list_of_float_and_bytes_descriptors() -> None:
    @atdata.packable
    class Lists:
        a: list[float]
        b: list[bytes] | None

    Generated = schema.from_record(schema.to_record(Lists, "0.1.0"))
    assert fields_of(Generated) == (
        FieldSpec("a", "list", items=FieldSpec("item", "float")),
        FieldSpec("b", "list", optional=True, items=FieldSpec("item", "bytes")),
    )


def test_generated_class_reads_a_shard_written_with_the_original_through_dataset(tmp_path) -> None:
    import webdataset as wds

    originals = [
        ImageSample(image=np.full((2, 2), i, np.float32), raw=np.arange(i), label=str(i), tags=[i], meta={"i": i})
        for i in range(5)
    ]
    with wds.writer.TarWriter(str(tmp_path / "original.tar")) as sink:
        for i, sample in enumerate(originals):
            sink.write({**sample.as_wds, "__key__": f"{i:06d}"})
    Generated = schema.from_record(schema.to_record(ImageSample, "1.0.0"))
    read = list(atdata.Dataset[Generated](str(tmp_path / "original.tar")).ordered())
    assert [type(s) for s in read] == [Generated] * 5
    with wds.writer.TarWriter(str(tmp_path / "generated.tar")) as sink:
        for i, sample in enumerate(read):
            sink.write({**sample.as_wds, "__key__": f"{i:06d}"})
    assert list(atdata.Dataset[ImageSample](str(tmp_path / "generated.tar")).ordered()) == originals


def test_a_value_that_is_no_sample_class_is_named() -> None:
    @atdata.packable
    class Point:
        x: int

    for bad in (3, Point(x=1)):
        with pytest.raises(InvalidArgument, match="is not a sample type"):
            schema.to_record(bad, "1.0.0")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="names a sample class, got Point"):
        schema.schema_ref(Point(x=1), "1.0.0")  # type: ignore[arg-type]
