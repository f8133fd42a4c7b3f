"""The sample type: ``PackableSample``, ``@packable``, and what makes a class one.

``@atdata.packable`` turns an annotated class into a dataclass that subclasses
:class:`PackableSample`; ``@dataclass class X(PackableSample)`` works too. The class's
field annotations are checked when it is defined (:mod:`atdata._sample.fields`), its
codec is compiled on first use (:mod:`atdata._sample.codec`), and its required fields
raise :class:`~atdata.errors.MissingField` when left out (:mod:`atdata._sample.required`).
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any, TypeVar

import numpy as np

from ..errors import InvalidArgument, UnsupportedFieldType
from .codec import Codec, unpack
from .fields import check_annotations
from .keys import new_key
from .required import HAS_DEFAULT_FACTORY, mark_required_fields, restore_signature

__all__ = ["PackableSample", "codec_of", "packable", "values_equal"]

S = TypeVar("S", bound="PackableSample")
T = TypeVar("T")


class PackableSample:
    """Base class of every typed sample.

    Subclasses are dataclasses (``@atdata.packable`` makes them so) whose fields have
    packable annotations; unsupported annotations raise
    :class:`~atdata.errors.UnsupportedFieldType` when the class is defined.
    """

    __module__ = "atdata.sample"  # its public home (pickles, schema refs and messages name it)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        clashes = sorted(
            name
            for name in cls.__dict__.get("__annotations__", {})
            if name in _RESERVED_FIELD_NAMES or (name.startswith("__") and name.endswith("__"))
        )
        if clashes:
            # A field would shadow the method or property that packs the sample, Python's
            # own dunder names (a field "__init__" replaces the constructor) or the codec.
            raise UnsupportedFieldType(
                f"{cls.__qualname__}: field name(s) {', '.join(map(repr, clashes))} are reserved by "
                f"PackableSample ({', '.join(sorted(_RESERVED_FIELD_NAMES))}, and __dunder__ names); "
                f"rename the field."
            )
        check_annotations(cls)

    @classmethod
    def from_data(cls: type[S], data: dict[str, Any]) -> S:
        """The sample held by an unpacked msgpack map (``NDArray`` fields as ``.npy`` bytes).

        Raises
        ------
        SampleDecodeError
            If ``data`` is not a map, lacks a required field or holds a wrong-typed value.
        """
        return codec_of(cls).decode(data)

    @classmethod
    def from_bytes(cls: type[S], data: bytes | bytearray | memoryview) -> S:
        """The sample packed in ``data`` (a msgpack map, as :attr:`packed` returns).

        Raises
        ------
        SampleDecodeError
            If ``data`` is not msgpack (e.g. truncated), or as :meth:`from_data`.
        """
        return codec_of(cls).decode(unpack(data, cls.__qualname__))

    @property
    def packed(self) -> bytes:
        """This sample as msgpack bytes (see ``## Wire format`` in the README).

        Raises
        ------
        InvalidArgument
            If a field holds a value its annotation does not admit, naming the field.
        """
        return codec_of(type(self)).pack(self)

    @property
    def as_wds(self) -> dict[str, Any]:
        """``{"__key__": <unique, time-sortable key>, "msgpack": packed}`` for a tar writer."""
        return {"__key__": new_key(), "msgpack": self.packed}

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(
            values_equal(getattr(self, spec.name), getattr(other, spec.name)) for spec in codec_of(type(self)).fields
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, like a default dataclass


@typing.dataclass_transform()
def packable(cls: type[T]) -> type[T]:
    """Make ``cls`` a dataclass that is a :class:`PackableSample`.

    The returned class has ``cls``'s name, module, methods and fields; equality compares
    fields with NDArray values compared by dtype, shape and contents.

    Raises
    ------
    UnsupportedFieldType
        If a field annotation is not packable (the message lists what is).
    """
    if not isinstance(cls, type):
        raise InvalidArgument(f"@atdata.packable decorates a class, got {cls!r}")
    if not issubclass(cls, PackableSample):
        namespace = {k: v for k, v in cls.__dict__.items() if k not in ("__dict__", "__weakref__")}
        namespace["__qualname__"] = cls.__qualname__  # not in __dict__; pickle finds nested classes by it
        bases = tuple(b for b in cls.__bases__ if b is not object) + (PackableSample,)
        original, cls = cls, type(cls)(cls.__name__, bases, namespace)  # type: ignore[misc]  # new bases
        _repoint_class_cell(namespace, original, cls)
    # Our own MissingField needs dataclasses' private marker of an omitted argument; on a
    # Python without it, omitted fields raise dataclasses' TypeError as before.
    own_init = "__init__" in cls.__dict__ or HAS_DEFAULT_FACTORY is None
    if not own_init:
        mark_required_fields(cls)
    sample_cls = dataclasses.dataclass(cls, eq=False)
    if not own_init:
        restore_signature(sample_cls)
    codec_of(sample_cls)
    return sample_cls


def _repoint_class_cell(namespace: dict[str, Any], old: type, new: type) -> None:
    """Point the ``__class__`` cell of the methods in ``namespace`` from ``old`` to ``new``.

    Methods that call ``super()`` (or name ``__class__``) close over the class their body
    defined; all share one cell. Left pointing at the class ``packable`` replaced, ``super()``
    would fail with "obj must be an instance or subtype of type" in every such method.
    """
    for value in namespace.values():
        if isinstance(value, (classmethod, staticmethod)):
            value = value.__func__
        funcs = (value.fget, value.fset, value.fdel) if isinstance(value, property) else (value,)
        for func in funcs:
            code, closure = getattr(func, "__code__", None), getattr(func, "__closure__", None)
            if code is None or not closure:
                continue
            for name, cell in zip(code.co_freevars, closure):
                if name == "__class__" and cell.cell_contents is old:
                    cell.cell_contents = new
                    return  # the cell is shared: one assignment repoints every method


_RESERVED_FIELD_NAMES = frozenset(name for name in vars(PackableSample) if not name.startswith("_")) | {"_atdata_codec"}
"""Public members of PackableSample, and the attribute its codec is cached in, that a field would shadow."""


def codec_of(cls: type) -> Codec:
    """The codec of sample class ``cls``, compiled on first use and cached on the class."""
    codec = cls.__dict__.get("_atdata_codec") if isinstance(cls, type) else None
    if codec is None:
        if not (isinstance(cls, type) and issubclass(cls, PackableSample)):
            raise InvalidArgument(f"{cls!r} is not a sample type: decorate it with @atdata.packable")
        codec = Codec(cls)
        type.__setattr__(cls, "_atdata_codec", codec)
    return codec


def values_equal(a: Any, b: Any) -> bool:
    """Field equality of samples: arrays by dtype, shape and contents (NaN equal to NaN)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fcmM"))
        )
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b))
    return bool(a == b) and type(a) is type(b)
