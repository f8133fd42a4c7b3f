"""What an insert stores besides its shards: the content digest and the content record.

The digest (schema ref, each shard's sha256, size and sample count, the metadata's
sha256) identifies the content, so inserting identical content again finds the stored
copy through ``content/{digest}--{insert_id}.json`` and reuses it (same URLs, same CID).
The record beside the shards is their manifest (:mod:`atdata.manifest`: each shard's URL,
size, sample count, sha256 and chunk digests, under ``format`` and ``shards``) with the
entry's ``schema_ref``, ``data_urls`` and ``metadata_url`` added, so it reads as a
``Manifest`` as it is; the entry's URL carries the same manifest.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass

from atdata.manifest import Manifest
from atdata.staging import WrittenShard

__all__ = ["Content"]


@dataclass(frozen=True)
class Content:
    """One insert's content: its schema, the shards it staged and the dataset's metadata bytes."""

    schema_ref: str
    shards: list[WrittenShard]
    meta_bytes: bytes | None

    @functools.cached_property
    def digest(self) -> str:
        """sha256 hex of what makes the content (not where it is stored)."""
        content = {
            "schema_ref": self.schema_ref,
            "shards": [[s.sha256, s.size, s.num_samples] for s in self.shards],
            "metadata": hashlib.sha256(self.meta_bytes).hexdigest() if self.meta_bytes is not None else None,
        }
        return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()

    @functools.cached_property
    def manifest(self) -> Manifest:
        """The staged shards' manifest: what the writer measured of each, in order."""
        return Manifest(tuple(record for s in self.shards for record in s.manifest.shards))

    def record(self, data_urls: list[str], metadata_url: str | None) -> bytes:
        """The content record stored beside the shards (JSON): the manifest and the entry's parts."""
        record = {
            **self.manifest.to_json(),
            "schema_ref": self.schema_ref,
            "data_urls": [str(url) for url in data_urls],
            "metadata_url": metadata_url,
        }
        return json.dumps(record, indent=1).encode()
