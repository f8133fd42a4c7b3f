"""The Repo, Insert Options and Complete Workflow parts of spec/local-storage.md, as tests.

Each test runs a spec snippet against the real servers the root conftest starts
(valkey, rclone serve s3), isolated by a fresh key prefix and a fresh bucket. The
Complete Workflow Example itself runs as a subprocess, from examples/, with only the
server addresses changed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
import webdataset as wds
from numpy.typing import NDArray

import atdata
from atdata.local import LocalIndex, Repo, S3DataStore
from atdata.local.servers import RedisServer, S3Server

pytestmark = pytest.mark.real

ROOT = Path(__file__).resolve().parents[2]


@atdata.packable
class ImageSample:
    image: NDArray
    label: str


def image_samples(n: int) -> list[ImageSample]:
    return [ImageSample(image=np.full((4, 4), i, dtype=np.int32), label=f"img-{i}") for i in range(n)]


@pytest.fixture
def key_prefix() -> str:
    return f"spec-{uuid.uuid4().hex}:"


@pytest.fixture
def bucket(s3_server: S3Server) -> Iterator[str]:
    name = f"spec-{uuid.uuid4().hex[:16]}"
    yield name
    store = S3DataStore(s3_server.credentials, name)
    store.delete(info.key for info in store.list_objects())


@pytest.fixture
def env_file(tmp_path: Path, s3_server: S3Server) -> Path:
    """The spec's credentials file format."""
    path = tmp_path / ".env"
    path.write_text(
        f"AWS_ENDPOINT={s3_server.endpoint_url}\n"
        f"AWS_ACCESS_KEY_ID={s3_server.access_key}\n"
        f"AWS_SECRET_ACCESS_KEY={s3_server.secret_key}\n"
    )
    return path


@pytest.fixture
def temp_tar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> atdata.Dataset[ImageSample]:
    """The spec's 'Create dataset from samples' step: temp.tar written with webdataset."""
    monkeypatch.chdir(tmp_path)
    samples = image_samples(1000)
    with wds.writer.TarWriter("temp.tar") as sink:
        for i, s in enumerate(samples):
            sink.write({**s.as_wds, "__key__": f"{i:06d}"})
    return atdata.Dataset[ImageSample]("temp.tar")


def labels(dataset: atdata.Dataset[Any]) -> list[str]:
    return [s.label for s in dataset.ordered()]


EXPECTED = [f"img-{i}" for i in range(1000)]


@pytest.mark.parametrize("form", ["env_file", "dict"])
@pytest.mark.parametrize("cache_local", [False, True])
def test_inserting_datasets(
    form: str,
    cache_local: bool,
    env_file: Path,
    s3_server: S3Server,
    redis_server: RedisServer,
    key_prefix: str,
    bucket: str,
    temp_tar: atdata.Dataset[ImageSample],
) -> None:
    credentials: Any = (
        str(env_file)
        if form == "env_file"
        else {
            "AWS_ENDPOINT": s3_server.endpoint_url,
            "AWS_ACCESS_KEY_ID": s3_server.access_key,
            "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
        }
    )
    repo = Repo(
        s3_credentials=credentials, hive_path=f"{bucket}/datasets", redis=redis_server.url, key_prefix=key_prefix
    )
    entry, stored_dataset = repo.insert(temp_tar, name="training-images-v1", cache_local=cache_local)

    assert entry.cid.startswith("bafyrei")
    assert stored_dataset.url.startswith(f"s3://{bucket}/datasets/data--")
    assert stored_dataset.shard_list == [stored_dataset.url]  # 1000 small samples: one shard
    assert labels(stored_dataset) == EXPECTED
    assert entry.data_urls == [stored_dataset.url]


@pytest.mark.parametrize(
    ("maxcount", "maxsize", "min_shards"), [(100, None, 10), (None, 20_000, 20), (300, 100_000_000, 4)]
)
def test_insert_options_split_shards(
    maxcount: int | None,
    maxsize: int | None,
    min_shards: int,
    s3_server: S3Server,
    redis_server: RedisServer,
    key_prefix: str,
    bucket: str,
    temp_tar: atdata.Dataset[ImageSample],
) -> None:
    repo = Repo(
        s3_credentials=s3_server.credentials,
        hive_path=f"{bucket}/datasets",
        redis=redis_server.url,
        key_prefix=key_prefix,
    )
    entry, ds = repo.insert(temp_tar, name="my-dataset", cache_local=True, maxcount=maxcount, maxsize=maxsize)
    assert len(ds.shard_list) >= min_shards
    assert ds.url.endswith(f"--{{000000..{len(ds.shard_list) - 1:06d}}}.tar")
    sizes = {info.url: info.size for info in repo.store.list_objects("datasets/")}
    assert all(url in sizes for url in ds.shard_list)
    if maxsize is not None:
        assert max(sizes[url] for url in ds.shard_list) <= maxsize
    assert labels(ds) == EXPECTED


def test_listing_and_retrieving(
    s3_server: S3Server, redis_server: RedisServer, key_prefix: str, bucket: str, temp_tar: atdata.Dataset[ImageSample]
) -> None:
    repo = Repo(
        s3_credentials=s3_server.credentials,
        hive_path=f"{bucket}/datasets",
        redis=redis_server.url,
        key_prefix=key_prefix,
    )
    inserted, _ = repo.insert(temp_tar, name="my-dataset", maxcount=250, metadata={"description": "Training images"})

    # The spec's three ways to connect, on the same index.
    r = redis.Redis(host=redis_server.host, port=redis_server.port)
    for index in (
        LocalIndex(redis=r, key_prefix=key_prefix),
        LocalIndex(host=redis_server.host, port=redis_server.port, db=0, key_prefix=key_prefix),
        repo.index,
    ):
        assert [e.cid for e in index.entries] == [inserted.cid]
        assert [e.name for e in index.all_entries] == ["my-dataset"]
        by_name = index.get_entry_by_name("my-dataset")
        by_cid = index.get_entry(inserted.cid)
        assert by_name == by_cid == inserted
        assert by_name.metadata == {"description": "Training images"}
        assert by_name.wds_url == by_name.data_urls[0] and by_name.sample_kind == by_name.schema_ref
        assert labels(atdata.Dataset[ImageSample](by_name.data_urls[0])) == EXPECTED

    # Schema storage: the record, the listing, and a class rebuilt from it reads the data.
    schema = repo.index.get_schema(inserted.schema_ref)
    assert schema["name"] == "ImageSample" and [f["name"] for f in schema["fields"]] == ["image", "label"]
    assert [f"{s['name']}@{s['version']}" for s in repo.index.list_schemas()] == ["ImageSample@1.0.0"]
    SampleType = repo.index.decode_schema(inserted.schema_ref)
    dataset = atdata.Dataset[SampleType](inserted.data_urls[0])
    assert labels(dataset) == EXPECTED


READ_IN_NEW_PROCESS = textwrap.dedent(
    """
    import json, sys
    import atdata
    from atdata.local import LocalIndex
    url, prefix, name, env_file = sys.argv[1:5]
    if env_file:
        import atdata.store_s3
        atdata.store_s3.configure(env_file)
    index = LocalIndex.from_url(url, key_prefix=prefix)
    entry = index.get_entry_by_name(name)
    SampleType = index.decode_schema(entry.schema_ref)
    dataset = atdata.Dataset[SampleType](entry.data_urls[0])
    print(json.dumps([s.label for s in dataset.ordered()]))
    """
)


@pytest.mark.parametrize("how", ["environment", "configure"])
def test_data_urls_read_in_a_new_process(
    how: str,
    env_file: Path,
    s3_server: S3Server,
    redis_server: RedisServer,
    key_prefix: str,
    bucket: str,
    temp_tar: atdata.Dataset[ImageSample],
) -> None:
    repo = Repo(
        s3_credentials=str(env_file), hive_path=f"{bucket}/datasets", redis=redis_server.url, key_prefix=key_prefix
    )
    entry, _ = repo.insert(temp_tar, name="shared", maxcount=300)
    # Credentials are never stored in Redis: the new process brings its own.
    raw = b"".join(v for k in repo.index.redis.scan_iter(f"{{{key_prefix}}}*") if (v := repo.index.redis.dump(k)))
    assert s3_server.secret_key.encode() not in raw and s3_server.access_key.encode() not in raw
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    if how == "environment":
        env.update(s3_server.credentials)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            READ_IN_NEW_PROCESS,
            redis_server.url,
            key_prefix,
            "shared",
            str(env_file) if how == "configure" else "",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == EXPECTED


def test_s3_data_store_direct(env_file: Path, bucket: str, temp_tar: atdata.Dataset[ImageSample]) -> None:
    store = S3DataStore(credentials=str(env_file), bucket=bucket)
    urls = store.write_shards(temp_tar, prefix="datasets/v1", maxcount=10000)
    assert (
        len(urls) == 1 and urls[0].startswith(f"s3://{bucket}/datasets/v1/data--") and urls[0].endswith("--000000.tar")
    )
    assert store.supports_streaming() is True
    assert labels(atdata.Dataset[ImageSample](urls[0])) == EXPECTED


def test_disk_hive_needs_no_s3(
    tmp_path: Path, redis_server: RedisServer, key_prefix: str, temp_tar: atdata.Dataset[ImageSample]
) -> None:
    for hive_path in (f"file://{tmp_path}/hive-a", str(tmp_path / "hive-b")):
        repo = Repo(hive_path=hive_path, redis=redis_server.url, key_prefix=key_prefix)
        entry, ds = repo.insert(temp_tar, name="local", maxcount=400)
        assert entry.data_urls[0].startswith("file://") and len(ds.shard_list) == 3
        assert labels(atdata.Dataset[ImageSample](entry.data_urls[0])) == EXPECTED


@pytest.mark.slow
def test_complete_workflow_example(tmp_path: Path, s3_server: S3Server, redis_server: RedisServer) -> None:
    """examples/complete_workflow.py, pointed at the test servers instead of localhost:9000/6379."""
    source = (ROOT / "examples" / "complete_workflow.py").read_text()
    bucket = f"workflow-{uuid.uuid4().hex[:12]}"
    replaced = (
        source.replace('"http://localhost:9000"', repr(s3_server.endpoint_url))
        .replace('"AWS_ACCESS_KEY_ID": "minioadmin"', f'"AWS_ACCESS_KEY_ID": {s3_server.access_key!r}')
        .replace('"AWS_SECRET_ACCESS_KEY": "minioadmin"', f'"AWS_SECRET_ACCESS_KEY": {s3_server.secret_key!r}')
        .replace('"datasets-bucket/training"', repr(f"{bucket}/training"))
    )
    assert replaced.count(s3_server.endpoint_url) == 1 and bucket in replaced
    script = tmp_path / "workflow.py"
    script.write_text(replaced)
    # LocalIndex() and Repo(...) connect through $ATDATA_REDIS_URL: a database of its own.
    db = redis.Redis(host=redis_server.host, port=redis_server.port, db=5)
    db.flushdb()
    env = {**os.environ, "ATDATA_REDIS_URL": f"redis://{redis_server.host}:{redis_server.port}/5"}
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=240
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines == ["(32, 128)"] * 312 + ["(16, 128)"]
    db.flushdb()
