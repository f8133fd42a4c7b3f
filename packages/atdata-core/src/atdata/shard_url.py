"""What a shard URL carries: a ``str`` that is exactly the URL, plus facts about the shard.

An index entry's ``data_urls`` and ``write_shards``' result are lists of URLs, and they
must stay plain strings: the CID covers exactly those strings, users print and compare
them, webdataset and ``open_url`` take them. Yet a reader in another process needs more
than the string to read the shard: where its bucket lives (a :class:`StorageLocation`),
and, to check it, what was measured when it was written (its
:class:`~atdata.manifest.Manifest`: sizes, sha256 and chunk digests, which the read path
verifies every chunk against before decoding it). :class:`ShardURL` is a ``str``
subclass that carries these facts beside the unchanged string value:

- ``str(url)``, ``repr``, ``==``, ``hash`` and JSON encoding are the plain URL's, so
  CIDs, dict keys, printed lists and comparisons never depend on what a URL carries;
- it pickles with its facts (into DataLoader workers, other ranks), and no fact is
  ever a secret (a location is an endpoint and a region, never keys);
- :meth:`ShardURL.to_json` / :meth:`ShardURL.from_json` are how an index stores them;
- brace expansion (:func:`atdata.urls.expand_urls`) gives each shard of a pattern the
  facts that hold for all of them (:attr:`ShardURL.SHARED`: the location) and its own
  record of the manifest, and a URL naming one shard keeps all of its facts.

To carry a new fact, add it to :attr:`ShardURL.FIELDS` (and to ``SHARED`` if it holds
for every shard of a brace pattern); values must be JSON-safe or have ``to_json`` /
``from_json`` here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

from .errors import InvalidArgument
from .manifest import Manifest

__all__ = ["ShardURL", "StorageLocation"]


@dataclass(frozen=True)
class StorageLocation:
    """Where a store's bucket lives: what a reader needs to reach it, never how to sign in.

    Attributes
    ----------
    endpoint_url
        ``http(s)://host:port`` of an S3-compatible server; None for AWS S3.
    region
        The signing region (``us-east-1``...), None when the store did not know one.
    """

    endpoint_url: str | None = None
    region: str | None = None

    def __post_init__(self) -> None:
        for name in ("endpoint_url", "region"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise InvalidArgument(f"StorageLocation {name}={value!r} is invalid: pass a non-empty string or None")
        if self.endpoint_url is not None:
            parts = urlsplit(self.endpoint_url)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
                raise InvalidArgument(
                    f"StorageLocation endpoint_url={self.endpoint_url!r} is invalid: pass http(s)://host:port "
                    "(no user or password: a location never holds a secret)"
                )

    def to_json(self) -> dict[str, str | None]:
        """``{"endpoint_url": ..., "region": ...}``."""
        return {"endpoint_url": self.endpoint_url, "region": self.region}

    @classmethod
    def from_json(cls, data: Any) -> StorageLocation:
        """The location :meth:`to_json` gave; raises ``InvalidArgument`` for anything else."""
        if not isinstance(data, dict) or set(data) - {"endpoint_url", "region"}:
            raise InvalidArgument(f"a storage location is {{'endpoint_url', 'region'}}, got {data!r:.200}")
        return cls(endpoint_url=data.get("endpoint_url"), region=data.get("region"))


class ShardURL(str):
    """A shard URL (or a brace pattern of shard URLs) and the facts known about it.

    Every fact is optional (None: unknown). See the module docstring for the rules.

    Attributes
    ----------
    location
        Where the bucket lives (:class:`StorageLocation`), for stores that have one.
    sha256, size, num_samples
        The whole shard's hex sha256, byte size and sample count, as measured when it
        was written (only on a URL that names one shard).
    manifest
        The :class:`~atdata.manifest.Manifest` of the shards the URL names (one record
        per shard): reads verify every chunk against it.
    """

    FIELDS: ClassVar[tuple[str, ...]] = ("location", "sha256", "size", "num_samples", "manifest")
    SHARED: ClassVar[tuple[str, ...]] = ("location",)

    location: StorageLocation | None
    sha256: str | None
    size: int | None
    num_samples: int | None
    manifest: Manifest | None

    def __new__(cls, url: str, **facts: Any) -> ShardURL:
        if not isinstance(url, str) or not url:
            raise InvalidArgument(f"a shard URL must be a non-empty string, got {url!r:.200}")
        unknown = set(facts) - set(cls.FIELDS)
        if unknown:
            raise InvalidArgument(f"ShardURL has no fact {sorted(unknown)[0]!r}: it carries {', '.join(cls.FIELDS)}")
        location = facts.get("location")
        if location is not None and not isinstance(location, StorageLocation):
            raise InvalidArgument(f"ShardURL location={location!r:.200} is invalid: pass a StorageLocation or None")
        manifest = facts.get("manifest")
        if manifest is not None and not isinstance(manifest, Manifest):
            raise InvalidArgument(f"ShardURL manifest={manifest!r:.200} is invalid: pass an atdata.manifest.Manifest")
        shard = super().__new__(cls, url)
        for name in cls.FIELDS:
            setattr(shard, name, facts.get(name))
        return shard

    def facts(self) -> dict[str, Any]:
        """The known facts (those not None), by name."""
        return {name: getattr(self, name) for name in self.FIELDS if getattr(self, name) is not None}

    def with_facts(self, **changes: Any) -> ShardURL:
        """A copy (a plain ``ShardURL``) with some facts changed; the URL stays.

        (Not ``replace``: that is ``str.replace``, which a URL must keep.)"""
        return ShardURL(str(self), **{**self.facts(), **changes})

    def expanded(self, shards: list[str]) -> list[str]:
        """The URLs this one names (``shards``, from brace expansion), each with the facts it keeps.

        A URL naming only itself keeps every fact; each shard of a pattern gets the
        :attr:`SHARED` ones (per-shard facts cannot be told apart from the pattern), and
        its own record of the :attr:`manifest`.
        """
        if shards == [str(self)]:
            return [self]
        shared = {name: getattr(self, name) for name in self.SHARED if getattr(self, name) is not None}
        result: list[str] = []
        for shard in shards:
            record = self.manifest.get(shard) if self.manifest is not None else None
            facts = {**shared, "manifest": Manifest((record,))} if record is not None else shared
            result.append(ShardURL(shard, **facts) if facts else shard)
        return result

    def to_json(self) -> dict[str, Any]:
        """The facts as JSON-safe values (an index stores this beside the plain URL)."""
        return {name: value.to_json() if hasattr(value, "to_json") else value for name, value in self.facts().items()}

    @classmethod
    def from_json(cls, url: str, facts: Any) -> ShardURL:
        """The URL with the facts :meth:`to_json` gave (unknown facts are dropped: a newer writer)."""
        if not isinstance(facts, dict):
            raise InvalidArgument(f"the facts of shard URL {url!r} must be a JSON object, got {facts!r:.200}")
        known = {name: facts[name] for name in cls.FIELDS if facts.get(name) is not None}
        if "location" in known:
            known["location"] = StorageLocation.from_json(known["location"])
        if "manifest" in known:
            known["manifest"] = Manifest.from_json(known["manifest"])
        return ShardURL(url, **known)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), str(self), self.facts()))


def _rebuild(cls: type[ShardURL], url: str, facts: dict[str, Any]) -> ShardURL:
    return cls(url, **facts)
