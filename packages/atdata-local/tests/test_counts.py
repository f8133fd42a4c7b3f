"""Counts a user expects (issue 13): ``len(dataset)`` when the entry knows it, samples in
``atdata ls`` / ``atdata show``; on the real valkey, with a directory hive and rclone S3."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

import atdata
from atdata.index_redis import LocalIndex
from atdata.local import Repo
from atdata.local.cli import main
from atdata.local.servers import RedisServer, S3Server

from .conftest import Point, write_source

pytestmark = pytest.mark.real


@pytest.mark.parametrize("hive", ["directory", "s3"])
def test_a_dataset_from_an_entry_knows_its_length(
    tmp_path: Path, request: pytest.FixtureRequest, redis_server: RedisServer, key_prefix: str, hive: str
) -> None:
    if hive == "s3":
        s3: S3Server = request.getfixturevalue("s3_server")
        repo = Repo(s3.credentials, f"counts-{uuid.uuid4().hex[:12]}/sets", redis_server.url, key_prefix=key_prefix)
    else:
        repo = Repo(hive_path=str(tmp_path / "hive"), redis=redis_server.url, key_prefix=key_prefix)
    source = write_source(tmp_path / "src", 47, maxcount=20)
    with pytest.raises(TypeError, match="carry no sample count"):
        len(source)  # plain paths: unknown
    entry, stored = repo.insert(source, name="pts", maxcount=10)
    assert len(stored) == 47 and len(stored.shard_list) == 5
    fresh = LocalIndex.from_url(redis_server.url, key_prefix=key_prefix)  # as another process reads it
    url = fresh.get_entry_by_name("pts").data_urls[0]
    dataset = atdata.Dataset[Point](url)
    assert len(dataset) == 47 == sum(1 for _ in dataset)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out) if "--json" in argv else out


def test_ls_and_show_have_a_samples_column(
    tmp_path: Path, redis_server: RedisServer, key_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = Repo(hive_path=str(tmp_path / "hive"), redis=redis_server.url, key_prefix=key_prefix)
    repo.insert(write_source(tmp_path / "src", 1234, maxcount=500), name="big", maxcount=1000)
    plain = atdata.Dataset(write_source(tmp_path / "plain", 3).shard_list)
    repo.index.add_entry(plain, name="uncounted", schema_ref=repo.index.publish_schema(Point, version=None))
    conn = ["--redis-url", redis_server.url, "--key-prefix", key_prefix]
    code, rows = run(capsys, "ls", "--json", *conn)
    assert code == 0 and {r["name"]: r["samples"] for r in rows} == {"big": 1234, "uncounted": None}
    code, text = run(capsys, "ls", *conn)
    header, *lines = text.splitlines()
    assert header.split() == ["NAME", "CID", "SCHEMA", "SHARDS", "SAMPLES", "SIZE"]
    assert [line.split()[4] for line in lines] == ["1,234", "?"]
    code, shown = run(capsys, "show", "big", "--json", *conn)
    assert code == 0 and shown["samples"] == 1234
    code, text = run(capsys, "show", "big", *conn)
    assert "samples:   1,234" in text.splitlines()
