"""LocalDatasetEntry: one indexed dataset, identified by the CID of its content."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from atdata.cid import generate_cid
from atdata.errors import InvalidArgument

__all__ = ["LocalDatasetEntry", "content_cid", "content_json"]


@dataclass(frozen=True)
class LocalDatasetEntry:
    """A dataset as the index knows it: where its shards are, which schema they follow.

    Satisfies the core ``atdata.IndexEntry`` protocol. ``cid`` is computed from
    ``{"schema_ref", "data_urls"}`` only (name and metadata are not content), so the same
    data gets the same CID here and on ATProto. Leave ``cid`` empty to have it computed.

    Attributes
    ----------
    name : str
        Human-readable name; several entries may share it (versions, newest wins).
    schema_ref : str
        ``local://schemas/{module}.{Class}@{version}``.
    data_urls : list of str
        WebDataset URLs as given (brace patterns stay unexpanded).
    metadata : dict or None
        Free-form metadata (JSON-serialisable).
    cid : str
        CIDv1 (dag-cbor, sha2-256, base32) of the content.
    """

    name: str
    schema_ref: str
    data_urls: list[str]
    metadata: dict[str, Any] | None = None
    cid: str = field(default="")

    def __post_init__(self) -> None:
        if not self.cid:
            object.__setattr__(self, "cid", content_cid(self.schema_ref, self.data_urls))

    @property
    def wds_url(self) -> str:
        """The first data URL (legacy name)."""
        return self.data_urls[0]

    @property
    def sample_kind(self) -> str:
        """Same as ``schema_ref`` (legacy name)."""
        return self.schema_ref

    @classmethod
    def from_values(cls, name: Any, content: Any) -> LocalDatasetEntry:
        """Rebuild an entry from its stored ``name`` and ``content`` (JSON)."""
        fields = json.loads(content)
        return cls(
            name=_text(name),
            schema_ref=fields["schema_ref"],
            data_urls=fields["data_urls"],
            metadata=fields["metadata"],
            cid=fields["cid"],
        )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def content_json(cid: str, schema_ref: str, data_urls: list[str], metadata: Any) -> str:
    """What the index stores for an entry besides its name: one JSON object, parsed once per read.

    Raises
    ------
    InvalidArgument
        ``metadata`` is not a dict (or None) of JSON-serialisable values.
    """
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidArgument(f"metadata must be a dict or None, got {type(metadata).__name__}")
    content = {"cid": cid, "schema_ref": schema_ref, "data_urls": data_urls, "metadata": metadata}
    try:
        return json.dumps(content, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"metadata must be JSON-serialisable (str keys, plain values): {exc}") from exc


def content_cid(schema_ref: str, data_urls: list[str]) -> str:
    """The entry CID: exactly the spec's ``{"schema_ref", "data_urls"}`` content."""
    return generate_cid({"schema_ref": schema_ref, "data_urls": list(data_urls)})
