"""``TorchLoader``: a PyTorch ``DataLoader`` whose workers send several batches per message.

Each item of a ``DataLoader`` is one message of its worker queue, and on a 2-core machine
a message costs about 0.1 ms of torch's machinery whatever it holds: for batches of 32
small samples that is more than reading them. A ``TorchLoader`` runs a plain
``DataLoader`` over a :class:`Grouped` view of the loader, whose workers yield
``batches_per_message`` of their batches at a time, and hands the batches on one by one
in the single-process order.

Worker ``w`` of ``n`` holds rounds ``w, w + n, ...`` of the epoch (:mod:`atdata._read.deal`),
so round ``j`` is the next one of worker ``j % n``: the main process keeps each worker's
received batches in a queue of their own and takes round ``j`` from queue ``j % n``,
waiting for that worker's next message when it is empty (at most one message per worker
is held). Since the batches come out in the order of one reader of this rank, the state
after ``k`` of them is that reader's state after ``k`` rounds: :meth:`TorchLoader.state_dict`
is computed in the main process, exact to the batch, with no help from the workers.
"""

from __future__ import annotations

import copy
import sys
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgument
from .state import merge_state_dicts

if TYPE_CHECKING:
    from .loader import Loader

__all__ = ["Grouped", "TorchLoader"]


class Grouped:
    """What each DataLoader worker iterates: lists of up to ``group`` of its loader items.

    A message is ``(worker, epoch, items, finals)``: ``finals[i]`` is the slot of an
    incomplete last round when ``items[i]`` is one (see ``Loader.state_dict``), else None.
    """

    def __init__(self, loader: Loader[Any], group: int) -> None:
        self.loader = loader
        self.group = group

    def __iter__(self) -> Iterator[tuple[int, int, list[Any], list[Any]]]:
        data = sys.modules.get("torch.utils.data")
        info = data.get_worker_info() if data is not None else None
        worker = info.id if info is not None else 0
        loader, items, finals = self.loader, [], []
        for item in loader:
            items.append(item)
            finals.append(loader._final)
            if len(items) == self.group:
                yield worker, loader.epoch, items, finals
                items, finals = [], []
        if items:
            yield worker, loader.epoch, items, finals


def _as_is(item: Any) -> Any:
    """The DataLoader's convert function: messages stay as the worker made them."""
    return item


class TorchLoader:
    """A ``torch.utils.data.DataLoader`` over a loader, several batches per worker message.

    Made by :meth:`Loader.torch_loader`. Iterate it like the DataLoader: every iteration is
    the next epoch, in the order one process reads, for any ``num_workers``.

    Parameters
    ----------
    loader
        The :class:`Loader` to read (batches or single samples).
    num_workers
        DataLoader worker processes (0: read in this process).
    batches_per_message
        How many of its batches a worker sends at once.
    **dataloader_options
        Passed to ``DataLoader`` (``pin_memory``, ``multiprocessing_context``,
        ``persistent_workers``, ``prefetch_factor``, ``timeout``...); ``batch_size`` and
        ``collate_fn`` are set here, and ``persistent_workers`` defaults to True (an epoch
        starts without new worker processes; the epoch count reaches them, see
        :mod:`atdata._read.epochs`).
    """

    def __init__(self, loader: Loader[Any], num_workers: int, batches_per_message: int, **dataloader_options: Any):
        data = sys.modules.get("torch.utils.data")
        if data is None:
            raise InvalidArgument("torch_loader() makes a torch DataLoader: import torch first")
        for name in ("batch_size", "collate_fn", "sampler", "batch_sampler", "shuffle"):
            if name in dataloader_options:
                raise InvalidArgument(f"torch_loader() sets {name} itself; make the loader with what you need instead")
        if not isinstance(batches_per_message, int) or isinstance(batches_per_message, bool) or batches_per_message < 1:
            raise InvalidArgument(f"batches_per_message must be a positive int, got {batches_per_message!r}")
        data.IterableDataset.register(Grouped)
        # Workers that stay: an epoch then starts without forking (or spawning) new ones.
        dataloader_options.setdefault("persistent_workers", num_workers > 0)
        self.loader = loader
        self.num_workers = num_workers
        self._dl = data.DataLoader(
            Grouped(loader, batches_per_message),
            batch_size=None,
            collate_fn=_as_is,
            num_workers=num_workers,
            **dataloader_options,
        )
        self._iterated = False
        self._progress: dict[str, Any] | None = None  # the main-process reader's state, once iterated
        self._loaded: dict[str, Any] | None = None  # the state last loaded

    def __iter__(self) -> Iterator[Any]:
        self._iterated = True
        loader = self.loader
        rank, world = loader._rank()
        next_epoch = loader._clock.next_epoch(0, max(1, self.num_workers))
        resuming = loader._resume and next_epoch <= loader.epoch  # what the workers' Loader._start decides
        epoch = loader.epoch + 1 if resuming and loader._finished else loader.epoch if resuming else next_epoch
        resuming = resuming and not loader._finished
        consumed = [list(span) for span in loader._consumed] if resuming else []
        progress = self._progress = loader._state(consumed, [world, rank, 1, 0, loader.batch_size or 1], 0, None, False)
        progress["epoch"] = epoch
        queues: list[deque[tuple[Any, Any]]] = [deque() for _ in range(max(1, self.num_workers))]
        messages = iter(self._dl)
        rounds = 0
        while True:
            queue = queues[rounds % len(queues)]
            while not queue:
                try:
                    worker, epoch, items, finals = next(messages)
                except StopIteration:
                    progress["finished"] = True
                    loader._resume = False  # the state it resumed from is spent
                    return
                progress["epoch"] = epoch
                queues[worker].extend(zip(items, finals))
            item, final = queue.popleft()
            rounds += 1
            progress["rounds"], progress["final"] = (rounds, None) if final is None else (rounds - 1, list(final))
            yield item

    def __len__(self) -> int:
        raise TypeError("a TorchLoader has no length: its batch count depends on the dataset's shards")

    def state_dict(self) -> dict[str, Any]:
        """Where the batches handed out so far end: a loader state (see ``Loader.state_dict``)
        counting the last batch received as consumed; :meth:`load_state_dict` of a
        ``TorchLoader`` with any number of workers, or ``merge_state_dicts([state])`` for a
        plain loader, resumes after it."""
        if self._progress is None:  # not iterated since made or loaded: where it stands
            return copy.deepcopy(self._loaded) if self._loaded is not None else self.loader.state_dict()
        return {**self._progress, "consumed": [list(s) for s in self._progress["consumed"]]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from ``state`` on the next iteration (before the first, with persistent workers)."""
        if self._iterated and getattr(self._dl, "persistent_workers", False):
            raise InvalidArgument(
                "this TorchLoader's persistent workers already hold their loader copies; make a new one to resume"
            )
        self.loader.load_state_dict(merge_state_dicts([state]) if state.get("reader") is not None else state)
        self._progress, self._loaded = None, copy.deepcopy(state)

    def set_epoch(self, epoch: int) -> None:
        """Read epoch ``epoch`` next (see ``Loader.set_epoch``)."""
        self.loader.set_epoch(epoch)

    def __repr__(self) -> str:
        return f"TorchLoader({self.loader!r}, num_workers={self.num_workers})"
