"""An insert that many processes write: staged on one, its shards written anywhere, committed once.

:meth:`Repo.stage_insert <atdata.local.Repo.stage_insert>` publishes the schema, claims
the hive and returns a :class:`PendingInsert`; it pickles (store connection, prefix,
insert id, schema), so it travels to worker processes or machines. Each worker calls
:meth:`PendingInsert.write_shard` with its own index (a Ray write task: its task
index) and returns the :class:`~atdata.staging.WrittenShard` list to the committing
process, which passes them all to :meth:`Repo.commit_insert
<atdata.local.Repo.commit_insert>` (one atomic index write, shards ordered by index) or
calls :meth:`PendingInsert.abort` (every object of the insert deleted, found by its
insert id). Nothing is visible as an entry before the commit; a crashed driver leaves
only staged objects, which ``Repo.gc`` removes after its grace period.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from atdata.staging import StagedInsert, WrittenShard

__all__ = ["PendingInsert"]


@dataclass(frozen=True)
class PendingInsert:
    """A staged insert: where its shards go, and what the entry will say.

    Attributes
    ----------
    staged : StagedInsert
        The transaction (store, prefix, insert id); pickled, it carries no staged keys.
    sample_type : type
        The class samples are packed as (the schema's class).
    schema_ref : str
        The published schema the entry will name.
    name : str
        The entry's name.
    metadata : dict or None
        JSON metadata for the index entry.
    """

    staged: StagedInsert
    sample_type: type
    schema_ref: str
    name: str
    metadata: dict[str, Any] | None = None

    @property
    def insert_id(self) -> str:
        """The id every object of this insert carries in its name."""
        return self.staged.insert_id

    def write_shard(self, samples: Iterable[Any], index: int) -> list[WrittenShard]:
        """Stage ``samples`` as shard ``index`` (one shard; none when there are no samples).

        Writing an index again replaces that shard (same key), so a retried writer
        never adds samples twice. A failed write deletes what it wrote before raising.
        """
        return self.staged.write_shards(samples, first_index=index)

    def abort(self) -> list[str]:
        """Delete every object of this insert, whichever process wrote it; returns their keys."""
        return self.staged.discard()
