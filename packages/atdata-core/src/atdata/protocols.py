"""The narrow interfaces that index and storage backends implement.

Core owns them so that ``Repo``, the CLI and third-party backends depend on a contract
rather than on Redis or S3. Each protocol keeps few abstract methods; helpers built on
them live here as concrete methods, so every backend gets them for free and the
conformance suites in ``atdata.testing`` check one behaviour everywhere.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from typing import Any, Protocol, runtime_checkable

__all__ = ["AbstractDataStore", "AbstractIndex", "IndexEntry"]


@runtime_checkable
class IndexEntry(Protocol):
    """What every index entry exposes, whichever index produced it."""

    @property
    def name(self) -> str: ...

    @property
    def schema_ref(self) -> str: ...

    @property
    def data_urls(self) -> list[str]: ...

    @property
    def metadata(self) -> dict[str, Any] | None: ...

    @property
    def cid(self) -> str: ...


class AbstractIndex(abc.ABC):
    """An index of datasets (by CID and by name) and of sample schemas."""

    @abc.abstractmethod
    def add_entry(
        self,
        dataset: Any,
        *,
        name: str,
        schema_ref: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> IndexEntry:
        """Index ``dataset`` under ``name``; idempotent for identical content."""

    @abc.abstractmethod
    def get_entry(self, cid: str) -> IndexEntry:
        """The entry with this CID; raises ``EntryNotFound``."""

    @abc.abstractmethod
    def get_entry_by_name(self, name: str) -> IndexEntry:
        """The newest entry under this name; raises ``EntryNotFound``."""

    @property
    @abc.abstractmethod
    def entries(self) -> Iterator[IndexEntry]:
        """Stream every entry without loading them all at once."""

    @abc.abstractmethod
    def remove_entry(self, cid_or_name: str) -> None:
        """Remove an entry and its name mapping; raises ``EntryNotFound``."""

    @abc.abstractmethod
    def publish_schema(self, sample_type: type, *, version: str | None = "1.0.0", description: str | None = None) -> str:
        """Store the schema of ``sample_type``; returns its schema ref."""

    @abc.abstractmethod
    def get_schema(self, ref: str) -> dict[str, Any]:
        """The schema record stored under ``ref``; raises ``SchemaNotFound``."""

    @abc.abstractmethod
    def list_schemas(self) -> Iterator[dict[str, Any]]:
        """Every stored schema record."""

    @property
    def all_entries(self) -> list[IndexEntry]:
        """Every entry as a list (loads them all: prefer ``entries`` for large indexes)."""
        return list(self.entries)

    def decode_schema(self, ref: str) -> type:
        """Reconstruct a packable sample class from the schema stored under ``ref``."""
        from .schema import from_record

        return from_record(self.get_schema(ref))


class AbstractDataStore(abc.ABC):
    """Object storage for shards, addressed by key under one root (a bucket, a directory).

    Backends implement the primitives below; ``write_shards`` and the failure rules
    (nothing half-written survives an error) are built on them once.
    """

    @abc.abstractmethod
    def url_for(self, key: str) -> str:
        """The full URL (``s3://bucket/key``, ``file:///root/key``) readers open."""

    @abc.abstractmethod
    def supports_streaming(self) -> bool:
        """True when shards can be written while they are produced, without a local copy."""
