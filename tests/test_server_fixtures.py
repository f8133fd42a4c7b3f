"""The root conftest's session servers keep the contract every engineer builds on."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
import redis
import redis.cluster
from botocore.exceptions import ClientError

from atdata.local.servers import RedisServer, S3Server, valkey_server_path

pytestmark = pytest.mark.real


def _s3(server: S3Server, secret: str | None = None) -> Any:
    creds = server.credentials
    return boto3.client(
        "s3",
        endpoint_url=creds["AWS_ENDPOINT"],
        aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=secret or creds["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )


def test_redis_server_contract(redis_server: RedisServer) -> None:
    assert redis_server.host == "127.0.0.1"
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    client = redis.Redis.from_url(redis_server.url)
    prefix = f"test:{uuid.uuid4().hex}:"
    with client.pipeline(transaction=True) as pipe:
        pipe.set(prefix + "a", b"1")
        pipe.sadd(prefix + "set", b"x")
        assert pipe.execute() == [True, 1]
    assert client.eval("return redis.call('GET', KEYS[1])", 1, prefix + "a") == b"1"
    client.delete(prefix + "a", prefix + "set")
    client.close()


def test_redis_fixtures_run_the_chosen_binary(redis_server: RedisServer, redis_cluster_server: RedisServer) -> None:
    expected = os.environ.get("ATDATA_TEST_REDIS_SERVER") or str(valkey_server_path())
    for server in (redis_server, redis_cluster_server):
        client = redis.Redis.from_url(server.url)
        assert Path(client.info("server")["executable"]).resolve() == Path(expected).resolve()
        client.close()


def test_redis_cluster_server_runs_hash_tagged_transactions(redis_cluster_server: RedisServer) -> None:
    assert redis_cluster_server.cluster
    client = redis.cluster.RedisCluster(host=redis_cluster_server.host, port=redis_cluster_server.port)
    tag = f"{{t{uuid.uuid4().hex}}}"
    with client.pipeline(transaction=True) as pipe:
        pipe.set(f"atdata:{tag}:entry", b"e")
        pipe.set(f"atdata:{tag}:name", b"n")
        assert len(pipe.execute()) == 2
    assert client.mget(f"atdata:{tag}:entry", f"atdata:{tag}:name") == [b"e", b"n"]
    client.close()


def test_s3_server_contract_and_sigv4(s3_server: S3Server) -> None:
    assert s3_server.endpoint_url == f"http://127.0.0.1:{s3_server.port}"
    assert set(s3_server.credentials) == {"AWS_ENDPOINT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    assert s3_server.secret_key not in repr(s3_server)
    bucket = f"fixture-{uuid.uuid4().hex[:12]}"
    client = _s3(s3_server)
    client.create_bucket(Bucket=bucket)
    empty = client.list_objects_v2(Bucket=bucket)
    assert empty.get("Contents", []) == []  # rclone may omit KeyCount here: read Contents
    client.put_object(Bucket=bucket, Key="k", Body=b"v")
    assert client.get_object(Bucket=bucket, Key="k", Range="bytes=0-0")["Body"].read() == b"v"
    with pytest.raises(ClientError, match="SignatureDoesNotMatch"):
        _s3(s3_server, secret="not-the-secret").list_objects_v2(Bucket=bucket)


def test_moto_s3_server_contract(moto_s3_server: S3Server) -> None:
    assert moto_s3_server.endpoint_url.startswith("http://127.0.0.1:")
    bucket = f"fixture-{uuid.uuid4().hex[:12]}"
    client = _s3(moto_s3_server)
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="k", Body=b"v")
    assert [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]] == ["k"]


def test_hypothesis_profiles(request: pytest.FixtureRequest) -> None:
    from hypothesis import settings

    chosen = request.config.getoption("hypothesis_profile") or "ci"
    assert settings().max_examples == settings.get_profile(chosen).max_examples
    assert settings.get_profile("thorough").max_examples > settings.get_profile("ci").max_examples


@pytest.mark.slow  # runs pytest in subprocesses
def test_a_server_that_cannot_start_errors_never_skips(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Missing infrastructure must be loud: each test on the server errors, with the cause."""
    monkeypatch.setenv("ATDATA_TEST_REDIS_SERVER", str(tmp_path / "no-such-redis-server"))
    pytester.makeconftest((Path(__file__).resolve().parents[1] / "conftest.py").read_text())
    pytester.makepyfile(
        test_needs_redis="""
        def test_one(redis_server): pass
        def test_two(redis_server): pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*LocalServerError: cannot run no-such-redis-server*"])


@pytest.mark.slow  # runs pytest in subprocesses
def test_a_pds_that_is_not_installed_errors_never_skips(pytester: pytest.Pytester) -> None:
    """The sandbox has no tools/pds: every test on the PDS errors, naming the install script."""
    pytester.makeconftest((Path(__file__).resolve().parents[1] / "conftest.py").read_text())
    pytester.makepyfile(
        test_needs_pds="""
        def test_one(pds_server): pass
        def test_two(pds_account): pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(["*LocalServerError: *tools/pds/install*"])


@pytest.mark.slow  # runs pytest in subprocesses
def test_tests_on_server_fixtures_are_marked_real(pytester: pytest.Pytester) -> None:
    """`-m "not real"` must never start a server, even for a test that forgot its marker."""
    pytester.makeconftest((Path(__file__).resolve().parents[1] / "conftest.py").read_text())
    pytester.makepyfile(
        test_unmarked="""
        def test_s3(s3_server): pass
        def test_redis(redis_cluster_server): pass
        def test_plain(): pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-m", "not real")
    result.assert_outcomes(passed=1, deselected=2)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-m", "uses_redis", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["*test_redis*"])
    result.stdout.no_fnmatch_line("*test_s3*")
