"""Hypothesis strategies for generated sample types, shared by the property tests.

A generated sample type has random field names and any supported field type (primitives,
NDArray with or without a dtype, lists, ``dict[str, Any]``, optionals of all of them),
and comes with a strategy for its values. Arrays come in any dtype byte order, shape
(0-d and empty included) and memory layout, because packing must be exact for all of
them. Class names are unique per draw: an index refuses a second schema with the same
``module.Class@version`` and different fields, and tests may share one server.
Needs hypothesis.
"""

from __future__ import annotations

import keyword
import uuid
from typing import Any, Optional

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

from .. import sample as _sample

__all__ = ["ENTRY_NAMES", "JSONISH", "PRIMITIVES", "SampleType", "arrays", "sample_types"]

#: Entry names: any printable text (``atdata.names.check_entry_name`` refuses control characters).
ENTRY_NAMES: st.SearchStrategy[str] = st.text(
    st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=20
).filter(str.strip)

#: Values of each primitive field type (integers over msgpack's whole range).
PRIMITIVES: dict[type, st.SearchStrategy[Any]] = {
    str: st.text(max_size=12),
    int: st.integers(min_value=-(2**63), max_value=2**64 - 1),
    float: st.floats(allow_nan=True, allow_infinity=True),
    bool: st.booleans(),
    bytes: st.binary(max_size=12),
}
#: Nested msgpack-able values: the contents of a ``dict[str, Any]`` field.
JSONISH = st.recursive(
    st.none()
    | st.booleans()
    | PRIMITIVES[int]
    | st.floats(allow_nan=False)
    | st.text(max_size=6)
    | st.binary(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)
_ANY_DTYPE = st.one_of(
    hnp.boolean_dtypes(),
    hnp.integer_dtypes(endianness="?"),
    hnp.unsigned_integer_dtypes(endianness="?"),
    hnp.floating_dtypes(endianness="?"),
    hnp.complex_number_dtypes(endianness="?"),
    hnp.datetime64_dtypes(endianness="?"),
)
_ANNOTATED_DTYPES = [np.bool_, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.int64, np.uint64,
                     np.float16, np.float32, np.float64, np.complex64, np.complex128]  # fmt: skip
_RESERVED = {name for name in dir(_sample.PackableSample) if not name.startswith("__")}  # packed, as_wds, ...
_FIELD_NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True).filter(
    lambda name: not keyword.iskeyword(name) and name not in _RESERVED
)

#: A generated class and, per field name, the strategy of its values.
SampleType = tuple[type[_sample.PackableSample], dict[str, st.SearchStrategy[Any]]]


@st.composite
def arrays(draw: st.DrawFn, dtype: Any = None) -> np.ndarray:
    """Arrays of any shape (0-d, empty), C, Fortran or non-contiguous layout.

    ``dtype`` fixes the dtype up to byte order; by default any numeric or datetime dtype.
    """
    dtype = draw(_ANY_DTYPE) if dtype is None else np.dtype(dtype).newbyteorder(draw(st.sampled_from("<>")))
    arr = draw(hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)))
    layout = draw(st.sampled_from(["C", "F", "strided", "transposed"]))
    if layout == "F":
        return np.asfortranarray(arr)
    if layout == "strided" and arr.ndim:
        return np.repeat(arr, 2, axis=0)[::2]
    if layout == "transposed":
        return arr.T
    return arr


@st.composite
def _field(draw: st.DrawFn) -> tuple[Any, st.SearchStrategy[Any]]:
    """One field: its annotation and a strategy for its values."""
    kind = draw(st.sampled_from(["primitive", "ndarray", "typed-ndarray", "list", "dict"]))
    annotation: Any
    if kind == "primitive":
        py = draw(st.sampled_from(list(PRIMITIVES)))
        annotation, values = py, PRIMITIVES[py]
    elif kind == "ndarray":
        annotation, values = NDArray, arrays()
    elif kind == "typed-ndarray":
        dtype = draw(st.sampled_from(_ANNOTATED_DTYPES))
        annotation, values = NDArray[dtype], arrays(dtype)  # type: ignore[valid-type]
    elif kind == "list":
        py = draw(st.sampled_from(list(PRIMITIVES)))
        annotation, values = list[py], st.lists(PRIMITIVES[py], max_size=4)  # type: ignore[valid-type]
    else:
        annotation, values = dict[str, Any], st.dictionaries(st.text(max_size=6), JSONISH, max_size=3)
    if draw(st.booleans()):
        return Optional[annotation], st.none() | values  # noqa: UP045 (the spelling users write)
    return annotation, values


@st.composite
def sample_types(draw: st.DrawFn, max_fields: int = 6, module: str = "generated") -> SampleType:
    """A fresh ``@atdata.packable`` class ``module.Gen<hex>`` with 1..max_fields random fields."""
    names = draw(st.lists(_FIELD_NAMES, min_size=1, max_size=max_fields, unique=True))
    fields = {name: draw(_field()) for name in names}
    namespace = {"__annotations__": {n: a for n, (a, _) in fields.items()}, "__module__": module}
    cls: type[_sample.PackableSample] = _sample.packable(type(f"Gen{uuid.uuid4().hex[:12]}", (), namespace))
    return cls, {n: v for n, (_, v) in fields.items()}
