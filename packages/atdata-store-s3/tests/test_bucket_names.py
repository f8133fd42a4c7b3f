"""Bucket names S3 would refuse are refused at construction, with the rule and a fix."""

from __future__ import annotations

import pytest

from atdata.errors import InvalidArgument
from atdata.store_s3 import S3DataStore, configure

CREDS = {"AWS_ENDPOINT": "http://127.0.0.1:1", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}


@pytest.mark.parametrize(
    ("bucket", "problem", "fix"),
    [
        ("My_Bucket", "holds 'B', 'M', '_'", "'my-bucket'"),
        ("ab", "2 characters", "'my-datasets'"),
        ("x" * 64, "64 characters", "'" + "x" * 63 + "'"),
        ("-data-", "start and end with a letter or digit", "'data'"),
        ("data..set", "holds '..'", "'data.set'"),
        ("192.168.5.4", "an IP address", "'my-datasets'"),
        ("xn--data", "reserves its prefix or suffix", "'my-datasets'"),
        ("data sets", "holds ' '", "'data-sets'"),
    ],
)
def test_store_refuses_names_s3_would(bucket: str, problem: str, fix: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        S3DataStore(CREDS, bucket)
    message = str(info.value)
    assert repr(bucket) in message and problem in message
    assert "3-63 characters of lowercase letters, digits, '-' and '.'" in message  # the rule
    assert f"e.g. {fix}" in message  # the fix


@pytest.mark.parametrize("bucket", ["abc", "my-bucket.v2", "0" * 63, "read-0123456789ab"])
def test_valid_names_pass(bucket: str) -> None:
    assert S3DataStore(CREDS, bucket).bucket == bucket


@pytest.mark.parametrize(("bucket", "match"), [("b/prefix", "pass only the bucket, e.g. 'b'"), ("", "my-bucket")])
def test_prefix_in_the_bucket_says_where_prefixes_go(bucket: str, match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        S3DataStore(CREDS, bucket)


def test_configure_checks_the_bucket_too() -> None:
    with pytest.raises(InvalidArgument, match="'Data' is not a valid S3 bucket name"):
        configure(CREDS, bucket="Data")


def test_cli_refuses_the_bucket_before_connecting(capsys: pytest.CaptureFixture[str]) -> None:
    """No server runs at these addresses: the name is refused before any is needed."""
    from atdata.local.cli import main
    from atdata.store_s3 import reading

    saved = dict(reading._configured)  # the CLI configures reads for its process: not for later tests

    code = main(
        [
            "gc",
            "--hive-path",
            "Team_Data/datasets",
            "--redis-url",
            "redis://127.0.0.1:1/0",
            "--dry-run",
        ]
    )
    reading._configured.clear()
    reading._configured.update(saved)
    err = capsys.readouterr().err
    assert code == 1
    assert "'Team_Data' is not a valid S3 bucket name" in err and "e.g. 'team-data'" in err
