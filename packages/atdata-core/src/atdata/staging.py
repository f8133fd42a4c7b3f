"""One insert's lifetime in a data store: stage objects, then commit them to an entry or abort.

The failure rule of an insert (DESIGN.md) lives here, once:

1. **stage**: shards (``data--{insert_id}--{index:06d}.tar``), the dataset's metadata
   (``data--{insert_id}--metadata.msgpack``) and a content record
   (``content/{digest}--{insert_id}.json``) are written under the prefix, every name
   carrying the insert id. Nothing staged is an entry yet: no reader can find it.
2. **commit**: one atomic index write names the staged objects; from then on they
   belong to the entry.
3. **abort**: if anything fails before the commit, every object this insert staged is
   deleted (open multipart uploads aborted) before the error propagates. If the commit
   itself fails in a way that may have landed (a lost reply), the objects are kept and
   ``gc`` decides later. A crash leaves at worst objects no entry names; ``gc`` finds
   them by the insert id in their names (:meth:`InsertKeys.insert_id_of`) once they are
   older than its grace period.

:class:`InsertKeys` is the one place that knows these names and :class:`WrittenShard` is
what staging a shard returns (both in ``_insert_keys``, re-exported here);
:class:`StagedInsert`, this module, is the transaction. A ``StagedInsert``
pickles as its store, prefix and insert id, so other processes can stage shards of the
same insert (each shard named by the insert id and its index, so writing an index again
replaces that shard) while one process commits or aborts: it adopts the shards the
others return (:meth:`~StagedInsert.adopt`), or discards the whole insert, found by
listing, when their results are lost (:meth:`~StagedInsert.discard`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from ._insert_keys import InsertKeys, WrittenShard
from ._shard_upload import ShardUploads
from .errors import AtdataError, InvalidArgument, StoreError
from .writing import ShardInfo, ShardWriter, check_limits

if TYPE_CHECKING:
    from .protocols import AbstractDataStore

__all__ = ["InsertKeys", "StagedInsert", "WrittenShard"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class StagedInsert:
    """One insert as a transaction: stage objects in ``store`` under ``prefix``, then commit or abort.

    Parameters
    ----------
    store
        Where the objects go.
    prefix
        Key prefix (a "directory") under the store's root; not a URL.
    insert_id
        The id every staged name carries; default a new uuid4. Pass an existing insert's
        id to stage more shards of it from another process.

    Use as a context manager: leaving the block without :meth:`commit` (an exception, a
    forgotten commit) aborts, deleting everything this object staged.
    """

    def __init__(self, store: AbstractDataStore, prefix: str = "", insert_id: str | None = None) -> None:
        if not isinstance(prefix, str) or "://" in prefix:
            raise InvalidArgument(
                f"prefix={prefix!r} is invalid: pass a key prefix inside the store such as 'datasets/v1' "
                "(not a URL: the store already names its bucket or directory)"
            )
        self.store = store
        self.keys = InsertKeys(prefix.strip("/"), insert_id or str(uuid.uuid4()))
        self._staged: list[str] = []
        self._done = False

    @property
    def insert_id(self) -> str:
        """The id in the name of every object this insert stages."""
        return self.keys.insert_id

    @property
    def prefix(self) -> str:
        """The key prefix (no leading or trailing ``/``) everything is staged under."""
        return self.keys.prefix

    @property
    def staged(self) -> tuple[str, ...]:
        """Keys this object staged that are neither committed nor aborted yet."""
        return tuple(self._staged)

    def __repr__(self) -> str:
        return f"StagedInsert({self.store!r}, prefix={self.prefix!r}, insert_id={self.insert_id!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Staged keys stay with the process that staged them: it commits or aborts them.
        return (StagedInsert, (self.store, self.prefix, self.insert_id))

    # -- staging ------------------------------------------------------------------------

    def write_shards(
        self,
        samples: Iterable[Any],
        *,
        maxcount: int | None = None,
        maxsize: int | None = None,
        cache_local: bool = False,
        progress: bool | Callable[[int, int], None] | None = None,
        first_index: int = 0,
    ) -> list[WrittenShard]:
        """Stage ``samples`` as shards ``first_index, first_index + 1, ...`` of this insert
        (see ``AbstractDataStore.write_shards``).

        Processes that write parts of one insert each pass their own ``first_index``
        (a Ray write task passes its task index and no limits: one shard per task).
        Writing an index again replaces that shard, so a retried task's shard replaces
        its first attempt instead of adding to it.

        Raises
        ------
        StoreError
            The store failed or the samples could not be read (the cause is chained);
            the shards of this call are deleted first.
        InvalidArgument
            Bad limits or a bad sample (cleaned up too).
        """
        check_limits(maxcount, maxsize)
        if not isinstance(first_index, int) or isinstance(first_index, bool) or first_index < 0:
            raise InvalidArgument(f"first_index={first_index!r} is invalid: pass a shard index >= 0")
        uploads = ShardUploads(self.store, cache_local=cache_local, progress=progress)
        keys: list[str] = []

        def open_sink(index: int) -> Any:
            keys.append(self.keys.shard(first_index + index))
            self._staged.append(keys[-1])
            return uploads.open(keys[-1])

        writer = ShardWriter(open_sink, maxcount=maxcount, maxsize=maxsize, progress=uploads.report)
        try:
            with uploads:
                with writer:
                    for sample in samples:
                        writer.write(sample)
                uploads.wait()
        except BaseException as exc:
            uploads.settle()  # a commit still running could make a shard visible after its delete
            self._unstage(keys)
            cleanup = self._delete(keys)
            if cleanup is not None:
                exc.add_note(f"atdata: these shards could not be removed and need a gc: {keys} ({cleanup})")
            if isinstance(exc, AtdataError) or not isinstance(exc, Exception):
                raise
            raise StoreError(
                f"writing shards to {self.store.url_for(self.prefix)!r} failed: {type(exc).__name__}: {exc} "
                f"(the {len(keys)} shard(s) of this write were removed)"
            ) from exc
        return [self._written(keys[shard.index], first_index + shard.index, shard) for shard in writer.shards]

    def _written(self, key: str, index: int, shard: ShardInfo) -> WrittenShard:
        """The URL of staged shard ``key`` (shard ``index`` of the insert), carrying what the writer measured."""
        url = self.store.url_for(key)
        record = shard.record(url)
        return WrittenShard(
            url, key=key, insert_id=self.insert_id, shard_index=index, record=record, location=self.store.location
        )

    def adopt(self, shards: Iterable[WrittenShard]) -> None:
        """Take charge of shards other processes staged for this insert, so that this
        object's :meth:`commit` or :meth:`abort` covers them as if it had written them.

        Raises
        ------
        InvalidArgument
            A shard of another insert.
        """
        shards = list(shards)
        strays = [str(shard) for shard in shards if getattr(shard, "insert_id", None) != self.insert_id]
        if strays:
            raise InvalidArgument(
                f"cannot adopt shards of another insert into {self.insert_id}: {strays[:3]} "
                "(pass the WrittenShard objects this insert's writers returned)"
            )
        known = set(self._staged)
        self._staged.extend(shard.key for shard in shards if shard.key not in known)

    def discard(self) -> list[str]:
        """Delete every object of this insert under the prefix, whichever process staged it.

        What ends an insert whose writers' results are lost (a failed distributed
        write): the objects are found by the insert id in their names. A writer still
        running afterwards can leave a shard behind; ``gc`` collects it after its grace
        period. Returns the deleted keys.
        """
        start = len(self.prefix) + 1 if self.prefix else 0
        keys = [
            info.key
            for info in self.store.list_objects(f"{self.prefix}/" if self.prefix else "")
            if InsertKeys.insert_id_of(info.key[start:]) == self.insert_id
        ]
        self.store.delete(sorted(set(keys) | set(self._staged)))
        self._end()
        return keys

    def write_bytes(self, key: str, data: bytes) -> str:
        """Stage ``data`` under ``key`` (one of :attr:`keys`' names); returns its URL."""
        self._staged.append(key)
        return self.store.write_bytes(key, data)

    # -- ending -------------------------------------------------------------------------

    def commit(self, write_entry: Callable[[], T], *, may_have_landed: Callable[[], bool]) -> T:
        """Run ``write_entry`` (the one atomic index write naming the staged objects) and end the insert.

        On success the staged objects belong to the entry. If ``write_entry`` raises and
        ``may_have_landed()`` says the write could have landed anyway (its reply was lost),
        the objects are kept for ``gc`` to judge (a note on the error says so); otherwise
        they are deleted. The error propagates either way.
        """
        try:
            result = write_entry()
        except BaseException as exc:
            if self._staged and may_have_landed():
                exc.add_note(
                    f"atdata: the index write may have landed, so the {len(self._staged)} object(s) of this insert "
                    "were kept; if no entry refers to them, `atdata gc` removes them"
                )
                self._end()
            else:
                self.abort(exc)
            raise
        self._end()
        return result

    def abort(self, exc: BaseException | None = None) -> None:
        """Delete every object this insert staged (not an error if some never existed).

        With ``exc`` (the error that ends the insert), a deletion that fails is logged and
        noted on ``exc``, which the caller then raises (``atdata gc`` removes what remains).
        Without it, the store's error is raised and the objects stay staged, so leaving
        the ``with`` block on that error tries once more.
        """
        staged = self._staged
        if staged:
            try:
                self.store.delete(staged)
            except Exception as cleanup:
                if exc is None:
                    raise
                log.error("could not remove %s after a failed insert: %s", staged, cleanup)
                exc.add_note(f"atdata: {len(staged)} object(s) of this insert remain; `atdata gc` removes them")
        self._end()

    def _end(self) -> None:
        self._staged = []
        self._done = True

    def _unstage(self, keys: list[str]) -> None:
        gone = set(keys)
        self._staged = [key for key in self._staged if key not in gone]

    def _delete(self, keys: list[str]) -> Exception | None:
        """Delete ``keys``; a failure is logged and returned (the caller notes it on its error)."""
        try:
            self.store.delete(keys)
        except Exception as cleanup:  # noqa: BLE001 - reported on the original error
            log.error("could not remove %s after a failed insert: %s", keys, cleanup)
            return cleanup
        return None

    def __enter__(self) -> StagedInsert:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._done:
            self.abort(exc)
