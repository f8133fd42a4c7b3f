"""``Repo.verify``: is every shard of an entry still what the insert wrote?

Each shard URL of an entry carries its manifest record (:mod:`atdata.manifest`: size,
sha256 and chunk digests measured while it was written; the index keeps them beside the
URLs). A check asks the store for the object's size first (no read: a missing or
truncated shard is found with one stat or HEAD), then reads the shard once, hashing it
as the writer did (:func:`atdata.manifest.digest_stream`), and compares the sha256 and
every chunk digest, so a report names each damaged byte range. This is the whole-entry
form of what every verified read does chunk by chunk; it also finds damage in shards no
one has read yet. The CID cannot: it covers the schema ref and the URLs, not the bytes.

A URL carrying only a whole-shard sha256 (and size), as an ATProto entry's do, is checked
against those. A shard whose URL carries no digest at all (an entry made by ``add_entry``
from URLs atdata did not write) can only be checked for presence: it is reported
``unchecked``, which is not a failure. URLs of another kind than the store's (a
``file://`` shard in an index whose hive is S3) are read through the opener of their
scheme, as any reader would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from atdata.errors import AtdataError, EntryNotFound, InvalidArgument, ObjectNotFound
from atdata.manifest import CHUNK_SIZE, ShardRecord, digest_stream, shard_record
from atdata.openers import open_url
from atdata.protocols import AbstractDataStore, AbstractIndex, IndexEntry
from atdata.urls import expand_urls

__all__ = ["FAILURES", "ShardCheck", "VerifyReport", "check_shard", "contents_of", "find_entry", "verify_content"]

#: Statuses that are failures. ``ok`` and ``unchecked`` (no record to compare with) are not.
FAILURES = frozenset({"missing", "wrong size", "damaged", "error"})
_SHOWN_CHUNKS = 3  # damaged chunks named in a detail; the rest are counted
_UNKNOWN = -1  # the size of an object read through an opener, not asked of the store


@dataclass(frozen=True)
class ShardCheck:
    """The verdict on one shard: ``status`` is ``ok``, ``unchecked`` or one of :data:`FAILURES`."""

    url: str
    status: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status not in FAILURES

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "status": self.status, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class VerifyReport:
    """Every shard check of one stored content (one CID) and the names pointing at it."""

    cid: str
    names: tuple[str, ...]
    shards: tuple[ShardCheck, ...]

    @property
    def ok(self) -> bool:
        """No shard failed."""
        return all(check.ok for check in self.shards)

    @property
    def failures(self) -> list[ShardCheck]:
        return [check for check in self.shards if not check.ok]

    def to_dict(self) -> dict[str, Any]:
        return {
            "cid": self.cid,
            "names": list(self.names),
            "ok": self.ok,
            "shards": [check.to_dict() for check in self.shards],
        }


def find_entry(index: AbstractIndex, ref: str) -> IndexEntry:
    """The entry with CID ``ref``, else the newest named ``ref`` (a ``bafy...`` ref is tried as a CID first)."""
    lookups = (index.get_entry, index.get_entry_by_name)
    for lookup in lookups if ref.startswith("bafy") else reversed(lookups):
        try:
            return lookup(ref)
        except EntryNotFound:
            continue
    raise EntryNotFound(f"no dataset named or with CID {ref!r} in {index!r}; `atdata ls` lists them")


def verify_content(store: AbstractDataStore, cid: str, names: Iterable[str], data_urls: list[str]) -> VerifyReport:
    """Check every shard ``data_urls`` names (brace patterns expanded), in order."""
    checks = tuple(check_shard(store, url) for url in expand_urls(data_urls))
    return VerifyReport(cid, tuple(names), checks)


def check_shard(store: AbstractDataStore, url: str) -> ShardCheck:
    """Exists, has the recorded size, has the recorded sha256 and chunk digests (see the module doc)."""
    record = shard_record(url)
    recorded_sha256 = record.sha256 if record is not None else getattr(url, "sha256", None)
    recorded_size = record.size if record is not None else getattr(url, "size", None)
    url = str(url)
    try:
        size, read = _locate(store, url)
        if size is None:
            return ShardCheck(url, "missing", "no object at this URL (deleted, or never written)")
        if recorded_sha256 is None:
            return ShardCheck(url, "unchecked", "no digests recorded for it, so only its presence")
        if size != _UNKNOWN and recorded_size is not None and size != recorded_size:
            return ShardCheck(url, "wrong size", _size_detail(recorded_size, size))
        with read(url) as stream:
            size, sha256, chunks = digest_stream(stream, record.chunk_size if record is not None else CHUNK_SIZE)
    except ObjectNotFound:
        return ShardCheck(url, "missing", "no object at this URL (deleted, or never written)")
    except AtdataError as exc:
        return ShardCheck(url, "error", str(exc).splitlines()[0])
    if recorded_size is not None and size != recorded_size:  # also: rewritten since the size check
        return ShardCheck(url, "wrong size", _size_detail(recorded_size, size))
    bad = [] if record is None else [i for i, (a, b) in enumerate(zip(chunks, record.chunks)) if a != b]
    if bad or sha256 != recorded_sha256:
        return ShardCheck(url, "damaged", _damage_detail(record, bad, sha256, recorded_sha256))
    checked = f"{len(chunks)} chunk digest(s) and sha256" if record is not None else "sha256"
    return ShardCheck(url, "ok", f"{size} bytes; {checked} match")


def _locate(store: AbstractDataStore, url: str) -> tuple[int | None, Callable[[str], BinaryIO]]:
    """The size of the object at ``url`` (None: there is none) and how to read it.

    Through ``store`` when ``url`` is of its kind; any other URL (a ``file://`` shard
    seen through an S3 hive, say) is read as every reader reads it, by the opener of its
    scheme, and its size is then known only by reading it (``_UNKNOWN``).
    """
    try:
        return store.object_size(url), store.open_read
    except InvalidArgument:  # not a URL this store holds
        return _UNKNOWN, open_url


def _size_detail(recorded: int, size: int) -> str:
    kind = "truncated" if size < recorded else "longer than written"
    return f"{size} bytes, {recorded} recorded ({kind})"


def _damage_detail(record: ShardRecord | None, bad: list[int], sha256: str, recorded: str) -> str:
    where = ""
    if record is not None:
        ranges = ", ".join(_chunk_text(record, i) for i in bad[:_SHOWN_CHUNKS])
        more = f" and {len(bad) - _SHOWN_CHUNKS} more" if len(bad) > _SHOWN_CHUNKS else ""
        where = f"{len(bad)} of {len(record.chunks)} chunk(s) differ from the manifest: {ranges}{more}; "
    return (
        f"{where}sha256 {sha256} (recorded {recorded}); restore it from a good copy, or delete it and re-insert "
        "the dataset (a re-insert reuses stored shards that still have their recorded sizes)"
    )


def _chunk_text(record: ShardRecord, index: int) -> str:
    start, stop = record.chunk_range(index)
    return f"chunk {index} (bytes {start}-{stop - 1})"


def contents_of(index: AbstractIndex) -> Iterator[tuple[str, tuple[str, ...], list[str]]]:
    """``(cid, names, data_urls)`` of every stored content of ``index``, older versions included."""
    for content in index.contents:
        names = getattr(content, "names", None)
        yield content.cid, tuple(names) if names is not None else (content.name,), list(content.data_urls)
