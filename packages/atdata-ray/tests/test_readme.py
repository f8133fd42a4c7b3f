"""The README's pipeline from raw files to an entry, run as written on the real Ray, Redis and S3 servers."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import boto3
import numpy as np
import pytest
import ray.cloudpickle
import torch

from atdata.local.servers import RedisServer, S3Server

README = Path(__file__).parents[1] / "README.md"
ROWS = 90  # 3 raw files of 30 rows


def readme_pipeline() -> str:
    """The python block under the README's 'From raw files' heading."""
    section = README.read_text().split("## From raw files to a named, typed, verified entry", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "the README lost its pipeline example"
    return match[1]


def test_the_readme_pipeline_runs_as_written(
    s3_server: S3Server,
    redis_server: RedisServer,
    ray_cluster: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint_url,
        aws_access_key_id=s3_server.access_key,
        aws_secret_access_key=s3_server.secret_key,
        region_name="us-east-1",
    ).create_bucket(Bucket="my-bucket")  # the README's bucket: no other test uses it
    (tmp_path / "s3.env").write_text("".join(f"{k}={v}\n" for k, v in s3_server.credentials.items()))
    (tmp_path / "raw").mkdir()
    for part in range(3):
        lines = [f"{i},{i + 0.5},{-i},{i % 7}" for i in range(30 * part, 30 * part + 30)]
        (tmp_path / "raw" / f"part-{part}.csv").write_text("a,b,c,label\n" + "\n".join(lines) + "\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ATDATA_REDIS_URL", redis_server.url)

    # The block runs as a module of its own, as a user's script would (its class resolves
    # its annotations in its module); Ray pickles that module's functions by value.
    module = types.ModuleType("readme_pipeline")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    ray.cloudpickle.register_pickle_by_value(module)
    exec(compile(readme_pipeline(), str(README), "exec"), module.__dict__)  # noqa: S102  # the README's own code
    namespace = module.__dict__

    repo, entry, stored = namespace["repo"], namespace["entry"], namespace["stored"]
    assert repo.index.get_entry_by_name("readings-v1").cid == entry.cid  # type: ignore[attr-defined]
    (url,) = entry.data_urls  # type: ignore[attr-defined]  # one brace URL naming every shard
    records = url.manifest.shards  # what makes every read of the entry a verified one
    assert len(records) == len(stored.shard_list) and all(r.sha256 and r.chunks for r in records)  # type: ignore[attr-defined]
    want = np.array([[i, i + 0.5, -i] for i in range(ROWS)], np.float32)
    got = [(s.features, s.label) for s in stored.ordered()]  # type: ignore[attr-defined]
    assert np.array_equal(np.stack([f for f, _ in got]), want)
    assert [label for _, label in got] == [i % 7 for i in range(ROWS)]
    batches = list(namespace["read_dataset"](repo, "readings-v1").iter_torch_batches(batch_size=32))  # type: ignore[operator]
    assert torch.equal(torch.cat([b["features"] for b in batches]), torch.from_numpy(want))
