"""A pool's runs from its shards' indexes: what the walk gives, without walking.

Once every shard of a pool is indexed (:mod:`atdata._read.index`), its runs are made
from the mapped files: an ordered pool's as the walk cuts them (keys, lazy views, and
for samples of one stride the byte matrix, all views of the mapping); a shuffled pool's
by running the shuffle buffer of :func:`atdata._read.order.pool_runs` over sample
*positions* instead of samples. That buffer's order depends only on the seed, the
epoch, the pool and how many samples it holds, so the positions come out in the order
the samples would, and only the samples a reader decodes are ever touched: the others'
bytes are neither copied nor read. An ordered run maps its own range of the file (a
strided view of it is the byte matrix); a shuffled sample is read with one ``pread``
when taken. Either way only the pages of the runs being read stay resident.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, overload

import numpy as np

from .buffers import CHUNK
from .index import MappedShard, ShardIndexes
from .order import Plan, Run, derive_seed
from .tarwalk import SampleViews

__all__ = ["indexed_runs", "shuffled_positions"]

# Samples per run of a shuffled pool (only the slices a reader takes are read).
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
            return None
        mapped.append(shard)
    return _shuffled(plan, pool, mapped) if plan.shuffle else _ordered(mapped)


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
    """Runs of :data:`_BLOCK` positions of the shuffled order, whose samples are read only
    when taken, one ``pread`` each: mapping the pool instead left up to twice a pool of
    pages resident per worker (the kernel maps 64 KiB around each page touched) and was
    slower (``tools/bench/read_torch.py``: 121k vs 140k images/s, 416k vs 432k training)."""
    counts = [len(shard.index.keys) for shard in mapped]
    order = shuffled_positions(sum(counts), plan, pool)
    pool_shards = _PoolShards(mapped, counts)
    keys, urls = _items(pool_shards.keys), _items(pool_shards.urls)
    for lo in range(0, len(order), _BLOCK):
        positions = order[lo : lo + _BLOCK]
        yield Run(_Picked(keys, positions), _Picked(pool_shards.read, positions), _Picked(urls, positions))


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
        self.mapped = mapped  # keeps the files open while a run of the pool is alive
        self.fds = [shard.fd for shard in mapped]
        self.keys: list[str] = [key for shard in mapped for key in shard.index.keys]
        self.urls: list[str] = [shard.url for shard, n in zip(mapped, counts) for _ in range(n)]
        self.shard_of = np.repeat(np.arange(len(mapped)), counts)
        self.starts = np.concatenate([shard.index.starts for shard in mapped])
        self.ends = np.concatenate([shard.index.ends for shard in mapped])

    def read(self, positions: np.ndarray) -> list[bytes]:
        """The msgpack bytes of the samples at ``positions``, read from their files."""
        fds, pread = self.fds, os.pread
        return [
            pread(fds[s], b - a, a)
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
