"""A store used in a parent process keeps writing in a forked child (multiprocessing's default on Linux)."""

from __future__ import annotations

import os
import signal
import time
import uuid
from typing import Any

import pytest

from atdata.store_s3 import S3DataStore
from atdata.testing.store import make_raw_samples

pytestmark = pytest.mark.real


def test_forked_child_writes_multipart_shards(s3_server: Any) -> None:
    store = S3DataStore(s3_server.credentials, f"fork-{uuid.uuid4().hex[:12]}", part_size=5 << 20)
    samples = make_raw_samples(12, payload_size=1 << 20)  # 12 MiB shards: parts go through the pool
    store.write_shards(samples, prefix="parent", maxcount=12)
    pid = os.fork()
    if pid == 0:  # the child: exit code 0 only if its write completes
        code = 1
        try:
            code = 0 if len(store.write_shards(samples, prefix="child", maxcount=12)) == 1 else 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + 60
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    if done[0] == 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child's write hung")
    assert os.waitstatus_to_exitcode(done[1]) == 0, "the forked child's write failed"
    assert [info.size > 12 << 20 for info in store.list_objects("child/")] == [True]
