"""A pool's runs from its shards' indexes: what the walk gives, without walking.

Once every shard of a pool is indexed (:mod:`atdata._read.index`), its runs are made
from the mapped files: an ordered pool's as the walk cuts them (keys, lazy views, and
for samples of one stride the byte matrix, all views of the mapping); a shuffled pool's
by running the shuffle buffer of :func:`atdata._read.order.pool_runs` over sample
*positions* instead of samples. That buffer's order depends only on the seed, the
epoch, the pool and how many samples it holds, so the positions come out in the order
the samples would, and only the samples a reader decodes are ever touched: the others'
bytes are neither copied nor read. The files are mapped a run (or block) at a time, so
only the pages of the runs being read stay resident.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any, overload

import numpy as np

from .buffers import CHUNK
from .index import MappedShard, ShardIndexes
from .order import Plan, Run, derive_seed
from .tarwalk import SampleViews

__all__ = ["indexed_runs", "shuffled_positions"]

# Samples per run of a shuffled pool; each run maps the pool's shards afresh, so the pages
# resident stay those of a few blocks. Views are made only for the slices taken. In
# tools/bench/read_torch.py, 1,024 cost 25-30% more CPU (page faults) for 40-150 MB less RSS.
_BLOCK = 4096


def indexed_runs(plan: Plan, pool: int, indexes: ShardIndexes) -> Iterator[Run] | None:
    """Pool ``pool``'s runs read through the indexes, or None when a shard of it is not
    indexed (or no longer what was indexed): then walk the pool."""
    urls = plan.pools[pool]
    if not all(indexes.known(url) for url in urls):
        return None
    mapped: list[MappedShard] = []
    for url in urls:
        shard = indexes.open(url)
        if shard is None:
            for opened in mapped:
                opened.close()
            return None
        mapped.append(shard)
    return _closing(_shuffled(plan, pool, mapped) if plan.shuffle else _ordered(mapped), mapped)


def _closing(runs: Iterator[Run], mapped: list[MappedShard]) -> Iterator[Run]:
    try:
        yield from runs
    finally:
        for shard in mapped:
            shard.close()


def _ordered(mapped: list[MappedShard]) -> Iterator[Run]:
    """Runs of about one read chunk, each over a mapping of its own bytes."""
    for shard in mapped:
        index = shard.index
        count = len(index.keys)
        size = int(index.ends[0] - index.starts[0])
        per = max(1, CHUNK // max(1, index.step or size))
        for lo in range(0, count, per):
            hi = min(count, lo + per)
            data, base = shard.map(int(index.starts[lo]), int(index.ends[hi - 1]))
            rows = None
            if index.step is not None:
                flat = np.frombuffer(data, np.uint8)[int(index.starts[lo]) - base :]
                rows = np.lib.stride_tricks.as_strided(flat, (hi - lo, size), (index.step, 1), writeable=False)
            starts, ends = (index.starts[lo:hi] - base).tolist(), (index.ends[lo:hi] - base).tolist()
            yield Run(index.keys[lo:hi], SampleViews(data, starts, ends), shard.url, rows)


def _shuffled(plan: Plan, pool: int, mapped: list[MappedShard]) -> Iterator[Run]:
    """Runs of :data:`_BLOCK` positions of the shuffled order; each maps the shards anew,
    so only the pages of the blocks being read stay resident."""
    counts = [len(shard.index.keys) for shard in mapped]
    order = shuffled_positions(sum(counts), plan, pool)
    pool_shards = _PoolShards(mapped, counts)
    keys, urls = _items(pool_shards.keys), _items(pool_shards.urls)
    for lo in range(0, len(order), _BLOCK):
        positions = order[lo : lo + _BLOCK]
        data = [shard.map()[0] for shard in mapped]
        views = functools.partial(pool_shards.views, data)
        yield Run(_Picked(keys, positions), _Picked(views, positions), _Picked(urls, positions))


def shuffled_positions(total: int, plan: Plan, pool: int) -> np.ndarray:
    """The order in which the shuffle buffer of ``pool_runs`` hands on a pool's ``total``
    samples, as their positions in the pool (its shards' samples one after another).

    The same generator, seeded the same way, makes the same permutations at the same
    points: the buffer fills to ``buffer_size``, is permuted, and half of it leaves;
    what is left at the end is permuted once more.
    """
    rng = np.random.Generator(np.random.PCG64(derive_seed(plan.seed, plan.epoch, pool)))
    size = plan.buffer_size
    half = max(1, size // 2)
    positions = np.arange(total, dtype=np.int64)
    out: list[np.ndarray] = []
    buffer, taken = positions[:size], min(size, total)
    while len(buffer) >= size:
        mixed = buffer[rng.permutation(size)] if size >= 2 else buffer
        out.append(mixed[:half])
        refill = positions[taken : taken + half]
        taken += len(refill)
        buffer = np.concatenate([mixed[half:], refill])
    out.append(buffer[rng.permutation(len(buffer))] if len(buffer) >= 2 else buffer)
    return np.concatenate(out)


class _PoolShards:
    """A pool's samples by position: their keys, shard URLs and where their bytes lie."""

    def __init__(self, mapped: list[MappedShard], counts: list[int]) -> None:
        self.keys: list[str] = [key for shard in mapped for key in shard.index.keys]
        self.urls: list[str] = [shard.url for shard, n in zip(mapped, counts) for _ in range(n)]
        self.shard_of = np.repeat(np.arange(len(mapped)), counts)
        self.starts = np.concatenate([shard.index.starts for shard in mapped])
        self.ends = np.concatenate([shard.index.ends for shard in mapped])

    def views(self, data: list[memoryview], positions: np.ndarray) -> list[memoryview]:
        """The samples at ``positions``, as views of ``data`` (one mapping per shard)."""
        return [
            data[s][a:b]
            for s, a, b in zip(
                self.shard_of[positions].tolist(), self.starts[positions].tolist(), self.ends[positions].tolist()
            )
        ]


class _Picked(Sequence[Any]):
    """What ``pick`` gives for the samples at ``positions``, computed only for what is asked."""

    __slots__ = ("_pick", "_positions")

    def __init__(self, pick: Callable[[np.ndarray], list[Any]], positions: np.ndarray) -> None:
        self._pick = pick
        self._positions = positions

    def __len__(self) -> int:
        return len(self._positions)

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return self._pick(self._positions[index])
        return self._pick(self._positions[index : index + 1 or None])[0]


def _items(values: list[Any]) -> Callable[[np.ndarray], list[Any]]:
    return lambda positions: [values[p] for p in positions.tolist()]
