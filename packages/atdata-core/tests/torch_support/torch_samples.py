"""A sample type and shards for the real-torch tests, in a module spawned workers can import.

``spawn`` DataLoader workers unpickle the loader, so its sample class must be importable
by name in a fresh interpreter: the tests put this directory on ``sys.path`` (which a
spawned child inherits) and import the class from here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

import atdata


@atdata.packable
class TorchSample:
    features: NDArray[np.float32]
    label: int


def sample(i: int) -> TorchSample:
    return TorchSample(features=np.full(8, i, dtype=np.float32), label=i)


def write(directory: Path, n: int, per_shard: int) -> str:
    """``n`` samples labelled 0..n-1 in shards of ``per_shard``; the brace pattern of them."""
    directory.mkdir(parents=True, exist_ok=True)
    urls = atdata.write_samples([sample(i) for i in range(n)], str(directory / "data-%06d.tar"), maxcount=per_shard)
    return str(directory / f"data-{{000000..{len(urls) - 1:06d}}}.tar")


def labels(items: object) -> list[int]:
    """The labels of batches (or of single samples), in order."""
    out: list[int] = []
    for item in items:  # type: ignore[attr-defined]
        out += [int(x) for x in item.label] if hasattr(item, "keys") else [int(item.label)]
    return out
