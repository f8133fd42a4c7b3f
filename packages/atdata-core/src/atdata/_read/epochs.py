"""Which epoch a loader reads next, agreed by the process that made it and its DataLoader workers.

A ``DataLoader`` with non-persistent workers gives each epoch fresh copies of the loader
(forked, or pickled for ``spawn``), made from the main process's copy, which never
iterates: a count kept in the loader object would start every epoch at 0, so every
epoch would have the same order. The count lives in a small shared memory block
instead, made with the loader and inherited by every worker (forked memory, or passed
while the worker is spawned): each worker records there the last epoch it read to the
end, and the next epoch is one past the epoch every worker has finished. An epoch that
is broken off (``break`` out of the loop) is not finished, so it is read again.
``set_epoch`` in the main process writes the block, so it reaches persistent workers too.
"""

from __future__ import annotations

import multiprocessing.context
import multiprocessing.sharedctypes
from collections.abc import Sequence
from typing import Any

__all__ = ["EpochClock"]

#: DataLoader workers a clock keeps a slot for; more share the last slot's count.
SLOTS = 512


class EpochClock:
    """Per worker slot: one past the last epoch it read to the end. Slot ``SLOTS``: read by workers."""

    def __init__(self, values: Sequence[int] | None = None) -> None:
        self._slots: Any = multiprocessing.sharedctypes.RawArray("q", SLOTS + 1)
        if values is not None:
            self._slots[:] = list(values)

    def next_epoch(self, worker: int, workers: int) -> int:
        """The epoch reader ``worker`` of ``workers`` reads next: one past what all finished."""
        return min(self._slots[min(i, SLOTS - 1)] for i in range(workers))

    def finish(self, worker: int, epoch: int) -> None:
        slot = min(worker, SLOTS - 1)
        self._slots[slot] = max(self._slots[slot], epoch + 1)

    def set(self, epoch: int) -> None:
        """Every reader reads ``epoch`` next."""
        self._slots[:SLOTS] = [epoch] * SLOTS

    def mark_worker_read(self) -> None:
        self._slots[SLOTS] = 1

    @property
    def workers_read(self) -> bool:
        """Whether DataLoader workers of this loader have iterated it."""
        return bool(self._slots[SLOTS])

    def __reduce__(self) -> tuple[Any, ...]:
        # Shared only with processes being started from this one (DataLoader workers);
        # any other pickle (a saved loader) gets a copy of the counts.
        if multiprocessing.context.get_spawning_popen() is not None:
            return _attach, (self._slots,)
        return EpochClock, (list(self._slots),)


def _attach(slots: Any) -> EpochClock:
    clock = EpochClock.__new__(EpochClock)
    clock._slots = slots
    return clock
