"""Turn a sample class's annotations into :class:`FieldSpec` records, once per class.

Every consumer of a sample type (the codec in :mod:`atdata._sample.codec`, the batch reader,
the schema codec) works from the same tuple of ``FieldSpec`` instead of re-inspecting
``typing`` objects, so annotation handling lives here and runs at decoration time,
never per sample. An annotation atdata cannot pack fails here, with the class, the
field and the list of what is supported, rather than later while writing a shard.
"""

from __future__ import annotations

import dataclasses
import types
import typing
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import UnsupportedFieldType

__all__ = [
    "NDARRAY_DTYPE_KINDS",
    "PRIMITIVE_KINDS",
    "SUPPORTED",
    "FieldSpec",
    "check_annotations",
    "field_specs",
    "spec_for_annotation",
]

#: Scalar kinds and the Python type each stands for on the wire.
PRIMITIVE_KINDS: dict[str, type] = {"str": str, "int": int, "float": float, "bool": bool, "bytes": bytes}

#: ``numpy.dtype.kind`` letters an NDArray field may hold: bool, integers, floats, complex,
#: datetimes/timedeltas and fixed-width strings. Object and structured dtypes are excluded
#: because the only way to load them is unpickling or arbitrary record layouts.
NDARRAY_DTYPE_KINDS = frozenset("biufcmMSU")

SUPPORTED = (
    "str, int, float, bool, bytes, NDArray (numpy.typing.NDArray or numpy.ndarray, optionally "
    "with a dtype such as NDArray[np.float32]), Optional[X] / X | None of any of these, "
    "list[X] of str/int/float/bool/bytes, and dict[str, Any]"
)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """What one field of a sample type holds, as the codec and the reader need it.

    Attributes
    ----------
    name
        Field name, also the key in the sample's msgpack map.
    kind
        One of ``"str"``, ``"int"``, ``"float"``, ``"bool"``, ``"bytes"``, ``"ndarray"``,
        ``"list"``, ``"dict"``.
    optional
        ``True`` when the annotation admits ``None`` (``Optional[X]`` or ``X | None``).
    items
        For ``kind == "list"``: the (non-optional, primitive) element spec; else ``None``.
    dtype
        For ``kind == "ndarray"`` annotated with a dtype (``NDArray[np.float32]``): the
        dtype name (``"float32"``); ``None`` when any dtype is accepted.
    """

    name: str
    kind: str
    optional: bool = False
    items: FieldSpec | None = None
    dtype: str | None = None


def field_specs(cls: type) -> tuple[FieldSpec, ...]:
    """Specs of every dataclass field of ``cls``, in declaration order.

    Parameters
    ----------
    cls
        A dataclass (normally a :class:`atdata.PackableSample` subclass).

    Raises
    ------
    UnsupportedFieldType
        If a field's annotation is not packable, or cannot be resolved.
    """
    hints = _resolved_hints(cls)
    return tuple(
        spec_for_annotation(hints.get(f.name, f.type), name=f.name, owner=cls.__qualname__)
        for f in dataclasses.fields(cls)
    )


def check_annotations(cls: type) -> None:
    """Validate the annotations of a class that is not (yet) a dataclass.

    ``PackableSample.__init_subclass__`` runs before ``@dataclass`` has processed the
    class body, so it checks the annotations directly (skipping ``ClassVar`` and
    ``InitVar``, which dataclasses do not turn into fields). Annotations that name
    something not defined yet are left for :func:`field_specs` at first use.
    """
    try:
        hints = typing.get_type_hints(cls)
    except NameError:
        return
    except Exception as exc:  # a malformed annotation, e.g. list[int, str, bytes]()
        raise UnsupportedFieldType(
            f"{cls.__qualname__}: cannot evaluate its annotations ({exc}). Supported: {SUPPORTED}."
        ) from exc
    for name, annotation in hints.items():
        if typing.get_origin(annotation) is typing.ClassVar or annotation is typing.ClassVar:
            continue
        if isinstance(annotation, dataclasses.InitVar):
            continue
        spec_for_annotation(annotation, name=name, owner=cls.__qualname__)


def spec_for_annotation(annotation: Any, *, name: str, owner: str) -> FieldSpec:
    """The :class:`FieldSpec` for one annotation.

    Parameters
    ----------
    annotation
        A resolved annotation (not a string).
    name
        The field name (stored in the spec and quoted in errors).
    owner
        The class name, quoted in errors.

    Raises
    ------
    UnsupportedFieldType
        Naming ``owner.name``, the annotation and the supported types.
    """
    inner, optional = _strip_optional(annotation)
    spec = _spec_for_required(inner, name)
    if spec is None:
        raise UnsupportedFieldType(
            f"{owner}.{name}: unsupported field type {_show(annotation)}. Supported: {SUPPORTED}."
        )
    return dataclasses.replace(spec, optional=True) if optional else spec


def _resolved_hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception as exc:
        raise UnsupportedFieldType(
            f"{cls.__qualname__}: cannot resolve its annotations ({exc}). Define every name an "
            f"annotation uses at module level before the class is first used."
        ) from exc


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        args = typing.get_args(annotation)
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1 and len(args) == 2:
            return non_none[0], True
    return annotation, False


def _spec_for_required(annotation: Any, name: str) -> FieldSpec | None:
    for kind, py_type in PRIMITIVE_KINDS.items():
        if annotation is py_type:
            return FieldSpec(name=name, kind=kind)
    if annotation is np.ndarray:
        return FieldSpec(name=name, kind="ndarray")
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is np.ndarray:
        dtype = _ndarray_dtype(args)
        return None if dtype is False else FieldSpec(name=name, kind="ndarray", dtype=dtype)
    if origin is list and len(args) == 1:
        for kind, py_type in PRIMITIVE_KINDS.items():
            if args[0] is py_type:
                return FieldSpec(name=name, kind="list", items=FieldSpec(name="item", kind=kind))
        return None
    if annotation is dict or (origin is dict and args == (str, Any)):
        return FieldSpec(name=name, kind="dict")
    return None


def _ndarray_dtype(args: tuple[Any, ...]) -> str | None | typing.Literal[False]:
    """The dtype name in ``ndarray[shape, dtype[X]]``: ``None`` for "any", ``False`` if refused."""
    if len(args) != 2:
        return None
    dtype_args = typing.get_args(args[1])
    if not dtype_args:
        return None
    scalar = dtype_args[0]
    if isinstance(scalar, typing.TypeVar) or scalar is Any:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            dtype = np.dtype(scalar)
    except Exception:  # abstract scalar types (np.floating) have no single dtype
        return False
    if dtype.kind not in NDARRAY_DTYPE_KINDS or dtype.hasobject:
        return False
    return dtype.name


def _show(annotation: Any) -> str:
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__qualname__
    return repr(annotation)
