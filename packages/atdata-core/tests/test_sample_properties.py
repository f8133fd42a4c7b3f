"""Property tests: exact pack/unpack round trips for generated sample types, schema
records as a fixed point, and hostile bytes that only ever raise atdata errors."""

from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray

import atdata
from atdata import npy as _npy
from atdata import schema
from atdata.errors import AtdataError
from atdata.sample import DictSample, PackableSample, fields_of
from atdata.testing.strategies import JSONISH, arrays, sample_types


@st.composite
def samples(draw: st.DrawFn) -> PackableSample:
    cls, values = draw(sample_types())
    return cls(**{name: draw(strategy) for name, strategy in values.items()})


def assert_exactly_equal(a: Any, b: Any) -> None:
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray)
        assert (a.dtype.str, a.shape) == (b.dtype.str, b.shape)
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, float) and np.isnan(a):
        assert isinstance(b, float) and np.isnan(b)
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b)
        for x, y in zip(a, b):
            assert_exactly_equal(x, y)
    else:
        assert type(a) is type(b) and a == b


@given(samples())
def test_pack_unpack_round_trip_is_exact(sample: PackableSample) -> None:
    back = type(sample).from_bytes(sample.packed)
    assert back == sample
    for spec in fields_of(type(sample)):
        assert_exactly_equal(getattr(sample, spec.name), getattr(back, spec.name))


@given(samples())
def test_dict_sample_reads_what_typed_samples_write(sample: PackableSample) -> None:
    raw = DictSample.from_bytes(sample.packed)
    for spec in fields_of(type(sample)):
        assert_exactly_equal(getattr(sample, spec.name), raw[spec.name])
    assert type(sample).from_bytes(raw.packed) == sample


@given(arrays())
def test_npy_encode_decode_round_trip(arr: np.ndarray) -> None:
    out = _npy.decode(_npy.encode(arr))
    assert_exactly_equal(arr, out)


@given(sample_types(), st.sampled_from(["1.0.0", "0.2.3-beta.1", "10.20.30+build"]))
def test_schema_record_round_trip_is_a_fixed_point(
    generated: tuple[type[PackableSample], dict[str, Any]], version: str
) -> None:
    cls, _ = generated
    first = schema.to_record(cls, version, description="d")
    regenerated = schema.from_record(first)
    second = schema.to_record(regenerated, version, description="d")
    first.pop("createdAt"), second.pop("createdAt")
    assert second == first
    assert fields_of(regenerated) == fields_of(cls)
    assert schema.from_record(second) is regenerated


@given(samples())
def test_data_written_with_the_original_class_reads_with_the_generated_one(sample: PackableSample) -> None:
    generated = schema.from_record(schema.to_record(type(sample), "1.0.0"))
    read = generated.from_bytes(sample.packed)
    assert type(sample).from_bytes(read.packed) == sample


@atdata.packable
class Target:
    name: str
    count: int
    score: float | None
    image: NDArray
    typed: NDArray[np.float32]
    tags: list[str]
    extra: dict[str, Any]


VALID = Target(
    name="x", count=1, score=None, image=np.arange(6).reshape(2, 3), typed=np.ones(2, np.float32), tags=["t"], extra={}
).packed


@st.composite
def hostile_bytes(draw: st.DrawFn) -> bytes:
    choice = draw(st.sampled_from(["random", "truncated", "flipped", "msgpack"]))
    if choice == "random":
        return draw(st.binary(max_size=300))
    if choice == "truncated":
        return VALID[: draw(st.integers(0, len(VALID) - 1))]
    if choice == "flipped":
        data = bytearray(VALID)
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return bytes(data)
    value = draw(JSONISH | st.dictionaries(st.sampled_from(["name", "count", "image", "typed", "tags"]), JSONISH))
    return msgpack.packb(value)


@pytest.mark.parametrize("cls", [Target, DictSample])
@given(data=hostile_bytes())
def test_arbitrary_bytes_raise_only_atdata_errors(cls: type[PackableSample], data: bytes) -> None:
    try:
        cls.from_bytes(data)
    except AtdataError:
        pass
