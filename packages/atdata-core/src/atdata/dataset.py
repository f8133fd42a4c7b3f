"""``Dataset[T]``: typed samples and batches from WebDataset tar shards.

``Dataset[T](url)`` names shards (see :mod:`atdata.urls`) and a sample type; reading
happens through the iterables :meth:`Dataset.ordered` and :meth:`Dataset.shuffled`
return (:class:`Loader`). A ``Loader`` is what a training loop or a PyTorch
``DataLoader`` iterates: it splits shards between DataLoader workers and nodes, and
its :meth:`~Loader.state_dict` resumes an interrupted epoch exactly. The order of an
epoch depends only on ``(seed, epoch)`` (see :mod:`atdata._order`).

torch is never imported: when the caller has imported it, ``Loader`` registers as a
virtual subclass of ``torch.utils.data.IterableDataset`` (so ``DataLoader`` treats it
as an iterable-style dataset) and asks ``torch.utils.data.get_worker_info`` and
``torch.distributed`` which share of the shards to read.
"""

from __future__ import annotations

import os
import sys
import typing
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Generic, TypeVar

import msgpack

from ._columns import Decoder, RunBatches
from ._order import Plan, Run, pool_runs
from ._prefetch import Prefetcher
from ._tar import iter_blocks
from .batch import SampleBatch
from .errors import InvalidArgument
from .openers import open_url
from .sample import DictSample
from .urls import expand_urls

__all__ = ["Dataset", "Loader", "merge_state_dicts"]

T = TypeVar("T")

#: Version of the dict :meth:`Loader.state_dict` returns.
STATE_VERSION = 1


class Dataset(Generic[T]):
    """Samples of type ``T`` stored in tar shards.

    Parameters
    ----------
    url
        A shard path (``str`` or ``pathlib.Path``) or URL, a brace pattern
        (``"data-{000000..000009}.tar"``), or a list of them. Local paths and ``file://``
        are read directly; other schemes need a
        registered opener (``s3://`` comes with ``atdata-store-s3``).
    metadata_url
        Optional URL of a msgpack map describing the dataset (see :attr:`metadata`).
    sample_type
        The sample class, for when the ``Dataset[T](...)`` form is not convenient (a
        class made at run time). Defaults to ``T``, else ``DictSample``.

    Examples
    --------
    >>> ds = atdata.Dataset[TrainingSample]("data-{000000..000009}.tar")  # doctest: +SKIP
    >>> for batch in ds.ordered(batch_size=32):  # doctest: +SKIP
    ...     batch.features.shape  # (32, 128)

    Raises
    ------
    UnsupportedURL
        A malformed brace pattern.
    InvalidArgument
        An empty URL or URL list.
    """

    def __init__(
        self,
        url: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        metadata_url: str | None = None,
        *,
        sample_type: type[T] | None = None,
    ) -> None:
        urls = _fspaths(url)
        self._shards = expand_urls(urls)  # first: it names a wrong-typed url (list(42) would not)
        self._url = urls if isinstance(urls, str) else list(urls)
        self.metadata_url = metadata_url
        self._sample_type = sample_type
        self._metadata: dict[str, Any] | None = None
        self._loader: Loader[T] | None = None
        self._pending_state: dict[str, Any] | None = None

    @property
    def url(self) -> str | list[str]:
        """The URL or URL list the dataset was made with, unexpanded."""
        return self._url

    @property
    def shard_list(self) -> list[str]:
        """Every shard URL, braces expanded, in order."""
        return list(self._shards)

    @property
    def sample_type(self) -> type[T]:
        """The class samples decode to: ``T`` of ``Dataset[T]``, else ``DictSample``."""
        if self._sample_type is None:
            # typing sets __orig_class__ on instances made through Dataset[T](...), after __init__.
            alias = self.__dict__.get("__orig_class__")
            args = typing.get_args(alias) if alias is not None else ()
            chosen = args[0] if args and isinstance(args[0], type) else DictSample
            self._sample_type = typing.cast("type[T]", chosen)
        return self._sample_type

    @property
    def metadata(self) -> dict[str, Any] | None:
        """The msgpack map stored at ``metadata_url`` (read once, then cached); None without one.

        Raises
        ------
        InvalidArgument
            If the object at ``metadata_url`` is not a msgpack map.
        """
        if self.metadata_url is None:
            return None
        if self._metadata is None:
            with open_url(self.metadata_url) as stream:
                raw = stream.read()
            try:
                value = msgpack.unpackb(raw)
            except Exception as exc:
                raise InvalidArgument(f"metadata at {self.metadata_url!r} is not msgpack: {exc}") from exc
            if not isinstance(value, dict):
                raise InvalidArgument(
                    f"metadata at {self.metadata_url!r} must be a msgpack map, found {type(value).__name__}"
                )
            self._metadata = value
        return self._metadata

    def ordered(
        self,
        batch_size: int | None = None,
        drop_last: bool = False,
        *,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> Loader[T]:
        """Samples (``batch_size=None``) or :class:`SampleBatch` es in shard order.

        Parameters
        ----------
        batch_size
            Samples per batch; ``None`` yields single samples.
        drop_last
            Drop the last batch if it is smaller than ``batch_size``.
        rank, world_size
            This node's share of the shards; default from ``torch.distributed`` when it is
            initialised, else the whole dataset.
        """
        return self._new_loader(
            shuffle=False,
            batch_size=batch_size,
            drop_last=drop_last,
            seed=None,
            buffer_size=1,
            pool_shards=1,
            rank=rank,
            world_size=world_size,
        )

    def shuffled(
        self,
        buffer_size: int = 10_000,
        batch_size: int | None = None,
        seed: int | None = None,
        *,
        drop_last: bool = False,
        pool_shards: int = 4,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> Loader[T]:
        """Samples or batches in an order fixed by ``(seed, epoch)``.

        Shards are permuted per epoch; every ``pool_shards`` consecutive shards of that
        permutation are mixed through a shuffle buffer of ``buffer_size`` samples.

        Parameters
        ----------
        buffer_size
            Samples held for mixing (memory grows with it, randomness too).
        batch_size
            Samples per batch; ``None`` yields single samples.
        seed
            Makes the order reproducible; ``None`` draws one (see ``state_dict()["seed"]``).
        drop_last
            Drop the last batch if it is smaller than ``batch_size``.
        pool_shards
            Shards mixed together. A pool is also the unit dealt to DataLoader workers and
            nodes, so keep ``len(shard_list) / pool_shards`` at or above their number.
        rank, world_size
            As for :meth:`ordered`.
        """
        return self._new_loader(
            shuffle=True,
            batch_size=batch_size,
            drop_last=drop_last,
            seed=seed,
            buffer_size=buffer_size,
            pool_shards=pool_shards,
            rank=rank,
            world_size=world_size,
        )

    def raw_samples(self) -> Iterator[tuple[str, bytes]]:
        """``(key, msgpack bytes)`` of every sample, in shard order, without decoding.

        Reads every shard whatever the worker or rank: this is for copying a dataset
        (re-sharding into a store), not for training.

        Raises
        ------
        ShardError
            A corrupt or truncated shard, after the samples before the problem.
        """
        prefetcher = Prefetcher(self._shards)
        try:
            for url in self._shards:
                for block in iter_blocks(url, stream=prefetcher.open(url)):
                    for key, view in zip(block.keys, block.views):
                        yield key, bytes(view)
        finally:
            prefetcher.close()

    def state_dict(self) -> dict[str, Any]:
        """Progress of the loader this dataset made last (see :meth:`Loader.state_dict`).

        Raises
        ------
        InvalidArgument
            If neither ``ordered()`` nor ``shuffled()`` has been called yet.
        """
        if self._loader is None:
            raise InvalidArgument("no iteration to save: call dataset.ordered() or dataset.shuffled() first")
        return self._loader.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from ``state``: the next ``ordered()``/``shuffled()`` loader continues there.

        The loader checks that its mode and parameters match the state's.
        """
        _check_state(state)
        self._pending_state = dict(state)

    def __iter__(self) -> Iterator[T]:
        """Every sample in shard order (``iter(dataset.ordered())``)."""
        return iter(self.ordered())  # type: ignore[arg-type]  # unbatched: yields samples

    def __repr__(self) -> str:
        return f"Dataset[{self.sample_type.__qualname__}]({self._url!r}, {len(self._shards)} shards)"

    def _new_loader(self, **options: Any) -> Loader[T]:
        loader = Loader(self, **options)
        if self._pending_state is not None:
            state, self._pending_state = self._pending_state, None
            loader.load_state_dict(state)
        self._loader = loader
        return loader


class Loader(Generic[T]):
    """One way of reading a :class:`Dataset`: ordered or shuffled, by sample or by batch.

    Iterate it for an epoch; iterate again for the next one (or call :meth:`set_epoch`
    first, as with ``DistributedSampler``, when a ``DataLoader`` re-creates workers each
    epoch). Pass it to ``torch.utils.data.DataLoader(loader, batch_size=None,
    num_workers=...)``: each worker reads its share of the pools (see :mod:`atdata._order`).
    Made by :meth:`Dataset.ordered` and :meth:`Dataset.shuffled`.
    """

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

        ``DataLoader`` workers are found automatically; this is for other process pools.
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
        _check_state(state)
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


def _fspaths(url: object) -> Any:
    """Paths as their strings (``write_samples`` and ``DiskDataStore`` take paths too);
    anything else as given, for :func:`~atdata.urls.expand_urls` to judge."""
    if isinstance(url, os.PathLike):
        return os.fspath(url)
    if isinstance(url, (list, tuple)):
        return [os.fspath(u) if isinstance(u, os.PathLike) else u for u in url]
    return url


def merge_state_dicts(states: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """One state from the states of all workers (and ranks) of one loader.

    Each consumer's state covers the pools it read; the merged state lets a loader with
    any other number of workers or nodes resume the epoch without repeating or losing
    a sample.

    Raises
    ------
    InvalidArgument
        If the states are of different loaders or epochs.
    """
    states = list(states)
    if not states:
        raise InvalidArgument("merge_state_dicts needs at least one state")
    for state in states:
        _check_state(state)
    first = states[0]
    fixed = ("mode", "seed", "epoch", "buffer_size", "pool_shards", "num_shards")
    for state in states[1:]:
        differ = [k for k in fixed if state[k] != first[k]]
        if differ:
            raise InvalidArgument(f"cannot merge states that differ in {differ}: they are not of one loader and epoch")
    progress: dict[int, int] = {}
    done: set[int] = set()
    for state in states:
        done.update(state["done"])
        for pool, count in state["progress"]:
            progress[pool] = max(progress.get(pool, 0), count)
    return {
        **first,
        "progress": sorted([p, c] for p, c in progress.items() if p not in done),
        "done": sorted(done),
        "finished": all(state["finished"] for state in states),
    }


def _url_finder(sources: list[tuple[int, Run, int]]) -> Callable[[int], str]:
    def url(i: int) -> str:
        for offset, run, start in reversed(sources):
            if i >= offset:
                return run.url(start + i - offset)
        raise IndexError(i)

    return url


def _check_state(state: Any) -> None:
    required = (
        "version",
        "mode",
        "seed",
        "epoch",
        "buffer_size",
        "pool_shards",
        "num_shards",
        "progress",
        "done",
        "finished",
    )
    if not isinstance(state, dict) or any(k not in state for k in required):
        raise InvalidArgument(
            f"not an atdata loader state (expected a dict with keys {list(required)}), got {state!r:.200}"
        )
    if state["version"] != STATE_VERSION:
        raise InvalidArgument(
            f"loader state version {state['version']!r} is not supported (this atdata writes {STATE_VERSION})"
        )


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
