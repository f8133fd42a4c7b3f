"""The names of everything an insert stages, and what staging a shard returns.

:class:`InsertKeys` is the one place that knows the names (every one carries the insert
id, so ``gc`` groups objects by insert): shards ``data--{insert_id}--{index:06d}.tar``,
the metadata ``data--{insert_id}--metadata.msgpack`` and content records
``content/{digest}--{insert_id}.json``, and the entry's URL list for staged shards.
:class:`WrittenShard` is a staged shard's URL with its key, insert id, index and
manifest. :mod:`atdata.staging` (the transaction) re-exports both.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from .errors import InvalidArgument
from .manifest import Manifest, ShardRecord
from .shard_url import ShardURL, StorageLocation

__all__ = ["InsertKeys", "WrittenShard", "join_key"]

_ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_STAGED_NAME = re.compile(
    rf"data--(?P<id>{_ID})--(?:\d{{6}}\.tar|metadata\.msgpack)|content/[0-9a-f]{{64}}--(?P<cid>{_ID})\.json"
)


def join_key(prefix: str, name: str) -> str:
    """``prefix/name``, or ``name`` under the empty prefix."""
    return f"{prefix}/{name}" if prefix else name


@dataclass(frozen=True)
class InsertKeys:
    """The store keys of everything one insert writes under ``prefix``: the naming rule, once."""

    prefix: str
    insert_id: str

    def shard(self, index: int) -> str:
        """The key of shard ``index``: ``{prefix}/data--{insert_id}--{index:06d}.tar``."""
        return join_key(self.prefix, self._shard_name(index))

    def _shard_name(self, index: int | str) -> str:
        number = f"{index:06d}" if isinstance(index, int) else index
        return f"data--{self.insert_id}--{number}.tar"

    @property
    def metadata(self) -> str:
        """The key of the dataset's metadata: ``{prefix}/data--{insert_id}--metadata.msgpack``."""
        return join_key(self.prefix, f"data--{self.insert_id}--metadata.msgpack")

    def content(self, digest: str) -> str:
        """The key of the content record of ``digest``: ``{prefix}/content/{digest}--{insert_id}.json``."""
        return join_key(self.prefix, f"content/{digest}--{self.insert_id}.json")

    @staticmethod
    def content_prefix(prefix: str, digest: str) -> str:
        """The listing prefix of every insert's content record of ``digest`` under ``prefix``."""
        return join_key(prefix, f"content/{digest}--")

    @staticmethod
    def insert_id_of(name: str) -> str | None:
        """The insert id in ``name`` (a key relative to the prefix), or None if no insert wrote it."""
        match = _STAGED_NAME.fullmatch(name)
        return None if match is None else match["id"] or match["cid"]

    def urls(self, shards: Sequence[WrittenShard]) -> list[str]:
        """The entry's URL list for ``shards`` (in order): one brace URL for shards
        0..n-1 of this insert, else each shard's own URL (shards written by many
        processes may skip an index: a task that had no samples writes no shard).

        Each URL is a :class:`~atdata.shard_url.ShardURL` carrying the manifest of the
        shards it names, so the entry's reads are verified."""
        if [shard.shard_index for shard in shards] == list(range(len(shards))):
            manifest = Manifest(tuple(record for shard in shards for record in shard.manifest.shards))
            return [ShardURL(self.brace_url(shards), manifest=manifest)]
        return [ShardURL(str(shard), manifest=shard.manifest) for shard in shards]

    def brace_url(self, shards: Sequence[WrittenShard]) -> str:
        """One URL for ``shards`` 0..n-1 of this insert: ``.../data--{id}--{000000..00000N}.tar``.

        The one shard's own URL when there is one. Built from the first shard's URL (the
        store decides how a key becomes a URL), replacing only the shard's file name.
        """
        if [shard.shard_index for shard in shards] != list(range(len(shards))) or any(
            shard.insert_id != self.insert_id for shard in shards
        ):
            raise InvalidArgument(
                f"cannot name shards {[str(s) for s in shards][:3]}... with one URL: pass shards 0..n-1 of insert "
                f"{self.insert_id} in order"
            )
        first = str(shards[0])
        if len(shards) == 1:
            return first
        name = self._shard_name(0)
        return first[: -len(name)] + self._shard_name(f"{{000000..{len(shards) - 1:06d}}}")


class WrittenShard(ShardURL):
    """The URL of a shard an insert staged, with its key and what was measured while writing it.

    A :class:`~atdata.shard_url.ShardURL`, so a plain ``str`` everywhere a URL is expected.
    ``key`` (its store key), ``insert_id`` and ``shard_index`` say which insert staged it and
    where it sits (the writer's bookkeeping: not facts an index records); ``sha256`` (hex
    digest of the whole tar), ``size`` (bytes) and ``num_samples`` let callers record
    checksums next to the data, ``manifest`` (its one-shard manifest, with the chunk
    digests) lets readers verify it; ``location`` is where the store
    lives (``AbstractDataStore.location``: None for a local directory). (Not ``count`` or
    ``index``: they would hide str methods.)
    """

    key: str
    insert_id: str
    shard_index: int
    sha256: str
    size: int
    num_samples: int
    manifest: Manifest

    def __new__(
        cls,
        url: str,
        *,
        key: str,
        insert_id: str,
        shard_index: int,
        record: ShardRecord,
        location: StorageLocation | None = None,
    ) -> WrittenShard:
        facts = {"sha256": record.sha256, "size": record.size, "num_samples": record.num_samples}
        shard = cast(
            WrittenShard,  # ShardURL.__new__ builds cls
            super().__new__(cls, url, **facts, location=location, manifest=Manifest((record,))),
        )
        shard.key, shard.insert_id, shard.shard_index = key, insert_id, shard_index
        return shard

    def __reduce__(self) -> tuple[Any, ...]:
        fields = (self.key, self.insert_id, self.shard_index, self.manifest.shards[0], self.location)
        return (_written_shard, (str(self), *fields))


def _written_shard(
    url: str, key: str, insert_id: str, shard_index: int, record: ShardRecord, location: StorageLocation | None
) -> Any:
    return WrittenShard(url, key=key, insert_id=insert_id, shard_index=shard_index, record=record, location=location)
