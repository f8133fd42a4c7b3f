"""The state of a reader, as :meth:`Loader.state_dict` saves it: its version, checks, merging.

A state names the loader's parameters and epoch, and per pool of shards the samples
consumed (``progress``) or the pools read to the end (``done``). States of the workers
and ranks of one loader cover disjoint pools, so :func:`merge_state_dicts` can combine
them into one that any other number of workers or nodes resumes from.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..errors import InvalidArgument

__all__ = ["STATE_VERSION", "check_state", "merge_state_dicts"]

#: Version of the dict :meth:`Loader.state_dict` returns.
STATE_VERSION = 1


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
        check_state(state)
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


def check_state(state: Any) -> None:
    """Raise ``InvalidArgument`` unless ``state`` is a loader state of this version."""
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
