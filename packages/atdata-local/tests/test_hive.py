"""How Repo reads ``hive_path``: S3 bucket/prefix versus a local directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from atdata.disk_store import DiskDataStore
from atdata.errors import CredentialsError, InvalidArgument
from atdata.local._hive import parse_hive_path
from atdata.store_s3 import S3DataStore

CREDS = {"AWS_ENDPOINT": "http://127.0.0.1:1", "AWS_ACCESS_KEY_ID": "key", "AWS_SECRET_ACCESS_KEY": "secret"}


@pytest.mark.parametrize(
    ("hive_path", "bucket", "prefix"),
    [
        ("my-bucket/datasets", "my-bucket", "datasets"),
        ("s3://my-bucket/a/b/", "my-bucket", "a/b"),
        ("my-bucket", "my-bucket", ""),
        ("datasets-bucket/training", "datasets-bucket", "training"),
    ],
)
def test_bucket_and_prefix(hive_path: str, bucket: str, prefix: str) -> None:
    hive = parse_hive_path(hive_path, CREDS)
    assert isinstance(hive.store, S3DataStore)
    assert (hive.store.bucket, hive.prefix) == (bucket, prefix)
    assert hive.key("x.tar") == (f"{prefix}/x.tar" if prefix else "x.tar")


def test_plain_relative_string_is_s3_even_if_such_a_directory_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "bucket" / "prefix").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert isinstance(parse_hive_path("bucket/prefix", None).store, S3DataStore)


@pytest.mark.parametrize("form", ["file://{p}", "{p}", "./rel/hive", "../rel/hive", "~/atdata-hive-test"])
def test_local_directories(form: str, tmp_path: Path) -> None:
    hive = parse_hive_path(form.format(p=tmp_path / "hive"), None)
    assert isinstance(hive.store, DiskDataStore)
    assert hive.prefix == ""
    assert hive.store.root.is_absolute()


def test_path_objects_are_directories(tmp_path: Path) -> None:
    assert parse_hive_path(tmp_path, None).store == DiskDataStore(tmp_path)
    assert isinstance(parse_hive_path(Path("relative-dir"), None).store, DiskDataStore)


@pytest.mark.parametrize("bad", ["", "  ", "gs://bucket/x", "s3:///prefix", 42])
def test_bad_hive_paths_name_the_value(bad: object) -> None:
    with pytest.raises(InvalidArgument, match="hive_path"):
        parse_hive_path(bad, None)  # type: ignore[arg-type]


def test_credentials_with_a_directory_is_refused_without_quoting_them(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="local directory") as info:
        parse_hive_path(str(tmp_path), CREDS)
    assert "secret" not in str(info.value)


def test_bad_credentials_surface_as_credentials_error(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError):
        parse_hive_path("bucket/prefix", tmp_path / "missing.env")
