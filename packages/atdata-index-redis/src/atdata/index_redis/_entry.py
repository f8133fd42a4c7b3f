"""LocalDatasetEntry (a name's version of some content) and StoredContent (content stored once)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from atdata.cid import generate_cid
from atdata.errors import InvalidArgument
from atdata.shard_url import ShardURL

__all__ = ["LocalDatasetEntry", "StoredContent", "content_cid", "content_json", "metadata_json"]


@dataclass(frozen=True)
class LocalDatasetEntry:
    """A dataset as the index knows it: a name, and the content that name points at.

    Satisfies the core ``atdata.IndexEntry`` protocol. ``cid`` is computed from
    ``{"schema_ref", "data_urls"}`` only (name and metadata are not content), so the same
    data gets the same CID here and on ATProto. Leave ``cid`` empty to have it computed.
    Several names may point at one CID: each has its own entry, metadata and versions.

    Attributes
    ----------
    name : str
        Human-readable name; it has versions (newest wins), other names never touch it.
    schema_ref : str
        ``local://schemas/{name}@{version}``, or the ``at://`` URI of a published schema.
    data_urls : list of str
        WebDataset URLs as given (brace patterns stay unexpanded). Items the index
        knows more about are :class:`atdata.shard_url.ShardURL` (still plain strings):
        e.g. ``entry.data_urls[0].location``, where the bucket lives, so a fresh
        process reads ``atdata.Dataset[T](entry.data_urls[0])`` with nothing configured.
    metadata : dict or None
        Free-form metadata of this name's version (JSON-serialisable).
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
    def from_values(cls, name: Any, content: Any, metadata: Any) -> LocalDatasetEntry:
        """Rebuild an entry from its stored name, content JSON and metadata JSON."""
        return cls.from_fields(_text(name), json.loads(content), json.loads(metadata) if metadata is not None else None)

    @classmethod
    def from_fields(cls, name: str, content: dict[str, Any], metadata: dict[str, Any] | None) -> LocalDatasetEntry:
        """Rebuild an entry from its name and its content record and metadata, already parsed."""
        return cls(
            name=name,
            schema_ref=content["schema_ref"],
            data_urls=_data_urls(content),
            metadata=metadata,
            cid=content["cid"],
        )


@dataclass(frozen=True)
class StoredContent:
    """One content record: what a CID stands for, and the names that have it as a version.

    ``names`` are in the order they took this content; ``get_entry(cid)`` answers with
    the first. The record goes when its last name does; ``data_urls`` are what gc keeps.
    """

    cid: str
    schema_ref: str
    data_urls: list[str]
    names: tuple[str, ...]

    @classmethod
    def from_values(cls, content: Any, names: Sequence[Any]) -> StoredContent:
        fields = json.loads(content)
        return cls(
            cid=fields["cid"],
            schema_ref=fields["schema_ref"],
            data_urls=_data_urls(fields),
            names=tuple(_text(n) for n in names),
        )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def content_json(cid: str, schema_ref: str, data_urls: list[str]) -> str:
    """The content record a CID stands for: stored once, whichever names point at it.

    ``url_facts`` (present only when some URL is a ``ShardURL`` with facts) lists, per
    data URL, what it carries (``ShardURL.to_json()``: where its bucket lives, checksums),
    never a secret; the CID covers only the plain strings of ``data_urls``.
    """
    content: dict[str, Any] = {"cid": cid, "schema_ref": schema_ref, "data_urls": data_urls}
    facts = [url.to_json() or None if isinstance(url, ShardURL) else None for url in data_urls]
    if any(facts):  # only when some URL carries something: plain entries keep the spec's record
        content["url_facts"] = facts
    return json.dumps(content)


def _data_urls(fields: dict[str, Any]) -> list[str]:
    """A content record's URLs, as ``ShardURL``s where it recorded what they carry."""
    urls, facts = fields["data_urls"], fields.get("url_facts")
    if facts is None:
        return list(urls)
    return [url if f is None else ShardURL.from_json(url, f) for url, f in zip(urls, facts)]


def metadata_json(metadata: Any) -> str:
    """A version's metadata as stored (JSON), validated before anything is written.

    Raises
    ------
    InvalidArgument
        ``metadata`` is not a dict (or None) of JSON-serialisable values.
    """
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidArgument(f"metadata must be a dict or None, got {type(metadata).__name__}")
    try:
        return json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"metadata must be JSON-serialisable (str keys, plain values): {exc}") from exc


def content_cid(schema_ref: str, data_urls: list[str]) -> str:
    """The entry CID: exactly the spec's ``{"schema_ref", "data_urls"}`` content."""
    return generate_cid({"schema_ref": schema_ref, "data_urls": [str(url) for url in data_urls]})
