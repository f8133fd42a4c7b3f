"""The Repo suite on (fakeredis, a local directory): the quick loop, and on (the session's
real valkey, a local directory); tests/integration runs it on (valkey, rclone) and (a
valkey cluster, moto.server)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import fakeredis
import pytest

from atdata.disk_store import DiskDataStore
from atdata.index_redis import LocalIndex
from atdata.local.servers import RedisServer
from atdata.local.testing import RepoConformance


@pytest.mark.fake
class TestRepoOnFakeredisAndDisk(RepoConformance):
    @pytest.fixture
    def index_factory(self) -> Callable[[], LocalIndex]:
        server = fakeredis.FakeServer()  # one per test: nothing to clean up
        return lambda: LocalIndex(redis=fakeredis.FakeRedis(server=server), key_prefix=f"t{uuid.uuid4().hex[:10]}:")

    @pytest.fixture
    def store(self, tmp_path: Path) -> DiskDataStore:
        return DiskDataStore(tmp_path / "hive")


@pytest.mark.real
class TestRepoOnValkeyAndDisk(RepoConformance):
    @pytest.fixture
    def index_factory(self, redis_server: RedisServer) -> Callable[[], LocalIndex]:
        # A fresh key prefix per index: nothing another test wrote is seen.
        return lambda: LocalIndex(redis=redis_server.url, key_prefix=f"t{uuid.uuid4().hex[:10]}:")

    @pytest.fixture
    def store(self, tmp_path: Path) -> DiskDataStore:
        return DiskDataStore(tmp_path / "hive")
