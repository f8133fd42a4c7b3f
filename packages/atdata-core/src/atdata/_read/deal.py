"""Which samples of an epoch each reader takes: rounds dealt to DataLoader workers and ranks.

The epoch's samples form one stream: the plan's pools in order, each pool's samples in
its order (:mod:`atdata._read.order`). Samples a resumed state already counts as
consumed are left out. What remains is cut into *rounds* of ``world_size * batch``
samples (``batch`` is 1 when the loader yields single samples). Round ``q`` belongs to
DataLoader worker ``q % num_workers`` of every rank, and rank ``r`` takes slot ``r`` of
it, samples ``[r * batch, (r + 1) * batch)``. So:

- with one rank, worker ``w`` yields batches ``w, w + num_workers, ...`` of the
  single-process order, and a ``DataLoader``, which takes one batch from each worker in
  turn, delivers exactly the single-process order, whatever ``num_workers``;
- every rank yields one batch per round, so every rank yields the same number of batches.
  The last, incomplete round of ``R`` samples is split as evenly as possible (each rank
  gets ``R // world_size`` or one more). Only when ``R < world_size`` would a rank get
  none: ``even="pad"`` gives it a repeat of one of the round's samples, ``even="drop"``
  drops the round (at most ``world_size - 1`` samples repeated or left out per epoch).
  ``drop_last=True`` drops an incomplete last round.

In its first epoch every reader walks the whole stream (shard bytes read, tar headers
checked, shuffle buffers run) but decodes only its own samples; later, a reader of
several reads indexed local pools touching only its own (:mod:`atdata._read.indexed`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from .order import Run

__all__ = ["Geometry", "Share", "Span", "deal", "remaining_pieces"]

Span = tuple[int, int]
"""A half-open range ``[start, end)`` of positions in an epoch's stream."""

Piece = tuple[Run, int, int]
"""Samples ``start:end`` of a run."""


@dataclass(frozen=True, slots=True)
class Geometry:
    """One reader's place: rank ``rank`` of ``world``, DataLoader worker ``worker`` of ``workers``."""

    world: int
    rank: int
    workers: int
    worker: int
    batch: int

    def as_list(self) -> list[int]:
        return [self.world, self.rank, self.workers, self.worker, self.batch]


@dataclass(frozen=True, slots=True)
class Share:
    """This reader's samples of one round.

    Attributes
    ----------
    index
        Which of this reader's rounds it is (0, 1, ...): its rounds are ``worker``,
        ``worker + workers``, ... of the stream.
    pieces
        The samples, as slices of runs.
    final
        The slot of an incomplete last round, as positions of the remaining stream
        (its bounds are not those of a full round); None for a full round.
    """

    index: int
    pieces: list[Piece]
    final: Span | None


def remaining_pieces(runs: Iterator[Run], consumed: list[Span]) -> Iterator[Piece]:
    """The runs' samples whose stream positions are not in ``consumed`` (sorted, disjoint)."""
    position, c = 0, 0
    for run in runs:
        n = len(run.keys)
        start = 0
        while start < n:
            while c < len(consumed) and consumed[c][1] <= position + start:
                c += 1
            if c < len(consumed) and consumed[c][0] <= position + start:
                start = min(n, consumed[c][1] - position)
                continue
            end = n if c >= len(consumed) else min(n, consumed[c][0] - position)
            yield run, start, end
            start = end
        position += n


def deal(pieces: Iterator[Piece], geo: Geometry, *, skip: int, drop_last: bool, pad: bool) -> Iterator[Share]:
    """This reader's shares of the stream ``pieces``, without its first ``skip`` rounds."""
    size = geo.world * geo.batch
    mine_from, mine_to = geo.rank * geo.batch, (geo.rank + 1) * geo.batch
    rnd, index, held, filled = 0, 0, [], 0  # the current round, which of mine, its pieces, its samples
    for piece in pieces:
        run, start, end = piece
        while start < end:
            take = min(end - start, size - filled)
            if rnd % geo.workers == geo.worker and index >= skip:
                held.append((run, start, start + take))
            filled += take
            start += take
            if filled == size:
                if rnd % geo.workers == geo.worker:
                    if index >= skip:
                        yield Share(index, _cut(held, mine_from, mine_to), None)
                    index += 1
                rnd, held, filled = rnd + 1, [], 0
    if filled and not drop_last and rnd % geo.workers == geo.worker and index >= skip:
        slot = _final_slot(filled, geo, pad)
        if slot is not None:
            lo, hi = slot
            cut = _cut(held, lo, hi) if hi > lo else _cut(held, lo % filled, lo % filled + 1)
            yield Share(index, cut, (rnd * size + lo, rnd * size + hi))


def _final_slot(filled: int, geo: Geometry, pad: bool) -> Span | None:
    """This rank's part of an incomplete last round of ``filled`` samples (empty: a pad repeat)."""
    if filled < geo.world and not pad:
        return None
    base, extra = divmod(filled, geo.world)
    lo = geo.rank * base + min(geo.rank, extra)
    if base == 0:  # pad: ranks past the last sample repeat sample rank % filled
        return (lo, lo + 1) if geo.rank < extra else (geo.rank, geo.rank)
    return lo, lo + base + (1 if geo.rank < extra else 0)


def _cut(held: list[Piece], lo: int, hi: int) -> list[Piece]:
    """Positions ``lo:hi`` of a round held as ``held`` pieces."""
    out, offset = [], 0
    for run, start, end in held:
        n = end - start
        a, b = max(lo, offset), min(hi, offset + n)
        if a < b:
            out.append((run, start + a - offset, start + b - offset))
        offset += n
    return out
