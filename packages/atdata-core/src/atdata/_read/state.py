"""The state of a reader, as :meth:`Loader.state_dict` saves it: its version, checks, merging.

A state names the loader's parameters and epoch, the stream positions consumed before
the run that saved it (``consumed``: ``[start, end)`` ranges of the epoch's stream, see
:mod:`atdata._read.deal`), and what the saving reader has consumed since: its place
(``reader``: world size, rank, workers, worker, batch size), how many of its rounds it
yielded (``rounds``) and the slot of an incomplete last round (``final``).

One reader's state resumes that reader (torchdata's ``StatefulDataLoader`` restores
each worker from its own). :func:`merge_state_dicts` folds the states of all the readers
of one run into positions, which any other number of workers or ranks resumes from.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ..errors import InvalidArgument
from .deal import Span

__all__ = ["STATE_VERSION", "check_state", "find_states", "merge_state_dicts", "reader_spans"]

#: Version of the dict :meth:`Loader.state_dict` returns.
STATE_VERSION = 2

_REQUIRED = (
    "version",
    "mode",
    "seed",
    "epoch",
    "buffer_size",
    "pool_shards",
    "num_shards",
    "consumed",
    "reader",
    "rounds",
    "final",
    "finished",
)
_FIXED = ("mode", "seed", "epoch", "buffer_size", "pool_shards", "num_shards")


def merge_state_dicts(states: Iterable[Any] | dict[str, Any]) -> dict[str, Any]:
    """One state from the states of all readers (DataLoader workers, ranks) of one loader.

    ``states`` may hold loader states anywhere inside: a list of them, a
    ``StatefulDataLoader.state_dict()`` (its workers' states), or a list of every rank's
    (``torch.distributed.all_gather_object``). The merged state lets a loader with any
    other number of workers or ranks resume the epoch without repeating or losing a
    sample. Pass the states of every reader of the run: a reader left out is read again.

    Raises
    ------
    InvalidArgument
        If no state is found, or the states are of different loaders, epochs or resumes.
    """
    found = list(find_states(states))
    if not found:
        raise InvalidArgument(f"merge_state_dicts found no atdata loader state in {states!r:.200}")
    first = found[0]
    for state in found[1:]:
        differ = [k for k in (*_FIXED, "consumed") if state[k] != first[k]]
        if differ:
            raise InvalidArgument(
                f"cannot merge states that differ in {differ}: they are not of one loader, epoch and resume"
            )
    spans = [tuple(s) for s in first["consumed"]]
    for state in found:
        spans += to_global(first["consumed"], reader_spans(state))
    return {
        **first,
        "consumed": [list(s) for s in union(spans)],
        "reader": None,
        "rounds": 0,
        "final": None,
        "finished": all(state["finished"] for state in found),
    }


def find_states(value: Any) -> Iterator[dict[str, Any]]:
    """Every loader state inside ``value`` (dicts and lists, searched depth first)."""
    if isinstance(value, dict):
        if all(k in value for k in _REQUIRED):
            check_state(value)
            yield value
            return
        for item in value.values():
            yield from find_states(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from find_states(item)


def reader_spans(state: dict[str, Any]) -> list[Span]:
    """What the state's reader consumed, as positions of the stream left after ``consumed``."""
    if state["reader"] is None:
        return []
    world, rank, workers, worker, batch = state["reader"]
    size = world * batch
    out: list[Span] = []
    for i in range(state["rounds"]):
        start = (worker + i * workers) * size + rank * batch
        out.append((start, start + batch))
    if state["final"] is not None:
        out.append(tuple(state["final"]))  # type: ignore[arg-type]
    return out


def to_global(consumed: list[list[int]], spans: list[Span]) -> list[Span]:
    """Positions of the stream left after ``consumed`` (sorted spans) as positions of the epoch."""
    gaps = _gaps(consumed)
    out: list[Span] = []
    for start, end in sorted(spans):
        while start < end:
            lo, hi, offset = next(g for g in gaps if g[2] + (g[1] - g[0]) > start)
            a = lo + start - offset
            b = min(hi, a + end - start)
            out.append((a, b))
            start += b - a
    return out


def _gaps(consumed: list[list[int]]) -> list[tuple[int, int, int]]:
    """``(lo, hi, remaining offset)`` of each stretch between consumed spans; the last is open."""
    gaps, position, offset = [], 0, 0
    for start, end in consumed:
        if start > position:
            gaps.append((position, start, offset))
            offset += start - position
        position = max(position, end)
    gaps.append((position, 1 << 62, offset))
    return gaps


def union(spans: Iterable[Span]) -> list[Span]:
    """Sorted, disjoint spans covering the same positions (touching spans joined)."""
    out: list[Span] = []
    for start, end in sorted(spans):
        if end <= start:
            continue
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def check_state(state: Any) -> None:
    """Raise ``InvalidArgument`` unless ``state`` is a loader state of this version."""
    if not isinstance(state, dict) or any(k not in state for k in _REQUIRED):
        raise InvalidArgument(
            f"not an atdata loader state (expected a dict with keys {list(_REQUIRED)}), got {state!r:.200}"
        )
    if state["version"] != STATE_VERSION:
        raise InvalidArgument(
            f"loader state version {state['version']!r} is not supported (this atdata writes {STATE_VERSION})"
        )
