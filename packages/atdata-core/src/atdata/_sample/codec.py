"""The codec of a sample class: a decode and a pack function generated for its fields.

The line msgpack draws between a type and its codec: :mod:`atdata._sample.packable` makes
the class, this module makes, once per class, the functions that turn an unpacked msgpack
map into an instance and an instance into msgpack bytes. They are generated from the
class's :class:`~atdata._sample.fields.FieldSpec` tuple (the way ``dataclasses``
generates ``__init__``), so decoding a sample costs one type check per field and no
``typing`` introspection; anything off the fast path (a conversion, an error) goes to
:class:`_Fixer`, so every error names ``Class.field``, what was expected and what was found.
Decoding builds instances without calling ``__init__``/``__post_init__``, as ``pickle`` does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import msgpack
import numpy as np

from .. import npy
from ..errors import InvalidArgument, SampleDecodeError
from .fields import PRIMITIVE_KINDS, FieldSpec, field_specs

__all__ = ["MISSING", "Codec", "check_keys", "describe_value", "numpy_scalar", "unpack"]

#: A field absent from the map being decoded.
MISSING: Any = object()


class Codec:
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


def _compile(cls: type, specs: tuple[FieldSpec, ...]) -> tuple[Callable[[Any], Any], Callable[[Any], bytes]]:
    """Generate the decode and pack functions of ``cls`` (one type check per field)."""
    fixer = _Fixer(cls, specs)
    env: dict[str, Any] = {
        "_cls": cls,
        "_new": object.__new__,
        "_set": object.__setattr__,
        "_M": MISSING,
        "_bytes": bytes,
        "_list": list,
        "_dict": dict,
        "_ndarray": np.ndarray,
        "_hget": npy.cached_header,
        "_nd": np.ndarray,
        "_enc": npy.encode,
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
        field_dec, field_pack = _field_lines(i, spec, env)
        dec += field_dec
        pack += field_pack
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


def _field_lines(i: int, spec: FieldSpec, env: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The lines of the decode and of the pack function that handle field ``i``.

    Each reads the value into ``v{i}``, keeps it when its class is the wire type (one
    check) and else hands it to the slow path (``_fix``, ``_pfix``). Adds the dtype the
    field checks to ``env``.
    """
    v, name = f"v{i}", repr(spec.name)
    dec = [f"    {v} = get({name}, _M)"]
    pack = [f"    {v} = self.{spec.name}"]
    if spec.kind == "ndarray":
        env[f"_dt{i}"] = None if spec.dtype is None else np.dtype(spec.dtype)
        dtype_ok = "" if spec.dtype is None else f" and {v}.dtype == _dt{i}"
        header_ok = "" if spec.dtype is None else f" and h.dtype is _dt{i}"
        dec += [  # the fast path of npy.decode, inlined; anything unusual goes to _fix
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
    return dec, pack


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
        if value is MISSING:
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
                array = npy.decode(value)
            except SampleDecodeError as exc:
                raise SampleDecodeError(f"{where}: {exc}") from exc
            if spec.dtype is None or _dtype_admits(spec.dtype, array.dtype):
                return array  # a new header, another byte order, or a width of a flexible dtype
            raise SampleDecodeError(f"{where}: expected an array of dtype {spec.dtype}, found dtype {array.dtype}")
        converted = _convert(spec, value)
        if converted is MISSING:
            raise SampleDecodeError(f"{where}: expected {_describe(spec)}, found {describe_value(value)}")
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
                    f"{where}: expected {_describe(spec)}, got {describe_value(value)}; wrap it with np.asarray(...)"
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
            check_keys(where, value)
        converted = _convert(spec, _plain(value))
        if converted is MISSING:
            raise InvalidArgument(f"{where}: expected {_describe(spec)}, got {describe_value(value)}")
        return converted

    def encode(self, i: int, value: np.ndarray) -> bytes:
        try:
            return npy.encode(value)
        except InvalidArgument as exc:
            raise InvalidArgument(f"{self.owner}.{self.specs[i].name}: {exc}") from exc

    def pack_error(self, packed: dict[str, Any], cause: Exception) -> bytes:
        """Retry with NumPy scalars (e.g. inside dict fields) made plain, else name the field."""
        try:
            return msgpack.packb(packed, default=numpy_scalar)
        except (TypeError, ValueError, OverflowError):
            pass
        for name, value in packed.items():
            try:
                msgpack.packb(value, default=numpy_scalar)
            except (TypeError, ValueError, OverflowError) as exc:
                raise InvalidArgument(f"{self.owner}.{name}: value cannot be packed: {exc}") from cause
        raise InvalidArgument(f"{self.owner}: sample cannot be packed: {cause}") from cause


def _convert(spec: FieldSpec, value: Any) -> Any:
    """``value`` in the wire type of a (non-None) ``spec``, or ``MISSING`` if it has none."""
    kind = spec.kind
    if kind == "float" and value.__class__ is int:
        return float(value)
    if kind in PRIMITIVE_KINDS:
        py = PRIMITIVE_KINDS[kind]
        if isinstance(value, py) and not (py is int and isinstance(value, bool)):
            return py(value)
        if kind == "bytes" and isinstance(value, (bytearray, memoryview)):
            return bytes(value)
        return MISSING
    if kind == "list" and isinstance(value, (list, tuple)):
        assert spec.items is not None
        items = [_convert(spec.items, _plain(x)) for x in value]
        return MISSING if any(x is MISSING for x in items) else items
    if kind == "dict" and isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return dict(value)
    return MISSING


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
    """The first map key in ``value`` (nested in maps and lists) that no reader accepts, else ``MISSING``.

    msgpack packs any key, but reading with ``strict_map_key`` (msgpack's default, which
    guards against hash flooding) accepts only str and bytes keys: a sample with an int
    key would be written and then never read back.
    """
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, bytes)):
                return key
            bad = _unreadable_key(item)
            if bad is not MISSING:
                return bad
    elif isinstance(value, (list, tuple)):
        for item in value:
            bad = _unreadable_key(item)
            if bad is not MISSING:
                return bad
    return MISSING


def check_keys(where: str, value: Any) -> None:
    bad = _unreadable_key(value)
    if bad is not MISSING:
        raise InvalidArgument(
            f"{where}: map key {bad!r} ({type(bad).__name__}) could not be read back: samples are read "
            f"with msgpack's strict_map_key, which accepts only str or bytes keys; convert the key to str"
        )


def _plain(value: Any) -> Any:
    """NumPy scalars as the Python scalars msgpack can pack."""
    return value.item() if isinstance(value, np.generic) else value


def numpy_scalar(value: Any) -> Any:
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


def describe_value(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, (bytes, bytearray)):
        return f"{type(value).__name__} of length {len(value)}"
    return f"{type(value).__name__} {value!r:.60}"


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
