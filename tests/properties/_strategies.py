"""Hypothesis strategies shared by the cross-package property tests.

A generated sample type has random field names and any supported field type (primitives,
NDArray with or without a dtype, lists, ``dict[str, Any]``, optionals of all of them),
and comes with a strategy for its values. Class names are unique per draw: the index
refuses a second schema with the same ``module.Class@version`` and different fields,
and these tests share one Redis server.
"""

from __future__ import annotations

import keyword
import uuid
from typing import Any, Optional

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

import atdata
from atdata.sample import PackableSample, fields_of

__all__ = [
    "MODULE",
    "SampleType",
    "assert_same_values",
    "real_server_settings",
    "sample_types",
    "semvers",
    "values_of",
]

#: ``__module__`` of generated classes: their schema refs read ``local://schemas/props.Gen...``.
MODULE = "props"

_RESERVED = {name for name in dir(PackableSample) if not name.startswith("__")}  # packed, as_wds, ...
FIELD_NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,11}", fullmatch=True).filter(
    lambda name: not keyword.iskeyword(name) and name not in _RESERVED
)

_PRIMITIVES: dict[type, st.SearchStrategy[Any]] = {
    str: st.text(max_size=12),
    int: st.integers(min_value=-(2**63), max_value=2**64 - 1),  # msgpack's integer range
    float: st.floats(allow_nan=True, allow_infinity=True),
    bool: st.booleans(),
    bytes: st.binary(max_size=12),
}
_DTYPES = [np.bool_, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.int64, np.uint64,
           np.float16, np.float32, np.float64, np.complex64, np.complex128]  # fmt: skip
_ANY_DTYPE = st.one_of(
    hnp.boolean_dtypes(),
    hnp.integer_dtypes(endianness="?"),
    hnp.unsigned_integer_dtypes(endianness="?"),
    hnp.floating_dtypes(endianness="?"),
    hnp.complex_number_dtypes(endianness="?"),
)
_SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)

def real_server_settings(cap: int, share: float = 1.0) -> settings:
    """Settings for a property test on the real servers: ``share`` of the profile's examples, at most ``cap``.

    Each example costs real round trips (tenths of a second, several inserts for some
    tests), and pytest's 300 s timeout applies to the whole test: the ``thorough``
    profile's 1000 examples would not fit, and the default run must stay quick.
    The test's factory fixtures are function-scoped on purpose (every example makes its
    own index or repo from them), hence the suppressed health check.
    """
    return settings(
        max_examples=max(1, min(int(settings.default.max_examples * share), cap)),
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )


#: A generated class and, per field name, the strategy of its values.
SampleType = tuple[type[PackableSample], dict[str, st.SearchStrategy[Any]]]


@st.composite
def _field(draw: st.DrawFn) -> tuple[Any, st.SearchStrategy[Any]]:
    """One field: its annotation and a strategy for its values."""
    kind = draw(st.sampled_from(["primitive", "ndarray", "typed-ndarray", "list", "dict"]))
    if kind == "primitive":
        py = draw(st.sampled_from(list(_PRIMITIVES)))
        annotation, values = py, _PRIMITIVES[py]
    elif kind == "ndarray":
        annotation, values = NDArray, hnp.arrays(_ANY_DTYPE, _SHAPES)
    elif kind == "typed-ndarray":
        dtype = draw(st.sampled_from(_DTYPES))
        annotation, values = NDArray[dtype], hnp.arrays(np.dtype(dtype), _SHAPES)
    elif kind == "list":
        py = draw(st.sampled_from(list(_PRIMITIVES)))
        annotation, values = list[py], st.lists(_PRIMITIVES[py], max_size=4)  # type: ignore[valid-type]
    else:
        annotation, values = dict[str, Any], st.dictionaries(st.text(max_size=6), _JSONISH, max_size=3)
    if draw(st.booleans()):
        return Optional[annotation], st.none() | values
    return annotation, values


@st.composite
def sample_types(draw: st.DrawFn, max_fields: int = 6) -> SampleType:
    """A fresh ``@atdata.packable`` class with 1..max_fields random fields."""
    names = draw(st.lists(FIELD_NAMES, min_size=1, max_size=max_fields, unique=True))
    fields = {name: draw(_field()) for name in names}
    class_name = f"Gen{uuid.uuid4().hex[:12]}"
    namespace = {"__annotations__": {n: a for n, (a, _) in fields.items()}, "__module__": MODULE}
    cls = atdata.packable(type(class_name, (), namespace))
    return cls, {n: v for n, (_, v) in fields.items()}


def values_of(generated: SampleType, min_size: int = 1, max_size: int = 8) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Field-value dicts for ``generated``'s class (build samples of any class with the same fields)."""
    _, strategies = generated
    return st.lists(st.fixed_dictionaries(strategies), min_size=min_size, max_size=max_size)


semvers = st.tuples(st.integers(0, 30), st.integers(0, 30), st.integers(0, 30)).map(lambda v: "{}.{}.{}".format(*v))


def assert_same_values(expected: Any, actual: Any) -> None:
    """Field by field, exactly: same array dtype (byte order included), shape and contents; NaN == NaN.

    ``expected`` and ``actual`` may be samples of different classes with the same fields
    (an original class and the one generated from its schema).
    """
    names = [spec.name for spec in fields_of(type(expected))]
    assert names == [spec.name for spec in fields_of(type(actual))]
    for name in names:
        _assert_value(getattr(expected, name), getattr(actual, name), name)


def _assert_value(a: Any, b: Any, where: str) -> None:
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray), where
        assert (a.dtype.str, a.shape) == (b.dtype.str, b.shape), where
        np.testing.assert_array_equal(a, b, err_msg=where)
    elif isinstance(a, float) and a != a:
        assert isinstance(b, float) and b != b, where
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_value(x, y, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), where
        for key in a:
            _assert_value(a[key], b[key], f"{where}[{key!r}]")
    else:
        assert type(a) is type(b) and a == b, (where, a, b)
