"""Dataset entry records: build ``science.alt.dataset.entry`` records, read them back (both namespaces).

An entry record (JSON form, as the PDS stores it)::

    {"$type": "science.alt.dataset.entry", "name": "train-v1",
     "schemaRef": "at://did:plc:.../science.alt.dataset.schema/mymodule.ImageSample:1.0.0",
     "storage": {"$type": "science.alt.dataset.storageS3", "bucket": "b", "endpoint": "http://...",
                 "region": "us-east-1",
                 "shards": [{"key": "ds/data--<run>--000000.tar",
                             "checksum": {"algorithm": "sha256", "digest": "<hex>"}}, ...]},
     "size": {"samples": 1000, "bytes": 5242880, "shards": 4},
     "description": "...", "tags": ["images"], "license": "MIT",
     "metadata": {"$bytes": "<msgpack of {atdataCid, schemaRef, dataUrls, metadata}>"},
     "createdAt": "2026-12-02T00:00:00.000Z"}

``storageHttp`` lists ``{"url", "checksum"}`` instead, ``storageBlobs`` lists
``{"blob": <blob ref>, "checksum"}``. ``metadata`` (msgpack, the lexicon's place for
extended fields) keeps the local entry's CID, schema ref, URLs and metadata: the CID of
``{"schema_ref", "data_urls"}`` is the same before and after the move.

:func:`record_cid` computes the CID the PDS will give a record: the record turned from
JSON into the IPLD data model (``$bytes`` -> bytes, ``$link`` -> a CID link), encoded
as canonical DAG-CBOR, hashed with sha2-256 (``atdata.cid``).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any

import msgpack
from multiformats import CID

from atdata.cid import cid_from_bytes, encode_dag_cbor
from atdata.errors import InvalidArgument, InvalidRecord
from atdata.shard_url import ShardURL, StorageLocation

from .lexicon import NAMESPACE
from .uri import AtUri

__all__ = [
    "ENTRY_NSID",
    "LEGACY_NAMESPACE",
    "AtmosphereEntry",
    "Shard",
    "decode_metadata",
    "encode_metadata",
    "parse_entry",
    "record_cid",
]

ENTRY_NSID = f"{NAMESPACE}.entry"
#: The namespace of atdata 0.2 records (read, never written).
LEGACY_NAMESPACE = "ac.foundation.dataset"
ENTRY_COLLECTIONS = (ENTRY_NSID, f"{LEGACY_NAMESPACE}.record")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Shard:
    """One shard of an entry: the URL readers open, its sha256 (hex) and size, when recorded."""

    url: str
    sha256: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class AtmosphereEntry:
    """A dataset entry read from a PDS; satisfies ``atdata.IndexEntry``.

    ``cid`` is atdata's content CID (the local entry's, kept in the record), so one
    dataset has one CID locally and in the atmosphere; ``record_cid`` is the PDS's CID
    of the record itself and ``uri`` its AT-URI. ``data_urls`` are one URL per shard
    (``s3://bucket/key``, ``https://...``, or a ``com.atproto.sync.getBlob`` URL), each
    an :class:`atdata.ShardURL` carrying the shard's recorded ``sha256`` (and ``size``
    for blobs; the ``location`` of a storageS3 bucket), so core's reader checks every
    shard before yielding a sample of it.
    """

    uri: str
    record_cid: str
    name: str
    schema_ref: str
    data_urls: list[str]
    shards: list[Shard]
    cid: str
    metadata: dict[str, Any] | None = None
    description: str | None = None
    tags: list[str] = field(default_factory=list)
    license: str | None = None
    storage: dict[str, Any] = field(default_factory=dict, repr=False)
    record: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def s3_endpoint(self) -> str | None:
        """The S3 endpoint the record names (``storageS3`` only): configure reads with it."""
        return self.storage.get("endpoint")


def encode_metadata(value: dict[str, Any]) -> dict[str, str]:
    """The record's ``metadata`` field (``{"$bytes": base64(msgpack)}``)."""
    return {"$bytes": base64.b64encode(msgpack.packb(value, use_bin_type=True)).decode().rstrip("=")}


def decode_metadata(value: Any) -> dict[str, Any]:
    """The dict inside a record's ``metadata`` bytes ({} when absent or unreadable)."""
    raw = value.get("$bytes") if isinstance(value, dict) else None
    if not isinstance(raw, str):
        return {}
    try:
        decoded = msgpack.unpackb(base64.b64decode(raw + "=" * (-len(raw) % 4)), raw=False)
    except (ValueError, msgpack.UnpackException):
        return {}
    return decoded if isinstance(decoded, dict) else {}


def record_cid(record: dict[str, Any]) -> str:
    """The CID a PDS gives ``record`` (JSON form): CIDv1, dag-cbor, sha2-256, base32."""
    return cid_from_bytes(encode_dag_cbor(_ipld(record)))


def _ipld(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$bytes"}:
            raw = value["$bytes"]
            return base64.b64decode(raw + "=" * (-len(raw) % 4))
        if set(value) == {"$link"}:
            return CID.decode(value["$link"])
        return {k: _ipld(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ipld(v) for v in value]
    return value


def parse_entry(uri: str, cid: str, record: dict[str, Any], *, blob_url: Any) -> AtmosphereEntry:
    """An :class:`AtmosphereEntry` from an entry record of either namespace.

    ``blob_url(did, cid)`` builds the URL of a blob shard in the record's repo.

    Raises
    ------
    InvalidRecord
        No name, schema ref or storage this atdata can read (names the record).
    """
    name, schema_ref, storage = record.get("name"), record.get("schemaRef"), record.get("storage")
    if not isinstance(name, str) or not isinstance(schema_ref, str) or not isinstance(storage, dict):
        raise InvalidRecord(f"entry record {uri} lacks name, schemaRef or storage; it is not a dataset entry")
    shards = _shards(uri, storage, blob_url)
    location = _location(uri, storage)
    extra = decode_metadata(record.get("metadata"))
    local_metadata = extra.get("metadata")
    return AtmosphereEntry(
        uri=uri,
        record_cid=cid,
        name=name,
        schema_ref=schema_ref,
        data_urls=[_shard_url(uri, s, location) for s in shards],
        shards=shards,
        cid=str(extra.get("atdataCid") or cid),
        metadata=local_metadata if isinstance(local_metadata, dict) else None,
        description=record.get("description"),
        tags=list(record.get("tags") or []),
        license=record.get("license"),
        storage=storage,
        record=record,
    )


def _shards(uri: str, storage: dict[str, Any], blob_url: Any) -> list[Shard]:
    kind = str(storage.get("$type", "")).rpartition(".")[2].partition("#")[0]
    if kind == "storageS3":
        bucket = storage.get("bucket")
        return [Shard(f"s3://{bucket}/{s['key']}", _digest(s)) for s in storage.get("shards", [])]
    if kind == "storageHttp":
        return [Shard(s["url"], _digest(s)) for s in storage.get("shards", [])]
    if kind == "storageExternal":
        return [Shard(url) for url in storage.get("urls", [])]
    if kind == "storageBlobs":
        did = AtUri.parse(uri).repo
        out = []
        for item in storage.get("blobs", []):
            ref = item.get("blob", item) if isinstance(item, dict) else {}
            link = (ref.get("ref") or {}).get("$link") if isinstance(ref, dict) else None
            if not isinstance(link, str):
                raise InvalidRecord(f"entry record {uri}: a storageBlobs item has no blob ref: {item!r:.120}")
            size = ref.get("size") if isinstance(ref, dict) else None
            out.append(Shard(blob_url(did, link), _digest(item), size if _is_size(size) else None))
        return out
    raise InvalidRecord(f"entry record {uri}: storage {storage.get('$type')!r} is not one atdata can read")


def _digest(item: dict[str, Any]) -> str | None:
    checksum = item.get("checksum") if isinstance(item, dict) else None
    if isinstance(checksum, dict) and checksum.get("algorithm") == "sha256":
        return str(checksum.get("digest")).lower()
    return None


def _is_size(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _location(uri: str, storage: dict[str, Any]) -> StorageLocation | None:
    """Where a storageS3 record's bucket lives (its endpoint and region), for zero-config reads."""
    endpoint, region = storage.get("endpoint"), storage.get("region")
    if not str(storage.get("$type", "")).endswith("storageS3") or (endpoint is None and region is None):
        return None
    try:
        return StorageLocation(endpoint_url=endpoint, region=region)
    except InvalidArgument as exc:
        raise InvalidRecord(f"entry record {uri}: its storageS3 endpoint or region is unusable: {exc}") from exc


def _shard_url(uri: str, shard: Shard, location: StorageLocation | None) -> ShardURL:
    """The shard's URL carrying what the record says of it, which core's reader verifies."""
    if shard.sha256 is not None and not _SHA256.fullmatch(shard.sha256):
        raise InvalidRecord(
            f"entry record {uri}: shard {shard.url} has sha256 checksum {shard.sha256!r:.80}, not 64 hex digits"
        )
    facts = {"sha256": shard.sha256, "size": shard.size, "location": location}
    return ShardURL(shard.url, **{k: v for k, v in facts.items() if v is not None})
