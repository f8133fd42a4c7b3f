"""start_local_cluster leaves no process behind: after stop(), and after its driver is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from atdata.ray._reaper import marked

# Each case starts a cluster of its own in a fresh driver (tens of seconds on a loaded machine).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

DRIVER = """
import os, sys, time
import ray
from atdata.ray.cluster import start_local_cluster

cluster = start_local_cluster(num_cpus=1)
ray.init(address=cluster.address, log_to_driver=False, logging_level="WARNING")

@ray.remote
def worker_pid():
    return os.getpid()

print(cluster.root, ray.get(worker_pid.remote()), flush=True)  # a worker is up
if sys.argv[1] == "stop":
    ray.shutdown()
    cluster.stop()
    print("stopped", flush=True)
else:
    time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"  # a zombie is gone but for its status


@pytest.mark.parametrize("end", ["stop", "SIGKILL"])
def test_no_ray_process_outlives_the_cluster(end: str) -> None:
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, end], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert driver.stdout is not None
        line = driver.stdout.readline()
        assert line, driver.communicate(timeout=60)[1][-3000:]
        root, worker = line.split()
        assert marked(root) and alive(int(worker))  # the node and its worker run, marked as the cluster's
        if end == "SIGKILL":
            driver.send_signal(signal.SIGKILL)  # no teardown at all: only the reaper is left to act
        else:
            assert driver.stdout.readline() == "stopped\n"
        driver.wait(60)
        deadline = time.monotonic() + 60
        while (marked(root) or alive(int(worker)) or Path(root).exists()) and time.monotonic() < deadline:
            time.sleep(0.5)  # the reaper removes the files last
        assert marked(root) == [] and not alive(int(worker))
        assert not Path(root).exists()
    finally:
        driver.kill()
