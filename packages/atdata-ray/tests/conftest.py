"""Fixtures for atdata.ray tests: a Repo on the real S3 (rclone) and Redis (valkey) servers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from atdata.local import Repo
from atdata.local.servers import RedisServer, S3Server


@pytest.fixture
def s3_credentials_file(s3_server: S3Server, tmp_path: Path) -> str:
    """The S3 keys as a credentials file: its path travels to Ray workers, the keys never do
    (a pickled store drops keys given as a dict, so workers would have none)."""
    path = tmp_path / "s3.env"
    path.write_text("".join(f"{key}={value}\n" for key, value in s3_server.credentials.items()))
    return str(path)


@pytest.fixture
def s3_repo(
    s3_server: S3Server, redis_server: RedisServer, ray_cluster: object, s3_credentials_file: str
) -> Iterator[Repo]:
    """A Repo over a fresh bucket and a fresh key prefix, with the Ray cluster up."""
    bucket = f"ray-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint_url,
        aws_access_key_id=s3_server.access_key,
        aws_secret_access_key=s3_server.secret_key,
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=bucket)
    yield Repo(
        s3_credentials=s3_credentials_file,
        hive_path=f"{bucket}/datasets",
        redis=redis_server.url,
        key_prefix=f"test-{uuid.uuid4().hex}:",
    )
