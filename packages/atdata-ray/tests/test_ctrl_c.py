"""Ctrl-C on the driver of a write: no entry, and after gc no staged shard (a real SIGINT to a real driver)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from atdata.errors import EntryNotFound
from atdata.local import Repo

# A fresh driver is a new Ray job: its workers start from scratch (minutes on a loaded 2-core machine).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

DRIVER = """
import json, signal, sys, time
# A driver started from a terminal has Python's Ctrl-C handler; one started by a test run
# that was itself started in the background (`pytest ... &`, CI scripts) inherits SIGINT
# ignored, and Python then installs no handler: the SIGINT below would do nothing.
signal.signal(signal.SIGINT, signal.default_int_handler)
import numpy as np, ray, ray.data
from numpy.typing import NDArray
import atdata
from atdata.local import Repo
from atdata.ray import write_dataset

conf = json.loads(sys.argv[1])

@atdata.packable
class Row:
    label: int

def slow(row):
    if row["id"] in (20, 30):  # blocks 2 and 3 hang (their tasks die with the driver): Ctrl-C comes meanwhile
        time.sleep(60)
    return {"label": int(row["id"])}

ray.init(address=conf["address"], log_to_driver=False, logging_level="WARNING")
repo = Repo(s3_credentials=conf["credentials"], hive_path=conf["hive"], redis=conf["redis"], key_prefix=conf["key_prefix"])
write_dataset(ray.data.range(40, override_num_blocks=4).map(slow), repo, name="interrupted", sample_type=Row)
"""


def shards(repo: Repo) -> list[str]:
    return [info.key for info in repo.store.list_objects(repo.prefix) if info.key.endswith(".tar")]


def test_ctrl_c_on_the_driver_leaves_no_entry_and_gc_no_shard(
    s3_repo: Repo, s3_server, redis_server, ray_cluster, s3_credentials_file
) -> None:
    conf = {
        "address": ray_cluster.address,
        "credentials": s3_credentials_file,
        "hive": f"{s3_repo.store.bucket}/{s3_repo.prefix}",
        "redis": redis_server.url,
        "key_prefix": s3_repo.index.key_prefix,
    }
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, json.dumps(conf)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 600
        while len(shards(s3_repo)) < 2:  # blocks 0 and 1 staged (none mid-upload at Ctrl-C): the write is under way
            assert driver.poll() is None, driver.communicate()
            assert time.monotonic() < deadline, "the driver staged no shard in time"
            time.sleep(0.5)
        driver.send_signal(signal.SIGINT)
        _, stderr = driver.communicate(timeout=120)
    finally:
        driver.kill()
    assert driver.returncode != 0 and "KeyboardInterrupt" in stderr, stderr[-2000:]
    with pytest.raises(EntryNotFound):
        s3_repo.index.get_entry_by_name("interrupted")
    assert shards(s3_repo) == []  # the interrupted driver discarded what its tasks had staged
    s3_repo.gc(grace=0, force=True)
    assert [info.key for info in s3_repo.store.list_objects(s3_repo.prefix) if "data--" in info.key] == []
