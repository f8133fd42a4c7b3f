"""The s3:// opener: which credentials a read uses, and errors that name the URL."""

from __future__ import annotations

import gc
import uuid
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import mock_aws

from atdata.errors import BucketNotFound, CredentialsError, InvalidArgument, ObjectNotFound, StoreUnavailable
from atdata.openers import open_url
from atdata.store_s3 import S3DataStore, configure, read_url, reading

CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


@pytest.fixture(params=[pytest.param("moto", marks=pytest.mark.fake), pytest.param("rclone", marks=pytest.mark.real)])
def store(request: pytest.FixtureRequest) -> Iterator[S3DataStore]:
    """The same reads on moto's in-process mock and on a real S3 server (rclone serve s3)."""
    bucket = f"read-{uuid.uuid4().hex[:12]}"
    if request.param == "rclone":
        credentials = request.getfixturevalue("s3_server").credentials
        configure(credentials)  # reads of any bucket, even a missing one, go to this server
        yield S3DataStore(credentials, bucket)
        return
    with mock_aws():
        configure(CREDS)
        yield S3DataStore(CREDS, bucket)


@pytest.fixture(autouse=True)
def clean_registry() -> Iterator[None]:
    """Each test starts with no configure()d or remembered settings, and leaves none."""
    saved = dict(reading._configured), dict(reading._stores)
    reading._configured.clear()
    reading._stores.clear()
    yield
    reading._configured.clear()
    reading._configured.update(saved[0])
    reading._stores.clear()
    reading._stores.update(saved[1])


def test_streams_in_chunks(store: S3DataStore) -> None:
    payload = bytes(range(256)) * 20_000
    url = store.write_bytes("big/obj", payload)
    with read_url(url) as stream:
        head = stream.read(1000)
        rest = stream.read()
    assert head + rest == payload


def test_missing_object_and_bucket_name_the_url(store: S3DataStore) -> None:
    store.write_bytes("present", b"x")
    with pytest.raises(ObjectNotFound, match=f"s3://{store.bucket}/absent"):
        open_url(f"s3://{store.bucket}/absent")
    with pytest.raises(BucketNotFound, match="s3://no-such-bucket-atdata/k"):
        read_url("s3://no-such-bucket-atdata/k")


@pytest.mark.parametrize("url", ["s3://bucket", "s3:///key", "http://bucket/key"])
def test_bad_urls(url: str) -> None:
    with pytest.raises(InvalidArgument, match="s3://bucket/key"):
        read_url(url)


def test_credential_precedence() -> None:
    def creds(name: str) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": name, "AWS_SECRET_ACCESS_KEY": "s"}

    configure(creds("global"))
    assert reading._settings_for("s3://bucket-1/k")[0].access_key_id == "global"
    S3DataStore(creds("writer"), "bucket-1")
    assert reading._settings_for("s3://bucket-1/k")[0].access_key_id == "writer"
    assert reading._settings_for("s3://bucket-2/k")[0].access_key_id == "global"
    configure(creds("explicit"), bucket="bucket-1")
    assert reading._settings_for("s3://bucket-1/k")[0].access_key_id == "explicit"


def test_environment_when_nothing_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT", "http://127.0.0.1:4567")
    assert reading._settings_for("s3://any-bucket/k")[0].endpoint_url == "http://127.0.0.1:4567"


def test_one_client_per_store_and_environment() -> None:
    store = S3DataStore(CREDS, "one-client")
    assert store.client is store.client
    assert reading._settings_for("s3://xxx/k") == reading._settings_for("s3://yyy/k")


def test_a_dropped_store_releases_its_client() -> None:
    """Stores made in a loop (a Repo per request) must not pile up clients and their pools."""
    stores = [S3DataStore(CREDS, "released") for _ in range(3)]
    clients = [weakref.ref(store.client) for store in stores]
    del stores
    gc.collect()
    # Only the last one lives on: reads of the bucket still use that store's settings.
    assert [client() is None for client in clients] == [True, True, False]


def test_read_with_no_credentials_says_how_to_provide_them(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A new process reading an s3:// entry URL with no AWS_* variables learns the fix."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT", "http://127.0.0.1:1")  # never reached: signing fails first
    with pytest.raises(CredentialsError) as info:
        read_url("s3://some-bucket/data-000000.tar")
    message = str(info.value)
    assert "s3://some-bucket/data-000000.tar" in message
    assert "atdata local up" in message
    assert "at http://127.0.0.1:1" in message and "AWS_SECRET_ACCESS_KEY" in message
    assert "atdata.store_s3.configure(" in message


def test_unreachable_aws_endpoint_says_aws_endpoint_is_unset() -> None:
    """Keys set but AWS_ENDPOINT forgotten: the read went to AWS, and the error says so."""
    from botocore.exceptions import EndpointConnectionError

    from atdata.store_s3._errors import translate

    to_aws = translate(EndpointConnectionError(endpoint_url="https://b.s3.amazonaws.com/k"), "reading", "s3://b/k")
    assert isinstance(to_aws, StoreUnavailable)
    assert "AWS_ENDPOINT" in str(to_aws) and "atdata local up" in str(to_aws)
    local = translate(EndpointConnectionError(endpoint_url="http://127.0.0.1:9/b/k"), "reading", "s3://b/k")
    assert "is the server running?" in str(local) and "AWS_ENDPOINT" not in str(local)
