"""Starting ``valkey-server`` (or another Redis-protocol binary): plain, AOF-persistent or a one-node cluster."""

from __future__ import annotations

import functools
import os
import socket
import time
from pathlib import Path
from typing import Literal

import redis

from atdata.errors import InvalidArgument, LocalServerError

from .._process import LOCALHOST, ServerProcess, free_port, spawn
from ._binaries import valkey_server_path
from ._handles import RedisServer

__all__ = ["DEFAULT_REDIS_PORT", "Persistence", "redis_reply", "start_redis"]

DEFAULT_REDIS_PORT = 6379

Persistence = Literal["none", "aof"]
_CLUSTER_SLOTS = 16384


def redis_reply(port: int, host: str = LOCALHOST, timeout: float = 1.0) -> bytes | None:
    """First reply line to ``PING`` on ``host:port``, or None if nothing speaks there.

    A raw socket keeps readiness checks and ``atdata local status`` free of client
    imports; ``+PONG`` means ready, ``-LOADING`` still replaying the AOF, ``-NOAUTH``
    a Redis that wants a password.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            reply = sock.recv(256)
    except OSError:
        return None
    return reply.split(b"\r\n", 1)[0] if reply[:1] in (b"+", b"-") else None


def _redis_ready(proc: ServerProcess) -> bool:
    """Readiness probe: the server on ``proc.port`` is ``proc`` itself and done loading."""
    client = redis.Redis(host=LOCALHOST, port=proc.port, socket_timeout=1.0)
    try:
        is_ours = int(client.info("server")["process_id"]) == proc.pid
        return is_ours and bool(client.ping())  # PING fails with -LOADING during AOF replay
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def start_redis(
    data_dir: str | os.PathLike[str],
    *,
    port: int | None = None,
    persistence: Persistence = "none",
    cluster: bool = False,
    log_path: str | os.PathLike[str] | None = None,
    detached: bool = False,
    timeout: float = 15.0,
    binary: str | os.PathLike[str] | None = None,
) -> RedisServer:
    """Start ``valkey-server`` on 127.0.0.1 and wait until it answers PING.

    Parameters
    ----------
    data_dir
        Working directory: AOF files and cluster config go here.
    port
        Port to listen on; None picks a free one.
    persistence
        ``"aof"`` appends every write to an append-only file and fsyncs it before
        replying (``appendfsync always``): the embedded default, so an index entry that
        was acknowledged survives a crash or power loss. Index writes are one small
        transaction per insert, so the fsync costs nothing noticeable. ``"none"`` keeps
        everything in memory (tests).
    cluster
        Run with ``cluster-enabled yes`` and assign all 16384 slots to this single
        node, so ``redis.cluster.RedisCluster`` works against it.
    log_path
        Where the server logs; default ``<data_dir>/valkey.log``.
    detached
        Keep running after this Python process exits (``atdata local up``).
    timeout
        Seconds to wait for readiness.
    binary
        Another Redis-protocol server to run with the same flags, e.g. Debian's
        ``/usr/bin/redis-server`` (7.0+); default: the bundled ``valkey-server``.

    Raises
    ------
    LocalServerError
        The server did not start; the message has the tail of its log.
    """
    if persistence not in ("none", "aof"):
        raise InvalidArgument(f"persistence={persistence!r} is not 'none' or 'aof'")
    program = Path(binary) if binary else valkey_server_path()
    workdir = Path(data_dir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    # The cluster bus gets its own free port: valkey's default, port+10000, may be taken.
    cluster_port = free_port() if cluster else None

    process = spawn(
        program.name,
        functools.partial(_argv, program, workdir, persistence, cluster_port),
        port=port,
        log_path=Path(log_path) if log_path else workdir / "valkey.log",
        ready=_redis_ready,
        timeout=timeout,
        detached=detached,
    )
    server = RedisServer(LOCALHOST, process.port, workdir, cluster, process)
    if cluster:
        try:
            _assign_all_slots(server, timeout)
        except BaseException:
            server.stop()
            raise
    return server


def _argv(program: Path, workdir: Path, persistence: Persistence, cluster_port: int | None, port: int) -> list[str]:
    """The server's command line on ``port`` (AOF fsynced per write when persistent)."""
    args = [
        str(program),
        "--port", str(port),
        "--bind", LOCALHOST,
        "--dir", str(workdir),
        "--daemonize", "no",
        "--save", "",
        "--appendonly", "yes" if persistence == "aof" else "no",
        "--appendfsync", "always",
    ]  # fmt: skip
    if cluster_port is not None:
        args += [
            "--cluster-enabled", "yes",
            "--cluster-port", str(cluster_port),
            "--cluster-config-file", str(workdir / f"nodes-{port}.conf"),
        ]  # fmt: skip
    return args


def _assign_all_slots(server: RedisServer, timeout: float) -> None:
    """Give this single node every hash slot and wait for ``cluster_state:ok``."""
    client = redis.Redis(host=server.host, port=server.port, socket_timeout=timeout)
    try:
        client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, _CLUSTER_SLOTS - 1)
        deadline = time.monotonic() + timeout
        while b"cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
            if time.monotonic() > deadline:
                raise LocalServerError(
                    f"valkey cluster node on {server.host}:{server.port} did not reach "
                    f"cluster_state:ok within {timeout:g}s"
                )
            time.sleep(0.05)
    finally:
        client.close()
