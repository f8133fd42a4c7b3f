"""What only a real Redis shows about the index's errors and identity (issue 13).

A read-only replica (READONLY), a server at its maxmemory limit (OOM), a flushed script
cache (NOSCRIPT): each becomes an ``atdata.errors`` exception naming the server and the
fix, or (NOSCRIPT) is handled by reloading the script. The index id is one per index,
shared by every client of it, and another for another database or a flushed index.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster

from atdata.errors import IndexServerError
from atdata.index_redis import LocalIndex
from atdata.index_redis.testing import raw_keys
from atdata.local.servers import RedisServer, start_redis
from atdata.testing.index import REF, FakeDataset

pytestmark = pytest.mark.real


@pytest.fixture
def index(redis_server: RedisServer) -> Iterator[LocalIndex]:
    index = LocalIndex.from_url(redis_server.url, key_prefix=f"err-{uuid.uuid4().hex[:10]}:")
    yield index
    for key in raw_keys(index):
        index.redis.delete(key)


def test_a_read_only_replica_is_named_and_reads_still_work(
    redis_server: RedisServer, index: LocalIndex, tmp_path: Path
) -> None:
    entry = index.add_entry(FakeDataset("p.tar"), name="p", schema_ref=REF)
    binary = os.environ.get("ATDATA_TEST_REDIS_SERVER") or None  # the binary the fixtures run
    with start_redis(tmp_path, binary=binary) as replica:
        redis.Redis(host=replica.host, port=replica.port).replicaof(redis_server.host, redis_server.port)
        on_replica = LocalIndex.from_url(replica.url, key_prefix=index.key_prefix)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if on_replica.get_entry_by_name("p") == entry:
                    break
            except KeyError:
                time.sleep(0.1)
        assert on_replica.get_entry_by_name("p") == entry  # synced, and reads work on a replica
        with pytest.raises(IndexServerError, match=rf"{replica.host}:{replica.port}.*read-only replica.*primary"):
            on_replica.add_entry(FakeDataset("q.tar"), name="q", schema_ref=REF)


def test_out_of_memory_is_named_and_writes_nothing(redis_server: RedisServer, index: LocalIndex) -> None:
    admin = redis.Redis(host=redis_server.host, port=redis_server.port)
    index.add_entry(FakeDataset("a.tar"), name="a", schema_ref=REF)
    before = {key: index.redis.type(key) for key in raw_keys(index)}
    admin.config_set("maxmemory", 1)
    try:
        with pytest.raises(IndexServerError, match=r"OOM.*maxmemory.*Nothing was written"):
            index.add_entry(FakeDataset("b.tar"), name="b", schema_ref=REF)
        with pytest.raises(IndexServerError, match="maxmemory"):
            index.rename_entry("a", "c")
        assert index.get_entry_by_name("a").data_urls == ["a.tar"]  # reads still work
    finally:
        admin.config_set("maxmemory", 0)
    assert {key: index.redis.type(key) for key in raw_keys(index)} == before


def test_a_flushed_script_cache_is_reloaded(redis_server: RedisServer, index: LocalIndex) -> None:
    index.add_entry(FakeDataset("a.tar"), name="a", schema_ref=REF)
    redis.Redis(host=redis_server.host, port=redis_server.port).script_flush()  # NOSCRIPT on the next EVALSHA
    assert index.add_entry(FakeDataset("b.tar"), name="b", schema_ref=REF).name == "b"
    assert index.get_entry_by_name("a").data_urls == ["a.tar"]


def test_a_flushed_script_cache_is_reloaded_on_a_cluster(redis_cluster_server: RedisServer) -> None:
    node = ClusterNode(redis_cluster_server.host, redis_cluster_server.port)
    index = LocalIndex(redis=RedisCluster(startup_nodes=[node]), key_prefix=f"err-{uuid.uuid4().hex[:10]}:")
    try:
        index.add_entry(FakeDataset("a.tar"), name="a", schema_ref=REF)
        redis.Redis(host=redis_cluster_server.host, port=redis_cluster_server.port).script_flush()
        assert index.add_entry(FakeDataset("b.tar"), name="b", schema_ref=REF).name == "b"
        assert sorted(e.name for e in index.all_entries) == ["a", "b"]
    finally:
        for key in raw_keys(index):
            index.redis.delete(key)


def test_the_index_id_is_one_per_index(redis_server: RedisServer, index: LocalIndex) -> None:
    first = index.index_id
    assert first.startswith("idx-") and index.index_id == first
    same = LocalIndex(host=redis_server.host, port=redis_server.port, key_prefix=index.key_prefix)
    assert same.index_id == first  # every client of this index reads the same id
    other_db = LocalIndex.from_url(redis_server.url.replace("/0", "/2"), key_prefix=index.key_prefix)
    try:
        assert other_db.index_id != first  # another database is another index
    finally:
        for key in raw_keys(other_db):
            other_db.redis.delete(key)
    for key in raw_keys(index):  # what FLUSHDB does to this index
        index.redis.delete(key)
    assert index.index_id != first  # a flushed index is a new one: it adopts nothing by its id
