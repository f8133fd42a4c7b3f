"""``Loader``: one way of reading a dataset, ordered or shuffled, by sample or by batch.

A ``Loader`` is what a training loop or a PyTorch ``DataLoader`` iterates: it splits the
pools of shards of an epoch's plan (:mod:`atdata._read.order`) between DataLoader
workers and nodes, reads them (:func:`~atdata._read.order.pool_runs`), decodes samples
or cuts batches (:mod:`atdata._read.columns`) and counts progress per pool, so its
:meth:`~Loader.state_dict` resumes an interrupted epoch exactly.

torch is never imported: when the caller has imported it, ``Loader`` registers as a
virtual subclass of ``torch.utils.data.IterableDataset`` (so ``DataLoader`` treats it
as an iterable-style dataset) and asks ``torch.utils.data.get_worker_info`` and
``torch.distributed`` which share of the shards to read.
"""

from __future__ import annotations

import os
import sys
import typing
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import msgpack

from ..batch import SampleBatch
from ..errors import InvalidArgument
from .columns import Decoder, RunBatches
from .order import Plan, Run, pool_runs
from .prefetch import Prefetcher
from .state import STATE_VERSION, check_state

if TYPE_CHECKING:
    from ..dataset import Dataset

__all__ = ["Loader"]

T = TypeVar("T")


class Loader(Generic[T]):
    """One way of reading a :class:`Dataset`: ordered or shuffled, by sample or by batch.

    Iterate it for an epoch; iterate again for the next one (or call :meth:`set_epoch`
    first, as with ``DistributedSampler``, when a ``DataLoader`` re-creates workers each
    epoch). Pass it to ``torch.utils.data.DataLoader(loader, batch_size=None,
    num_workers=...)``: each worker reads its share of the pools (see :mod:`atdata._order`).
    Made by :meth:`Dataset.ordered` and :meth:`Dataset.shuffled`.
    """

    __module__ = "atdata.dataset"  # its public home (pickles, schema refs and messages name it)

    def __init__(
        self,
        dataset: Dataset[T],
        shuffle: bool,
        batch_size: int | None,
        drop_last: bool,
        seed: int | None,
        buffer_size: int,
        pool_shards: int,
        rank: int | None,
        world_size: int | None,
    ) -> None:
        _positive("batch_size", batch_size, allow_none=True)
        _positive("buffer_size", buffer_size)
        _positive("pool_shards", pool_shards)
        if (rank is None) != (world_size is None):
            raise InvalidArgument(f"pass rank and world_size together (got rank={rank!r}, world_size={world_size!r})")
        if world_size is not None:
            _positive("world_size", world_size)
            if not (isinstance(rank, int) and 0 <= rank < world_size):
                raise InvalidArgument(f"rank must be in 0..{world_size - 1} for world_size={world_size}, got {rank!r}")
        if seed is not None and not isinstance(seed, int):
            raise InvalidArgument(f"seed must be an int or None, got {seed!r}")
        if not isinstance(drop_last, bool):
            raise InvalidArgument(f"drop_last must be True or False, got {drop_last!r}")
        self.dataset = dataset
        self.shuffle = shuffle
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.seed = seed if seed is not None else (int.from_bytes(os.urandom(8), "big") if shuffle else 0)
        self._seed_drawn = seed is None  # a drawn seed gives way to a saved one on resume
        self.buffer_size = buffer_size
        self.pool_shards = pool_shards
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self._progress: dict[int, int] = {}
        self._done: set[int] = set()
        self._resume = False
        # This reader's share of ``epoch`` is read; the next iteration starts epoch + 1.
        # (Incremented lazily so that a state taken at the end still names the epoch
        # and its pools, which merging the states of several workers needs.)
        self._finished = False
        _register_with_torch()

    def set_epoch(self, epoch: int) -> None:
        """Read epoch ``epoch`` next (its order is fixed by ``(seed, epoch)``)."""
        if not isinstance(epoch, int) or epoch < 0:
            raise InvalidArgument(f"epoch must be a non-negative int, got {epoch!r}")
        if epoch != self.epoch or self._finished:
            self.epoch = epoch
            self._finished = False
            self._resume = False

    def __iter__(self) -> Iterator[T] | Iterator[SampleBatch[T]]:
        consumer, consumers = self._consumer()
        return self._epoch(consumer, consumers)

    def iter_worker(self, worker_id: int, num_workers: int) -> Iterator[Any]:
        """What worker ``worker_id`` of ``num_workers`` (on this rank) reads this epoch.

        ``DataLoader`` workers are found automatically; this is for other multi-process setups.
        """
        if not (
            isinstance(num_workers, int)
            and num_workers >= 1
            and isinstance(worker_id, int)
            and 0 <= worker_id < num_workers
        ):
            raise InvalidArgument(f"worker_id must be in 0..num_workers-1, got {worker_id!r} of {num_workers!r}")
        rank, world = self._rank()
        return self._epoch(rank * num_workers + worker_id, world * num_workers)

    def state_dict(self) -> dict[str, Any]:
        """Where this loader is: epoch, parameters, and samples consumed per pool.

        A plain dict of ints, lists and strings (JSON- and ``torch.save``-friendly). Taken
        after a sample or batch was received, it counts that one as consumed: resuming
        from it yields every later sample once and no earlier one. States of different
        workers or ranks cover disjoint pools; :func:`merge_state_dicts` combines them to
        resume with another number of workers or nodes.
        """
        return {
            "version": STATE_VERSION,
            "mode": "shuffled" if self.shuffle else "ordered",
            "seed": self.seed,
            "epoch": self.epoch,
            "buffer_size": self.buffer_size,
            "pool_shards": self.pool_shards,
            "num_shards": len(self.dataset.shard_list),
            "progress": sorted([pool, count] for pool, count in self._progress.items()),
            "done": sorted(self._done),
            "finished": self._finished,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state`` on the next iteration.

        Raises
        ------
        InvalidArgument
            If ``state`` was saved by a loader of another mode, seed, buffer or pool size,
            or over another number of shards (naming what differs).
        """
        check_state(state)
        mode = "shuffled" if self.shuffle else "ordered"
        mine = {
            "mode": mode,
            "buffer_size": self.buffer_size,
            "pool_shards": self.pool_shards,
            "num_shards": len(self.dataset.shard_list),
        }
        if self.shuffle:
            mine["seed"] = self.seed
        diff = {k: (state[k], v) for k, v in mine.items() if state[k] != v}
        if self._seed_drawn:
            diff.pop("seed", None)
        if diff:
            shown = ", ".join(f"{k}: saved {a!r}, this loader {b!r}" for k, (a, b) in diff.items())
            raise InvalidArgument(
                f"state_dict does not fit this loader ({shown}); make the loader with the saved values"
            )
        self.seed = state["seed"]
        self.epoch = state["epoch"]
        self._progress = {int(pool): int(count) for pool, count in state["progress"]}
        self._done = {int(pool) for pool in state["done"]}
        self._finished = bool(state["finished"])
        self._resume = True

    def __repr__(self) -> str:
        how = f"shuffled(seed={self.seed}, buffer_size={self.buffer_size})" if self.shuffle else "ordered()"
        return f"Loader({self.dataset!r}.{how}, batch_size={self.batch_size}, epoch={self.epoch})"

    # -- iteration -------------------------------------------------------------------

    def _epoch(self, consumer: int, consumers: int) -> Iterator[Any]:
        if self._finished:
            self.epoch += 1
            self._finished = self._resume = False
        plan = Plan.make(
            self.dataset.shard_list,
            shuffle=self.shuffle,
            pool_shards=self.pool_shards,
            buffer_size=self.buffer_size,
            seed=self.seed,
            epoch=self.epoch,
        )
        if not self._resume:
            self._progress, self._done = {}, set()
        self._resume = False
        decoder = Decoder(self.dataset.sample_type)
        pools = [p for p in plan.mine(consumer, consumers) if p not in self._done]
        prefetcher = Prefetcher([url for p in pools for url in plan.pools[p]])
        try:
            if self.batch_size is None:
                yield from self._samples(plan, pools, decoder, prefetcher)
            else:
                yield from self._batches(plan, pools, decoder, self.batch_size, prefetcher)
        finally:
            prefetcher.close()
        self._finished = True

    def _samples(self, plan: Plan, pools: list[int], decoder: Decoder, prefetcher: Prefetcher) -> Iterator[Any]:
        progress = self._progress
        decode, unpackb = decoder.decode, msgpack.unpackb
        for pool in pools:
            count = progress.get(pool, 0)
            for run in pool_runs(plan, pool, count, prefetcher):
                for i, view in enumerate(run.views):
                    try:
                        sample = decode(unpackb(view))
                    except Exception:  # decode again, slowly, for an error naming sample and shard
                        sample = decoder.checked(view, run.keys[i], run.url(i))
                    count += 1
                    progress[pool] = count
                    yield sample
            self._done.add(pool)
            progress.pop(pool, None)

    def _batches(
        self, plan: Plan, pools: list[int], decoder: Decoder, size: int, prefetcher: Prefetcher
    ) -> Iterator[SampleBatch[T]]:
        progress, done = self._progress, self._done
        keys: list[str] = []
        views: list[Any] = []
        sources: list[tuple[int, Run, int]] = []  # (batch offset, run, run offset), for error messages
        counts: dict[int, int] = {}  # samples of each pool in the pending batch
        finished: list[int] = []  # pools fully read whose last samples are pending

        def emit(whole: RunBatches | None, run: Run | None) -> SampleBatch[T]:
            if whole is not None and len(sources) == 1 and sources[0][1] is run:  # one slice of one checked run
                start = sources[0][2]
                batch = whole.batch(start, start + len(keys))
            else:
                batch = decoder.batch(views, keys, _url_finder(sources))
            for pool, n in counts.items():
                progress[pool] = progress.get(pool, 0) + n
            for pool in finished:
                done.add(pool)
                progress.pop(pool, None)
            counts.clear()
            finished.clear()
            return batch

        whole: RunBatches | None = None
        run: Run | None = None
        for pool in pools:
            for run in pool_runs(plan, pool, progress.get(pool, 0), prefetcher):
                # A run of one byte layout is checked once; its batches are then cut from it.
                whole = decoder.run(run.rows, run.keys) if run.rows is not None else None
                pos, n = 0, len(run.keys)
                while pos < n:
                    take = min(size - len(keys), n - pos)
                    one_slice = whole is not None and not keys and take == size  # emit cuts it from the run
                    sources.append((len(keys), run, pos))
                    keys += run.keys[pos : pos + take]
                    if not one_slice:  # the views are decoded (or, mid-batch, may be)
                        views += run.views[pos : pos + take]
                    counts[pool] = counts.get(pool, 0) + take
                    pos += take
                    if len(keys) == size:
                        batch = emit(whole, run)
                        keys, views, sources = [], [], []
                        yield batch
            if counts:
                finished.append(pool)
            else:
                done.add(pool)
                progress.pop(pool, None)
        if keys and not self.drop_last:
            yield emit(whole, run)

    # -- who reads what ---------------------------------------------------------------

    def _rank(self) -> tuple[int, int]:
        if self.world_size is not None:
            return typing.cast(int, self.rank), self.world_size
        dist = sys.modules.get("torch.distributed")
        if dist is not None and dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def _consumer(self) -> tuple[int, int]:
        rank, world = self._rank()
        data = sys.modules.get("torch.utils.data")
        info = data.get_worker_info() if data is not None else None
        if info is None:
            return rank, world
        return rank * info.num_workers + info.id, world * info.num_workers


def _url_finder(sources: list[tuple[int, Run, int]]) -> Callable[[int], str]:
    def url(i: int) -> str:
        for offset, run, start in reversed(sources):
            if i >= offset:
                return run.url(start + i - offset)
        raise IndexError(i)

    return url


def _positive(name: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidArgument(f"{name} must be a positive int{' or None' if allow_none else ''}, got {value!r}")


_registered = False


def _register_with_torch() -> None:
    """Make ``isinstance(loader, torch.utils.data.IterableDataset)`` true if torch is loaded."""
    global _registered
    if _registered:
        return
    data = sys.modules.get("torch.utils.data")
    if data is not None:
        data.IterableDataset.register(Loader)
        _registered = True
