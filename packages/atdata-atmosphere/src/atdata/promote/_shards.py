"""Reading a local entry's shards once before promotion: checksums, sizes, storage kind.

Every shard is opened with the same openers ``atdata.Dataset`` uses (``s3://`` through
atdata-store-s3, local files, any registered scheme), hashed with sha256 and measured.
This also proves every shard exists and is readable before anything is published, and
that it is still what was inserted: a shard whose sha256 differs from the one its URL
records (a local entry's URLs carry it) is refused, so damage is never published as good.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from urllib.parse import urlsplit

from atdata.errors import InvalidArgument, ShardDigestMismatch
from atdata.manifest import shard_record
from atdata.openers import open_url
from atdata.urls import expand_urls

__all__ = ["MAX_BLOB", "LocalShard", "read_shards", "storage_kind"]

#: The storageBlobs lexicon's maxSize for one shard blob (50 MiB).
MAX_BLOB = 52_428_800
_CHUNK = 1 << 20


@dataclass(frozen=True)
class LocalShard:
    """One shard as read: its URL, sha256 (hex), size, and its bytes when they are to be uploaded."""

    url: str
    sha256: str
    size: int
    data: bytes | None = None


def storage_kind(urls: list[str], data_store: str | None) -> str:
    """``"blobs"``, ``"s3"`` or ``"http"``: where the promoted record says the shards are.

    Raises
    ------
    InvalidArgument
        ``data_store`` is not None or ``"blobs"``; or the shards are local files (or mix
        kinds) with ``data_store=None``: nobody else could open those URLs.
    """
    if data_store == "blobs":
        return "blobs"
    if data_store is not None:
        raise InvalidArgument(f"data_store={data_store!r} is invalid: None keeps the shard URLs, 'blobs' uploads them")
    schemes = {urlsplit(u).scheme for u in urls}
    if schemes == {"s3"}:
        buckets = {urlsplit(u).netloc for u in urls}
        if len(buckets) == 1:
            return "s3"
    if schemes <= {"http", "https"}:
        return "http"
    raise InvalidArgument(
        f"the shards are at {sorted(schemes) or urls} URLs, which a storageS3 record (one bucket) or a storageHttp "
        "record cannot name for others: pass data_store='blobs' to upload them to the PDS"
    )


def read_shards(data_urls: list[str], *, keep_bytes: bool) -> list[LocalShard]:
    """Hash and measure every shard of ``data_urls`` (brace patterns expanded), in order.

    ``keep_bytes`` keeps each shard's bytes for a blob upload; shards over 50 MiB are
    then refused (``InvalidArgument``) before anything is uploaded.
    """
    shards = []
    for url in expand_urls(data_urls):
        digest, size, chunks = hashlib.sha256(), 0, []
        with open_url(url) as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                if keep_bytes:
                    if size > MAX_BLOB:
                        raise InvalidArgument(
                            f"shard {url} is over {MAX_BLOB} bytes, the largest blob storageBlobs allows: "
                            "keep the data in S3 (data_store=None) or re-insert it with a smaller maxsize"
                        )
                    chunks.append(chunk)
        _check_recorded(url, digest.hexdigest(), size)
        shards.append(LocalShard(url, digest.hexdigest(), size, b"".join(chunks) if keep_bytes else None))
    return shards


def _check_recorded(url: str, sha256: str, size: int) -> None:
    """Refuse a shard that changed since it was inserted: its checksum would be published as good."""
    record = shard_record(url)
    expected = getattr(url, "sha256", None) or (record.sha256 if record is not None else None)
    if expected is not None and sha256 != expected:
        raise ShardDigestMismatch(
            f"shard {url!r} has sha256 {sha256} ({size} bytes), but {expected} was recorded when it was inserted: "
            "it is damaged, and promoting it would publish the damage as good; restore it from a good copy, or "
            "delete it and re-insert the dataset (a re-insert reuses a damaged shard of the recorded size), then promote"
        )
