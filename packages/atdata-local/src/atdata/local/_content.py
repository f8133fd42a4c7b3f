"""What an insert stores besides its shards: the content digest and the content record.

The digest (schema ref, each shard's sha256, size and sample count, the metadata's
sha256) identifies the content, so inserting identical content again finds the stored
copy through ``content/{digest}--{insert_id}.json`` and reuses it (same URLs, same CID).
The record beside the shards lists their URLs and checksums.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass

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

    def record(self, data_urls: list[str], metadata_url: str | None) -> bytes:
        """The content record stored beside the shards (JSON)."""
        record = {
            "schema_ref": self.schema_ref,
            "data_urls": data_urls,
            "metadata_url": metadata_url,
            "shards": [
                {"url": str(s), "sha256": s.sha256, "size": s.size, "num_samples": s.num_samples} for s in self.shards
            ],
        }
        return json.dumps(record, indent=1).encode()
