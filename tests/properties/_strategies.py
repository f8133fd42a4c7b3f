"""Hypothesis strategies and helpers shared by the cross-package property tests.

Sample types come from :mod:`atdata.testing.strategies`, generated in module ``props``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from atdata.sample import fields_of
from atdata.testing import strategies as _shared
from atdata.testing.strategies import SampleType

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


def sample_types(max_fields: int = 6) -> st.SearchStrategy[SampleType]:
    """A fresh ``@atdata.packable`` class ``props.Gen<hex>`` with 1..max_fields random fields."""
    return _shared.sample_types(max_fields=max_fields, module=MODULE)


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
