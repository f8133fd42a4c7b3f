"""Progress of an insert: bytes, shards and samples per second on one tqdm bar.

``write_shards`` reports bytes and finished shards through a callback; samples are
counted by wrapping the sample iterator, which costs one increment per sample.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["InsertProgress"]


class InsertProgress:
    """Counts samples, bytes and shards of one insert; optionally drives a tqdm bar.

    Parameters
    ----------
    bar
        Show a tqdm bar on stderr (hidden automatically when stderr is not a terminal).
    description
        The bar's label (e.g. the dataset name).
    """

    def __init__(self, *, bar: bool, description: str = "inserting") -> None:
        self.samples = 0
        self.bytes = 0
        self.shards = 0
        self._start = time.monotonic()
        self._bar: Any = None
        if bar:
            from tqdm.auto import tqdm

            self._bar = tqdm(desc=description, unit="B", unit_scale=True, unit_divisor=1024, disable=None)

    def count(self, samples: Iterable[Any]) -> Iterator[Any]:
        """Yield ``samples`` unchanged, counting them."""
        for sample in samples:
            self.samples += 1
            yield sample

    def report(self, nbytes: int, nshards: int) -> None:
        """The ``progress`` callback of ``AbstractDataStore.write_shards``."""
        self.bytes += nbytes
        self.shards += nshards
        if self._bar is not None:
            self._bar.set_postfix(shards=self.shards, samples_per_s=f"{self.samples_per_second:,.0f}", refresh=False)
            self._bar.update(nbytes)

    @property
    def seconds(self) -> float:
        """Time since the insert started."""
        return time.monotonic() - self._start

    @property
    def samples_per_second(self) -> float:
        """Mean throughput so far."""
        return self.samples / max(self.seconds, 1e-9)

    def close(self) -> None:
        """Finish the bar (safe to call more than once)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
