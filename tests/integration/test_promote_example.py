"""examples/promote_workflow.py runs as written, pointed at the test servers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import redis

from atdata.atmosphere.testing import PdsServer
from atdata.local.servers import RedisServer, S3Server

ROOT = Path(__file__).resolve().parents[2]


def test_promote_workflow_example(
    tmp_path: Path, pds_server: PdsServer, redis_server: RedisServer, s3_server: S3Server
) -> None:
    db = redis.Redis(host=redis_server.host, port=redis_server.port, db=6)
    db.flushdb()
    env = {
        **os.environ,
        **s3_server.credentials,
        "ATDATA_PDS_URL": pds_server.url,
        "ATDATA_REDIS_URL": f"redis://{redis_server.host}:{redis_server.port}/6",
    }
    env.pop("ATDATA_PDS_HANDLE", None)
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "promote_workflow.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("local:    demo-images bafyrei")
    assert lines[-2:] == ["read back 200 samples from storageS3", "read back 200 samples from storageBlobs"]
    db.flushdb()
