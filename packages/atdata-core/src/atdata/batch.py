"""``SampleBatch[T]``: a batch of samples held column by column.

A training step wants one array per field, not a list of objects: ``batch.features``
is a single ``(batch, *shape)`` array that can go to the accelerator in one copy. The
reader (:mod:`atdata._read.columns`) fills the columns straight from the shard bytes, so a
batch never holds per-sample objects unless you iterate over it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Generic, TypeVar

import numpy as np

from . import _wire
from .sample import DictSample

__all__ = ["SampleBatch"]

T = TypeVar("T")


class SampleBatch(Generic[T]):
    """Samples of one type, one attribute per field.

    NDArray fields whose arrays share dtype and shape are stacked into one array of
    shape ``(len(batch), *shape)``; every other field (and an NDArray field whose
    samples differ in shape, or hold ``None``) is a list with one value per sample.

    Parameters
    ----------
    sample_type
        The sample class (``DictSample`` for schema-less data).
    columns
        Field name -> stacked array or list, all of the same length.
    keys
        The ``__key__`` of each sample, in batch order.

    Examples
    --------
    >>> for batch in dataset.ordered(batch_size=32):  # doctest: +SKIP
    ...     batch.features.shape   # (32, 128)
    ...     batch.label            # [3, 7, ...]
    ...     first = batch[0]       # a TrainingSample
    """

    __slots__ = ("_columns", "_len", "keys", "sample_type")

    def __init__(self, sample_type: type[T], columns: Mapping[str, np.ndarray | list[Any]], keys: list[str]) -> None:
        self.sample_type = sample_type
        self._columns = dict(columns)
        self.keys = keys
        self._len = len(keys)

    @property
    def columns(self) -> dict[str, np.ndarray | list[Any]]:
        """Field name -> column (stacked array or list)."""
        return self._columns

    def __getattr__(self, name: str) -> np.ndarray | list[Any]:
        if name.startswith("_"):  # unpickling asks before the slots are set
            raise AttributeError(name)
        try:
            return self._columns[name]
        except KeyError:
            raise AttributeError(
                f"{type(self).__name__}[{self.sample_type.__name__}] has no field {name!r}; "
                f"fields: {sorted(self._columns)}"
            ) from None

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: int) -> T:
        """Sample ``index`` of the batch, rebuilt from the columns (arrays are views)."""
        if not -self._len <= index < self._len:
            raise IndexError(f"batch index {index} out of range for a batch of {self._len}")
        values = {name: column[index] for name, column in self._columns.items()}
        if issubclass(self.sample_type, DictSample):
            return self.sample_type(values)  # type: ignore[return-value]
        return self.sample_type(**values)

    def __iter__(self) -> Iterator[T]:
        for i in range(self._len):
            yield self[i]

    def __repr__(self) -> str:
        shapes = ", ".join(
            f"{name}={col.dtype}{list(col.shape)}" if isinstance(col, np.ndarray) else f"{name}=list"
            for name, col in self._columns.items()
        )
        return f"SampleBatch[{self.sample_type.__name__}]({self._len} samples: {shapes})"


_wire.register(SampleBatch)  # how a batch crosses processes (DataLoader workers): see atdata._wire
