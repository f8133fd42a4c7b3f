"""`atdata local up --redis-port P --s3-port Q` records the ports; every command and
``LocalIndex()`` / ``Repo()`` in a fresh process with nothing configured use them, and
``atdata local env`` prints the shell exports (issue 13, "Counts a user expects").

Everything runs in fresh subprocesses with a new user's environment (no AWS_* or
ATDATA_* variables, a HOME of their own) against the real valkey and rclone that `up` starts.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from atdata.local._process import free_port

pytestmark = pytest.mark.real

CLI = [sys.executable, "-m", "atdata.local.cli"]

SAMPLE_MODULE = """
import atdata
from numpy.typing import NDArray

@atdata.packable
class PortSample:
    features: NDArray
    label: int
"""

WRITE = """
import numpy as np, atdata
from port_samples import PortSample
atdata.write_samples([PortSample(features=np.full(4, i, np.float32), label=i) for i in range(30)], "src-%06d.tar")
"""

# Repo() and LocalIndex() with nothing configured: the recorded servers.
REPO_AND_INDEX = """
import atdata
from atdata.local import LocalIndex, Repo
from port_samples import PortSample
repo = Repo(hive_path="atdata/from-python")
entry, _ = repo.insert(atdata.Dataset[PortSample]("src-000000.tar"), name="from-python")
index = LocalIndex()
print(index.redis.connection_pool.connection_kwargs["port"], repo.store.location.endpoint_url)
print(len(atdata.Dataset[PortSample](index.get_entry_by_name("from-python").data_urls[0])))
"""

# With only the exports of `atdata local env` (HOME without a record): reads and lists.
READ_BACK = """
import atdata
from atdata.local import LocalIndex
from port_samples import PortSample
entry = LocalIndex().get_entry_by_name("pts")
print(sorted(s.label for s in atdata.Dataset[PortSample](entry.data_urls[0]))[:3])
"""


def _fresh_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ATDATA_"))}
    env["HOME"] = str(home)
    return env


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], Path, int, int]]:
    """`atdata local up` on two free (non-default) ports in a fresh HOME; `down` afterwards."""
    tmp_path = tmp_path_factory.mktemp("recorded-ports")
    home = tmp_path / "home"
    home.mkdir()
    env = _fresh_env(home)
    work = tmp_path / "work"
    work.mkdir()
    (work / "port_samples.py").write_text(SAMPLE_MODULE)
    redis_port, s3_port = free_port(), free_port()
    assert {redis_port, s3_port}.isdisjoint({6379, 9000})
    started = _run([*CLI, "local", "up", "--redis-port", str(redis_port), "--s3-port", str(s3_port)], env, work)
    assert started.returncode == 0, started.stderr
    try:
        yield env, work, redis_port, s3_port
    finally:
        stopped = _run([*CLI, "local", "down"], env, work)
        assert stopped.returncode == 0, stopped.stderr


def test_commands_and_fresh_processes_use_the_recorded_ports(up: tuple[dict[str, str], Path, int, int]) -> None:
    env, work, redis_port, s3_port = up
    status = _run([*CLI, "local", "status", "--json"], env, work)  # no --*-port: the recorded ones
    assert status.returncode == 0, status.stderr
    assert {e["name"]: (e["running"], e["url"]) for e in json.loads(status.stdout)} == {
        "redis": (True, f"redis://127.0.0.1:{redis_port}/0"),
        "s3": (True, f"http://127.0.0.1:{s3_port}"),
    }
    assert _run([sys.executable, "-c", WRITE], env, work).returncode == 0
    inserted = _run([*CLI, "insert", "src-000000.tar", "--name", "pts", "--type", "port_samples:PortSample"]
                    + ["--no-progress", "--json"], env, work)  # fmt: skip
    assert inserted.returncode == 0, inserted.stderr
    assert json.loads(inserted.stdout)["data_urls"][0].startswith("s3://atdata/datasets/")
    listed = _run([*CLI, "ls", "--json"], env, work)
    assert listed.returncode == 0, listed.stderr
    assert [(r["name"], r["samples"], r["missing_shards"]) for r in json.loads(listed.stdout)] == [("pts", 30, 0)]

    python = _run([sys.executable, "-c", REPO_AND_INDEX], env, work)
    assert python.returncode == 0, python.stderr
    assert python.stdout.split() == [str(redis_port), f"http://127.0.0.1:{s3_port}", "30"]


def test_local_env_prints_exports_that_reach_the_servers(up: tuple[dict[str, str], Path, int, int]) -> None:
    env, work, redis_port, s3_port = up
    assert _run([sys.executable, "-c", WRITE], env, work).returncode == 0
    inserted = _run([*CLI, "insert", "src-000000.tar", "--name", "pts", "--type", "port_samples:PortSample"], env, work)
    assert inserted.returncode == 0, inserted.stderr

    printed = _run([*CLI, "local", "env"], env, work)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.splitlines() == [
        f"export ATDATA_REDIS_URL=redis://127.0.0.1:{redis_port}/0",
        f"export AWS_ENDPOINT=http://127.0.0.1:{s3_port}",
        f"export AWS_ENDPOINT_URL=http://127.0.0.1:{s3_port}",
        "export AWS_ACCESS_KEY_ID=minioadmin",
        "export AWS_SECRET_ACCESS_KEY=minioadmin",
    ]
    as_json = json.loads(_run([*CLI, "local", "env", "--json"], env, work).stdout)
    assert as_json["ATDATA_REDIS_URL"] == f"redis://127.0.0.1:{redis_port}/0"

    # The exports alone: a shell that evals them, in a HOME with no record at all.
    elsewhere = work / "elsewhere-home"
    elsewhere.mkdir(exist_ok=True)
    script = (
        f'eval "$({shlex.join([*CLI, "local", "env"])})" && export HOME={shlex.quote(str(elsewhere))} && '
        f"{shlex.join([sys.executable, '-c', READ_BACK])}"
    )
    read = _run(["bash", "-c", script], env, work)
    assert read.returncode == 0, read.stderr
    assert read.stdout.split() == ["[0,", "1,", "2]"]

    helped = _run([*CLI, "local", "env", "--help"], env, work)
    assert 'eval "$(atdata local env)"' in helped.stdout and "ATDATA_REDIS_URL" in helped.stdout


def test_local_env_with_nothing_recorded_says_to_run_up(tmp_path: Path) -> None:
    env = _fresh_env(tmp_path)
    printed = _run([*CLI, "local", "env"], env, tmp_path)
    assert printed.returncode == 1 and printed.stdout == ""
    assert printed.stderr.count("\n") == 1 and "run `atdata local up` first" in printed.stderr
    assert str(tmp_path / ".atdata" / "servers.json") in printed.stderr
