"""Which endpoint and keys reach a bucket, with nothing or something configured.

Each test gets an empty HOME (no ~/.aws, no ~/.atdata) and no AWS_*/ATDATA_* variables,
then writes the files a user would have.
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest

from atdata.errors import CredentialsError
from atdata.shard_url import ShardURL, StorageLocation
from atdata.store_s3 import S3Credentials, S3DataStore, load_credentials, reading
from atdata.store_s3._resolve import resolve, same_endpoint

LOCAL = StorageLocation("http://127.0.0.1:9000", "us-east-1")
SECRET = "s3cr3t-from-a-file"


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Nothing configured: no variables, an empty HOME, and no configure()/store of earlier tests."""
    for name in [k for k in os.environ if k.startswith(("AWS_", "ATDATA_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    saved = [dict(r) for r in (reading._configured, reading._stores, reading._environment)]
    for registry in (reading._configured, reading._stores):
        registry.clear()
    yield tmp_path
    for registry, before in zip((reading._configured, reading._stores, reading._environment), saved):
        registry.clear()
        registry.update(before)


def aws_files(home: Path, credentials: str, config: str = "") -> None:
    (home / ".aws").mkdir(exist_ok=True)
    (home / ".aws" / "credentials").write_text(credentials)
    (home / ".aws" / "config").write_text(config)


def local_up_record(home: Path, port: int = 9000, secret: str = "minioadmin") -> Path:
    path = home / ".atdata" / "servers.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"s3": {"port": port, "access_key": "minioadmin", "secret_key": secret}}))
    return path


def test_nothing_anywhere_leaves_keys_to_boto3() -> None:
    creds = resolve(LOCAL)
    assert creds.access_key_id is None and creds.endpoint_url == LOCAL.endpoint_url
    assert resolve(None).endpoint_url is None  # nothing recorded: AWS S3


def test_the_local_up_record_gives_its_server_keys(home: Path) -> None:
    record = local_up_record(home, secret=SECRET)
    creds = resolve(LOCAL)
    assert (creds.access_key_id, creds.secret_access_key) == ("minioadmin", SECRET)
    assert str(record) in creds.source
    assert resolve(StorageLocation("http://127.0.0.1:9001")).access_key_id is None  # another server
    assert resolve(StorageLocation("http://localhost:9000")).access_key_id == "minioadmin"  # same one


def test_atdata_home_moves_the_record(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local_up_record(home / "elsewhere")
    monkeypatch.setenv("ATDATA_HOME", str(home / "elsewhere" / ".atdata"))
    assert resolve(LOCAL).access_key_id == "minioadmin"


def test_environment_keys_come_first(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local_up_record(home)
    aws_files(home, "[default]\naws_access_key_id = FROMFILE\naws_secret_access_key = x\n")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "FROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    creds = resolve(LOCAL)
    assert (creds.access_key_id, creds.source, creds.endpoint_url) == ("FROMENV", "environment", LOCAL.endpoint_url)


def test_profile_keys_and_endpoint_url_as_boto3_reads_them(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    aws_files(
        home,
        f"[default]\naws_access_key_id = DEFAULTKEY\naws_secret_access_key = {SECRET}\n"
        "[team]\naws_access_key_id = TEAMKEY\naws_secret_access_key = t\n",
        "[default]\nregion = eu-west-1\n"
        "[profile team]\nendpoint_url = http://minio.team:9000\n"
        "[profile svc]\nservices = s3-svc\naws_access_key_id = SVCKEY\naws_secret_access_key = s\n"
        "[services s3-svc]\ns3 =\n  endpoint_url = http://svc.example:9000\n",
    )
    default = resolve(None)
    assert (default.access_key_id, default.secret_access_key, default.region) == ("DEFAULTKEY", SECRET, "eu-west-1")
    assert default.source == "AWS profile 'default'"
    monkeypatch.setenv("AWS_PROFILE", "team")
    team = resolve(None)
    assert (team.access_key_id, team.endpoint_url) == ("TEAMKEY", "http://minio.team:9000")
    monkeypatch.setenv("AWS_PROFILE", "svc")
    assert resolve(None).endpoint_url == "http://svc.example:9000"


def test_a_profile_is_not_sent_to_the_embedded_server_unless_it_names_it(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """[default] keys are usually AWS keys: the embedded server's own keys are known exactly."""
    local_up_record(home)
    aws_files(home, "[default]\naws_access_key_id = AWSKEY\naws_secret_access_key = x\n")
    assert resolve(LOCAL).access_key_id == "minioadmin"
    aws_files(
        home,
        "[default]\naws_access_key_id = MINEKEY\naws_secret_access_key = x\n",
        "[default]\nendpoint_url = http://localhost:9000\n",
    )
    assert resolve(LOCAL).access_key_id == "MINEKEY"


def test_a_missing_profile_is_named(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    aws_files(home, "[default]\naws_access_key_id = A\naws_secret_access_key = x\n")
    monkeypatch.setenv("AWS_PROFILE", "nope")
    with pytest.raises(CredentialsError, match="AWS_PROFILE='nope' names no profile in .*credentials"):
        resolve(LOCAL)


def test_a_bad_endpoint_in_a_profile_is_named(home: Path) -> None:
    aws_files(home, "", "[default]\nendpoint_url = localhost:9000\n")
    with pytest.raises(CredentialsError, match="AWS profile 'default': AWS_ENDPOINT='localhost:9000'"):
        resolve(None)


def test_explicit_credentials_win_and_the_location_fills_their_endpoint(home: Path) -> None:
    local_up_record(home)
    keys_only = load_credentials({"AWS_ACCESS_KEY_ID": "MINE", "AWS_SECRET_ACCESS_KEY": "x"})
    filled = resolve(LOCAL, keys_only)
    assert (filled.access_key_id, filled.endpoint_url, filled.region) == ("MINE", LOCAL.endpoint_url, "us-east-1")
    elsewhere = load_credentials(
        {"AWS_ENDPOINT": "http://other:1", "AWS_ACCESS_KEY_ID": "MINE", "AWS_SECRET_ACCESS_KEY": "x"}
    )
    assert resolve(LOCAL, elsewhere).endpoint_url == "http://other:1"


def test_a_reader_uses_the_urls_location(home: Path) -> None:
    local_up_record(home)
    creds, _ = reading._settings_for(ShardURL("s3://some-bucket/k.tar", location=LOCAL))
    assert (creds.endpoint_url, creds.access_key_id) == (LOCAL.endpoint_url, "minioadmin")


def test_a_store_of_the_same_bucket_elsewhere_is_not_used_for_a_located_url(home: Path) -> None:
    local_up_record(home)
    S3DataStore({"AWS_ENDPOINT": "http://other:1", "AWS_ACCESS_KEY_ID": "o", "AWS_SECRET_ACCESS_KEY": "o"}, "shared")
    assert reading._settings_for("s3://shared/k")[0].access_key_id == "o"  # no location: this process's store
    located = reading._settings_for(ShardURL("s3://shared/k", location=LOCAL))[0]
    assert (located.endpoint_url, located.access_key_id) == (LOCAL.endpoint_url, "minioadmin")


def test_store_pickles_its_location_never_its_keys(home: Path) -> None:
    store = S3DataStore(
        {"AWS_ENDPOINT": "http://127.0.0.1:9000", "AWS_ACCESS_KEY_ID": "K", "AWS_SECRET_ACCESS_KEY": SECRET}, "pickled"
    )
    payload = pickle.dumps(store)
    assert SECRET.encode() not in payload
    assert store.location == LOCAL
    with pytest.raises(CredentialsError, match="not picklable"):
        pickle.dumps(store.credentials)
    assert isinstance(store.credentials, S3Credentials)


def test_changes_to_the_files_are_seen(home: Path) -> None:
    assert resolve(LOCAL).access_key_id is None
    local_up_record(home)
    assert resolve(LOCAL).access_key_id == "minioadmin"


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("http://localhost:9000", "http://127.0.0.1:9000", True),
        ("http://h:80", "http://h", True),
        ("http://h:9000", "https://h:9000", False),
        ("http://h:9000", None, False),
        (None, None, True),
    ],
)
def test_same_endpoint(a: str | None, b: str | None, same: bool) -> None:
    assert same_endpoint(a, b) is same
