"""``DictSample``: a sample without a declared type, any msgpack map by attribute or key."""

from __future__ import annotations

import typing
from collections.abc import Iterator, Mapping
from typing import Any

import msgpack
import numpy as np

from .. import npy
from ..errors import InvalidArgument, SampleDecodeError
from .codec import check_keys, describe_value, numpy_scalar, unpack
from .packable import PackableSample, values_equal

__all__ = ["DictSample"]


class DictSample(PackableSample):
    """A sample without a declared type: any msgpack map, fields by attribute or key.

    ``Dataset[DictSample](url)`` reads any shard; NDArray fields (values that are
    ``.npy`` bytes) come back as arrays. Packing writes arrays back as ``.npy`` bytes.
    """

    __module__ = "atdata.sample"  # its public home (pickles, schema refs and messages name it)

    def __init__(self, data: dict[str, Any] | None = None, /, **fields: Any) -> None:
        if data is not None and not isinstance(data, Mapping):
            raise InvalidArgument(
                f"DictSample(data) takes a dict of field name -> value, got {describe_value(data)}; "
                f"or pass fields as keywords: DictSample(image=..., label=...)"
            )
        object.__setattr__(self, "_data", {**(data or {}), **fields})

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> DictSample:
        """Wrap an unpacked msgpack map, decoding ``.npy`` values into arrays."""
        if data.__class__ is not dict:
            raise SampleDecodeError(f"a sample must be a msgpack map, found {type(data).__name__}")
        out = {}
        for key, value in data.items():
            if value.__class__ is bytes and value[:6] == npy.MAGIC:
                try:
                    value = npy.decode(value)
                except SampleDecodeError as exc:
                    raise SampleDecodeError(f"field {key!r}: {exc}") from exc
            out[key] = value
        sample = object.__new__(cls)
        object.__setattr__(sample, "_data", out)
        return sample

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> DictSample:
        """The sample packed in ``data``; see :meth:`from_data`."""
        return cls.from_data(unpack(data, cls.__qualname__))

    @property
    def packed(self) -> bytes:
        """The map as msgpack bytes, arrays as ``.npy`` bytes."""
        check_keys("DictSample", self._data)
        data = {}
        for key, value in self._data.items():
            if isinstance(value, np.ndarray):
                try:
                    value = npy.encode(value)
                except InvalidArgument as exc:
                    raise InvalidArgument(f"field {key!r}: {exc}") from exc
            data[key] = value
        try:
            return msgpack.packb(data, default=numpy_scalar)
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidArgument(f"DictSample cannot be packed: {exc}. Use msgpack-able values.") from exc

    def __getattr__(self, name: str) -> Any:
        data = self.__dict__.get("_data")
        if data is None:  # mid-unpickling or copying: no fields yet
            raise AttributeError(name)
        try:
            return data[name]
        except KeyError:
            raise AttributeError(f"DictSample has no field {name!r}; fields: {sorted(self._data)}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self._data[name] = value

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = value

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def keys(self) -> typing.KeysView[str]:
        """The field names."""
        return self._data.keys()

    def values(self) -> typing.ValuesView[Any]:
        """The field values."""
        return self._data.values()

    def items(self) -> typing.ItemsView[str, Any]:
        """``(name, value)`` pairs."""
        return self._data.items()

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` when absent."""
        return self._data.get(key, default)

    def to_dict(self) -> dict[str, Any]:
        """A shallow copy of the fields."""
        return dict(self._data)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DictSample):
            return NotImplemented
        return self._data.keys() == other._data.keys() and all(
            values_equal(v, other._data[k]) for k, v in self._data.items()
        )

    def __repr__(self) -> str:
        return f"DictSample({', '.join(f'{k}={_short_repr(v)}' for k, v in self._data.items())})"

    def __getstate__(self) -> dict[str, Any]:
        return self._data

    def __setstate__(self, state: dict[str, Any]) -> None:
        object.__setattr__(self, "_data", state)


def _short_repr(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array(shape={value.shape}, dtype={value.dtype})"
    return repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
