"""A sample type and shards for the real-torch tests, in a module spawned workers can import.

``spawn`` DataLoader workers unpickle the loader, so its sample class must be importable
by name in a fresh interpreter: the tests put this directory on ``sys.path`` (which a
spawned child inherits) and import the class from here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

import atdata


@atdata.packable
class TorchSample:
    features: NDArray[np.float32]
    label: int


@atdata.packable
class TorchImage:
    image: NDArray[np.uint8]
    label: int


def image(i: int) -> TorchImage:
    return TorchImage(image=np.random.default_rng(i).integers(0, 255, (3, 16, 16), dtype=np.uint8), label=i)


def sample(i: int) -> TorchSample:
    return TorchSample(features=np.full(8, i, dtype=np.float32), label=i)


def write(directory: Path, n: int, per_shard: int, make: Callable[[int], object] = sample) -> str:
    """``n`` samples (``make(i)``) labelled 0..n-1 in shards of ``per_shard``; the brace pattern of them."""
    directory.mkdir(parents=True, exist_ok=True)
    urls = atdata.write_samples([make(i) for i in range(n)], str(directory / "data-%06d.tar"), maxcount=per_shard)
    return str(directory / f"data-{{000000..{len(urls) - 1:06d}}}.tar")


def labels(items: object) -> list[int]:
    """The labels of batches (or of single samples), in order."""
    out: list[int] = []
    for item in items:  # type: ignore[attr-defined]
        out += [int(x) for x in item.label] if hasattr(item, "keys") else [int(item.label)]
    return out
