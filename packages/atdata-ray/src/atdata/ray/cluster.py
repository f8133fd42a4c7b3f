"""A one-machine Ray cluster on 127.0.0.1 that starts even on a loaded machine.

For tests, benchmarks and laptops: ``ray.init()`` alone is not enough there, for two
reasons found on a loaded 2-core machine (Ray 2.60):

- **The raylet dies if the dashboard agent is slow.** The raylet waits for port files
  the dashboard agent writes once it is up, with a hard-coded 15 s limit
  (ray-project/ray#65983, ``WaitForPersistedPort``); no option, env var or
  ``_system_config`` raises it. Under load the agent's imports alone take longer, and
  the raylet aborts with "Timed out waiting for file .../metrics_agent_port_...". We
  start the node with ``ray start`` and explicit ports, and write those port files
  ourselves the moment the session directory appears: ``-1`` ("not in use", what the
  minimal agent writes itself) for the metrics and dashboard ports, so metrics and the
  dashboard stay off, and the runtime-env agent's fixed port, so the raylet reaches
  that agent whenever it is up (its client retries; ``RAY_agent_register_timeout_ms``
  bounds that wait).
- **Ray replaces 127.0.0.1 with the machine's outward address** (192.0.2.2 here) unless
  ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, which makes every Ray process use the
  loopback address, as Ray does on macOS and Windows. Ray reads it when it is imported,
  so the driver must have it (:data:`DRIVER_ENV`) in its environment before ``import ray``.

Token authentication stays on: the driver's ``RAY_AUTH_TOKEN`` (random, made here if
Ray is not imported yet) is given to the node, whose workers inherit it.

Nothing outlives the driver: ``ray start`` runs in a process group of its own, and a
reaper process (:mod:`atdata.ray._reaper`, in a session of its own) waits on a pipe
from the driver. :meth:`LocalRayCluster.stop` closes the pipe, and so does the kernel
when the driver dies in any way (Ctrl-C, SIGKILL, a killed test run): the reaper then
stops the whole group, the Ray workers (found by an environment marker, since the
raylet gives them groups of their own) and removes the cluster's files.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from atdata.errors import LocalServerError
from atdata.local._process import LOCALHOST, free_port

from ._reaper import MARKER

__all__ = ["DRIVER_ENV", "LocalRayCluster", "start_local_cluster"]

#: What a driver's environment needs before ``import ray`` (Ray reads these at import):
#: every address on 127.0.0.1, no ``uv run`` runtime env (under ``uv run`` Ray would
#: otherwise zip the working directory and start every worker through ``uv run``), and
#: token authentication (plus a ``RAY_AUTH_TOKEN``, which :func:`start_local_cluster`
#: makes when Ray is not imported yet).
DRIVER_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0", "RAY_AUTH_MODE": "token"}

_STARTED = "Ray runtime started"
_PORTS = ("port", "node-manager-port", "object-manager-port", "runtime-env-agent-port", "dashboard-port")
_AGENT_PORTS = ("dashboard-agent-grpc-port", "dashboard-agent-listen-port", "metrics-export-port")
#: Port files the raylet waits for (names from ray._raylet), written as "-1": not in use.
_UNUSED_PORT_FILES = ("metrics_agent_port", "metrics_export_port", "dashboard_agent_listen_port")
_POLL_SECONDS = 0.05


@dataclass
class LocalRayCluster:
    """A running one-node Ray cluster: ``address`` for ``ray.init``, its files under ``root``."""

    address: str
    num_cpus: int
    root: Path
    process: subprocess.Popen[bytes] = field(repr=False)
    env: dict[str, str] = field(repr=False)
    reaper: subprocess.Popen[bytes] = field(repr=False)

    def log_tail(self, lines: int = 30) -> str:
        """The end of ``ray start``'s output and of the raylet's log: what to show when it fails."""
        parts = []
        for path in [self.root / "ray-start.log", *sorted(self.root.glob("session_*/logs/raylet.out"))]:
            try:
                text = path.read_text(errors="replace").splitlines()
            except OSError:
                continue
            kept = [line for line in text if not line.startswith(("/", " ", "\t"))]  # drop stack frames
            parts.append(f"--- {path}:\n" + "\n".join(kept[-lines:]))
        return "\n".join(parts) or "(no log)"

    def stop(self, timeout: float = 60.0) -> None:
        """Stop every process of the node, workers included, and delete its files.

        The reaper does it (SIGTERM to the node's process group, SIGKILL after 3 s, then
        any worker left); this waits for it to finish.
        """
        if self.reaper.stdin is not None and not self.reaper.stdin.closed:
            self.reaper.stdin.close()
        try:
            self.reaper.wait(timeout)
        except subprocess.TimeoutExpired:
            self.reaper.kill()
            raise LocalServerError(
                f"the local Ray cluster under {self.root} did not stop within {timeout:g}s"
            ) from None
        self.process.wait(timeout)  # reaped by the reaper's SIGKILL at the latest: collect its status


def start_local_cluster(num_cpus: int = 2, timeout: float = 240.0) -> LocalRayCluster:
    """Start a one-node Ray cluster on 127.0.0.1 and wait until it accepts drivers.

    Then ``ray.init(address=cluster.address)`` connects (this process's environment
    gets the token). The node's files live in a short new directory under the system
    temp dir (Ray's socket paths must stay under ~107 characters), removed by
    :meth:`LocalRayCluster.stop`.

    Raises
    ------
    LocalServerError
        This process imported Ray without :data:`DRIVER_ENV`, or
        the node exited or did not start within ``timeout`` seconds (with the tail of
        ``ray start``'s output and the raylet log).
    """
    _check_driver_env()
    root = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp" if os.path.isdir("/tmp") else None))
    node_id = secrets.token_hex(28)
    env = {
        **DRIVER_ENV,
        "RAY_AUTH_TOKEN": os.environ["RAY_AUTH_TOKEN"],
        "RAY_OVERRIDE_NODE_ID_FOR_TESTING": node_id,
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_agent_register_timeout_ms": os.environ.get("RAY_agent_register_timeout_ms", "180000"),
        MARKER: str(root),  # inherited by every process of the node: the reaper finds them by it
    }
    ports = {name: free_port() for name in (*_PORTS, *_AGENT_PORTS)}
    argv = [
        str(Path(sys.executable).with_name("ray")), "start", "--head", "--block",
        f"--node-ip-address={LOCALHOST}", f"--num-cpus={num_cpus}", "--include-dashboard=false",
        "--include-log-monitor=false", "--disable-usage-stats", f"--temp-dir={root}",
        *(f"--{name}={port}" for name, port in ports.items()),
    ]  # fmt: skip
    with open(root / "ray-start.log", "wb") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            start_new_session=True,  # its own process group: the reaper stops it as one
        )
    reaper = _start_reaper(root, process.pid)
    cluster = LocalRayCluster(f"{LOCALHOST}:{ports['port']}", num_cpus, root, process, env, reaper)
    writer = threading.Thread(
        target=_write_port_files, args=(cluster, node_id, ports["runtime-env-agent-port"], timeout), daemon=True
    )
    writer.start()
    try:
        _wait_started(cluster, timeout)
    except BaseException:
        tail = cluster.log_tail()
        cluster.stop()
        raise LocalServerError(f"the local Ray cluster did not start:\n{tail}") from None
    return cluster


def _start_reaper(root: Path, pgid: int) -> subprocess.Popen[bytes]:
    """The reaper of :mod:`atdata.ray._reaper`, run by path (it must not import ray), in its own session."""
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("_reaper.py")), str(root), str(pgid)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _check_driver_env() -> None:
    """Set :data:`DRIVER_ENV` and a token if Ray is not imported yet, else check that Ray saw them."""
    if "ray" not in sys.modules:
        os.environ.update(DRIVER_ENV)
        os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
        return
    from ray._private import ray_constants

    if (
        ray_constants.ENABLE_RAY_CLUSTER
        or ray_constants.RAY_ENABLE_UV_RUN_RUNTIME_ENV
        or os.environ.get("RAY_AUTH_MODE") != "token"
        or not os.environ.get("RAY_AUTH_TOKEN")
    ):
        settings = " ".join(f"{key}={value}" for key, value in DRIVER_ENV.items()) + " RAY_AUTH_TOKEN=<random>"
        raise LocalServerError(
            f"ray was imported before its environment was set: set {settings} before importing ray "
            "(without them Ray replaces 127.0.0.1 with this machine's outward address)"
        )


def _write_port_files(cluster: LocalRayCluster, node_id: str, runtime_env_port: int, timeout: float) -> None:
    """Write the port files the raylet waits for as soon as its session directory exists."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and cluster.process.poll() is None:
        sessions = [p for p in cluster.root.glob("session_*") if re.fullmatch(r"session_\d.*", p.name)]
        if sessions:
            values = {name: -1 for name in _UNUSED_PORT_FILES} | {"runtime_env_agent_port": runtime_env_port}
            for name, value in values.items():
                target = sessions[0] / f"{name}_{node_id}"
                if not target.exists():
                    partial = target.with_name(f".{target.name}.tmp")
                    partial.write_text(str(value))
                    partial.replace(target)  # the raylet must never read a half-written file
            return
        time.sleep(_POLL_SECONDS)


def _wait_started(cluster: LocalRayCluster, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    log = cluster.root / "ray-start.log"
    while time.monotonic() < deadline:
        if _STARTED in log.read_text(errors="replace"):
            return
        if cluster.process.poll() is not None:
            raise LocalServerError(f"ray start exited with {cluster.process.returncode}")
        time.sleep(_POLL_SECONDS * 4)
    raise LocalServerError(f"ray start did not finish within {timeout:g}s")
