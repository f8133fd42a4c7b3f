"""parse_entry: each data_urls item carries what the record says of its shard (no server needed)."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from atdata import ShardURL, StorageLocation
from atdata.atmosphere.records import parse_entry
from atdata.errors import InvalidRecord

URI = "at://did:plc:abc/science.alt.dataset.entry/3k"
SHA = "ab" * 32


def _record(storage: dict[str, Any]) -> dict[str, Any]:
    return {"name": "n", "schemaRef": "at://did:plc:abc/science.alt.dataset.schema/m.T:1.0.0", "storage": storage}


def _blob_url(did: str, cid: str) -> str:
    return f"http://pds/xrpc/com.atproto.sync.getBlob?did={did}&cid={cid}"


def test_s3_urls_carry_sha256_and_the_bucket_location() -> None:
    storage = {
        "$type": "science.alt.dataset.storageS3",
        "bucket": "b",
        "endpoint": "http://127.0.0.1:9000",
        "region": "us-east-1",
        "shards": [{"key": "k/0.tar", "checksum": {"algorithm": "sha256", "digest": SHA.upper()}}],
    }
    (url,) = parse_entry(URI, "bafy", _record(storage), blob_url=_blob_url).data_urls
    assert isinstance(url, ShardURL) and url == "s3://b/k/0.tar"
    assert url.sha256 == SHA and url.size is None
    assert url.location == StorageLocation("http://127.0.0.1:9000", "us-east-1")
    assert pickle.loads(pickle.dumps(url)).facts() == url.facts()  # into DataLoader workers


def test_blob_urls_carry_sha256_and_size() -> None:
    blob = {"$type": "blob", "ref": {"$link": "bafkrei"}, "mimeType": "application/x-tar", "size": 2048}
    storage = {
        "$type": "science.alt.dataset.storageBlobs",
        "blobs": [{"blob": blob, "checksum": {"algorithm": "sha256", "digest": SHA}}],
    }
    (url,) = parse_entry(URI, "bafy", _record(storage), blob_url=_blob_url).data_urls
    assert url.endswith("did=did:plc:abc&cid=bafkrei")
    assert (url.sha256, url.size, url.location) == (SHA, 2048, None)  # type: ignore[attr-defined]


def test_urls_without_a_checksum_carry_nothing() -> None:
    storage = {"$type": "ac.foundation.dataset.storageExternal", "urls": ["http://h/0.tar"]}
    (url,) = parse_entry(URI, "bafy", _record(storage), blob_url=_blob_url).data_urls
    assert url == "http://h/0.tar" and url.facts() == {}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"shards": [{"url": "http://h/0.tar", "checksum": {"algorithm": "sha256", "digest": "xyz"}}]}, "'xyz'"),
        ({"$type": "science.alt.dataset.storageS3", "bucket": "b", "endpoint": "ftp://h", "shards": []}, "ftp://h"),
    ],
)
def test_unusable_checksum_or_endpoint_is_an_invalid_record(change: dict[str, Any], message: str) -> None:
    storage = {"$type": "science.alt.dataset.storageHttp", **change}
    with pytest.raises(InvalidRecord, match=message):
        parse_entry(URI, "bafy", _record(storage), blob_url=_blob_url)
