"""Spawning, probing and stopping the server processes behind :mod:`atdata.local.servers`.

Kept apart from ``servers.py`` so that the policy there (which server, which flags,
which data directory) reads without the process plumbing: free ports, readiness
polling, log tails and the SIGTERM-then-SIGKILL shutdown.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import http.client
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from atdata.errors import LocalServerError

__all__ = [
    "LOCALHOST",
    "ServerProcess",
    "free_port",
    "http_answers",
    "http_get_root",
    "http_ready",
    "pid_alive",
    "pid_runs",
    "port_in_use",
    "spawn",
    "stop_pid",
]

log = logging.getLogger(__name__)

#: Every server atdata starts listens here and nowhere else.
LOCALHOST = "127.0.0.1"

_LOG_TAIL_LINES = 20
_POLL_SECONDS = 0.05


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now.

    The port is only free when this returns; :func:`spawn` retries with a new port
    when a server loses the race for it.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = LOCALHOST) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def http_get_root(port: int, host: str = LOCALHOST, timeout: float = 1.0) -> bytes | None:
    """Body of an unsigned ``GET /`` on ``host:port`` (any status), or None if no HTTP server answers."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", "/")
        return conn.getresponse().read(64 * 1024)
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def http_answers(port: int, host: str = LOCALHOST, timeout: float = 1.0) -> bool:
    """Whether an HTTP server answers on ``host:port`` (any status counts).

    S3 servers answer an unsigned ``GET /`` with 400 or 403: that still proves the
    server is up and speaks HTTP, which is all readiness needs.
    """
    return http_get_root(port, host, timeout) is not None


def http_ready(proc: ServerProcess) -> bool:
    """Readiness probe for HTTP servers: ``proc`` runs and its port answers HTTP."""
    return http_answers(proc.port) and proc.running()


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie we could reap."""
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)  # reap our own exited child first
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def pid_runs(pid: int, program: str) -> bool:
    """Whether ``pid`` is alive and runs ``program`` (guards against recycled pids).

    Uses ``/proc`` where it exists; elsewhere a live pid is trusted.
    """
    if not pid_alive(pid):
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        return program in cmdline.read_bytes().decode(errors="replace")
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except OSError:
        return True


def stop_pid(pid: int, timeout: float = 10.0, alive: Callable[[int], bool] = pid_alive) -> None:
    """Stop ``pid`` with SIGTERM, then SIGKILL if it outlives ``timeout`` seconds.

    Both servers flush and exit cleanly on SIGTERM (valkey fsyncs its AOF), so SIGKILL
    is only the last resort for a hung process. ``alive`` lets the owner of a
    ``Popen`` poll it, so that its exit status is not reaped from under it.
    """
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            alive(pid)  # reap if it is our child
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not alive(pid):
                return
            time.sleep(_POLL_SECONDS)
        log.warning("process %d ignored %s", pid, sig.name)
    raise LocalServerError(f"process {pid} did not exit after SIGKILL; stop it by hand")


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Ask Linux to SIGTERM the child when the starting thread exits (prctl PDEATHSIG).

    Test servers must not outlive a killed test run; elsewhere this is a no-op.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _tie_to_parent(detached: bool) -> bool:
    """Whether a new server should die with us: not when detached, and only when started
    from the main thread, since PDEATHSIG fires when the *thread* that forked exits (a
    server started from a short-lived worker thread would die with that thread)."""
    return not detached and threading.current_thread() is threading.main_thread()


@dataclass
class ServerProcess:
    """One running server: its pid, port and log file.

    ``detached`` servers (``atdata local up``) run in their own session and outlive
    the Python process that started them; the others die with it (on Linux, when
    started from the main thread) or are stopped by :meth:`stop`.
    """

    name: str
    pid: int
    port: int
    log_path: Path
    detached: bool
    _popen: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    def running(self) -> bool:
        """Whether the process is still alive."""
        if self._popen is not None:
            return self._popen.poll() is None
        return pid_alive(self.pid)

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of the server's log (what to show when it fails)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL); a stopped server is left alone."""
        popen = self._popen
        if popen is not None:
            if popen.poll() is None:
                stop_pid(self.pid, timeout, alive=lambda _pid: popen.poll() is None)
            return
        if pid_alive(self.pid):
            stop_pid(self.pid, timeout)


def spawn(
    name: str,
    argv: Callable[[int], Sequence[str]],
    *,
    port: int | None,
    log_path: Path,
    ready: Callable[[ServerProcess], bool],
    timeout: float = 15.0,
    detached: bool = False,
    env: dict[str, str] | None = None,
) -> ServerProcess:
    """Start a server and wait until ``ready(port)`` holds.

    Parameters
    ----------
    name
        Human name for messages ("valkey-server", "rclone serve s3").
    argv
        Builds the command line for a given port.
    port
        Fixed port, or None for a free one (retried if another process takes it first).
    log_path
        Where the server's stdout and stderr go; its tail goes into errors.
    ready
        Readiness probe (PING, HTTP), polled until true. It gets the process, so it
        can check that the answer comes from this server and not from another one
        that holds the port.
    timeout
        Seconds to wait for readiness.
    detached
        Run in a new session that outlives this process (``atdata local up``).
    env
        Extra environment variables for the server.

    Raises
    ------
    LocalServerError
        The server exited or did not become ready in time; the message holds the
        command and the tail of its log.
    """
    attempts_left = 1 if port is not None else 3
    while True:
        attempts_left -= 1
        chosen = port if port is not None else free_port()
        if port_in_use(chosen):
            if attempts_left:
                continue
            raise LocalServerError(
                f"cannot start {name}: port {chosen} on {LOCALHOST} is already in use; "
                "stop whatever listens there or choose another port"
            )
        proc = _start_once(name, list(argv(chosen)), chosen, log_path, detached, env)
        try:
            _wait_ready(proc, ready, timeout)
        except LocalServerError:
            proc.stop(timeout=2.0)
            if attempts_left and "in use" in proc.log_tail().lower():
                log.info("%s lost port %d to another process; retrying", name, chosen)
                continue
            raise
        log.info("%s ready on %s:%d (pid %d)", name, LOCALHOST, chosen, proc.pid)
        return proc


def _start_once(
    name: str,
    argv: list[str],
    port: int,
    log_path: Path,
    detached: bool,
    env: dict[str, str] | None,
) -> ServerProcess:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log_file:
        try:
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=detached,
                preexec_fn=_die_with_parent if _tie_to_parent(detached) else None,
                env={**os.environ, **(env or {})},
            )
        except OSError as exc:
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            if exc.errno == errno.ENOENT:
                reason += " (is the package that ships it installed? try `uv sync`)"
            raise LocalServerError(f"cannot run {name} ({argv[0]}): {reason}") from exc
    return ServerProcess(name, popen.pid, port, log_path, detached, popen)


def _wait_ready(proc: ServerProcess, ready: Callable[[ServerProcess], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.running():
            raise LocalServerError(
                f"{proc.name} exited while starting on {LOCALHOST}:{proc.port}; "
                f"last lines of {proc.log_path}:\n{proc.log_tail()}"
            )
        if ready(proc):
            return
        time.sleep(_POLL_SECONDS)
    raise LocalServerError(
        f"{proc.name} did not become ready on {LOCALHOST}:{proc.port} within {timeout:g}s; "
        f"last lines of {proc.log_path}:\n{proc.log_tail()}"
    )
