"""Which samples an epoch visits, and in what order.

An epoch's order is a function of ``(seed, epoch)`` only, never of how many processes
read it, so every DataLoader worker and every node computes the same plan without
talking to the others:

1. The shard list is taken as is (``ordered``) or permuted with a generator seeded by
   ``(seed, epoch)`` (``shuffled``).
2. Consecutive shards of that list form *pools* (one shard per pool when ordered,
   ``pool_shards`` when shuffled), read in order; a shuffled pool's samples are mixed
   by a buffer shuffle seeded by ``(seed, epoch, pool)``.

The pools' samples one after another are the epoch's *stream*, the same in every
process; :mod:`atdata._read.deal` says which reader takes which of its samples.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter

import numpy as np

from .index import IndexRecorder, ShardIndexes
from .prefetch import Prefetcher
from .shard import ChunkSamples, iter_chunks

__all__ = ["Item", "Plan", "Run", "derive_seed", "pool_runs"]

Item = tuple[str, bytes, str]
"""A sample held by a shuffle buffer: ``(key, msgpack bytes, shard url)``."""

# Samples handed on per run by a shuffle buffer: large enough to amortise the
# per-run overhead, small enough to keep the first batch quick.
_RUN = 1024


@dataclass(frozen=True, slots=True)
class Run:
    """Consecutive samples of one pool, ready to decode.

    Attributes
    ----------
    keys
        Sample keys.
    views
        Each sample's msgpack bytes (memoryview slices of a shard buffer, or bytes).
    urls
        The shard of every sample: one URL for the whole run, or one per sample.
    rows
        The samples as one ``(samples, size)`` byte matrix, when the tar walker found
        them all of one size at one stride (see :class:`atdata._read.shard.ChunkSamples`); else None.
    """

    keys: Sequence[str]
    views: Sequence[memoryview | bytes]
    urls: str | Sequence[str]
    rows: np.ndarray | None = None

    def url(self, i: int) -> str:
        """The shard sample ``i`` came from."""
        return self.urls if isinstance(self.urls, str) else self.urls[i]


@dataclass(frozen=True, slots=True)
class Plan:
    """The pools of one epoch.

    Attributes
    ----------
    pools
        Shard URLs of every pool, in epoch order.
    shuffle
        Whether samples within a pool go through the shuffle buffer.
    buffer_size
        Shuffle buffer size in samples.
    seed, epoch
        What the order depends on.
    """

    pools: list[list[str]]
    shuffle: bool
    buffer_size: int
    seed: int
    epoch: int

    @classmethod
    def make(
        cls, shards: list[str], *, shuffle: bool, pool_shards: int, buffer_size: int, seed: int, epoch: int
    ) -> Plan:
        order = list(shards)
        if shuffle:
            random.Random(derive_seed(seed, epoch, "shards")).shuffle(order)
        size = pool_shards if shuffle else 1
        pools = [order[i : i + size] for i in range(0, len(order), size)]
        return cls(pools, shuffle, buffer_size, seed, epoch)


def derive_seed(seed: int, epoch: int, what: int | str) -> int:
    """A 64-bit seed for one purpose in one epoch; the same in every process and platform."""
    digest = hashlib.blake2b(f"{seed}:{epoch}:{what}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def pool_runs(
    plan: Plan, pool: int, skip: int, prefetcher: Prefetcher | None = None, indexes: ShardIndexes | None = None
) -> Iterator[Run]:
    """The samples of pool ``pool`` in epoch order, without the first ``skip``.

    ``prefetcher`` opens the shards (downloading remote ones ahead of time); ``indexes``
    learns where the samples of the local shards walked whole lie (:mod:`atdata._read.index`).

    Skipped samples are walked (and, when shuffled, pass through the buffer) but never
    decoded, so resuming replays only the cheap part of the work.

    Raises
    ------
    ShardError
        From the tar walker, after the samples before the problem.
    """
    urls = plan.pools[pool]
    source = _shuffled(plan, pool, urls, prefetcher, indexes) if plan.shuffle else _ordered(urls, prefetcher, indexes)
    for run in source:
        if skip >= len(run.keys):
            skip -= len(run.keys)
            continue
        if skip:
            urls_left = run.urls if isinstance(run.urls, str) else run.urls[skip:]
            rows = run.rows[skip:] if run.rows is not None else None
            run = Run(run.keys[skip:], run.views[skip:], urls_left, rows)
            skip = 0
        yield run


def _ordered(urls: list[str], prefetcher: Prefetcher | None, indexes: ShardIndexes | None) -> Iterator[Run]:
    for url in urls:
        for chunk in iter_chunks(url, prefetcher=prefetcher, recorder=_recorder(indexes, url)):
            yield _run_of(chunk)


def _run_of(chunk: ChunkSamples) -> Run:
    return Run(chunk.keys, chunk.views, chunk.url, chunk.rows)


def _recorder(indexes: ShardIndexes | None, url: str) -> IndexRecorder | None:
    return indexes.recorder(url) if indexes is not None else None


def _shuffled(
    plan: Plan, pool: int, urls: list[str], prefetcher: Prefetcher | None, indexes: ShardIndexes | None
) -> Iterator[Run]:
    """A buffer shuffle over the pool's shards, read one after another.

    Samples collect in a buffer; each time it holds ``buffer_size`` samples they are
    permuted (one NumPy permutation) and half of them leave. Cycles are counted in
    samples, never in read chunks, so the order depends only on the seed, the epoch, the
    pool and the shards' contents. The buffer holds copies of the samples (not views), so
    it never pins whole read chunks: memory stays at ``buffer_size`` samples.
    """
    rng = np.random.Generator(np.random.PCG64(derive_seed(plan.seed, plan.epoch, pool)))
    size = plan.buffer_size
    half = max(1, size // 2)
    buffer: list[Item] = []
    for url in urls:
        for chunk in iter_chunks(url, prefetcher=prefetcher, recorder=_recorder(indexes, url)):
            buffer += zip(chunk.keys, map(bytes, chunk.views), repeat(url))
            while len(buffer) >= size:
                mixed = _permuted(buffer[:size], rng)
                yield from _runs_of(mixed[:half])
                buffer = mixed[half:] + buffer[size:]
    yield from _runs_of(_permuted(buffer, rng))


def _permuted(items: list[Item], rng: np.random.Generator) -> list[Item]:
    if len(items) < 2:
        return list(items)
    return list(itemgetter(*rng.permutation(len(items)).tolist())(items))


def _runs_of(items: list[Item]) -> Iterator[Run]:
    for i in range(0, len(items), _RUN):
        keys, views, urls = map(list, zip(*items[i : i + _RUN]))
        yield Run(keys, views, urls)
