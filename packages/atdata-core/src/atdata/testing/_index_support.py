"""What the index suite's parts share: a stand-in dataset, sample types made at run time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck

import atdata
from atdata.protocols import AbstractIndex

__all__ = ["REF", "SHARED_BODY", "FakeDataset", "atdata_ndarray", "make_sample_type", "require"]

REF = "local://schemas/conformance.Sample@1.0.0"

# The property tests take the per-test ``index`` fixture (each example uses fresh names,
# so sharing it is safe) and run from several backend subclasses by design.
SHARED_BODY = [HealthCheck.function_scoped_fixture, HealthCheck.differing_executors]


@dataclass
class FakeDataset:
    """Stands in for ``atdata.Dataset``: an index reads only ``url`` and ``sample_type``."""

    url: str | list[str]
    sample_type: type | None = None
    shard_list: list[str] = field(default_factory=list)


def make_sample_type(name: str, fields: dict[str, Any], module: str = "conformance") -> type:
    """A packable sample class built at run time (so the suite imports without side effects)."""
    return atdata.packable(type(name, (), {"__annotations__": dict(fields), "__module__": module}))


def require(index: AbstractIndex, method: str) -> Callable[..., Any]:
    """``index.method``, or skip: methods beyond ``AbstractIndex`` are optional capabilities."""
    if not hasattr(index, method):
        pytest.skip(f"{type(index).__name__} has no {method}() (optional capability)")
    return getattr(index, method)


def atdata_ndarray() -> Any:
    from numpy.typing import NDArray

    return NDArray
