"""Typed samples and their wire format: one msgpack map per sample.

``@atdata.packable`` turns an annotated class into a dataclass that subclasses
:class:`PackableSample`; ``@dataclass class X(PackableSample)`` works too. A sample
packs to a msgpack map of field name -> value, NDArray fields as ``np.save`` bytes
(see ``## Wire format`` in the atdata-core README), which is what existing atdata
shards hold.

Speed: the first use of a sample class compiles a per-class codec (a decode and a pack
function generated from its :class:`~atdata._fields.FieldSpec` tuple, the way
``dataclasses`` generates ``__init__``), so decoding a sample costs one type check per
field and no ``typing`` introspection. Decoding builds instances without calling
``__init__``/``__post_init__``, as ``pickle`` does.

Decoding policy (documented in the README): unknown keys are ignored, a missing
``Optional`` field reads as ``None``, a missing required field, a value of the wrong
type or a bad array raises :class:`~atdata.errors.SampleDecodeError` naming the field,
what was expected and what was found.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import random
import sys
import threading
import time
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import msgpack
import numpy as np

from . import _npy
from ._fields import PRIMITIVE_KINDS, FieldSpec, check_annotations, field_specs
from .errors import InvalidArgument, MissingField, SampleDecodeError, UnsupportedFieldType

__all__ = [
    "DictSample",
    "FieldSpec",
    "PackableSample",
    "decoder_of",
    "fields_of",
    "new_key",
    "packable",
    "unpack",
]

S = TypeVar("S", bound="PackableSample")
T = TypeVar("T")
_MISSING: Any = object()


class PackableSample:
    """Base class of every typed sample.

    Subclasses are dataclasses (``@atdata.packable`` makes them so) whose fields have
    packable annotations; unsupported annotations raise
    :class:`~atdata.errors.UnsupportedFieldType` when the class is defined.
    """

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
        return _codec(cls).decode(data)

    @classmethod
    def from_bytes(cls: type[S], data: bytes | bytearray | memoryview) -> S:
        """The sample packed in ``data`` (a msgpack map, as :attr:`packed` returns).

        Raises
        ------
        SampleDecodeError
            If ``data`` is not msgpack (e.g. truncated), or as :meth:`from_data`.
        """
        return _codec(cls).decode(unpack(data, cls.__qualname__))

    @property
    def packed(self) -> bytes:
        """This sample as msgpack bytes (see ``## Wire format`` in the README).

        Raises
        ------
        InvalidArgument
            If a field holds a value its annotation does not admit, naming the field.
        """
        return _codec(type(self)).pack(self)

    @property
    def as_wds(self) -> dict[str, Any]:
        """``{"__key__": <unique, time-sortable key>, "msgpack": packed}`` for a tar writer."""
        return {"__key__": new_key(), "msgpack": self.packed}

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(_values_equal(getattr(self, spec.name), getattr(other, spec.name)) for spec in fields_of(type(self)))

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
    own_init = "__init__" in cls.__dict__ or _HAS_DEFAULT_FACTORY is None
    if not own_init:
        _mark_required_fields(cls)
    sample_cls = dataclasses.dataclass(cls, eq=False)
    if not own_init:
        _restore_signature(sample_cls)
    _codec(sample_cls)
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


# --- required fields ----------------------------------------------------------------------
# A call that leaves out a required field would raise Python's own TypeError while binding
# the arguments, naming neither the class nor what to do. Catching it would need a wrapper
# around __init__, doubling the cost of every construction. Instead each required field
# gets a default factory that raises MissingField: dataclasses' generated __init__ then
# costs one ``is`` test per required field, and only a missing argument calls the factory.


class _Required:
    """The default factory of a required field: it runs only when the argument is missing."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<required>"

    def __call__(self) -> typing.NoReturn:
        init_locals = sys._getframe(1).f_locals  # the generated __init__ calling us
        sample = init_locals.get("__dataclass_self__", init_locals.get("self"))
        fields = dataclasses.fields(sample) if dataclasses.is_dataclass(sample) else ()
        missing = [
            f.name for f in fields if f.default_factory is _REQUIRED and init_locals.get(f.name) is _HAS_DEFAULT_FACTORY
        ]
        owner = type(sample).__qualname__
        raise MissingField(
            f"{owner}() missing required field{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}: "
            f"pass {', '.join(f'{name}=...' for name in missing)} (fields of {owner}: "
            f"{', '.join(f.name for f in fields if f.init)}; only fields with a default may be left out)"
        )


_REQUIRED = _Required()
_HAS_DEFAULT_FACTORY: Any = getattr(dataclasses, "_HAS_DEFAULT_FACTORY", None)  # private: absent on some Python


def _mark_required_fields(cls: type) -> None:
    """Give the fields ``cls`` itself declares without a default the ``_REQUIRED`` factory.

    ClassVar and InitVar annotations are not dataclass fields and stay as they are; a
    ``dataclasses.field(...)`` without a default (e.g. ``field(kw_only=True)``) gets the
    factory on its Field.
    """
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # a forward reference not defined yet: judge by the raw annotation
        hints = {}
    for name, raw in cls.__dict__.get("__annotations__", {}).items():
        value = getattr(cls, name, _MISSING)
        if isinstance(value, dataclasses.Field):
            if value.init and value.default is dataclasses.MISSING and value.default_factory is dataclasses.MISSING:
                value.default_factory = _REQUIRED
            continue
        hint = hints.get(name, raw)
        if value is not _MISSING or (isinstance(hint, str) and ("ClassVar" in hint or "InitVar" in hint)):
            continue
        if hint is typing.ClassVar or typing.get_origin(hint) is typing.ClassVar:
            continue
        if hint is dataclasses.InitVar or isinstance(hint, dataclasses.InitVar):
            continue
        setattr(cls, name, dataclasses.field(default_factory=_REQUIRED))


def _restore_signature(cls: type) -> None:
    """Show required fields as required in ``inspect.signature(cls)``, and keep refusing a
    required field after a defaulted one, as dataclasses does (positional calls would
    otherwise fill the wrong field)."""
    required = {f.name for f in dataclasses.fields(cls) if f.default_factory is _REQUIRED}
    if not required:
        return
    init = vars(cls)["__init__"]
    params = []
    defaulted = None
    signature = inspect.signature(init)
    for param in signature.parameters.values():
        if param.name in required:
            param = param.replace(default=inspect.Parameter.empty)
        if param.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD:
            if param.default is not inspect.Parameter.empty:
                defaulted = param.name
            elif defaulted is not None:
                raise TypeError(
                    f"{cls.__qualname__}: non-default argument {param.name!r} follows default argument {defaulted!r}"
                )
        params.append(param)
    init.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]  # a plain function


def fields_of(sample_type: type) -> tuple[FieldSpec, ...]:
    """The :class:`FieldSpec` of each field of ``sample_type``, in declaration order.

    ``DictSample`` has no fixed fields and returns ``()``. Computed once per class.

    Raises
    ------
    InvalidArgument
        If ``sample_type`` is not a sample class.
    """
    if isinstance(sample_type, type) and issubclass(sample_type, DictSample):
        return ()
    return _codec(sample_type).fields


def decoder_of(sample_type: type[S]) -> Callable[[dict[str, Any]], S]:
    """The compiled ``from_data`` of ``sample_type``: call it per sample on hot paths."""
    if isinstance(sample_type, type) and issubclass(sample_type, DictSample):
        return sample_type.from_data  # type: ignore[return-value]  # S is this DictSample class
    return _codec(sample_type).decode


def unpack(data: bytes | bytearray | memoryview, owner: str = "sample") -> Any:
    """``msgpack.unpackb`` that raises :class:`SampleDecodeError` for bytes that are not msgpack.

    ``owner`` (a class name) starts the error message.
    """
    try:
        return msgpack.unpackb(data)
    except Exception as exc:  # msgpack raises ValueError subclasses, TypeError, StackError...
        raise SampleDecodeError(
            f"{owner}: {len(data)} bytes are not one msgpack map (truncated or corrupt sample): {exc}"
        ) from exc


_RESERVED_FIELD_NAMES = frozenset(name for name in vars(PackableSample) if not name.startswith("_")) | {"_atdata_codec"}
"""Public members of PackableSample, and the attribute its codec is cached in, that a field would shadow."""


class DictSample(PackableSample):
    """A sample without a declared type: any msgpack map, fields by attribute or key.

    ``Dataset[DictSample](url)`` reads any shard; NDArray fields (values that are
    ``.npy`` bytes) come back as arrays. Packing writes arrays back as ``.npy`` bytes.
    """

    def __init__(self, data: dict[str, Any] | None = None, /, **fields: Any) -> None:
        if data is not None and not isinstance(data, Mapping):
            raise InvalidArgument(
                f"DictSample(data) takes a dict of field name -> value, got {_describe_value(data)}; "
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
            if value.__class__ is bytes and value[:6] == _npy.MAGIC:
                try:
                    value = _npy.decode(value)
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
        _check_keys("DictSample", self._data)
        data = {}
        for key, value in self._data.items():
            if isinstance(value, np.ndarray):
                try:
                    value = _npy.encode(value)
                except InvalidArgument as exc:
                    raise InvalidArgument(f"field {key!r}: {exc}") from exc
            data[key] = value
        try:
            return msgpack.packb(data, default=_numpy_scalar)
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
            _values_equal(v, other._data[k]) for k, v in self._data.items()
        )

    def __repr__(self) -> str:
        return f"DictSample({', '.join(f'{k}={_short_repr(v)}' for k, v in self._data.items())})"

    def __getstate__(self) -> dict[str, Any]:
        return self._data

    def __setstate__(self, state: dict[str, Any]) -> None:
        object.__setattr__(self, "_data", state)


# --- keys -------------------------------------------------------------------------------

_key_lock = threading.Lock()
_key_state = [0, 0]  # last millisecond, sequence within it
_key_random = random.Random()  # seeded from os.urandom; reseeded in forked children below
os.register_at_fork(after_in_child=_key_random.seed)


def new_key() -> str:
    """A unique, time-sortable sample key: a UUIDv7 as 32 lowercase hex digits.

    48 bits of Unix milliseconds, a 12-bit sequence that keeps keys made by one process
    strictly increasing, and 62 random bits from a generator seeded by ``os.urandom`` and
    reseeded after ``fork``, so DataLoader workers never share a stream.
    """
    now = time.time_ns() // 1_000_000
    with _key_lock:
        last, seq = _key_state
        if now > last:
            last, seq = now, 0
        else:
            seq += 1
            if seq > 0xFFF:
                last, seq = last + 1, 0
        _key_state[0], _key_state[1] = last, seq
    rand = _key_random.getrandbits(62)
    return f"{(last << 80) | (0x7 << 76) | (seq << 64) | (0b10 << 62) | rand:032x}"


# --- per-class codec --------------------------------------------------------------------


class _Codec:
    """The compiled decode/pack pair of one sample class."""

    __slots__ = ("decode", "fields", "pack")

    def __init__(self, cls: type) -> None:
        if not dataclasses.is_dataclass(cls):
            raise InvalidArgument(
                f"{cls.__qualname__} is not a sample type: decorate it with @atdata.packable "
                f"(or @dataclass on a PackableSample subclass)"
            )
        self.fields = field_specs(cls)
        self.decode, self.pack = _compile(cls, self.fields)


def _codec(cls: type) -> _Codec:
    codec = cls.__dict__.get("_atdata_codec") if isinstance(cls, type) else None
    if codec is None:
        if not (isinstance(cls, type) and issubclass(cls, PackableSample)):
            raise InvalidArgument(f"{cls!r} is not a sample type: decorate it with @atdata.packable")
        codec = _Codec(cls)
        type.__setattr__(cls, "_atdata_codec", codec)
    return codec


def _compile(cls: type, specs: tuple[FieldSpec, ...]) -> tuple[Callable[[Any], Any], Callable[[Any], bytes]]:
    """Generate the decode and pack functions of ``cls`` (one type check per field)."""
    fixer = _Fixer(cls, specs)
    env: dict[str, Any] = {
        "_cls": cls,
        "_new": object.__new__,
        "_set": object.__setattr__,
        "_M": _MISSING,
        "_bytes": bytes,
        "_list": list,
        "_dict": dict,
        "_ndarray": np.ndarray,
        "_hget": _npy.cached_header,
        "_nd": np.ndarray,
        "_enc": _npy.encode,
        "_IA": InvalidArgument,
        "_fix": fixer.decoded,
        "_pfix": fixer.to_pack,
        "_bad_map": fixer.bad_map,
        "_packb": msgpack.packb,
        "_pack_error": fixer.pack_error,
        "_bad_key": _unreadable_key,
    }
    dec = ["def decode(d):", "    if d.__class__ is not _dict: _bad_map(d)", "    get = d.get"]
    pack = ["def pack(self):"]
    for i, spec in enumerate(specs):
        v, name = f"v{i}", repr(spec.name)
        dec.append(f"    {v} = get({name}, _M)")
        pack.append(f"    {v} = self.{spec.name}")
        if spec.kind == "ndarray":
            env[f"_dt{i}"] = None if spec.dtype is None else np.dtype(spec.dtype)
            dtype_ok = "" if spec.dtype is None else f" and {v}.dtype == _dt{i}"
            header_ok = "" if spec.dtype is None else f" and h.dtype is _dt{i}"
            dec += [  # the fast path of _npy.decode, inlined; anything unusual goes to _fix
                f"    if {v}.__class__ is _bytes and len({v}) > 10:",
                f"        h = _hget({v}[:10 + ({v}[8] | {v}[9] << 8)])",
                f"        if h is not None and h.end == len({v}){header_ok}:",
                f"            {v} = _nd(h.shape, h.dtype, {v}, h.offset, None, h.order)",
                f"        else: {v} = _fix({i}, {v}, d)",
                f"    else: {v} = _fix({i}, {v}, d)",
            ]
            pack += [
                f"    if {v}.__class__ is _ndarray{dtype_ok}:",
                f"        try: {v} = _enc({v})",
                f"        except _IA: {v} = _pfix({i}, {v})  # raises, naming the field",
                f"    else: {v} = _pfix({i}, {v})",
            ]
        else:
            py = {"list": "_list", "dict": "_dict"}.get(spec.kind) or PRIMITIVE_KINDS[spec.kind].__name__
            dec.append(f"    if {v}.__class__ is not {py}: {v} = _fix({i}, {v}, d)")
            if spec.kind == "list":
                dec.append(f"    elif not _items_ok[{i}]({v}): {v} = _fix({i}, {v}, d)")
            pack.append(f"    if {v}.__class__ is not {py}: {v} = _pfix({i}, {v})")
            if spec.kind == "list":
                pack.append(f"    elif not _items_ok[{i}]({v}): {v} = _pfix({i}, {v})")
            elif spec.kind == "dict":
                pack.append(f"    elif _bad_key({v}) is not _M: {v} = _pfix({i}, {v})")
    env["_items_ok"] = {i: _items_checker(s.items) for i, s in enumerate(specs) if s.items is not None}
    if _uses_slots(cls, specs):
        dec += ["    o = _new(_cls)"] + [f"    _set(o, {s.name!r}, v{i})" for i, s in enumerate(specs)]
    else:
        dec += ["    o = _new(_cls)", "    od = o.__dict__"] + [
            f"    od[{s.name!r}] = v{i}" for i, s in enumerate(specs)
        ]
    dec.append("    return o")
    pack_map = ", ".join(f"{s.name!r}: v{i}" for i, s in enumerate(specs))
    pack += [
        f"    m = {{{pack_map}}}",
        "    try: return _packb(m)",
        "    except (TypeError, ValueError, OverflowError) as e: return _pack_error(m, e)",
    ]
    exec(compile("\n".join(line for line in dec + pack if line), f"<atdata codec {cls.__qualname__}>", "exec"), env)
    return env["decode"], env["pack"]


def _items_checker(items: FieldSpec) -> Callable[[list[Any]], bool]:
    py = PRIMITIVE_KINDS[items.kind]
    return lambda values: all(x.__class__ is py for x in values)


def _uses_slots(cls: type, specs: tuple[FieldSpec, ...]) -> bool:
    slots: set[str] = set()
    for klass in cls.__mro__:
        declared = vars(klass).get("__slots__", ())
        slots.update([declared] if isinstance(declared, str) else declared)
    return any(spec.name in slots for spec in specs)


class _Fixer:
    """Slow paths of the generated codec: conversions that are allowed, and errors."""

    def __init__(self, cls: type, specs: tuple[FieldSpec, ...]) -> None:
        self.owner = cls.__qualname__
        self.specs = specs

    def bad_map(self, data: Any) -> None:
        raise SampleDecodeError(
            f"{self.owner}: a sample must be a msgpack map of field name -> value, found {type(data).__name__}"
        )

    def decoded(self, i: int, value: Any, data: dict[str, Any]) -> Any:
        """A decoded value that missed the fast path: convert it or raise naming the field."""
        spec = self.specs[i]
        where = f"{self.owner}.{spec.name}"
        if value is _MISSING:
            if spec.optional:
                return None
            raise SampleDecodeError(
                f"{where}: required field missing. Expected fields {[s.name for s in self.specs]}, "
                f"found {sorted(map(str, data))} (is this a shard of another sample type?)"
            )
        if value is None and spec.optional:
            return None
        if spec.kind == "ndarray" and value.__class__ is bytes:
            try:
                array = _npy.decode(value)
            except SampleDecodeError as exc:
                raise SampleDecodeError(f"{where}: {exc}") from exc
            if spec.dtype is None or _dtype_admits(spec.dtype, array.dtype):
                return array  # a new header, another byte order, or a width of a flexible dtype
            raise SampleDecodeError(f"{where}: expected an array of dtype {spec.dtype}, found dtype {array.dtype}")
        converted = _convert(spec, value)
        if converted is _MISSING:
            raise SampleDecodeError(f"{where}: expected {_describe(spec)}, found {_describe_value(value)}")
        return converted

    def to_pack(self, i: int, value: Any) -> Any:
        """A value to pack that missed the fast path: convert it or raise naming the field."""
        spec = self.specs[i]
        where = f"{self.owner}.{spec.name}"
        if value is None and spec.optional:
            return None
        if spec.kind == "ndarray":
            if not isinstance(value, np.ndarray):
                raise InvalidArgument(
                    f"{where}: expected {_describe(spec)}, got {_describe_value(value)}; wrap it with np.asarray(...)"
                )
            # Here: an ndarray subclass (np.matrix, memmap), the annotated dtype in the other
            # byte order or a width of a flexible one, all stored as is; or another dtype, refused.
            if spec.dtype is None or _dtype_admits(spec.dtype, value.dtype):
                return self.encode(i, np.asarray(value))
            raise InvalidArgument(
                f"{where}: annotated dtype {spec.dtype}, got an array of dtype {value.dtype}; "
                f"convert it with .astype(np.{np.dtype(spec.dtype).type.__name__})"
            )
        if spec.kind == "dict" and isinstance(value, dict):
            _check_keys(where, value)
        converted = _convert(spec, _plain(value))
        if converted is _MISSING:
            raise InvalidArgument(f"{where}: expected {_describe(spec)}, got {_describe_value(value)}")
        return converted

    def encode(self, i: int, value: np.ndarray) -> bytes:
        try:
            return _npy.encode(value)
        except InvalidArgument as exc:
            raise InvalidArgument(f"{self.owner}.{self.specs[i].name}: {exc}") from exc

    def pack_error(self, packed: dict[str, Any], cause: Exception) -> bytes:
        """Retry with NumPy scalars (e.g. inside dict fields) made plain, else name the field."""
        try:
            return msgpack.packb(packed, default=_numpy_scalar)
        except (TypeError, ValueError, OverflowError):
            pass
        for name, value in packed.items():
            try:
                msgpack.packb(value, default=_numpy_scalar)
            except (TypeError, ValueError, OverflowError) as exc:
                raise InvalidArgument(f"{self.owner}.{name}: value cannot be packed: {exc}") from cause
        raise InvalidArgument(f"{self.owner}: sample cannot be packed: {cause}") from cause


def _convert(spec: FieldSpec, value: Any) -> Any:
    """``value`` in the wire type of a (non-None) ``spec``, or ``_MISSING`` if it has none."""
    kind = spec.kind
    if kind == "float" and value.__class__ is int:
        return float(value)
    if kind in PRIMITIVE_KINDS:
        py = PRIMITIVE_KINDS[kind]
        if isinstance(value, py) and not (py is int and isinstance(value, bool)):
            return py(value)
        if kind == "bytes" and isinstance(value, (bytearray, memoryview)):
            return bytes(value)
        return _MISSING
    if kind == "list" and isinstance(value, (list, tuple)):
        assert spec.items is not None
        items = [_convert(spec.items, _plain(x)) for x in value]
        return _MISSING if any(x is _MISSING for x in items) else items
    if kind == "dict" and isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return dict(value)
    return _MISSING


def _dtype_admits(annotated: str, actual: np.dtype) -> bool:
    """Whether arrays of dtype ``actual`` fit a field annotated with dtype ``annotated``.

    Byte order is free (``np.save`` keeps it). ``NDArray[np.str_]``, ``NDArray[np.bytes_]``
    and ``NDArray[np.datetime64]`` name no width or unit, so every width or unit of that
    scalar type fits; comparing dtypes alone would refuse every array they could hold.
    """
    expected = np.dtype(annotated)
    if actual.newbyteorder("=") == expected:
        return True
    flexible = expected.itemsize == 0 or (expected.kind in "mM" and np.datetime_data(expected)[0] == "generic")
    return flexible and actual.type is expected.type


def _unreadable_key(value: Any) -> Any:
    """The first map key in ``value`` (nested in maps and lists) that no reader accepts, else ``_MISSING``.

    msgpack packs any key, but reading with ``strict_map_key`` (msgpack's default, which
    guards against hash flooding) accepts only str and bytes keys: a sample with an int
    key would be written and then never read back.
    """
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, bytes)):
                return key
            bad = _unreadable_key(item)
            if bad is not _MISSING:
                return bad
    elif isinstance(value, (list, tuple)):
        for item in value:
            bad = _unreadable_key(item)
            if bad is not _MISSING:
                return bad
    return _MISSING


def _check_keys(where: str, value: Any) -> None:
    bad = _unreadable_key(value)
    if bad is not _MISSING:
        raise InvalidArgument(
            f"{where}: map key {bad!r} ({type(bad).__name__}) could not be read back: samples are read "
            f"with msgpack's strict_map_key, which accepts only str or bytes keys; convert the key to str"
        )


def _plain(value: Any) -> Any:
    """NumPy scalars as the Python scalars msgpack can pack."""
    return value.item() if isinstance(value, np.generic) else value


def _numpy_scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot pack {type(value).__name__} {value!r:.80}")


def _describe(spec: FieldSpec) -> str:
    if spec.kind == "ndarray":
        what = f"an NDArray of dtype {spec.dtype}" if spec.dtype else "an NDArray"
        what += " (.npy bytes on the wire)"
    elif spec.kind == "list":
        assert spec.items is not None
        what = f"list[{spec.items.kind}]"
    elif spec.kind == "dict":
        what = "dict[str, Any]"
    else:
        what = spec.kind
    return f"{what} or None" if spec.optional else what


def _describe_value(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, (bytes, bytearray)):
        return f"{type(value).__name__} of length {len(value)}"
    return f"{type(value).__name__} {value!r:.60}"


def _values_equal(a: Any, b: Any) -> bool:
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
        return len(a) == len(b) and all(_values_equal(x, y) for x, y in zip(a, b))
    return bool(a == b) and type(a) is type(b)


def _short_repr(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array(shape={value.shape}, dtype={value.dtype})"
    return repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
