"""Fixtures for Repo tests: an isolated index on the session's real Redis, sample data."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

import atdata
from atdata.local import Repo
from atdata.local.servers import RedisServer


@atdata.packable
class Point:
    """The sample type of these tests: an array, an int and a string."""

    features: NDArray
    label: int
    source: str


def make_points(n: int, start: int = 0) -> list[Point]:
    return [
        Point(features=np.full(8, i, dtype=np.float32), label=i, source=f"s{i % 3}") for i in range(start, start + n)
    ]


def write_source(directory: Path, n: int, maxcount: int | None = None) -> atdata.Dataset[Point]:
    """Local tar shards of ``n`` points, keys 000000..., as a Dataset."""
    directory.mkdir(parents=True, exist_ok=True)
    samples = [{**p.as_wds, "__key__": f"{i:06d}"} for i, p in enumerate(make_points(n))]
    paths = atdata.write_samples(samples, str(directory / "src-%06d.tar"), maxcount=maxcount or max(n, 1))
    return atdata.Dataset[Point](paths)


@pytest.fixture(autouse=True)
def _restore_s3_read_settings() -> Iterator[None]:
    """The CLI configures ``s3://`` reads for its whole process; in-process runs (any test
    here that calls ``main``) must not leak that into later tests (it sent later reads,
    in other packages' tests too, to localhost:9000)."""
    from atdata.store_s3 import reading

    registries = (reading._configured, reading._stores, reading._environment)
    saved = [dict(r) for r in registries]
    yield
    for registry, before in zip(registries, saved):
        registry.clear()
        registry.update(before)


@pytest.fixture
def key_prefix() -> str:
    return f"test-{uuid.uuid4().hex}:"


@pytest.fixture
def disk_repo(tmp_path: Path, redis_server: RedisServer, key_prefix: str) -> Repo:
    """A Repo over a local directory hive and a fresh key prefix on the real Redis."""
    return Repo(hive_path=str(tmp_path / "hive"), redis=redis_server.url, key_prefix=key_prefix)


@pytest.fixture
def source(tmp_path: Path) -> atdata.Dataset[Point]:
    return write_source(tmp_path / "src", 100, maxcount=30)
