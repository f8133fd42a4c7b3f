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
from .columns import Decoder
from .deal import Geometry, Piece, Span, deal, remaining_pieces
from .epochs import EpochClock
from .index import SHARD_INDEXES, ShardIndexes
from .indexed import indexed_runs
from .order import Plan, Run, pool_runs
from .prefetch import Prefetcher
from .state import STATE_VERSION, check_state

if TYPE_CHECKING:
    from ..dataset import Dataset

__all__ = ["Loader"]

T = TypeVar("T")


class Loader(Generic[T]):
    """One way of reading a :class:`Dataset`: ordered or shuffled, by sample or by batch.

    Iterate it for an epoch; iterate again for the next one (:meth:`set_epoch` picks
    one). Pass it to ``torch.utils.data.DataLoader(loader, batch_size=None,
    num_workers=...)``: each worker reads its rounds of the epoch (see
    :mod:`atdata._read.deal`), so the DataLoader yields the single-process order, and the
    workers agree on the epoch through shared memory (:mod:`atdata._read.epochs`).
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
        even: str = "pad",
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
        if even not in ("pad", "drop"):
            raise InvalidArgument(f"even must be 'pad' or 'drop', got {even!r}")
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
        self.even = even
        #: The epoch read last (or being read, or set); the next one comes from the clock.
        self.epoch = 0
        self._clock = EpochClock()
        self._consumed: list[Span] = []  # stream positions consumed before this run (a resume)
        self._reader: Geometry | None = None  # who reads, since consumed
        self._rounds = 0  # rounds the reader has yielded
        self._final: Span | None = None  # the slot of an incomplete last round, once yielded
        self._resume = False
        self._whole: tuple[Any, Any] | None = None  # the last run checked whole, and its batches
        # This reader's share of ``epoch`` is read; the next iteration starts the next one.
        # (A state taken at the end still names the epoch, which merging states needs.)
        self._finished = False
        _register_with_torch()

    def set_epoch(self, epoch: int) -> None:
        """Read epoch ``epoch`` next (its order is fixed by ``(seed, epoch)``); not needed
        with a ``DataLoader``, whose workers agree on the epoch by themselves."""
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
            raise InvalidArgument(f"epoch must be a non-negative int, got {epoch!r}")
        if epoch == self.epoch and self._resume and not self._finished:
            return  # the loaded state's epoch: keep resuming it
        self._clock.set(epoch)
        self.epoch = epoch
        self._finished = False
        self._resume = False

    def __iter__(self) -> Iterator[T] | Iterator[SampleBatch[T]]:
        return self._epoch(self._geometry(None))

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
        return self._epoch(self._geometry((worker_id, num_workers)))

    def state_dict(self) -> dict[str, Any]:
        """Where this reader is: epoch, parameters, and the samples it has consumed.

        A plain dict of ints, lists and strings (JSON- and ``torch.save``-friendly). Taken
        after a sample or batch was received, it counts that one as consumed: resuming
        from it yields every later sample once and no earlier one. A state of one
        DataLoader worker or rank resumes that reader; :func:`merge_state_dicts` combines
        the states of all readers to resume with another number of workers or nodes.

        Raises
        ------
        InvalidArgument
            In the main process of a ``DataLoader`` whose workers read this loader: the
            progress is in the workers (use torchdata's ``StatefulDataLoader``).
        """
        if self._clock.workers_read and _worker_info() is None and self._reader is None:
            raise InvalidArgument(
                "this loader was read by DataLoader workers, so its progress is in the workers, not here; "
                "use torchdata.stateful_dataloader.StatefulDataLoader(loader, batch_size=None, ...) and its "
                "state_dict() (merge_state_dicts(dl.state_dict()) gives one state for any worker count)"
            )
        return self._state(
            [list(span) for span in self._consumed],
            self._reader.as_list() if self._reader is not None else None,
            self._rounds,
            list(self._final) if self._final is not None else None,
            self._finished,
        )

    def _state(self, consumed: list[list[int]], reader: list[int] | None, rounds: int, final: Any, done: bool) -> dict:
        """A state of this loader's parameters and epoch with the given progress."""
        return {
            "version": STATE_VERSION,
            "mode": "shuffled" if self.shuffle else "ordered",
            "seed": self.seed,
            "epoch": self.epoch,
            "buffer_size": self.buffer_size,
            "pool_shards": self.pool_shards,
            "num_shards": len(self.dataset.shard_list),
            "consumed": consumed,
            "reader": reader,
            "rounds": rounds,
            "final": final,
            "finished": done,
        }

    def torch_loader(self, num_workers: int = 2, batches_per_message: int = 8, **dataloader_options: Any) -> Any:
        """A torch ``DataLoader`` over this loader whose workers send ``batches_per_message``
        batches per message, handed on one by one in the single-process order, with an exact
        :meth:`~atdata._read.grouped.TorchLoader.state_dict` (see :mod:`atdata._read.grouped`)."""
        from .grouped import TorchLoader

        return TorchLoader(self, num_workers, batches_per_message, **dataloader_options)

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
        self._consumed = [(int(a), int(b)) for a, b in state["consumed"]]
        self._reader = Geometry(*state["reader"]) if state["reader"] is not None else None
        self._rounds = int(state["rounds"])
        self._final = tuple(state["final"]) if state["final"] is not None else None  # type: ignore[assignment]
        self._finished = bool(state["finished"])
        self._resume = True

    def __getstate__(self) -> dict[str, Any]:
        state = {**self.__dict__, "_whole": None}  # a run's buffers stay here
        if state["world_size"] is None:  # a spawned worker has no process group: take the rank along
            state["rank"], state["world_size"] = self._rank()
        return state

    def __repr__(self) -> str:
        how = f"shuffled(seed={self.seed}, buffer_size={self.buffer_size})" if self.shuffle else "ordered()"
        return f"Loader({self.dataset!r}.{how}, batch_size={self.batch_size}, epoch={self.epoch})"

    # -- iteration -------------------------------------------------------------------

    def _start(self, geo: Geometry) -> int:
        """The epoch to read now, and what of it to skip (a resume, if it is not stale)."""
        clock_epoch = self._clock.next_epoch(geo.worker, geo.workers)
        resume = self._resume and clock_epoch <= self.epoch
        self._resume = False
        if resume and self._finished:
            resume, self.epoch = False, self.epoch + 1
        elif not resume:
            self.epoch = clock_epoch
        if resume and self._reader is not None and self._reader != geo:
            raise InvalidArgument(
                f"this state is of one reader (world_size, rank, num_workers, worker, batch_size = "
                f"{self._reader.as_list()}), not of this one ({geo.as_list()}); merge the states of all "
                "workers and ranks with merge_state_dicts([...]) to resume with another layout"
            )
        if not resume:
            self._consumed, self._rounds, self._final = [], 0, None
        elif self._reader is None:  # a merged state: its reader's samples are in consumed
            self._rounds, self._final = 0, None
        self._reader, self._finished = geo, False
        return self._rounds + (self._final is not None)

    def _epoch(self, geo: Geometry) -> Iterator[Any]:
        skip = self._start(geo)
        if _worker_info() is not None:
            self._clock.mark_worker_read()
        plan = Plan.make(
            self.dataset.shard_list,
            shuffle=self.shuffle,
            pool_shards=self.pool_shards,
            buffer_size=self.buffer_size,
            seed=self.seed,
            epoch=self.epoch,
        )
        decoder = Decoder(self.dataset.sample_type)
        prefetcher = Prefetcher([url for pool in plan.pools for url in pool])
        runs = self._runs(plan, prefetcher, SHARD_INDEXES if geo.workers * geo.world > 1 else None)
        pieces = remaining_pieces(runs, self._consumed)
        try:
            if self.batch_size is None and geo.world == geo.workers == 1:  # every sample is this reader's
                yield from self._every_sample(pieces, skip, decoder)
            else:
                for share in deal(pieces, geo, skip=skip, drop_last=self.drop_last, pad=self.even == "pad"):
                    item = self._decoded(share.pieces, decoder)
                    self._rounds = share.index + (share.final is None)
                    self._final = share.final
                    yield item[0] if self.batch_size is None else item
        finally:
            prefetcher.close()
            self._whole = None
        self._finished = True
        self._clock.finish(geo.worker, self.epoch)

    @staticmethod
    def _runs(plan: Plan, prefetcher: Prefetcher, indexes: ShardIndexes | None) -> Iterator[Run]:
        """The epoch's runs, pool by pool. A reader of several (a worker, a rank) reads a
        pool whose shards it walked before through their indexes, touching only the
        samples it takes (:mod:`atdata._read.indexed`); it walks the others, indexing them."""
        for pool in range(len(plan.pools)):
            indexed = indexed_runs(plan, pool, indexes) if indexes is not None else None
            yield from indexed if indexed is not None else pool_runs(plan, pool, 0, prefetcher, indexes)

    def _every_sample(self, pieces: Iterator[Piece], skip: int, decoder: Decoder) -> Iterator[Any]:
        """Single samples when one reader takes them all: what :func:`deal` would give,
        without a share per sample (a round is one sample)."""
        decode, unpackb, done = decoder.decode, msgpack.unpackb, 0
        for run, start, end in pieces:
            if done + end - start <= skip:
                done += end - start
                continue
            if done < skip:
                start, done = start + skip - done, skip
            views = run.views
            for i in range(start, end):
                try:
                    sample = decode(unpackb(views[i]))
                except Exception:
                    sample = self._sample((run, i, i + 1), decoder)
                done += 1
                self._rounds = done
                yield sample

    def _decoded(self, pieces: list[Piece], decoder: Decoder) -> Any:
        """One share: a list of one sample, or a batch."""
        if self.batch_size is None:
            return [self._sample(pieces[0], decoder)]
        if len(pieces) == 1 and pieces[0][0].rows is not None:
            run, a, b = pieces[0]
            if self._whole is None or self._whole[0] is not run:  # a run is checked once, then cut
                self._whole = (run, decoder.run(typing.cast("Any", run.rows), list(run.keys)))
            whole = self._whole[1]
            if whole is not None:
                return whole.batch(a, b)
        self._whole = None
        keys = [k for run, a, b in pieces for k in run.keys[a:b]]
        views = [v for run, a, b in pieces for v in run.views[a:b]]
        return decoder.batch(views, keys, _url_finder(pieces))

    @staticmethod
    def _sample(piece: Piece, decoder: Decoder) -> Any:
        run, i, _ = piece
        try:
            return decoder.decode(msgpack.unpackb(run.views[i]))
        except Exception:  # decode again, slowly, for an error naming sample and shard
            return decoder.checked(run.views[i], run.keys[i], run.url(i))

    # -- who reads what ---------------------------------------------------------------

    def _rank(self) -> tuple[int, int]:
        if self.world_size is not None:
            return typing.cast(int, self.rank), self.world_size
        dist = sys.modules.get("torch.distributed")
        if dist is not None and dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        return 0, 1

    def _geometry(self, worker: tuple[int, int] | None) -> Geometry:
        rank, world = self._rank()
        if worker is None:
            info = _worker_info()
            worker = (info.id, info.num_workers) if info is not None else (0, 1)
        return Geometry(world, rank, worker[1], worker[0], self.batch_size or 1)


def _worker_info() -> Any:
    data = sys.modules.get("torch.utils.data")
    return data.get_worker_info() if data is not None else None


def _url_finder(pieces: list[Piece]) -> Callable[[int], str]:
    def url(i: int) -> str:
        for run, a, b in pieces:
            if i < b - a:
                return run.url(a + i)
            i -= b - a
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
