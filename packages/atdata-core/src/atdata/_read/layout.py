"""Batches of samples that share one byte layout, decoded column by column with NumPy.

Samples of fixed-shape arrays and fixed-width scalars pack to msgpack maps of one
length in which only the values differ: the map header, the keys, the type bytes, the
``bin`` lengths and the ``.npy`` headers are the same bytes at the same offsets. For
such a batch, parsing every sample with ``msgpack.unpackb`` (and copying each array
into the batch) costs far more than the data: here the batch is joined into one
``(n, length)`` byte matrix, every fixed byte is checked for all samples at once, and
each field is cut out of the matrix as a column (arrays straight into the batch's
``(n, *shape)`` array, integers and floats as big-endian NumPy views).

A :class:`Layout` is learnt from one sample and accepts a batch only if every sample
has the layout's fixed bytes, and every value whose type byte is also its value
(``fixint``, ``true``/``false``) is of the same msgpack type. Strings must also decode
as UTF-8. Anything else (another field order, a missing or extra key, a value of a
type the field does not hold as is, nested values) makes :func:`layout_of` None or
:meth:`Layout.fits` false (a string that is not UTF-8: :meth:`Layout.cut` None), and
the batch takes the general path in :mod:`atdata._read.columns`, so the result and every
error are exactly that path's.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import npy
from .._sample.fields import FieldSpec

__all__ = ["Layout", "layout_of"]

Column = Callable[[np.ndarray], "np.ndarray | list[Any] | None"]

# msgpack type bytes: fixed-width numbers -> (payload width, big-endian dtype).
_NUMBERS = {
    0xCC: (1, ">u1"), 0xCD: (2, ">u2"), 0xCE: (4, ">u4"), 0xCF: (8, ">u8"),
    0xD0: (1, ">i1"), 0xD1: (2, ">i2"), 0xD2: (4, ">i4"), 0xD3: (8, ">i8"),
    0xCA: (4, ">f4"), 0xCB: (8, ">f8"),
}  # fmt: skip
_FLOATS = (0xCA, 0xCB)
_NIL, _FALSE, _TRUE = 0xC0, 0xC2, 0xC3


@dataclass(frozen=True, slots=True, eq=False)
class Layout:
    """Where each field's value lies in samples of one length, and the bytes they share.

    Attributes
    ----------
    length
        The length of every sample of this layout.
    fixed
        The spans ``(start, end, bytes)`` of bytes every sample must share (map header,
        keys, type bytes, ``.npy`` headers), as in the sample the layout was learnt from.
    tiny
        The values whose type byte is the value (``fixint``, booleans): their offset,
        and the bytes of that type (a positive or negative ``fixint``, ``false``/``true``);
        a byte outside them is a value of another type.
    columns_of
        Per field name, the function cutting its column out of the byte matrix.
    strings
        The spans ``(start, end)`` of the string values (bytes that must be UTF-8).
    """

    length: int
    fixed: tuple[tuple[int, int, bytes], ...]
    tiny: tuple[tuple[int, bytes], ...]
    columns_of: dict[str, Column]
    strings: tuple[tuple[int, int], ...] = ()

    def fits(self, rows: np.ndarray, joined: bytes | None = None) -> bool:
        """Whether every row of ``rows`` (samples of this length, ``joined`` if at hand) has this layout."""
        # Byte-string operations, not NumPy ones: on a batch of a few dozen samples each
        # NumPy call costs microseconds of overhead, a strided slice of bytes far less.
        n, length = rows.shape
        for start, end, expected in self.fixed:
            found = joined[start::length] if joined is not None and end - start == 1 else rows[:, start:end].tobytes()
            if found != expected * n:
                return False
        for offset, same_type in self.tiny:
            found = joined[offset::length] if joined is not None else rows[:, offset].tobytes()
            if found.translate(None, same_type):  # a byte of another type is left
                return False
        return True

    def cut(self, rows: np.ndarray, names: Collection[str] | None = None) -> dict[str, np.ndarray | list[Any]] | None:
        """The columns (of ``names``, else all) of rows that fit; None if a string is not UTF-8."""
        columns: dict[str, np.ndarray | list[Any]] = {}
        for name, cut in self.columns_of.items():
            if names is None or name in names:
                column = cut(rows)
                if column is None:
                    return None
                columns[name] = column
        return columns


def layout_of(sample: bytes | memoryview, specs: Sequence[FieldSpec]) -> Layout | None:
    """The layout of ``sample`` (one packed sample), or None if it has none this module reads.

    ``specs`` are the sample type's fields: the map must hold exactly these keys, each
    value of a msgpack type the field takes unconverted (see the module docstring).
    """
    data = bytes(sample)
    try:
        return _Learner(data, {spec.name: spec for spec in specs}).learn()
    except (IndexError, UnicodeDecodeError, npy.SampleDecodeError):
        return None


class _Learner:
    """Walks one packed sample, recording fixed bytes and a column cutter per field."""

    def __init__(self, data: bytes, specs: dict[str, FieldSpec]) -> None:
        self.data = data
        self.specs = specs
        self.fixed: list[int] = []
        self.tiny: list[tuple[int, int, int]] = []
        self.columns_of: dict[str, Column] = {}
        self.strings: list[tuple[int, int]] = []

    def learn(self) -> Layout | None:
        data = self.data
        count, pos = self._map_header(0)
        if count != len(self.specs):
            return None
        for _ in range(count):
            key_end = self._str_header(pos)
            if key_end is None:
                return None
            start, pos = key_end
            self._keep(start, pos)
            name = data[start:pos].decode("utf-8")
            spec = self.specs.get(name)
            if spec is None or name in self.columns_of:
                return None
            found = self._value(pos, spec)
            if found is None:
                return None
            pos, self.columns_of[name] = found
        if pos != len(data):
            return None
        return Layout(
            length=len(data),
            fixed=tuple((start, end, data[start:end]) for start, end in _spans(self.fixed)),
            tiny=tuple((offset, bytes(range(low, high + 1))) for offset, low, high in self.tiny),
            columns_of=self.columns_of,
            strings=tuple(self.strings),
        )

    def _keep(self, start: int, end: int) -> None:
        self.fixed.extend(range(start, end))

    def _map_header(self, pos: int) -> tuple[int, int]:
        first = self.data[pos]
        if 0x80 <= first <= 0x8F:
            self._keep(pos, pos + 1)
            return first & 0x0F, pos + 1
        width = {0xDE: 2, 0xDF: 4}.get(first)
        if width is None:
            return -1, pos
        self._keep(pos, pos + 1 + width)
        return int.from_bytes(self.data[pos + 1 : pos + 1 + width], "big"), pos + 1 + width

    def _str_header(self, pos: int) -> tuple[int, int] | None:
        """Start and end of the string at ``pos`` (its header kept as fixed), or None."""
        first = self.data[pos]
        if 0xA0 <= first <= 0xBF:
            width, size = 0, first & 0x1F
        elif first in (0xD9, 0xDA, 0xDB):
            width = 1 << (first - 0xD9)
            size = int.from_bytes(self.data[pos + 1 : pos + 1 + width], "big")
        else:
            return None
        start = pos + 1 + width
        self._keep(pos, start)
        return start, start + size

    def _value(self, pos: int, spec: FieldSpec) -> tuple[int, Column] | None:
        data, first, kind = self.data, self.data[pos], spec.kind
        if first == _NIL:
            if not spec.optional:
                return None
            self._keep(pos, pos + 1)
            return pos + 1, _constant(None)
        if kind == "int" and (first <= 0x7F or first >= 0xE0):  # fixint: the byte is the value
            negative = first >= 0xE0
            self.tiny.append((pos, 0xE0, 0xFF) if negative else (pos, 0, 0x7F))
            return pos + 1, _small_ints(pos, np.int8 if negative else np.uint8)
        if kind == "bool" and first in (_FALSE, _TRUE):
            self.tiny.append((pos, _FALSE, _TRUE))
            return pos + 1, _booleans(pos)
        number = _NUMBERS.get(first)
        if number is not None and kind == ("float" if first in _FLOATS else "int"):
            width, dtype = number
            self._keep(pos, pos + 1)
            return pos + 1 + width, _numbers(pos + 1, width, dtype)
        if kind == "str":
            found = self._str_header(pos)
            if found is None:
                return None
            start, end = found
            data[start:end].decode("utf-8")  # the learnt sample itself must be valid
            self.strings.append((start, end))
            return end, _strings(start, end)
        if kind in ("bytes", "ndarray") and first in (0xC4, 0xC5, 0xC6):
            width = 1 << (first - 0xC4)
            start = pos + 1 + width
            end = start + int.from_bytes(data[pos + 1 : start], "big")
            self._keep(pos, start)
            if kind == "bytes":
                return end, _byte_strings(start, end)
            return self._array(start, end, spec)
        return None

    def _array(self, start: int, end: int, spec: FieldSpec) -> tuple[int, Column] | None:
        """An NDArray value: its ``.npy`` header is fixed, its payload is the column."""
        value = self.data[start:end]
        header = npy.parse_header(value)
        if header.end != len(value) or (header.fortran_order and len(header.shape) > 1):
            return None
        if spec.dtype is not None and header.dtype != np.dtype(spec.dtype):
            return None
        self._keep(start, start + header.offset)
        return end, _arrays(start + header.offset, header)


def _spans(offsets: list[int]) -> list[tuple[int, int]]:
    """``[start, end)`` of each span of consecutive offsets (given in increasing order)."""
    spans: list[tuple[int, int]] = []
    for offset in offsets:
        if spans and spans[-1][1] == offset:
            spans[-1] = (spans[-1][0], offset + 1)
        else:
            spans.append((offset, offset + 1))
    return spans


def _constant(value: Any) -> Column:
    return lambda rows: [value] * len(rows)


def _small_ints(pos: int, dtype: type[np.integer]) -> Column:
    return lambda rows: rows[:, pos].view(dtype).tolist()


def _booleans(pos: int) -> Column:
    return lambda rows: (rows[:, pos] == _TRUE).tolist()


def _numbers(start: int, width: int, dtype: str) -> Column:
    def cut(rows: np.ndarray) -> list[Any]:
        return np.ascontiguousarray(rows[:, start : start + width]).view(dtype)[:, 0].tolist()

    return cut


def _strings(start: int, end: int) -> Column:
    def cut(rows: np.ndarray) -> list[str] | None:
        values = rows[:, start:end]
        first = values[0].tobytes()
        if values.tobytes() == first * len(rows):  # one value for the whole batch, e.g. a source name
            return [first.decode("utf-8")] * len(rows)
        try:
            return [row.tobytes().decode("utf-8") for row in values]
        except UnicodeDecodeError:  # msgpack raises too: the general path says where
            return None

    return cut


def _byte_strings(start: int, end: int) -> Column:
    return lambda rows: [row.tobytes() for row in rows[:, start:end]]


def _arrays(start: int, header: npy.NpyHeader) -> Column:
    def cut(rows: np.ndarray) -> np.ndarray:
        payload = rows[:, start : start + header.nbytes].copy()  # the batch owns its arrays
        return payload.view(header.dtype).reshape((len(rows), *header.shape))

    return cut
