"""``promote_to_atmosphere``: publish one local index entry to the logged-in PDS repo.

Order, chosen so that a failure anywhere leaves no half-published dataset:

1. a dataset already promoted to this repo (with this storage) is returned as it is:
   the AT-URI the local entry recorded, else an entry record whose ``atdataCid`` matches;
2. every shard is read once (sha256, size; the bytes too for ``data_store="blobs"``):
   missing or unreadable data fails here, before any write;
3. the schema record (key ``module.Class:version``): reused when an identical one
   exists, refused (``SchemaConflict``) when the same name and version has other fields,
   else created. A schema record without an entry is harmless and reused next time;
4. blobs are uploaded (``data_store="blobs"``). The PDS drops blobs no record
   references, so an upload whose entry is never written leaves nothing visible;
5. the entry record, in ONE ``createRecord``: only this makes the dataset visible.
   Its CID is computed first and must equal the one the PDS returns;
6. the local entry's metadata records where it went (``metadata["atmosphere"]``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from atdata.atmosphere._publish import publish_schema, write_record
from atdata.atmosphere.client import AtmosphereClient
from atdata.atmosphere.lexicon import now
from atdata.atmosphere.records import ENTRY_NSID, decode_metadata, encode_metadata
from atdata.errors import InvalidArgument, RecordNotFound

from ._shards import LocalShard, read_shards, storage_kind

__all__ = ["promote_to_atmosphere"]

log = logging.getLogger(__name__)

#: The key under which a local entry's metadata lists its promotions.
PROMOTIONS_KEY = "atmosphere"


def promote_to_atmosphere(
    entry: Any,
    local_index: Any,
    client: AtmosphereClient,
    *,
    name: str | None = None,
    description: str | None = None,
    tags: Sequence[str] = (),
    license: str | None = None,
    data_store: str | None = None,
    s3_endpoint: str | None = None,
    s3_region: str | None = None,
    republish: bool = False,
) -> str:
    """Publish ``entry`` (its schema, then its entry record) to ``client``'s repo; returns the AT-URI.

    Parameters
    ----------
    entry
        A local index entry (``LocalDatasetEntry``) of ``local_index``.
    local_index
        The index holding the entry and its schema (``LocalIndex``); it records the
        promotion in the entry's metadata.
    client
        A logged-in :class:`AtmosphereClient`.
    name
        The published name (default: the entry's).
    description, tags, license
        The record's discovery fields (SPDX license identifiers recommended).
    data_store
        None keeps the shard URLs (``s3://`` -> storageS3, ``http(s)://`` ->
        storageHttp); ``"blobs"`` uploads each shard as a PDS blob (50 MiB at most each).
    s3_endpoint, s3_region
        The S3 endpoint and region the record names; default: what ``s3://`` reads of
        that bucket use in this process (atdata-store-s3's settings), else none (AWS).
    republish
        Publish a new record even if this entry was promoted here before.

    Raises
    ------
    SchemaConflict
        The repo has this schema name and version with other fields (nothing published).
    AtmosphereAuthError, AtmosphereUnavailable, AtmosphereError
        Not logged in, session expired, PDS down, blob refused: no entry record was written.
    InvalidArgument
        Bad arguments, or local-file shards without ``data_store="blobs"``.
    """
    did = client.require_login()
    tags = _check_args(name, description, tags, license)
    urls = list(entry.data_urls)
    kind = storage_kind(urls, data_store)
    if not republish:
        found = _already_promoted(entry, client, did, kind)
        if found is not None:
            _record_locally(entry, local_index, client, found, kind)
            return found
    shards = read_shards(urls, keep_bytes=kind == "blobs")
    schema_uri = publish_schema(local_index.get_schema(entry.schema_ref), entry.schema_ref, client)
    storage = _storage(kind, shards, client, s3_endpoint, s3_region)
    record: dict[str, Any] = {
        "$type": ENTRY_NSID,
        "name": name or entry.name,
        "schemaRef": schema_uri,
        "storage": storage,
        "size": {"bytes": sum(s.size for s in shards), "shards": len(shards)},
        "metadata": encode_metadata(_extension(entry)),
        "createdAt": now(),
    }
    record.update({k: v for k, v in (("description", description), ("tags", tags), ("license", license)) if v})
    uri = write_record(client, ENTRY_NSID, record, rkey=None)
    log.info("promoted %s (%s) to %s", entry.name, entry.cid, uri)
    _record_locally(entry, local_index, client, uri, kind)
    return uri


def _storage(
    kind: str, shards: list[LocalShard], client: AtmosphereClient, endpoint: str | None, region: str | None
) -> dict[str, Any]:
    def checksum(shard: LocalShard) -> dict[str, str]:
        return {"algorithm": "sha256", "digest": shard.sha256}

    if kind == "blobs":
        blobs = [
            {"blob": client.upload_blob(s.data or b"", "application/x-tar"), "checksum": checksum(s)} for s in shards
        ]
        return {"$type": f"{ENTRY_NSID.rpartition('.')[0]}.storageBlobs", "blobs": blobs}
    if kind == "http":
        return {
            "$type": f"{ENTRY_NSID.rpartition('.')[0]}.storageHttp",
            "shards": [{"url": s.url, "checksum": checksum(s)} for s in shards],
        }
    bucket = shards[0].url.split("/")[2]
    keys = [s.url.split("/", 3)[3] for s in shards]
    endpoint, region = _s3_settings(bucket, endpoint, region)
    storage: dict[str, Any] = {
        "$type": f"{ENTRY_NSID.rpartition('.')[0]}.storageS3",
        "bucket": bucket,
        "shards": [{"key": k, "checksum": checksum(s)} for k, s in zip(keys, shards, strict=True)],
    }
    storage.update({k: v for k, v in (("endpoint", endpoint), ("region", region)) if v})
    return storage


def _s3_settings(bucket: str, endpoint: str | None, region: str | None) -> tuple[str | None, str | None]:
    if endpoint is not None:
        return endpoint, region
    try:  # what s3:// reads of this bucket use here (a Repo, S3DataStore or configure() set it)
        from atdata.store_s3.reading import _settings_for
    except ImportError:
        return None, region
    credentials, _ = _settings_for(f"s3://{bucket}/key")  # settings are per bucket: any key
    return credentials.endpoint_url, region or credentials.region or ("us-east-1" if credentials.endpoint_url else None)


def _extension(entry: Any) -> dict[str, Any]:
    metadata = dict(entry.metadata or {})
    metadata.pop(PROMOTIONS_KEY, None)  # where it was promoted is not part of what it is
    return {
        "atdataCid": entry.cid,
        "schemaRef": entry.schema_ref,
        "dataUrls": list(entry.data_urls),
        "metadata": metadata,
    }


def _already_promoted(entry: Any, client: AtmosphereClient, did: str, kind: str) -> str | None:
    for done in (entry.metadata or {}).get(PROMOTIONS_KEY, []):
        if isinstance(done, dict) and done.get("did") == did and done.get("storage") == kind:
            try:
                client.get_record(done["uri"])
            except RecordNotFound:
                continue  # deleted from the repo since: publish again
            return str(done["uri"])
    for uri, _cid, record in client.list_records(did, ENTRY_NSID):
        stored = str(record.get("storage", {}).get("$type", "")).rpartition(".")[2]
        if decode_metadata(record.get("metadata")).get("atdataCid") == entry.cid and stored == _STORAGE_TYPES[kind]:
            return uri
    return None


_STORAGE_TYPES = {"blobs": "storageBlobs", "http": "storageHttp", "s3": "storageS3"}


def _record_locally(entry: Any, local_index: Any, client: AtmosphereClient, uri: str, kind: str) -> None:
    metadata = dict(entry.metadata or {})
    done = [d for d in metadata.get(PROMOTIONS_KEY, []) if isinstance(d, dict) and d.get("uri") != uri]
    done.append({"uri": uri, "did": client.did, "pds": client.base_url, "storage": kind})
    metadata[PROMOTIONS_KEY] = done
    if metadata == (entry.metadata or {}):
        return
    try:
        local_index.update_metadata(entry, metadata)
    except Exception as exc:
        exc.add_note(f"atdata: {entry.name} is published at {uri}; promoting it again returns that URI and records it")
        raise


def _check_args(name: Any, description: Any, tags: Any, license: Any) -> list[str]:
    for label, value in (("name", name), ("description", description), ("license", license)):
        if value is not None and (not isinstance(value, str) or not value):
            raise InvalidArgument(f"{label}={value!r} is invalid: pass a non-empty string or None")
    if isinstance(tags, str) or not all(isinstance(t, str) and t for t in tags):
        raise InvalidArgument(f"tags={tags!r} is invalid: pass a list of non-empty strings, e.g. ['images']")
    return list(tags)
