"""The Repo suite on real servers: (valkey, rclone serve s3) and (a one-node valkey
cluster through RedisCluster, moto.server). Same bodies as the (fakeredis, disk) run."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster

from atdata.index_redis import LocalIndex
from atdata.local.testing import RepoConformance
from atdata.store_s3 import S3DataStore
from tests.integration.test_index_servers import _factory
from tests.integration.test_store_servers import fresh_store


@pytest.mark.real
class TestRepoOnValkeyAndRclone(RepoConformance):
    @pytest.fixture
    def index_factory(self, redis_server: Any) -> Iterator[Callable[[], LocalIndex]]:
        yield from _factory(lambda: redis.Redis(host=redis_server.host, port=redis_server.port))

    @pytest.fixture
    def store(self, s3_server: Any) -> Iterator[S3DataStore]:
        yield from fresh_store(s3_server)


@pytest.mark.real
class TestRepoOnClusterAndMoto(RepoConformance):
    @pytest.fixture
    def index_factory(self, redis_cluster_server: Any) -> Iterator[Callable[[], LocalIndex]]:
        node = ClusterNode(redis_cluster_server.host, redis_cluster_server.port)
        yield from _factory(lambda: RedisCluster(startup_nodes=[node]))

    @pytest.fixture
    def store(self, moto_s3_server: Any) -> Iterator[S3DataStore]:
        yield from fresh_store(moto_s3_server)
