"""Promotion end to end on the real servers: local insert (valkey + rclone S3), promote to the
reference PDS, read back through AtmosphereIndex in a fresh process; every record we write
validates against the lexicon and has the CID the PDS returns; failures publish nothing.

Verified reads (issue 15): the entry record lists one sha256 per shard (no chunk digests),
so ``AtmosphereIndex`` hands out ``data_urls`` carrying it (a blob's also its size), and
core's reader hashes each shard whole before yielding any sample of it. A byte tampered
with after promotion (the S3 object rewritten through the store; a blob file in the PDS's
blob store) makes a fresh process's read raise ``ShardDigestMismatch`` naming the shard
and both digests, with no sample of that shard; the other shards read equal."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from numpy.typing import NDArray

import atdata
from atdata.atmosphere import AtmosphereClient, AtmosphereIndex, record_cid, validate_record, verify_shards
from atdata.atmosphere.testing import PdsAccount, PdsServer
from atdata.errors import (
    AtmosphereAuthError,
    AtmosphereError,
    AtmosphereUnavailable,
    SchemaConflict,
    ShardDigestMismatch,
    ShardError,
)
from atdata.local import Repo, S3DataStore
from atdata.local.servers import RedisServer, S3Server
from atdata.promote import promote_to_atmosphere
from atdata.urls import expand_urls

ENTRY = "science.alt.dataset.entry"
SCHEMA = "science.alt.dataset.schema"


@atdata.packable
class PromoSample:
    image: NDArray
    label: str
    score: int


def samples(n: int, offset: int = 0) -> list[PromoSample]:
    return [
        PromoSample(image=np.full((3, 4), i, dtype=np.float32), label=f"s{i}", score=i)
        for i in range(offset, offset + n)
    ]


@pytest.fixture
def repo(s3_server: S3Server, redis_server: RedisServer, tmp_path: Any) -> Iterator[Repo]:
    bucket = f"promo-{uuid.uuid4().hex[:12]}"
    yield Repo(
        s3_credentials=s3_server.credentials,
        hive_path=f"{bucket}/ds",
        redis=redis_server.url,
        key_prefix=f"promo-{uuid.uuid4().hex}:",
    )
    store = S3DataStore(s3_server.credentials, bucket)
    store.delete(info.key for info in store.list_objects())


@pytest.fixture
def client(pds_server: PdsServer, pds_account: PdsAccount) -> AtmosphereClient:
    client = AtmosphereClient(base_url=pds_server.url)
    client.login(pds_account.handle, pds_account.password)
    return client


def insert(repo: Repo, tmp_path: Any, n: int = 120, name: str = "promo", offset: int = 0) -> Any:
    path = tmp_path / f"{name}-{offset}-%06d.tar"
    urls = atdata.write_samples(samples(n, offset), str(path), maxcount=40)
    entry, _ = repo.insert(atdata.Dataset[PromoSample](urls), name=name, maxcount=40)
    return entry


def records(client: AtmosphereClient, collection: str) -> list[tuple[str, str, dict[str, Any]]]:
    assert client.did is not None
    return list(client.list_records(client.did, collection))


def assert_valid_and_cid_matches(client: AtmosphereClient) -> int:
    """Every record we wrote validates and has the CID the PDS returns for it."""
    count = 0
    for collection in (ENTRY, SCHEMA):
        for _uri, cid, record in records(client, collection):
            validate_record(collection, record)
            assert record_cid(record) == cid
            count += 1
    return count


READ_BACK = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import atdata, atdata.store_s3
    from atdata.atmosphere import AtmosphereClient, AtmosphereIndex
    pds, repo, uri, s3 = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    if s3:
        atdata.store_s3.configure(s3)
    index = AtmosphereIndex(AtmosphereClient(base_url=pds), repo=repo)  # not logged in
    entry = index.get_entry(uri)
    T = index.decode_schema(entry.schema_ref)
    rows = [(s.label, s.score, float(s.image.sum())) for s in atdata.Dataset[T](entry.data_urls).ordered()]
    print(json.dumps({"type": T.__name__, "module": T.__module__, "rows": rows, "urls": entry.data_urls}))
    """
)


def read_back_in_fresh_process(pds: str, repo: str, uri: str, s3: dict[str, str] | None) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", READ_BACK, pds, repo, uri, json.dumps(s3)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def expected_rows(n: int, offset: int = 0) -> list[list[Any]]:
    return [[s.label, s.score, float(s.image.sum())] for s in samples(n, offset)]


def test_promote_keeps_s3_urls_and_reads_back_in_a_fresh_process(
    repo: Repo,
    client: AtmosphereClient,
    pds_server: PdsServer,
    pds_account: PdsAccount,
    s3_server: S3Server,
    tmp_path: Any,
) -> None:
    entry = insert(repo, tmp_path)
    uri = promote_to_atmosphere(entry, repo.index, client, description="promo test", tags=["images"], license="MIT")

    record, _ = client.get_record(uri)
    storage = record["storage"]
    assert storage["$type"] == "science.alt.dataset.storageS3"
    assert storage["endpoint"] == s3_server.endpoint_url and storage["region"] == "us-east-1"
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint_url,
        aws_access_key_id=s3_server.access_key,
        aws_secret_access_key=s3_server.secret_key,
        region_name="us-east-1",
    )
    sizes = 0
    for shard in storage["shards"]:  # every shard's key with the sha256 of the stored object
        body = s3.get_object(Bucket=storage["bucket"], Key=shard["key"])["Body"].read()
        assert shard["checksum"] == {"algorithm": "sha256", "digest": hashlib.sha256(body).hexdigest()}
        sizes += len(body)
    assert record["size"] == {"bytes": sizes, "shards": 3}
    assert (record["tags"], record["license"], record["description"]) == (["images"], "MIT", "promo test")
    assert assert_valid_and_cid_matches(client) == 2  # one schema, one entry

    got = read_back_in_fresh_process(pds_server.url, pds_account.handle, uri, s3_server.credentials)
    assert got["rows"] == expected_rows(120)
    assert (got["type"], got["module"]) == ("PromoSample", PromoSample.__module__)
    assert all(u.startswith(f"s3://{storage['bucket']}/ds/data--") for u in got["urls"])

    index = AtmosphereIndex(client)
    (listed,) = list(index.entries)
    assert listed.cid == entry.cid  # the local CID holds across the move
    assert index.get_entry(entry.cid).uri == uri == index.get_entry_by_name("promo").uri


def test_promote_as_blobs_reads_back_through_get_blob(
    repo: Repo, client: AtmosphereClient, pds_server: PdsServer, pds_account: PdsAccount, tmp_path: Any
) -> None:
    entry = insert(repo, tmp_path, n=90)
    uri = promote_to_atmosphere(entry, repo.index, client, data_store="blobs")
    record, _ = client.get_record(uri)
    assert record["storage"]["$type"] == "science.alt.dataset.storageBlobs"
    assert [b["blob"]["mimeType"] for b in record["storage"]["blobs"]] == ["application/x-tar"] * 3
    assert assert_valid_and_cid_matches(client) == 2

    got = read_back_in_fresh_process(pds_server.url, pds_account.did, uri, None)  # by DID, no S3 credentials
    assert got["rows"] == expected_rows(90)
    assert all("/xrpc/com.atproto.sync.getBlob?did=" in u for u in got["urls"])


def test_promoting_twice_returns_the_same_uri_and_the_local_entry_records_it(
    repo: Repo, client: AtmosphereClient, tmp_path: Any
) -> None:
    entry = insert(repo, tmp_path)
    uri = promote_to_atmosphere(entry, repo.index, client)
    local = repo.index.get_entry_by_name("promo")
    assert local.metadata is not None
    assert local.metadata["atmosphere"] == [{"uri": uri, "did": client.did, "pds": client.base_url, "storage": "s3"}]
    assert promote_to_atmosphere(local, repo.index, client) == uri
    assert promote_to_atmosphere(entry, repo.index, client) == uri  # a stale entry object: found in the repo
    assert len(records(client, ENTRY)) == 1
    again = promote_to_atmosphere(local, repo.index, client, republish=True)
    assert again != uri and len(records(client, ENTRY)) == 2
    assert len(records(client, SCHEMA)) == 1


def test_schema_is_published_once_and_a_changed_field_set_is_refused(
    repo: Repo, client: AtmosphereClient, tmp_path: Any
) -> None:
    first = promote_to_atmosphere(insert(repo, tmp_path, name="a"), repo.index, client)
    second = promote_to_atmosphere(insert(repo, tmp_path, name="b", offset=500), repo.index, client)
    (schema,) = records(client, SCHEMA)
    assert client.get_record(first)[0]["schemaRef"] == client.get_record(second)[0]["schemaRef"] == schema[0]
    assert schema[0].endswith(f"/{SCHEMA}/{PromoSample.__module__}.PromoSample:1.0.0")

    # Same name and version, other fields, already in the repo (e.g. from another machine):
    other = dict(schema[2])
    other["schema"] = {**other["schema"], "properties": {"label": {"type": "string"}}, "required": ["label"]}
    other["schema"]["atdataFieldOrder"] = ["label"]
    client.delete_record(schema[0])
    client.create_record(SCHEMA, other, rkey=schema[0].rsplit("/", 1)[1])
    with pytest.raises(SchemaConflict, match="other fields"):
        promote_to_atmosphere(insert(repo, tmp_path, name="c", offset=900), repo.index, client)
    assert len(records(client, ENTRY)) == 2  # nothing published for c


def test_failures_midway_publish_no_entry_and_a_retry_reuses_the_schema(
    repo: Repo,
    client: AtmosphereClient,
    pds_server: PdsServer,
    pds_account: PdsAccount,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    entry = insert(repo, tmp_path)

    # Bad password: refused before anything is written.
    with pytest.raises(AtmosphereAuthError, match="Invalid identifier or password") as bad:
        AtmosphereClient(pds_server.url).login(pds_account.handle, "not-the-password")
    assert "not-the-password" not in str(bad.value)

    # The PDS goes away after the schema record: the entry record is never written.
    real_create = client.create_record

    def pds_goes_down(collection: str, record: dict[str, Any], rkey: str | None = None) -> tuple[str, str]:
        if collection == ENTRY:
            client._sdk.update_base_url("http://127.0.0.1:9")  # nothing listens there
        return real_create(collection, record, rkey)

    monkeypatch.setattr(client, "create_record", pds_goes_down)
    with pytest.raises(AtmosphereUnavailable, match="cannot be reached"):
        promote_to_atmosphere(entry, repo.index, client)
    monkeypatch.undo()
    client.login(pds_account.handle, pds_account.password)
    assert records(client, ENTRY) == [] and len(records(client, SCHEMA)) == 1  # a schema record alone

    # The second blob upload is refused: no entry, the uploaded blob stays unreferenced.
    real_upload, uploads = client.upload_blob, []

    def refuse_second(data: bytes, mime_type: str) -> dict[str, Any]:
        uploads.append(len(data))
        if len(uploads) == 2:
            raise AtmosphereError("com.atproto.repo.uploadBlob refused the request: 400 BlobTooLarge")
        return real_upload(data, mime_type)

    monkeypatch.setattr(client, "upload_blob", refuse_second)
    with pytest.raises(AtmosphereError, match="BlobTooLarge"):
        promote_to_atmosphere(entry, repo.index, client, data_store="blobs")
    monkeypatch.undo()
    assert records(client, ENTRY) == []

    # An expired session whose refresh token was revoked: refused, nothing written.
    expired = AtmosphereClient(pds_server.url)
    with pytest.raises(AtmosphereAuthError):
        expired.login_with_session(_expire(client.export_session(), pds_server.url))
        promote_to_atmosphere(entry, repo.index, expired)
    assert records(client, ENTRY) == []

    uri = promote_to_atmosphere(entry, repo.index, client)  # the retry works, reusing the schema
    assert [r[0] for r in records(client, ENTRY)] == [uri] and len(records(client, SCHEMA)) == 1
    assert repo.index.get_entry_by_name("promo").metadata["atmosphere"][0]["uri"] == uri  # type: ignore[index]


def _expire(session: str, pds_url: str) -> str:
    """The same session with its access token past expiry and its refresh token revoked."""
    handle, did, access, refresh, endpoint = session.split(":::")
    header, payload, signature = access.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["exp"] = 1_000_000_000  # 2001
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    revoker = AtmosphereClient(pds_url)
    revoker.login_with_session(session)
    revoker._sdk.com.atproto.server.delete_session(headers={"Authorization": f"Bearer {refresh}"})
    return ":::".join([handle, did, f"{header}.{forged}.{signature}", refresh, endpoint])


@pytest.fixture
def http_dir(tmp_path: Any) -> Iterator[tuple[Any, str]]:
    """A plain HTTP server on 127.0.0.1 over a temporary directory."""
    import functools
    import http.server
    import threading

    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_http_shards_become_storage_http_and_reads_verify_checksums(
    repo: Repo, client: AtmosphereClient, http_dir: tuple[Any, str]
) -> None:
    root, base = http_dir
    atdata.write_samples(samples(60), str(root / "web-%06d.tar"), maxcount=30)
    ref = repo.index.publish_schema(PromoSample)
    local = repo.index.add_entry(
        atdata.Dataset[PromoSample]([f"{base}/web-000000.tar", f"{base}/web-000001.tar"]), name="web", schema_ref=ref
    )
    uri = promote_to_atmosphere(local, repo.index, client)
    record, _ = client.get_record(uri)
    assert record["storage"]["$type"] == "science.alt.dataset.storageHttp"
    assert [s["url"] for s in record["storage"]["shards"]] == local.data_urls
    assert assert_valid_and_cid_matches(client) == 2

    entry = AtmosphereIndex(client).get_entry(uri)
    T = AtmosphereIndex(client).decode_schema(entry.schema_ref)
    assert [s.label for s in atdata.Dataset[T](entry.data_urls).ordered()] == [f"s{i}" for i in range(60)]
    data = (root / "web-000001.tar").read_bytes()
    (root / "web-000001.tar").write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one bit flipped
    with pytest.raises(ShardError, match="sha256"):
        list(atdata.Dataset[T](entry.data_urls[1]).ordered())


def test_records_of_the_older_namespace_are_read(
    repo: Repo, client: AtmosphereClient, http_dir: tuple[Any, str]
) -> None:
    root, base = http_dir
    atdata.write_samples(samples(10), str(root / "old-%06d.tar"))
    schema = {
        "$type": "ac.foundation.dataset.sampleSchema",
        "name": "legacy.PromoSample",
        "version": "1.0.0",
        "fields": [
            {"name": "image", "fieldType": {"$type": "ac.foundation.dataset.schemaType#ndarray"}, "optional": False},
            {"name": "label", "fieldType": {"$type": "ac.foundation.dataset.schemaType#primitive", "primitive": "str"}},
            {"name": "score", "fieldType": {"$type": "ac.foundation.dataset.schemaType#primitive", "primitive": "int"}},
        ],
        "createdAt": "2025-06-01T00:00:00.000Z",
    }
    schema_uri, _ = client.create_record("ac.foundation.dataset.sampleSchema", schema)
    old = {
        "$type": "ac.foundation.dataset.record",
        "name": "legacy-ds",
        "schemaRef": schema_uri,
        "storage": {"$type": "ac.foundation.dataset.storageExternal", "urls": [f"{base}/old-000000.tar"]},
        "createdAt": "2025-06-01T00:00:00.000Z",
    }
    uri, _ = client.create_record("ac.foundation.dataset.record", old)
    index = AtmosphereIndex(AtmosphereClient(client.base_url), repo=client.did)  # not logged in
    (entry,) = list(index.entries)
    assert (entry.uri, entry.name, entry.data_urls) == (uri, "legacy-ds", [f"{base}/old-000000.tar"])
    T = index.decode_schema(entry.schema_ref)
    assert [s.score for s in atdata.Dataset[T](entry.data_urls).ordered()] == list(range(10))
    assert [s["name"] for s in index.list_schemas()] == ["legacy.PromoSample"]


READ_EACH_SHARD = textwrap.dedent(
    """
    import json, sys
    import atdata
    from atdata.atmosphere import AtmosphereClient, AtmosphereIndex
    pds, repo, uri = sys.argv[1:4]
    index = AtmosphereIndex(AtmosphereClient(base_url=pds), repo=repo)  # not logged in, nothing configured
    entry = index.get_entry(uri)
    T = index.decode_schema(entry.schema_ref)
    out = []
    for url in entry.data_urls:  # the spec's read path, one shard at a time
        rows, error = [], None
        try:
            for batch in atdata.Dataset[T](url).ordered(batch_size=32):
                rows += [[s.label, s.score, float(s.image.sum())] for s in batch]
        except Exception as exc:
            error = [type(exc).__name__, str(exc)]
        out.append({"url": str(url), "sha256": url.sha256, "rows": rows, "error": error})
    print(json.dumps(out))
    """
)


def read_each_shard(pds: str, repo_name: str, uri: str, env: dict[str, str]) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-c", READ_EACH_SHARD, pds, repo_name, uri],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def flipped(data: bytes) -> bytes:
    """``data`` with one byte near its end changed (inside the last samples, not the end padding)."""
    damaged = bytearray(data)
    damaged[len(data) - 1500] ^= 0x01
    return bytes(damaged)


def assert_only_shard_refused(shards: list[dict[str, Any]], bad: int, recorded: str, actual: str) -> None:
    """Shard ``bad`` raised ShardDigestMismatch naming it and both digests, yielding nothing;
    the others read equal to the inserted samples (40 per shard)."""
    name, message = shards[bad]["error"]
    assert name == "ShardDigestMismatch" and shards[bad]["rows"] == []
    assert shards[bad]["url"] in message and recorded in message and actual in message
    assert shards[bad]["sha256"] == recorded
    for i, shard in enumerate(shards):
        if i != bad:
            assert shard["error"] is None
            assert shard["rows"] == expected_rows(40, offset=40 * i)


def child_env(s3_server: S3Server | None, tmp_path: Path) -> dict[str, str]:
    """A fresh process's environment: S3 keys only (the endpoint comes from the record), no config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ATDATA_"))}
    env["HOME"] = str(tmp_path / "home")  # no AWS profile, no record of `atdata local up`
    if s3_server is not None:
        env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = s3_server.access_key, s3_server.secret_key
    return env


def test_a_tampered_s3_shard_is_refused_in_a_fresh_process(
    repo: Repo,
    client: AtmosphereClient,
    pds_server: PdsServer,
    pds_account: PdsAccount,
    s3_server: S3Server,
    tmp_path: Path,
) -> None:
    entry = insert(repo, tmp_path)  # 3 shards of 40 samples
    uri = promote_to_atmosphere(entry, repo.index, client)
    record, _ = client.get_record(uri)
    storage = record["storage"]
    store = S3DataStore(s3_server.credentials, storage["bucket"])
    key = storage["shards"][1]["key"]
    with store.open_read(f"s3://{storage['bucket']}/{key}") as stream:
        original = stream.read()
    recorded = storage["shards"][1]["checksum"]["digest"]
    assert hashlib.sha256(original).hexdigest() == recorded

    intact = read_each_shard(pds_server.url, pds_account.handle, uri, child_env(s3_server, tmp_path))
    assert [s["error"] for s in intact] == [None] * 3
    assert [r for s in intact for r in s["rows"]] == expected_rows(120)

    damaged = flipped(original)
    writer = store.open_write(key)  # the same object, one byte changed
    writer.write(damaged)
    writer.commit()
    shards = read_each_shard(pds_server.url, pds_account.handle, uri, child_env(s3_server, tmp_path))
    assert_only_shard_refused(shards, 1, recorded, hashlib.sha256(damaged).hexdigest())

    # verify_shards reads every shard through the same reader, without decoding a sample.
    e = AtmosphereIndex(client).get_entry(uri)
    verify_shards([e.data_urls[0], e.data_urls[2]])
    with pytest.raises(ShardDigestMismatch, match=hashlib.sha256(damaged).hexdigest()):
        verify_shards(e.data_urls)


def test_a_tampered_blob_is_refused_in_a_fresh_process(
    repo: Repo,
    client: AtmosphereClient,
    pds_server: PdsServer,
    pds_account: PdsAccount,
    tmp_path: Path,
) -> None:
    entry = insert(repo, tmp_path)
    uri = promote_to_atmosphere(entry, repo.index, client, data_store="blobs")
    record, _ = client.get_record(uri)
    blob = record["storage"]["blobs"][2]
    recorded = blob["checksum"]["digest"]
    e = AtmosphereIndex(client).get_entry(uri)
    assert e.data_urls[2].size == blob["blob"]["size"]  # type: ignore[attr-defined]

    (path,) = [p for p in pds_server.data_dir.joinpath("blobs").rglob(blob["blob"]["ref"]["$link"]) if p.is_file()]
    damaged = flipped(path.read_bytes())
    path.write_bytes(damaged)  # the PDS serves what its blob store holds
    shards = read_each_shard(pds_server.url, pds_account.did, uri, child_env(None, tmp_path))
    assert_only_shard_refused(shards, 2, recorded, hashlib.sha256(damaged).hexdigest())
    plain = str(e.data_urls[2])  # a copied URL carries no facts: the opener checks the blob's CID itself
    with pytest.raises(ShardDigestMismatch, match=f"{hashlib.sha256(damaged).hexdigest()}, but its blob CID says"):
        list(atdata.Dataset(plain).raw_samples())
    assert len(list(atdata.Dataset(str(e.data_urls[1])).raw_samples())) == 40  # an intact one streams


def test_a_local_shard_damaged_since_insert_is_not_promoted(
    repo: Repo, client: AtmosphereClient, s3_server: S3Server, tmp_path: Path
) -> None:
    entry = insert(repo, tmp_path)
    url = expand_urls(entry.data_urls)[2]  # the entry's URL is a brace pattern of its 3 shards
    bucket, key = url.split("/", 3)[2:]
    store = S3DataStore(s3_server.credentials, bucket)
    with store.open_read(url) as stream:
        damaged = flipped(stream.read())
    writer = store.open_write(key)
    writer.write(damaged)
    writer.commit()
    with pytest.raises(ShardDigestMismatch, match=hashlib.sha256(damaged).hexdigest()) as caught:
        promote_to_atmosphere(entry, repo.index, client)
    assert str(url) in str(caught.value) and "recorded when it was inserted" in str(caught.value)
    assert records(client, ENTRY) == [] and records(client, SCHEMA) == []  # refused before any write
