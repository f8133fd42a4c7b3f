"""Sizes of an entry's shards for ``atdata ls`` and ``show``, one listing per entry.

The index records URLs only, so sizes come from the store: the shards of one entry
share a key prefix (``.../data--{run}--``), and one LIST of that prefix returns every
size at once instead of a HEAD per shard.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from atdata.errors import AtdataError
from atdata.openers import local_path
from atdata.store_s3 import S3DataStore

__all__ = ["ShardSizes", "SizeProbe", "human_bytes"]


@dataclass(frozen=True)
class ShardSizes:
    """Total bytes of the shards found and how many were not found."""

    total: int
    missing: int


class SizeProbe:
    """Measures shard lists with the given S3 credentials (one store per bucket, reused)."""

    def __init__(self, credentials: Any) -> None:
        self._credentials = credentials
        self._stores: dict[str, S3DataStore] = {}
        self.errors: list[str] = []

    def measure(self, shards: list[str]) -> ShardSizes | None:
        """Sizes of ``shards``; None when their scheme is unknown or the store failed."""
        try:
            if all(local_path(url) is not None for url in shards):
                return _local_sizes(shards)
            if all(url.startswith("s3://") for url in shards):
                return self._s3_sizes(shards)
        except AtdataError as exc:
            self.errors.append(str(exc).splitlines()[0])
        return None

    def _s3_sizes(self, shards: list[str]) -> ShardSizes | None:
        located = [_bucket_and_key(url) for url in shards]
        buckets = {bucket for bucket, _ in located}
        if len(buckets) != 1:
            return None
        bucket = buckets.pop()
        store = self._stores.get(bucket)
        if store is None:
            store = self._stores[bucket] = S3DataStore(self._credentials, bucket, create_bucket=False)
        prefix = os.path.commonprefix([key for _, key in located])
        found = {info.url: info.size for info in store.list_objects(prefix)}
        sizes = [found.get(url) for url in shards]
        return ShardSizes(sum(s for s in sizes if s is not None), sum(s is None for s in sizes))


def _bucket_and_key(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.netloc, parts.path.lstrip("/")


def _local_sizes(shards: list[str]) -> ShardSizes:
    total = missing = 0
    for url in shards:
        try:
            total += os.path.getsize(local_path(url) or url)
        except OSError:
            missing += 1
    return ShardSizes(total, missing)


def human_bytes(size: int) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
