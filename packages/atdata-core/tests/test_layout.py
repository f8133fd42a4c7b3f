"""Batches cut by byte layout (atdata._read.layout) equal the general decoding path exactly.

The layout path only ever runs on batches whose samples all have one length, so the
property test draws values from small sets whose msgpack encodings collide in length
(a fixint next to a uint8 and a shorter string, float32 next to float64...), then
decodes every same-length group both ways.
"""

from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

import atdata
from atdata._read.columns import Decoder
from atdata._read.layout import Layout, layout_of
from atdata.errors import SampleDecodeError
from atdata.testing.strategies import sample_types


@atdata.packable
class Row:
    count: int
    score: float
    flag: bool
    name: str
    blob: bytes
    vector: NDArray[np.float32]
    note: str | None = None


_BAD_UTF8 = "\x01\x02"  # replaced by the bytes ff fe after packing: a str that is not UTF-8
INTS = [0, 5, 127, 128, 255, 256, -1, -32, -33, -128, 2**31, 2**63 - 1, 2**64 - 1, True, 1.0]
FLOATS = [0.0, 1.5, -2.25, float("inf"), 3, None]
NAMES = ["ab", "xy", "é", "a", "abc", "", "\x00b", _BAD_UTF8, b"ab", 7]
VECTORS = [
    np.zeros(3, np.float32),
    np.arange(3, dtype=np.float32),
    np.arange(3, dtype=">f4"),
    np.arange(2, dtype=np.float32),
    np.arange(3, dtype=np.float64)[:1],
    np.ones((1, 3), np.float32),
]
FIELDS = ["count", "score", "flag", "name", "blob", "vector", "note"]


@st.composite
def packed_rows(draw: st.DrawFn) -> bytes:
    values: dict[str, Any] = {
        "count": draw(st.sampled_from(INTS)),
        "score": draw(st.sampled_from(FLOATS)),
        "flag": draw(st.sampled_from([True, False, 0, None])),
        "name": draw(st.sampled_from(NAMES)),
        "blob": draw(st.sampled_from([b"", b"xy", b"yx", "xy"])),
        "vector": atdata.npy.encode(draw(st.sampled_from(VECTORS))),
        "note": draw(st.sampled_from([None, "n", "m", 1])),
    }
    keys = draw(st.permutations(FIELDS)) if draw(st.integers(0, 4)) == 0 else FIELDS
    keys = keys[: draw(st.sampled_from([len(keys), len(keys), len(keys) - 1]))]
    row = {key: values[key] for key in keys}
    if draw(st.integers(0, 9)) == 0:
        row["extra"] = 1
    data = msgpack.packb(row, use_single_float=draw(st.booleans()))
    return data.replace(b"\xa2\x01\x02", b"\xa2\xff\xfe")


def cut(layout: Layout, views: list[Any]) -> dict[str, Any] | None:
    """The columns ``layout`` cuts from ``views`` (all of its length), or None if one does not fit."""
    rows = np.frombuffer(b"".join(views), np.uint8).reshape(len(views), layout.length)
    return layout.cut(rows) if layout.fits(rows) else None


def reference(decoder: Decoder, views: list[bytes]) -> dict[str, Any] | str:
    """The general path's columns, or its error message."""
    try:
        samples = [decoder.checked(v, f"k{i}", "shard.tar") for i, v in enumerate(views)]
    except SampleDecodeError as exc:
        return str(exc)
    return decoder._columns_of(samples)


def batched(decoder: Decoder, views: list[bytes]) -> dict[str, Any] | str:
    try:
        batch = decoder.batch(views, [f"k{i}" for i in range(len(views))], lambda i: "shard.tar")
    except SampleDecodeError as exc:
        return str(exc)
    columns = {name: getattr(batch, name) for name in FIELDS}
    assert all(c.flags.writeable for c in columns.values() if isinstance(c, np.ndarray))  # the batch owns them
    return columns


def assert_same(a: Any, b: Any) -> None:
    """Equal values of equal types (NaN equal to NaN), arrays of one dtype and shape."""
    assert type(a) is type(b)
    if isinstance(a, np.ndarray):
        assert (a.dtype.str, a.shape) == (b.dtype.str, b.shape)
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    else:
        assert a == b or (a != a and b != b)


@settings(max_examples=200)
@given(st.lists(packed_rows(), min_size=1, max_size=40))
def test_batches_of_any_samples_decode_as_the_general_path_does(rows: list[bytes]) -> None:
    decoder = Decoder(Row)
    by_length: dict[int, list[bytes]] = {}
    for row in rows:
        by_length.setdefault(len(row), []).append(row)
    for group in [rows, *by_length.values(), *by_length.values()]:  # twice: learnt layouts are reused
        assert_same(batched(decoder, group), reference(decoder, group))


def regular(i: int) -> bytes:
    return Row(
        count=i, score=i / 2, flag=i % 2 == 0, name=f"n{i % 10}", blob=b"b", vector=np.full(3, i, np.float32)
    ).packed


def test_regular_samples_take_the_layout_path() -> None:
    views = [memoryview(regular(i)) for i in range(32)]
    layout = layout_of(views[0], atdata.sample.fields_of(Row))
    assert layout is not None
    columns = cut(layout, views)
    assert columns is not None
    assert_same(columns, reference(Decoder(Row), [bytes(v) for v in views]))
    assert columns["vector"].shape == (32, 3) and columns["vector"].flags.c_contiguous
    assert columns["note"] == [None] * 32 and columns["count"] == list(range(32))


@pytest.mark.parametrize(
    ("change", "fits"),
    [
        ({"name": "é"}, True),  # another value of the same encoded length
        ({"count": 200, "name": "n"}, False),  # a uint8 where the layout has a fixint, one byte less after
        ({"count": -5}, False),  # a negative fixint where the layout has a positive one
        ({"flag": 1}, False),  # an int where the layout has a bool
        ({"name": "ab", "blob": b"x"}, True),  # other values, same lengths
        ({"vector": atdata.npy.encode(np.zeros(3, ">f4"))}, False),  # another .npy header
    ],
)
def test_only_samples_of_the_layout_fit_it(change: dict[str, Any], fits: bool) -> None:
    views = [regular(i) for i in range(4)]
    layout = layout_of(views[0], atdata.sample.fields_of(Row))
    assert layout is not None
    views[2] = msgpack.packb(msgpack.unpackb(views[2]) | change)
    assert len(views[2]) == layout.length
    assert (cut(layout, views) is not None) == fits
    assert_same(batched(Decoder(Row), views), reference(Decoder(Row), views))


def test_samples_the_layout_cannot_describe_have_none() -> None:
    specs = atdata.sample.fields_of(Row)
    good = msgpack.unpackb(regular(1))
    assert layout_of(msgpack.packb({**good, "extra": 1}), specs) is None
    assert layout_of(msgpack.packb({k: v for k, v in good.items() if k != "note"}), specs) is None
    assert layout_of(msgpack.packb({**good, "count": 1.0}), specs) is None
    assert layout_of(msgpack.packb({**good, "vector": atdata.npy.encode(np.zeros(2))}), specs) is None  # float64
    assert layout_of(regular(1)[:-1], specs) is None
    assert layout_of(b"\x93\x01\x02\x03", specs) is None


@st.composite
def same_shape_batches(draw: st.DrawFn) -> tuple[type, list[bytes]]:
    """Samples of a generated type whose arrays keep one dtype and shape (values vary)."""
    cls, values = draw(sample_types())
    first = {name: draw(strategy) for name, strategy in values.items()}
    rows = [cls(**first).packed]
    for _ in range(draw(st.integers(1, 5))):
        other = {}
        for name, value in first.items():
            if isinstance(value, np.ndarray):  # same dtype and shape, other bytes
                raw = draw(st.binary(min_size=value.nbytes, max_size=value.nbytes))
                other[name] = np.frombuffer(raw, value.dtype).reshape(value.shape)
            else:
                other[name] = value if draw(st.booleans()) else draw(values[name])
        rows.append(cls(**other).packed)
    return cls, rows


@settings(max_examples=150)
@given(same_shape_batches())
def test_generated_sample_types_decode_alike_on_every_path(batch: tuple[type, list[bytes]]) -> None:
    cls, rows = batch
    decoder = Decoder(cls)
    names = [spec.name for spec in atdata.sample.fields_of(cls)]
    for group in [rows] + [[r for r in rows if len(r) == len(rows[0])]]:
        expected = reference(decoder, group)
        got = decoder.batch(group, [f"k{i}" for i in range(len(group))], lambda i: "shard.tar")
        assert_same({name: getattr(got, name) for name in names}, expected)
        if len({len(r) for r in group}) > 1:
            continue
        matrix = np.frombuffer(b"".join(group), np.uint8).reshape(len(group), -1)
        run = decoder.run(matrix, [f"k{i}" for i in range(len(group))])
        if run is not None:
            assert_same({name: getattr(run.batch(0, len(group)), name) for name in names}, expected)
