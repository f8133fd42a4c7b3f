"""Fixtures for the cross-package property tests: isolated indexes and repos on the REAL
servers of the root conftest (valkey, ``rclone serve s3``).

Each example asks a factory for a fresh index or repo (its own Redis key prefix, its own
bucket prefix), so examples never see each other's entries and need no reset between
them; the factories delete every key and object they created when the test ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from atdata.index_redis import LocalIndex
from atdata.local import Repo
from atdata.local.servers import RedisServer, S3Server
from atdata.store_s3 import S3DataStore


@pytest.fixture
def index_factory(redis_server: RedisServer) -> Iterator[Callable[[], LocalIndex]]:
    """Makes fresh LocalIndexes on the real Redis; all their keys are deleted afterwards."""
    made: list[LocalIndex] = []

    def make() -> LocalIndex:
        index = LocalIndex.from_url(redis_server.url, key_prefix=f"props-{uuid.uuid4().hex[:12]}:")
        made.append(index)
        return index

    yield make
    if not made:
        return
    # One SCAN for all of them: a thorough run makes hundreds of indexes.
    # Every key of an index contains its key prefix (inside a hash tag); ours are unique.
    prefixes = {index.key_prefix for index in made}
    client = made[0].redis
    keys = [k for k in client.scan_iter(match="*props-*", count=1000) if _prefix_of(k.decode()) in prefixes]
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start : start + 1000])


def _prefix_of(key: str) -> str:
    """``props-<hex>:`` of one of our keys (``""`` for anyone else's)."""
    start = key.find("props-")
    end = key.find(":", start)
    return key[start : end + 1] if start >= 0 and end > start else ""


@pytest.fixture
def bucket(s3_server: S3Server) -> Iterator[str]:
    """A uniquely named bucket on the real S3 server, emptied afterwards."""
    name = f"props-{uuid.uuid4().hex[:16]}"
    yield name
    store = S3DataStore(s3_server.credentials, name)
    store.delete(info.key for info in store.list_objects(""))


@pytest.fixture
def repo_factory(s3_server: S3Server, bucket: str, index_factory: Callable[[], LocalIndex]) -> Callable[[], Repo]:
    """Makes Repos over the real S3 server and the real Redis, each with its own hive and index."""

    def make() -> Repo:
        index = index_factory()
        return Repo(
            s3_credentials=s3_server.credentials,
            hive_path=f"{bucket}/hive-{uuid.uuid4().hex[:8]}",
            redis=index.redis,
            key_prefix=index.key_prefix,
        )

    return make
