"""The index suite on real servers: valkey, and a one-node valkey cluster via RedisCluster.

Plus what only a real server shows: another process reading the same index (pickled
into it, as a DataLoader worker would), connection and authentication errors.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster

from atdata.errors import IndexConnectionError
from atdata.index_redis import LocalIndex
from atdata.index_redis.testing import LocalIndexConformance, raw_keys
from atdata.protocols import AbstractIndex
from atdata.testing.index import REF, FakeDataset


def _factory(connect: Callable[[], Any]) -> Iterator[Callable[[], LocalIndex]]:
    """Fresh prefixes on a shared server; every key of every index made is deleted afterwards."""
    made: list[LocalIndex] = []

    def make() -> LocalIndex:
        index = LocalIndex(redis=connect(), key_prefix=f"t{uuid.uuid4().hex[:10]}:")
        made.append(index)
        return index

    yield make
    for index in made:
        for key in raw_keys(index):  # one by one: on a cluster a multi-key DEL must not span slots
            index.redis.delete(key)


@pytest.mark.real
class TestIndexOnValkey(LocalIndexConformance):
    @pytest.fixture
    def index_factory(self, redis_server: Any) -> Iterator[Callable[[], LocalIndex]]:
        yield from _factory(lambda: redis.Redis(host=redis_server.host, port=redis_server.port))

    def test_pickled_index_reads_the_same_entries(self, index: AbstractIndex) -> None:
        entry = index.add_entry(FakeDataset("p.tar"), name="p", schema_ref=REF)
        clone = pickle.loads(pickle.dumps(index))
        assert clone.get_entry_by_name("p") == entry

    def test_cids_stable_across_processes(self, index: AbstractIndex) -> None:
        """A new process (same server) sees the same CIDs, and recomputes them identically."""
        entries = [index.add_entry(FakeDataset(f"x{i}.tar"), name=f"n{i}", schema_ref=REF) for i in range(5)]
        code = (
            "import pickle, sys\n"
            "from atdata.index_redis._entry import content_cid\n"
            "index = pickle.loads(sys.stdin.buffer.read())\n"
            "for i in range(5):\n"
            "    e = index.get_entry_by_name(f'n{i}')\n"
            "    assert e.cid == content_cid(e.schema_ref, e.data_urls), e\n"
            "    print(e.cid)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], input=pickle.dumps(index), capture_output=True, check=True, timeout=60
        )
        assert out.stdout.decode().split() == [e.cid for e in entries]


@pytest.mark.real
class TestIndexOnValkeyCluster(LocalIndexConformance):
    """Every script and pipeline stays in the index's hash-tag slot, so RedisCluster runs it all."""

    @pytest.fixture
    def index_factory(self, redis_cluster_server: Any) -> Iterator[Callable[[], LocalIndex]]:
        node = ClusterNode(redis_cluster_server.host, redis_cluster_server.port)
        yield from _factory(lambda: RedisCluster(startup_nodes=[node]))

    def test_pickled_cluster_index_reconnects(self, index: AbstractIndex) -> None:
        entry = index.add_entry(FakeDataset("c.tar"), name="c", schema_ref=REF)
        clone = pickle.loads(pickle.dumps(index))
        assert "RedisCluster" in repr(clone)
        assert clone.get_entry_by_name("c") == entry


@pytest.mark.real
def test_connection_kwargs_url_and_environment(redis_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}:"
    by_kwargs = LocalIndex(host=redis_server.host, port=redis_server.port, db=0, key_prefix=prefix)
    entry = by_kwargs.add_entry(FakeDataset("k.tar"), name="k", schema_ref=REF)
    assert LocalIndex.from_url(redis_server.url, key_prefix=prefix).get_entry_by_name("k") == entry
    monkeypatch.setenv("ATDATA_REDIS_URL", redis_server.url)
    assert LocalIndex(key_prefix=prefix).get_entry_by_name("k") == entry
    other_db = LocalIndex(host=redis_server.host, port=redis_server.port, db=1, key_prefix=prefix)
    assert other_db.all_entries == []
    by_kwargs.remove_entry("k")


@pytest.mark.real
def test_unreachable_server_names_host_and_port_never_the_password() -> None:
    from atdata.local._process import free_port

    port = free_port()
    index = LocalIndex(host="127.0.0.1", port=port, password="s3cret-pw", socket_connect_timeout=2)
    with pytest.raises(IndexConnectionError) as info:
        index.get_entry_by_name("x")
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message and "atdata local up" in message
    assert "s3cret-pw" not in message and "s3cret-pw" not in repr(index)
    with pytest.raises(ConnectionError):  # the builtin: existing except clauses catch it
        LocalIndex.from_url(f"redis://:s3cret-pw@127.0.0.1:{port}/0").add_entry(
            FakeDataset("u.tar"), name="u", schema_ref=REF
        )


@pytest.mark.real
def test_refused_credentials_are_index_connection_errors(redis_server: Any) -> None:
    """An ACL user on the shared server: wrong password, then a command the user may not run."""
    admin = redis.Redis(host=redis_server.host, port=redis_server.port)
    user = f"atdata-test-{uuid.uuid4().hex[:8]}"
    admin.acl_setuser(user, enabled=True, passwords=["+right-pw"], keys=["*"], commands=["+@all", "-evalsha", "-eval"])
    try:
        wrong = LocalIndex(host=redis_server.host, port=redis_server.port, username=user, password="wrong-pw")
        with pytest.raises(IndexConnectionError, match=f"{redis_server.host}:{redis_server.port}") as info:
            wrong.all_entries
        assert "wrong-pw" not in str(info.value) and "right-pw" not in str(info.value)
        limited = LocalIndex(host=redis_server.host, port=redis_server.port, username=user, password="right-pw")
        assert limited.all_entries == []
        with pytest.raises(IndexConnectionError, match="NOPERM"):
            limited.add_entry(FakeDataset("a.tar"), name="a", schema_ref=REF)
    finally:
        admin.acl_deluser(user)


@pytest.mark.real
def test_unreachable_cluster_is_index_connection_error(redis_cluster_server: Any) -> None:
    """A pickled cluster index whose startup node is gone fails with our error, not redis-py's."""
    from atdata.local._process import free_port

    index = LocalIndex(redis=RedisCluster(host=redis_cluster_server.host, port=redis_cluster_server.port))
    state = index.__getstate__()
    state["spec"] = type(state["spec"])(kwargs={**state["spec"].kwargs, "port": free_port()}, cluster=True)
    gone = LocalIndex.__new__(LocalIndex)
    gone.__setstate__(state)
    with pytest.raises(IndexConnectionError, match="127.0.0.1"):
        gone.get_entry_by_name("x")


@pytest.mark.real
def test_killed_writer_leaves_a_consistent_index(redis_server: Any) -> None:
    """SIGKILL a process mid-way through adds, renames and removes: every name still resolves."""
    import signal
    import time

    prefix = f"t{uuid.uuid4().hex[:10]}:"
    code = (
        "import sys, itertools\n"
        "from atdata.index_redis import LocalIndex\n"
        "from atdata.testing.index import REF, FakeDataset\n"
        "index = LocalIndex.from_url(sys.argv[1], key_prefix=sys.argv[2])\n"
        "print('ready', flush=True)\n"
        "for i in itertools.count():\n"
        "    index.add_entry(FakeDataset(f'k{i % 50}.tar'), name=f'n{i % 7}', schema_ref=REF)\n"
        "    if i % 3 == 0:\n"
        "        index.rename_entry(f'n{i % 7}', f'n{(i + 1) % 7}')\n"
        "    if i % 5 == 0:\n"
        "        try:\n"
        "            index.remove_entry(f'n{(i + 3) % 7}')\n"
        "        except KeyError:\n"
        "            pass\n"
    )
    writer = subprocess.Popen([sys.executable, "-c", code, redis_server.url, prefix], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
        time.sleep(1.5)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
    index = LocalIndex.from_url(redis_server.url, key_prefix=prefix)
    assert index.all_entries, "the writer made no progress before it was killed"
    TestIndexOnValkey().assert_consistent(index)
    for key in raw_keys(index):
        index.redis.delete(key)
