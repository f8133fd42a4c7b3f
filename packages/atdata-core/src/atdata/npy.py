"""NDArray values on the wire: exact ``np.save`` bytes out, safe zero-copy views in.

Shards in the atdata ecosystem store every NDArray field as the bytes ``np.save``
writes (the ``.npy`` format: magic, version, a Python-literal header dict, then the raw
payload). We keep that format bit for bit, but never call ``np.load``: it can unpickle
object arrays, so a shard from an untrusted source could run code. Instead the header is
parsed here with :func:`ast.literal_eval`, object and structured dtypes are refused,
and the payload is wrapped with :func:`numpy.frombuffer` without a copy.

Parsed headers are cached by their bytes: a dataset's arrays usually share a handful of
distinct headers, so the per-array cost on the read path is one dict lookup.
Decoded arrays are views of the buffer they came from, read-only when it is ``bytes`` (copy them to modify).
"""

from __future__ import annotations

import ast
import io
import math
import re
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ._sample.fields import NDARRAY_DTYPE_KINDS
from .errors import InvalidArgument, SampleDecodeError

__all__ = ["MAGIC", "NpyHeader", "cached_header", "decode", "encode", "parse_header"]

#: First six bytes of every ``.npy`` buffer.
MAGIC = b"\x93NUMPY"

# numpy's own limit (np.load's max_header_size): bounds literal_eval's work on hostile input.
_MAX_HEADER_LEN = 10_000
# Distinct headers kept; variable-shape data rotates through the cache, fixed shapes hit it.
_CACHE_SIZE = 4096
_HEADER_KEYS = frozenset(("descr", "fortran_order", "shape"))


@dataclass(frozen=True, slots=True)
class NpyHeader:
    """A parsed, validated ``.npy`` header.

    Attributes
    ----------
    dtype
        The stored dtype, byte order included (``>f4`` stays big-endian).
    shape
        The array shape; ``()`` for 0-d arrays.
    fortran_order
        ``True`` when the payload is in column-major order.
    offset
        Byte offset of the payload in the buffer (the header's length).
    count
        Number of elements (``prod(shape)``).
    nbytes
        Payload length in bytes (``count * dtype.itemsize``).
    order
        ``"F"`` or ``"C"``: the ``order`` argument of ``np.ndarray`` for this payload.
    end
        ``offset + nbytes``: the length of a well-formed buffer with this header.
    """

    dtype: np.dtype
    shape: tuple[int, ...]
    fortran_order: bool
    offset: int
    count: int
    nbytes: int
    order: Literal["C", "F"]
    end: int


_ndarray = np.ndarray
_parsed: dict[bytes, NpyHeader] = {}
_encoded: dict[tuple[np.dtype, bool, tuple[int, ...]], bytes] = {}

#: ``cached_header(header_bytes)``: the cached :class:`NpyHeader` of a version-1 header
#: seen before, else ``None``. For hot loops that inline the fast path of
#: :func:`parse_header` (slice ``buf[:10 + (buf[8] | buf[9] << 8)]``), falling back to
#: :func:`parse_header` / :func:`decode` on ``None``.
cached_header = _parsed.get


def parse_header(buf: bytes | bytearray | memoryview) -> NpyHeader:
    """Parse and validate the header of a ``.npy`` buffer (cached by the header's bytes).

    Parameters
    ----------
    buf
        The whole ``.npy`` buffer, or at least its header.

    Raises
    ------
    SampleDecodeError
        If ``buf`` is not a ``.npy`` buffer, its header is malformed or truncated, or its
        dtype holds Python objects or structured records (never unpickled).
    """
    # Fast path: every cached key passed validation and starts with the magic and a
    # version-1 preamble, so a hit on the (assumed version-1) header bytes is the answer.
    if buf.__class__ is bytes and len(buf) >= 10:
        header = _parsed.get(buf[: 10 + (buf[8] | buf[9] << 8)])
        if header is not None:
            return header
    if len(buf) < 10 or buf[:6] != MAGIC:
        raise SampleDecodeError(f"not a .npy buffer (starts with {bytes(buf[:10])!r}, expected {MAGIC!r})")
    major = buf[6]
    if major == 1:
        offset = 10 + (buf[8] | buf[9] << 8)
    elif major in (2, 3) and len(buf) >= 12:
        offset = 12 + int.from_bytes(buf[8:12], "little")
    else:
        raise SampleDecodeError(f".npy format version {major}.{buf[7]} is not supported (1.0, 2.0, 3.0 are)")
    key = bytes(buf[:offset])
    header = _parsed.get(key)
    if header is None:
        if len(key) < offset:
            raise SampleDecodeError(f"truncated .npy header: {len(buf)} bytes, header needs {offset}")
        header = _parse_new_header(key, major)
        if len(_parsed) >= _CACHE_SIZE:
            _parsed.clear()
        _parsed[key] = header
    return header


def decode(buf: bytes | bytearray | memoryview) -> np.ndarray:
    """An array viewing the payload of the ``.npy`` buffer ``buf`` (no copy; read-only for ``bytes``).

    Raises
    ------
    SampleDecodeError
        If the header is refused by :func:`parse_header` or the payload length does not
        match the header's shape and dtype (truncated or trailing bytes).
    """
    header = parse_header(buf)
    if len(buf) != header.end:
        raise SampleDecodeError(
            f".npy payload is {len(buf) - header.offset} bytes, but dtype {header.dtype.str} and "
            f"shape {header.shape} need {header.nbytes} (truncated or corrupt array)"
        )
    return _ndarray(header.shape, header.dtype, buf, header.offset, None, header.order)


def encode(arr: np.ndarray) -> bytes:
    """Exactly the bytes ``np.save(f, arr, allow_pickle=False)`` writes.

    Non-contiguous inputs are written in C order, Fortran-contiguous ones in Fortran order,
    byte order is preserved, as ``np.save`` does. Headers are cached per (dtype, order, shape).

    Raises
    ------
    InvalidArgument
        If ``arr`` has an object or structured dtype, which no reader could load safely.
    """
    flags = arr.flags
    fortran = not flags.c_contiguous and flags.f_contiguous
    header = _encoded.get((arr.dtype, fortran, arr.shape))
    if header is None:
        return _encode_new(arr, fortran)
    return header + arr.tobytes("F" if fortran else "C")


def _encode_new(arr: np.ndarray, fortran: bool) -> bytes:
    """``np.save`` itself, for a (dtype, order, shape) not seen yet; caches its header."""
    dtype = arr.dtype
    if dtype.kind not in NDARRAY_DTYPE_KINDS or dtype.hasobject:
        raise InvalidArgument(
            f"cannot store an array of dtype {dtype!r}: object and structured arrays would need "
            f"unpickling to read. Convert it to a numeric, bool or fixed-width string dtype."
        )
    out = io.BytesIO()
    np.save(out, arr, allow_pickle=False)
    whole = out.getvalue()
    if len(_encoded) >= _CACHE_SIZE:
        _encoded.clear()
    _encoded[(dtype, fortran, arr.shape)] = whole[: len(whole) - arr.nbytes]
    return whole


def _parse_new_header(key: bytes, major: int) -> NpyHeader:
    text_len = len(key) - (10 if major == 1 else 12)
    if text_len > _MAX_HEADER_LEN:
        raise SampleDecodeError(f".npy header is {text_len} bytes, more than the {_MAX_HEADER_LEN} allowed")
    try:
        text = key[len(key) - text_len :].decode("utf-8" if major == 3 else "latin-1")
        fields = _canonical_header(text) or ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError, UnicodeDecodeError) as exc:
        raise SampleDecodeError(f"malformed .npy header {key[:80]!r}: {exc}") from exc
    if not isinstance(fields, dict) or set(fields) != _HEADER_KEYS:
        raise SampleDecodeError(f".npy header must be a dict with keys {sorted(_HEADER_KEYS)}, got {fields!r:.200}")
    shape, fortran_order = fields["shape"], fields["fortran_order"]
    if (
        not isinstance(shape, tuple)
        or not all(type(n) is int and n >= 0 for n in shape)
        or not isinstance(fortran_order, bool)
    ):
        raise SampleDecodeError(f"malformed .npy header: shape {shape!r:.200}, fortran_order {fortran_order!r}")
    try:
        dtype = np.lib.format.descr_to_dtype(fields["descr"])  # type: ignore[arg-type]  # checked by the call
    except Exception as exc:  # descr_to_dtype raises several types on hostile input
        raise SampleDecodeError(f".npy header has an invalid dtype {fields['descr']!r:.200}: {exc}") from exc
    if dtype.hasobject or dtype.kind not in NDARRAY_DTYPE_KINDS or dtype.itemsize == 0:
        raise SampleDecodeError(
            f".npy array of dtype {dtype!r} refused: object and structured arrays are never "
            f"unpickled. Store numeric, bool or fixed-width string arrays."
        )
    count = math.prod(shape)
    if count == 0 or len(shape) > 32:
        # A shape numpy cannot make (too many dimensions, or a huge dimension beside a zero
        # one) would fail later in np.ndarray with a bare ValueError. Other shapes need no
        # probe: a payload of count * itemsize bytes must exist for the buffer to be used.
        try:
            np.broadcast_to(np.empty((), dtype), shape)
        except ValueError as exc:
            raise SampleDecodeError(f".npy header has a shape numpy cannot make {shape!r:.200}: {exc}") from exc
    return NpyHeader(
        dtype=dtype,
        shape=shape,
        fortran_order=fortran_order,
        offset=len(key),
        count=count,
        nbytes=count * dtype.itemsize,
        order="F" if fortran_order else "C",
        end=len(key) + count * dtype.itemsize,
    )


# The header exactly as np.save writes it for a plain dtype. Matching it is ~10x cheaper
# than literal_eval, which matters when every array has its own shape (a cache miss each).
_CANONICAL_HEADER = re.compile(
    r"\{'descr': '([<>|=]?\w+(?:\[\w+\])?)', 'fortran_order': (True|False), "
    r"'shape': \((|[0-9]+,|[0-9]+(?:, [0-9]+)+)\), \} *\n"
)


def _canonical_header(text: str) -> dict[str, object] | None:
    """The header dict of a canonical ``np.save`` header, or ``None`` for any other text."""
    match = _CANONICAL_HEADER.fullmatch(text)
    if match is None:
        return None
    descr, fortran, shape = match.groups()
    return {
        "descr": descr,
        "fortran_order": fortran == "True",
        "shape": tuple(int(n) for n in shape.split(",") if n),
    }
