"""``atdata local up / down / status``: the embedded servers' state under one data directory.

``servers.json`` records the pid, port, data and log of each server ``up`` started (and
the S3 server's endpoint and keys, mode 0600, so fresh processes can read its data: the
format is :mod:`atdata.server_record`);
``status`` combines it with a live probe; ``down`` stops only what ``up`` started.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

from atdata import server_record
from atdata.errors import LocalServerError

from .._process import LOCALHOST, ServerProcess, http_get_root, pid_runs, port_in_use, stop_pid
from ._handles import RedisServer, S3Server
from ._redis import DEFAULT_REDIS_PORT, redis_reply, start_redis
from ._s3 import DEFAULT_S3_ACCESS_KEY, DEFAULT_S3_PORT, DEFAULT_S3_SECRET_KEY, start_s3

__all__ = ["ServerStatus", "data_dir_default", "down", "status", "up"]

log = logging.getLogger(__name__)

_STATE_FILE = server_record.RECORD_FILE  # its format: atdata.server_record (read by index and store)


def data_dir_default() -> Path:
    """Where the embedded servers keep their state: ``$ATDATA_HOME`` or ``~/.atdata``."""
    return server_record.data_dir()


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
    tmp.touch(mode=0o600)  # it holds the S3 server's keys: its owner's only
    tmp.chmod(0o600)
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
    tmp.replace(path)


def _answers(name: str, port: int) -> bool:
    """Whether the right kind of server answers on ``port``.

    For S3, any HTTP server is not enough (a web app on 9000 is no object store): an
    unsigned ``GET /`` must come back as S3's XML, an ``<Error>`` (rclone, MinIO, AWS)
    or a bucket list (servers that allow anonymous listing, like moto).
    """
    if name == "redis":
        return redis_reply(port) is not None
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
    record = {"pid": process.pid, "port": started.port, "data_dir": str(started.data_dir), "log": str(log_path)}
    if isinstance(started, S3Server):  # so a fresh process can read it (atdata.server_record)
        record.update(endpoint_url=started.endpoint_url, access_key=access_key, secret_key=secret_key)
    return record


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
