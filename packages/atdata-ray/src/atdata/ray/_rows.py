"""Rows and blocks of Ray Data <-> samples and batches of atdata: the conversion, once.

Writing: a Ray row is a dict of column values (numpy scalars and arrays, str, bytes,
Python objects); it becomes ``sample_type(**row)`` with numpy scalars turned into
Python values, or, when its only column holds a packable object (a dataset of
``@atdata.packable`` instances), that object as is. Reading: an atdata ``SampleBatch``'s
columns become one Ray block (typed numpy columns; tensor fields as Ray's tensor
columns).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from atdata.errors import InvalidArgument
from atdata.sample import PackableSample
from ray.data.block import Block, BlockAccessor

__all__ = ["batch_to_block", "samples_from_blocks"]


def samples_from_blocks(blocks: Iterable[Block], sample_type: type) -> Iterator[Any]:
    """Every row of ``blocks``, in order, as a ``sample_type`` instance."""
    for block in blocks:
        rows: Iterable[Mapping[str, Any]] = BlockAccessor.for_block(block).iter_rows(public_row_format=True)
        for row in rows:
            yield _sample(row, sample_type)


def _sample(row: Mapping[str, Any], sample_type: type) -> Any:
    if len(row) == 1:
        (only,) = row.values()
        if isinstance(only, PackableSample):
            return only
    try:
        return sample_type(**{name: _python(value) for name, value in row.items()})
    except TypeError as exc:
        raise InvalidArgument(
            f"a row with columns {sorted(row)} is not a {sample_type.__qualname__}: {exc}; make each row hold "
            f"its fields (map to dicts with those keys) or one column of {sample_type.__qualname__} objects"
        ) from exc


def _python(value: Any) -> Any:
    """A numpy scalar as the Python value a sample field takes (arrays stay arrays)."""
    return value.item() if isinstance(value, np.generic) else value


def batch_to_block(columns: Mapping[str, np.ndarray | list[Any]]) -> Block:
    """One Ray block from a batch's columns (lists become numpy arrays: str, bytes or object)."""
    batch = {
        name: column if isinstance(column, np.ndarray) else _list_column(column) for name, column in columns.items()
    }
    return BlockAccessor.batch_to_block(batch)


def _list_column(values: list[Any]) -> np.ndarray:
    if values and all(isinstance(v, (str, bytes)) for v in values):
        return np.asarray(values)
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column
