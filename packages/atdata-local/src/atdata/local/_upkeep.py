"""Looking after what a Repo stores: ``verify`` (every shard against its record), ``gc``, ``adopt_hive``.

:class:`HiveUpkeep` holds the :class:`~atdata.local.Repo` methods that read or tidy what
inserts left in the hive rather than insert anything; ``Repo`` inherits them, so they are
documented and called as ``Repo`` methods. The work itself is in ``_verify``, ``_gc`` and
``_owner``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from atdata.protocols import AbstractDataStore, AbstractIndex

from . import _gc, _owner, _verify
from ._gc import GcReport
from ._hive import Hive
from ._verify import VerifyReport

__all__ = ["DEFAULT_GRACE", "HiveUpkeep"]

#: ``gc`` leaves an insert alone while any of its objects is younger than this. Each shard
#: of an insert in progress renews it, so this must exceed the time one shard takes.
DEFAULT_GRACE = timedelta(hours=1)


class HiveUpkeep:
    """The ``verify``, ``gc`` and ``adopt_hive`` methods of :class:`~atdata.local.Repo`."""

    index: AbstractIndex
    _hive: Hive

    @property
    def store(self) -> AbstractDataStore:
        """The data store shards are written to."""
        return self._hive.store

    # -- verify -----------------------------------------------------------------------

    def verify(self, ref: str) -> VerifyReport:
        """Check every shard of one entry against what its insert recorded; never raises for damage.

        ``ref`` is a name (its newest version) or a CID. Each shard is checked for
        existence and size (one stat or HEAD), then read once and compared with its
        sha256 and chunk digests (:mod:`atdata.local._verify`). ``report.ok`` is False
        when any shard is missing, of another size or damaged; each
        ``report.shards[i]`` names its URL, status and what differs.

        Raises
        ------
        EntryNotFound
            No entry is named ``ref`` or has it as CID.
        """
        entry = _verify.find_entry(self.index, ref)
        return _verify.verify_content(self.store, entry.cid, (entry.name,), list(entry.data_urls))

    def verify_all(self) -> Iterator[VerifyReport]:
        """:meth:`verify` of every stored content of the index (older versions too), each CID once."""
        for cid, names, data_urls in _verify.contents_of(self.index):
            yield _verify.verify_content(self.store, cid, names, data_urls)

    # -- gc ---------------------------------------------------------------------------

    def gc(self, grace: timedelta | float = DEFAULT_GRACE, *, dry_run: bool = False, force: bool = False) -> GcReport:
        """Delete objects under the hive that no index entry references.

        Only what inserts write is considered (``data--{insert_id}--*`` shards and
        metadata, ``content/*`` records); other objects under the prefix are left alone.
        An insert's objects are removed only when none of them is referenced by any entry
        of :attr:`index` AND all of them are older than ``grace``, so an insert in
        progress (which writes a shard every so often) is never touched.

        Parameters
        ----------
        grace
            A ``timedelta`` or seconds. Must exceed the time one shard takes to write.
        dry_run
            Report what would be removed without deleting anything.
        force
            Delete even when the index holds no entry at all (see Raises).

        Raises
        ------
        HiveOwnedElsewhere
            The hive belongs to another index (:meth:`adopt_hive` takes it on purpose).
        InvalidArgument
            The index is empty while the hive
            holds inserted data (a reset or wrong Redis would make gc delete
            everything: pass ``force=True`` if that is really meant).
        IndexConnectionError, StoreError
            Redis or the store failed; nothing is deleted unless the index was read whole.
        """
        seconds = _gc.grace_seconds(grace)
        owner = _owner.check_owner(self._hive, self.index)
        return _gc.collect(
            self.index,
            self.store,
            self._hive.root_key,
            seconds=seconds,
            dry_run=dry_run,
            force=force,
            keep=set(_owner.adopted_inserts(owner)),
        )

    def adopt_hive(self) -> dict[str, Any]:
        """Make :attr:`index` the owner of this hive, on purpose; returns the new owner record.

        For a hive whose owning index is gone (a flushed or lost Redis) or that holds data
        but no owner record. Inserts and gc through this index then work; every insert
        already in the hive is recorded in the owner record and gc never deletes it (its
        datasets are in no entry of this index, so they would otherwise look unreferenced).
        Re-insert such data to index it again. A hive this index already owns is left
        unchanged (its record is returned).
        """
        return _owner.adopt(self._hive, self.index)
