"""The .npy codec: exact np.save bytes, safe zero-copy decoding, refused object arrays."""

import ast
import io

import numpy as np
import pytest

from atdata import npy as _npy
from atdata.errors import InvalidArgument, SampleDecodeError


def np_save_bytes(arr: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, arr, allow_pickle=False)
    return out.getvalue()


ARRAYS = {
    "float32": np.arange(12, dtype=np.float32).reshape(3, 4),
    "zero-d": np.array(7, dtype=np.int16),
    "empty": np.zeros((0, 5), dtype=np.float64),
    "empty-middle": np.zeros((3, 0, 2), dtype=np.uint8),
    "bool": np.array([True, False, True]),
    "complex": np.array([1 + 2j, -3j], dtype=np.complex64),
    "big-endian": np.arange(6, dtype=">i4").reshape(2, 3),
    "fortran": np.asfortranarray(np.arange(6, dtype=np.int64).reshape(2, 3)),
    "non-contiguous": np.arange(40, dtype=np.float32).reshape(5, 8)[::2, 1::3],
    "transposed-3d": np.arange(24, dtype=np.uint16).reshape(2, 3, 4).transpose(2, 0, 1),
    "datetime": np.array(["2024-01-01", "2025-06-30"], dtype="datetime64[D]"),
    "unicode": np.array(["a", "bcd"]),
}


@pytest.mark.parametrize("name", sorted(ARRAYS))
def test_encode_is_exactly_np_save(name: str) -> None:
    arr = ARRAYS[name]
    assert _npy.encode(arr) == np_save_bytes(arr)
    assert _npy.encode(arr) == np_save_bytes(arr)  # second time from the header cache


@pytest.mark.parametrize("name", sorted(ARRAYS))
def test_decode_round_trips_dtype_shape_values_and_order(name: str) -> None:
    arr = ARRAYS[name]
    out = _npy.decode(_npy.encode(arr))
    assert out.dtype == arr.dtype and out.dtype.str == arr.dtype.str
    assert out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)
    if arr.flags.f_contiguous and not arr.flags.c_contiguous:
        assert out.flags.f_contiguous


def test_decode_is_a_zero_copy_read_only_view() -> None:
    buf = _npy.encode(np.arange(100, dtype=np.float64))
    out = _npy.decode(buf)
    assert out.base is buf
    assert not out.flags.writeable


def test_decode_reads_headers_written_by_np_save_versions_2_and_3() -> None:
    arr = np.arange(5, dtype=np.int32)
    for version in ((2, 0), (3, 0)):
        out = io.BytesIO()
        np.lib.format.write_array(out, arr, version=version)
        np.testing.assert_array_equal(_npy.decode(out.getvalue()), arr)


def test_parse_header_fields_and_cache() -> None:
    buf = _npy.encode(np.zeros((2, 3), dtype=">f8"))
    header = _npy.parse_header(buf)
    assert header.dtype == np.dtype(">f8")
    assert header.shape == (2, 3)
    assert header.fortran_order is False
    assert buf[header.offset :] == b"\0" * 48
    assert header.end == len(buf)
    assert _npy.parse_header(bytes(buf)) is header
    assert _npy.parse_header(memoryview(buf)) is header
    assert _npy.parse_header(bytearray(buf)) is header


def test_object_arrays_are_refused_never_unpickled() -> None:
    out = io.BytesIO()
    np.save(out, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(SampleDecodeError, match="never unpickled"):
        _npy.decode(out.getvalue())


def test_a_pickle_payload_behind_an_object_header_is_never_executed(tmp_path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    out = io.BytesIO()
    np.save(out, np.array([Evil()], dtype=object), allow_pickle=True)
    assert str(marker).encode() in out.getvalue()  # the payload really is a pickle
    with pytest.raises(SampleDecodeError):
        _npy.decode(out.getvalue())
    assert not marker.exists()


def test_structured_arrays_are_refused() -> None:
    with pytest.raises(SampleDecodeError, match="refused"):
        _npy.decode(np_save_bytes(np.zeros(3, dtype=[("a", "<f4")])))
    with pytest.raises(InvalidArgument, match="structured"):
        _npy.encode(np.zeros(3, dtype=[("a", "<f4")]))


def test_encode_refuses_object_arrays() -> None:
    with pytest.raises(InvalidArgument, match="object"):
        _npy.encode(np.array([1, "a"], dtype=object))


@pytest.mark.parametrize(
    ("buf", "match"),
    [
        (b"", "not a .npy"),
        (b"\x93NUMP", "not a .npy"),
        (b"PK\x03\x04" + b"\0" * 20, "not a .npy"),
        (b"\x93NUMPY\x09\x00\x10\x00" + b" " * 16, "version 9"),
        (b"\x93NUMPY\x01\x00\xff\x00{'descr'", "truncated"),
        (b"\x93NUMPY\x01\x00\x08\x00__import", "malformed"),
        (b"\x93NUMPY\x01\x00\x0a\x00[1, 2, 3]\n", "must be a dict"),
        (b"\x93NUMPY\x01\x00\x40\x00{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }      \n", "malformed"),
        (
            b"\x93NUMPY\x01\x00\x40\x00{'descr': 'xx', 'fortran_order': False, 'shape': (1,), }       \n",
            "invalid dtype",
        ),
    ],
)
def test_malformed_buffers_raise_sample_decode_error(buf: bytes, match: str) -> None:
    with pytest.raises(SampleDecodeError, match=match):
        _npy.decode(buf)


def test_truncated_and_oversized_payloads_are_refused() -> None:
    buf = _npy.encode(np.arange(10, dtype=np.int32))
    with pytest.raises(SampleDecodeError, match="truncated"):
        _npy.decode(buf[:-1])
    with pytest.raises(SampleDecodeError, match="truncated"):
        _npy.decode(buf + b"\0")


def test_huge_header_is_refused_before_parsing() -> None:
    text = b"{" + b" " * 20_000 + b"}"
    buf = b"\x93NUMPY\x02\x00" + len(text).to_bytes(4, "little") + text
    with pytest.raises(SampleDecodeError, match="allowed"):
        _npy.decode(buf)


def test_zero_width_dtype_headers_are_refused() -> None:
    header = b"{'descr': '|S0', 'fortran_order': False, 'shape': (3,), }"
    header += b" " * (117 - len(header)) + b"\n"
    with pytest.raises(SampleDecodeError, match="refused"):
        _npy.decode(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header)


@pytest.mark.parametrize("shape", [(0, 10**29), (0, 2**63 - 1, 2**63 - 1), (1,) * 70])
def test_shapes_numpy_cannot_make_are_refused(shape: tuple[int, ...]) -> None:
    """Zero-size (so no payload to contradict them) or too many dimensions: never a bare ValueError."""
    header = f"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape!r}, }}".encode()
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    buf = b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header
    with pytest.raises(SampleDecodeError, match="shape numpy cannot make"):
        _npy.parse_header(buf)
    with pytest.raises(SampleDecodeError, match="shape numpy cannot make"):
        _npy.decode(buf + b"\0" * 4)


@pytest.mark.parametrize("name", sorted(ARRAYS))
def test_fast_header_parser_agrees_with_literal_eval(name: str) -> None:
    buf = np_save_bytes(ARRAYS[name])
    text = buf[10 : 10 + int.from_bytes(buf[8:10], "little")].decode("latin-1")
    fast = _npy._canonical_header(text)
    assert fast is not None and fast == ast.literal_eval(text)


@pytest.mark.parametrize(
    "text",
    [
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3,,4), }\n",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4,), }\n",
        "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }\n",
        "{'fortran_order': False, 'descr': '<f4', 'shape': (3,), }\n",
    ],
)
def test_fast_header_parser_leaves_anything_unusual_to_literal_eval(text: str) -> None:
    assert _npy._canonical_header(text) is None
