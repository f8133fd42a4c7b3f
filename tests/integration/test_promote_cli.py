"""`atdata promote` and `atdata atmosphere ls|show` on the real PDS, valkey and rclone S3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

import atdata
from atdata.atmosphere.testing import PdsAccount, PdsServer
from atdata.local import Repo, S3DataStore
from atdata.local.servers import RedisServer, S3Server


@atdata.packable
class CliSample:
    values: NDArray
    label: str


def _atdata(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "atdata.local.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
    )


def test_promote_then_list_and_show(
    pds_server: PdsServer, pds_account: PdsAccount, redis_server: RedisServer, s3_server: S3Server, tmp_path: Path
) -> None:
    bucket, prefix = f"cli-{uuid.uuid4().hex[:12]}", f"cli-{uuid.uuid4().hex}:"
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in s3_server.credentials.items()))
    repo = Repo(s3_credentials=str(env_file), hive_path=f"{bucket}/ds", redis=redis_server.url, key_prefix=prefix)
    urls = atdata.write_samples(
        [CliSample(values=np.arange(3.0) + i, label=str(i)) for i in range(30)], str(tmp_path / "d-%06d.tar")
    )
    entry, _ = repo.insert(atdata.Dataset[CliSample](urls), name="cli-ds")
    local = ["--redis-url", redis_server.url, "--key-prefix", prefix]
    pds = ["--pds", pds_server.url]

    no_password = _atdata("promote", "cli-ds", *pds, "--handle", pds_account.handle, *local, env={})
    assert no_password.returncode == 1 and "ATDATA_PDS_PASSWORD" in no_password.stderr

    secret = {"ATDATA_PDS_PASSWORD": pds_account.password}
    args = ["promote", "cli-ds", *pds, "--handle", pds_account.handle, "--tag", "cli", "--license", "MIT"]
    done = _atdata(*args, *local, "--s3-credentials", str(env_file), "--json", "--debug", env=secret)
    assert done.returncode == 0, done.stderr
    assert pds_account.password not in done.stdout + done.stderr  # not even in debug logs
    promoted = json.loads(done.stdout)
    assert promoted["cid"] == entry.cid and promoted["uri"].startswith(f"at://{pds_account.did}/")

    listed = _atdata("atmosphere", "ls", *pds, "--repo", pds_account.handle, "--json", env={})
    assert listed.returncode == 0, listed.stderr
    rows: list[dict[str, Any]] = json.loads(listed.stdout)
    assert [(r["name"], r["uri"], r["cid"], r["storage"]) for r in rows] == [
        ("cli-ds", promoted["uri"], entry.cid, "storageS3")
    ]

    shown = _atdata("atmosphere", "show", "cli-ds", *pds, "--repo", pds_account.did, "--json", env={})
    assert shown.returncode == 0, shown.stderr
    row = json.loads(shown.stdout)
    assert [f["name"] for f in row["schema"]["fields"]] == ["values", "label"]
    assert row["tags"] == ["cli"] and row["license"] == "MIT" and len(row["sha256"]) == 1
    text = _atdata("atmosphere", "show", promoted["uri"], *pds, "--repo", pds_account.did, env={})
    assert "cli-ds" in text.stdout and "sha256" in text.stdout

    store = S3DataStore(s3_server.credentials, bucket)
    store.delete(info.key for info in store.list_objects())
