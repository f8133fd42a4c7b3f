"""Typed samples: decoration, wire format, decoding policy and errors."""

import dataclasses
import inspect
import io
import pickle
import tarfile
import uuid
from pathlib import Path
from typing import Any, ClassVar

import msgpack
import numpy as np
import pytest
from numpy.typing import NDArray

import atdata
from atdata.errors import AtdataError, InvalidArgument, MissingField, SampleDecodeError, UnsupportedFieldType
from atdata.sample import DictSample, FieldSpec, PackableSample, decoder_of, fields_of, new_key, packable

FIXTURE = Path("/work/shared/fixtures/upstream-test-samples.tar")


@atdata.packable
class Everything:
    text: str
    count: int
    score: float
    flag: bool
    blob: bytes
    image: NDArray
    features: NDArray[np.float32]
    maybe_text: str | None
    maybe_image: NDArray | None
    tags: list[str]
    weights: list[float]
    extra: dict[str, Any]


def everything(**overrides: Any) -> Everything:
    values: dict[str, Any] = dict(
        text="hello",
        count=-3,
        score=0.5,
        flag=True,
        blob=b"\x00\x01",
        image=np.arange(12, dtype=np.uint8).reshape(3, 4),
        features=np.linspace(0, 1, 8, dtype=np.float32),
        maybe_text=None,
        maybe_image=np.zeros((0,), dtype=np.int64),
        tags=["a", "b"],
        weights=[1.0, 2.5],
        extra={"source": "synthetic", "n": [1, 2, {"deep": None}]},
    )
    values.update(overrides)
    return Everything(**values)


def test_packable_makes_a_packable_sample_dataclass() -> None:
    assert issubclass(Everything, PackableSample)
    assert dataclasses.is_dataclass(Everything)
    assert Everything.__name__ == "Everything"
    assert Everything.__module__ == __name__
    assert [f.name for f in dataclasses.fields(Everything)][:3] == ["text", "count", "score"]


class Outer:
    @atdata.packable
    class Nested:
        value: int


def test_a_nested_packable_class_keeps_its_qualname_and_pickles() -> None:
    assert Outer.Nested.__qualname__ == "Outer.Nested"
    assert pickle.loads(pickle.dumps(Outer.Nested(value=3))) == Outer.Nested(value=3)


def test_super_works_in_methods_of_a_packable_class() -> None:
    class Base:
        def describe(self) -> str:
            return "base"

    @atdata.packable
    class Child(Base):
        name: str

        def describe(self) -> str:
            return "child of " + super().describe()

        @property
        def label(self) -> str:
            return super().describe().upper()

        @classmethod
        def make(cls) -> "Child":
            return cls(name="x")

    child = Child.make()
    assert child.describe() == "child of base"
    assert child.label == "BASE"


def test_round_trip_is_exact_for_every_field_type() -> None:
    sample = everything()
    back = Everything.from_bytes(sample.packed)
    assert back == sample
    assert back.features.dtype == np.float32
    assert back.maybe_text is None
    assert back.maybe_image.shape == (0,) and back.maybe_image.dtype == np.int64
    assert back.extra == {"source": "synthetic", "n": [1, 2, {"deep": None}]}


def test_equality_compares_arrays_by_dtype_shape_and_values() -> None:
    assert everything() == everything()
    assert everything() != everything(image=np.arange(12, dtype=np.int64).reshape(3, 4))
    assert everything() != everything(image=np.arange(12, dtype=np.uint8))
    assert everything(score=float("nan")) == everything(score=float("nan"))


def test_wire_format_is_a_msgpack_map_with_npy_bytes() -> None:
    sample = everything()
    data = msgpack.unpackb(sample.packed)
    assert list(data) == [f.name for f in dataclasses.fields(Everything)]
    assert data["text"] == "hello" and data["maybe_text"] is None
    buf = io.BytesIO()
    np.save(buf, sample.image, allow_pickle=False)
    assert data["image"] == buf.getvalue()


def test_subclassing_with_plain_dataclass_works() -> None:
    @dataclasses.dataclass
    class Plain(PackableSample):
        label: int
        vec: NDArray

    sample = Plain(label=1, vec=np.ones(3))
    back = Plain.from_bytes(sample.packed)
    assert back.label == 1 and np.array_equal(back.vec, np.ones(3))
    assert fields_of(Plain) == (FieldSpec("label", "int"), FieldSpec("vec", "ndarray"))


def test_frozen_and_slotted_dataclasses_decode() -> None:
    @dataclasses.dataclass(frozen=True)
    class Frozen(PackableSample):
        a: int

    @dataclasses.dataclass(slots=True)
    class Slotted(PackableSample):
        a: int
        b: str

    assert Frozen.from_bytes(Frozen(a=1).packed).a == 1
    back = Slotted.from_bytes(Slotted(a=2, b="x").packed)
    assert (back.a, back.b) == (2, "x")


def test_fields_of_reports_specs() -> None:
    specs = {s.name: s for s in fields_of(Everything)}
    assert specs["features"] == FieldSpec("features", "ndarray", dtype="float32")
    assert specs["maybe_image"] == FieldSpec("maybe_image", "ndarray", optional=True)
    assert specs["tags"] == FieldSpec("tags", "list", items=FieldSpec("item", "str"))
    assert specs["extra"].kind == "dict"
    assert fields_of(Everything) is fields_of(Everything)  # computed once
    assert fields_of(DictSample) == ()


def test_class_vars_are_not_fields() -> None:
    @atdata.packable
    class WithClassVar:
        kind: ClassVar[str] = "x"
        value: int

    assert [s.name for s in fields_of(WithClassVar)] == ["value"]
    assert WithClassVar.from_bytes(WithClassVar(value=1).packed).value == 1


@pytest.mark.parametrize(
    "annotation",
    [set, list, tuple[int, int], list[NDArray], dict[int, str], complex, object, "Everything", int | str],
)
def test_unsupported_annotations_fail_at_decoration(annotation: Any) -> None:
    with pytest.raises(UnsupportedFieldType) as info:

        @atdata.packable
        class Bad:
            ok: int
            bad: annotation  # type: ignore[valid-type]

    message = str(info.value)
    assert "Bad.bad" in message and "Supported:" in message and "NDArray" in message


def test_unsupported_annotation_fails_even_without_packable() -> None:
    with pytest.raises(UnsupportedFieldType, match="Bad.bad"):

        @dataclasses.dataclass
        class Bad(PackableSample):
            bad: set[int]


def test_object_dtype_annotation_is_refused() -> None:
    with pytest.raises(UnsupportedFieldType, match=r"\bx\.y: unsupported field type .*object_"):

        @atdata.packable
        class x:
            y: NDArray[np.object_]


def test_decoding_ignores_unknown_fields() -> None:
    @atdata.packable
    class Narrow:
        text: str

    assert Narrow.from_bytes(everything().packed) == Narrow(text="hello")


def test_missing_optional_field_reads_as_none() -> None:
    @atdata.packable
    class V2:
        text: str
        added: int | None

    assert V2.from_bytes(msgpack.packb({"text": "t"})) == V2(text="t", added=None)


def test_missing_required_field_names_expected_and_found() -> None:
    with pytest.raises(SampleDecodeError) as info:
        Everything.from_bytes(msgpack.packb({"id": 1, "name": "x"}))
    message = str(info.value)
    assert "Everything.text" in message and "'count'" in message and "'name'" in message


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("text", 3, "expected str, found int"),
        ("count", "3", "expected int, found str"),
        ("count", True, "expected int, found bool"),
        ("flag", 1, "expected bool, found int"),
        ("blob", "x", "expected bytes"),
        ("image", "not bytes", "expected an NDArray"),
        ("image", b"not an npy buffer", "not a .npy buffer"),
        ("text", None, "expected str, found None"),
        ("tags", ["a", 1], "expected list[str]"),
        ("weights", "1.0", "expected list[float]"),
        ("extra", [1], "expected dict[str, Any]"),
    ],
)
def test_wrong_types_raise_naming_field_expected_and_found(field: str, value: Any, expected: str) -> None:
    data = msgpack.unpackb(everything().packed)
    data[field] = value
    with pytest.raises(SampleDecodeError) as info:
        Everything.from_bytes(msgpack.packb(data))
    assert f"Everything.{field}" in str(info.value) and expected in str(info.value)


def test_annotated_dtype_mismatch_is_refused_but_byte_order_is_accepted() -> None:
    data = msgpack.unpackb(everything().packed)
    data["features"] = atdata.npy.encode(np.zeros(8, dtype=np.float64))
    with pytest.raises(SampleDecodeError, match="dtype float32, found dtype float64"):
        Everything.from_data(data)
    data["features"] = atdata.npy.encode(np.arange(8, dtype=">f4"))
    back = Everything.from_data(data)
    np.testing.assert_array_equal(back.features, np.arange(8))


@pytest.mark.parametrize(
    ("scalar", "values"),
    [
        (np.str_, [np.array(["a", "bcd"]), np.array(["wider than before"], dtype=">U20")]),
        (np.bytes_, [np.array([b"a", b"bcd"]), np.array([[b""]], dtype="S7")]),
        (np.datetime64, [np.array(["2020-01-01"], dtype="M8[D]"), np.array([0, 1], dtype="M8[ns]")]),
    ],
)
def test_flexible_annotated_dtype_accepts_every_width_or_unit(scalar: Any, values: list[np.ndarray]) -> None:
    @atdata.packable
    class Flexible:
        value: NDArray[scalar]  # type: ignore[valid-type]

    for value in values:
        back = Flexible.from_bytes(Flexible(value=value).packed)
        assert back.value.dtype == value.dtype
        np.testing.assert_array_equal(back.value, value)
    with pytest.raises(
        InvalidArgument, match=rf"got an array of dtype float64; convert it with \.astype\(np\.{scalar.__name__}\)"
    ):
        Flexible(value=np.zeros(2)).packed
    with pytest.raises(SampleDecodeError, match="Flexible.value: expected an array of dtype"):
        Flexible.from_data({"value": atdata.npy.encode(np.zeros(2))})


def test_ints_decode_into_float_fields() -> None:
    data = msgpack.unpackb(everything().packed)
    data["score"], data["weights"] = 2, [1, 2.5]
    back = Everything.from_data(data)
    assert back.score == 2.0 and type(back.score) is float
    assert back.weights == [1.0, 2.5] and all(type(w) is float for w in back.weights)


@pytest.mark.parametrize(
    "data",
    [b"", b"\x81", b"\xc1", b"\x93\x01\x02\x03", b"\xa3abc", b"\x81\x01\x02", everything().packed[:-5]],
)
def test_bad_bytes_raise_sample_decode_error(data: bytes) -> None:
    with pytest.raises(SampleDecodeError, match=r"^Everything[.:]"):
        Everything.from_bytes(data)


def test_truncated_bytes_are_called_truncated() -> None:
    with pytest.raises(SampleDecodeError, match="truncated or corrupt"):
        Everything.from_bytes(everything().packed[:-5])


def test_packing_converts_friendly_values_and_refuses_wrong_ones() -> None:
    sample = everything(count=np.int64(4), score=1, weights=(np.float32(1.5), 2), blob=bytearray(b"ab"))
    back = Everything.from_bytes(sample.packed)
    assert back.count == 4 and back.score == 1.0 and back.weights == [1.5, 2.0] and back.blob == b"ab"
    with pytest.raises(InvalidArgument, match="Everything.count: expected int, got str"):
        everything(count="4").packed
    with pytest.raises(InvalidArgument, match=r"astype\(np.float32\)"):
        everything(features=np.zeros(3)).packed
    with pytest.raises(InvalidArgument, match="np.asarray"):
        everything(image=[1, 2, 3]).packed
    with pytest.raises(InvalidArgument, match="Everything.image"):
        everything(image=np.array([None])).packed
    with pytest.raises(InvalidArgument, match="Everything.extra"):
        everything(extra={"x": object()}).packed
    with pytest.raises(InvalidArgument, match="Everything.text: expected str, got None"):
        everything(text=None).packed


def test_numpy_scalars_inside_dict_fields_are_packed_as_python_scalars() -> None:
    back = Everything.from_bytes(everything(extra={"n": np.int32(3), "f": np.float64(0.5)}).packed)
    assert back.extra == {"n": 3, "f": 0.5}


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ({1: "x"}, r"1 \(int\)"),
        ({"ok": {"deep": [{2.5: None}]}}, r"2\.5 \(float\)"),
        ({"t": {(1, 2): 0}}, r"\(1, 2\) \(tuple\)"),
    ],
)
def test_map_keys_no_reader_accepts_are_refused_when_packing(extra: dict[Any, Any], key: str) -> None:
    with pytest.raises(
        InvalidArgument, match=rf"Everything.extra: map key {key} could not be read back.*convert the key to str"
    ):
        everything(extra=extra).packed
    with pytest.raises(InvalidArgument, match=rf"DictSample: map key {key} could not be read back"):
        DictSample(extra).packed
    readable = {"s": {"b": [{b"raw": 1}]}}
    assert Everything.from_bytes(everything(extra=readable).packed).extra == readable
    assert DictSample.from_bytes(DictSample(readable).packed) == DictSample(readable)


def test_decoding_does_not_call_init_or_post_init() -> None:
    calls = []

    @atdata.packable
    class Checked:
        value: int

        def __post_init__(self) -> None:
            calls.append(self.value)

    packed = Checked(value=1).packed
    assert Checked.from_bytes(packed).value == 1
    assert calls == [1]


def test_samples_pickle_for_dataloader_workers() -> None:
    sample = everything()
    assert pickle.loads(pickle.dumps(sample)) == sample


def test_decoder_of_is_the_compiled_from_data() -> None:
    decode = decoder_of(Everything)
    sample = everything()
    assert decode(msgpack.unpackb(sample.packed)) == sample


def test_fields_of_rejects_non_sample_types() -> None:
    with pytest.raises(InvalidArgument, match="not a sample type"):
        fields_of(int)


# --- keys --------------------------------------------------------------------------------


def test_as_wds_has_a_unique_time_sortable_key() -> None:
    sample = everything()
    wds = sample.as_wds
    assert set(wds) == {"__key__", "msgpack"} and wds["msgpack"] == sample.packed
    keys = [new_key() for _ in range(10_000)]
    assert len(set(keys)) == len(keys)
    assert keys == sorted(keys)
    assert all(len(k) == 32 and "." not in k for k in keys)
    assert uuid.UUID(hex=keys[0]).version == 7


# --- DictSample --------------------------------------------------------------------------


def test_dict_sample_reads_any_sample_with_arrays_decoded() -> None:
    sample = DictSample.from_bytes(everything().packed)
    assert sample.text == "hello" and sample["count"] == -3
    assert isinstance(sample.image, np.ndarray) and sample.image.shape == (3, 4)
    assert "maybe_text" in sample and sample.maybe_text is None
    assert set(sample.keys()) == {f.name for f in dataclasses.fields(Everything)}
    assert Everything.from_bytes(sample.packed) == everything()
    with pytest.raises(AttributeError, match="no field 'nope'"):
        sample.nope  # noqa: B018
    assert "image=array(shape=(3, 4), dtype=uint8)" in repr(sample)


def test_dict_sample_construction_mutation_and_pickle() -> None:
    sample = DictSample({"a": 1}, b=np.arange(3))
    sample.c = "x"
    sample["d"] = 2.0
    assert dict(sample.items()) == {"a": 1, "b": sample.b, "c": "x", "d": 2.0}
    assert pickle.loads(pickle.dumps(sample)) == sample
    assert DictSample.from_bytes(sample.packed) == sample


def test_dict_sample_refuses_object_arrays_and_non_maps() -> None:
    buf = io.BytesIO()
    np.save(buf, np.array([1, None], dtype=object), allow_pickle=True)
    with pytest.raises(SampleDecodeError, match="'x'.*never unpickled"):
        DictSample.from_bytes(msgpack.packb({"x": buf.getvalue()}))
    with pytest.raises(SampleDecodeError, match="msgpack map"):
        DictSample.from_bytes(msgpack.packb([1, 2]))
    with pytest.raises(
        InvalidArgument, match=r"DictSample\(data\) takes a dict of field name -> value, got list \[1, 2\]"
    ):
        DictSample([1, 2])  # type: ignore[arg-type]


# --- compatibility with shards of the original atdata project ----------------------------


@atdata.packable
class UpstreamSample:
    id: int
    name: str
    value: int


def test_upstream_fixture_shard_decodes() -> None:
    with tarfile.open(FIXTURE) as tar:
        members = [m for m in tar.getmembers() if m.name.endswith(".msgpack")]
        samples = [UpstreamSample.from_bytes(tar.extractfile(m).read()) for m in members]
        raw = [DictSample.from_bytes(tar.extractfile(m).read()) for m in members]
    assert samples == [UpstreamSample(id=i, name=f"test_sample_{i}", value=10 * i) for i in range(3)]
    assert [r.to_dict() for r in raw] == [{"id": i, "name": f"test_sample_{i}", "value": 10 * i} for i in range(3)]


def test_every_error_is_an_atdata_error() -> None:
    for exc in (SampleDecodeError, InvalidArgument, UnsupportedFieldType):
        assert issubclass(exc, AtdataError)


def test_packable_refuses_non_classes() -> None:
    with pytest.raises(InvalidArgument, match="decorates a class"):
        packable(lambda: None)  # type: ignore[arg-type]


def test_from_bytes_accepts_memoryview_and_bytearray_views() -> None:
    packed = everything().packed
    frame = b"\0" * 7 + packed + b"\0" * 3  # e.g. a member inside a shard read in one go
    assert Everything.from_bytes(memoryview(frame)[7 : 7 + len(packed)]) == everything()
    assert Everything.from_bytes(bytearray(packed)) == everything()
    assert DictSample.from_bytes(memoryview(packed)).count == -3


def test_subclass_of_a_packable_class_gets_its_own_codec() -> None:
    @atdata.packable
    class Base:
        a: int

    @atdata.packable
    class Child(Base):
        b: str

    assert [s.name for s in fields_of(Base)] == ["a"]
    assert [s.name for s in fields_of(Child)] == ["a", "b"]
    child = Child.from_bytes(Child(a=1, b="x").packed)
    assert type(child) is Child and (child.a, child.b) == (1, "x")
    assert type(Base.from_bytes(child.packed)) is Base


def test_keys_differ_across_forked_processes() -> None:
    import os

    read_end, write_end = os.pipe()
    new_key()  # the parent's generator has state before the fork
    pid = os.fork()
    if pid == 0:  # child: report its keys and leave without running pytest's teardown
        os.write(write_end, "".join(new_key() for _ in range(100)).encode())
        os._exit(0)
    os.close(write_end)
    parent_keys = {new_key() for _ in range(100)}
    with os.fdopen(read_end) as pipe:
        text = pipe.read()
    os.waitpid(pid, 0)
    child_keys = {text[i : i + 32] for i in range(0, len(text), 32)}
    assert len(child_keys) == 100 and not child_keys & parent_keys
    assert {k[32 - 16 :] for k in child_keys}.isdisjoint({k[32 - 16 :] for k in parent_keys})


@pytest.mark.parametrize("name", ["packed", "as_wds", "from_bytes", "from_data", "__init__", "__eq__", "_atdata_codec"])
def test_field_named_like_a_sample_method_is_refused_at_definition(name: str) -> None:
    with pytest.raises(atdata.errors.UnsupportedFieldType, match=f"'{name}'.*reserved.*rename"):
        atdata.packable(type("Clash", (), {"__annotations__": {name: int, "label": str}}))


@atdata.packable
class TrainingSample:
    features: NDArray
    label: int
    source: str = "synthetic"


@pytest.mark.parametrize(
    ("args", "kwargs", "missing"),
    [
        ((), {"label": 1}, "field 'features': pass features=..."),
        ((), {}, "fields 'features', 'label': pass features=..., label=..."),
        ((np.zeros(2),), {}, "field 'label': pass label=..."),
    ],
)
def test_missing_required_field_at_construction_names_class_and_fields(
    args: tuple[Any, ...], kwargs: dict[str, Any], missing: str
) -> None:
    with pytest.raises(MissingField) as info:
        TrainingSample(*args, **kwargs)
    assert str(info.value).startswith(f"TrainingSample() missing required {missing} (fields of TrainingSample:")
    assert isinstance(info.value, InvalidArgument) and isinstance(info.value, TypeError)


def test_required_fields_stay_required_in_signature_subclasses_and_generated_classes() -> None:
    assert str(inspect.signature(TrainingSample)).startswith("(features: ")
    assert [p.default for p in inspect.signature(TrainingSample).parameters.values()][1:] == [
        inspect.Parameter.empty,
        "synthetic",
    ]

    @atdata.packable
    class Weighted(TrainingSample):
        weight: float = 1.0

    with pytest.raises(MissingField, match=r"Weighted\(\) missing required field 'label'"):
        Weighted(features=np.zeros(2))
    sample = Weighted(np.zeros(2), 3, weight=2.0)
    assert (sample.label, sample.source, sample.weight) == (3, "synthetic", 2.0)
    generated = atdata.schema.from_record(atdata.schema.to_record(TrainingSample, "1.0.0"))
    with pytest.raises(MissingField, match="'features', 'label'"):
        generated()


def test_required_field_after_a_default_is_still_refused_at_decoration() -> None:
    with pytest.raises(TypeError, match="non-default argument 'label' follows default argument 'source'"):

        @atdata.packable
        class Misordered:
            source: str = "x"
            label: int


def test_own_init_kw_only_and_init_false_fields_are_left_alone() -> None:
    @atdata.packable
    class Custom:
        label: int

        def __init__(self, label: int = 5) -> None:
            self.label = label

    assert Custom().label == 5

    @atdata.packable
    class KeywordOnly:
        label: int
        source: str = dataclasses.field(kw_only=True)
        note: str = dataclasses.field(default="", init=False)
        scale: ClassVar[int] = 2

    expected = r"missing required field 'source': pass source=\.\.\. \(fields of \S*KeywordOnly: label, source;"
    with pytest.raises(MissingField, match=expected):
        KeywordOnly(1)  # type: ignore[call-arg]
    assert KeywordOnly(1, source="s").source == "s"
    assert str(inspect.signature(KeywordOnly)) == "(label: int, *, source: str) -> None"
