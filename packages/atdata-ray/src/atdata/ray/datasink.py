"""``RepoDatasink``: a ``ray.data.Dataset`` written into a Repo as ONE entry, through Ray's ``Datasink`` API.

The four calls map onto a :class:`~atdata.local.PendingInsert`:

- ``on_write_start`` (driver, first block): publish the schema, claim the hive, stage
  the insert. Ray serialises the sink for its write tasks after this call, so every
  task gets the pending insert.
- ``write`` (each write task): the task's rows become samples of the sample type and
  are staged as ONE shard named by the insert id and the task index (Ray's block
  index), so a task Ray retries writes the same key and replaces its first attempt;
  the task returns its shard's description.
- ``on_write_complete`` (driver): every task's shard, ordered by index, committed as
  one entry in one index write (``Repo.commit_insert``).
- ``on_write_failed`` (driver): every object of the insert deleted (found by listing
  its id). A task still running after that can leave a shard; ``Repo.gc`` removes it
  after its grace period. Nothing staged is ever visible as an entry.

Order: task indexes follow the input's block order when the write is fused with its
read (the usual case) or when ``DataContext.execution_options.preserve_order`` is set,
which :func:`atdata.ray.write_dataset` does; the entry then holds the same samples in
the same order whatever the number of workers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from atdata.errors import InvalidArgument
from atdata.local import PendingInsert, Repo
from atdata.staging import WrittenShard
from ray.data import Datasink
from ray.data._internal.execution.interfaces import TaskContext
from ray.data.block import Block
from ray.data.datasource.datasink import WriteResult

from ._memory import pin_mmap_threshold
from ._rows import samples_from_blocks

__all__ = ["RepoDatasink"]


class RepoDatasink(Datasink[list[WrittenShard]]):
    """Write a Ray dataset of samples into ``repo`` as the entry ``name``.

    Parameters
    ----------
    repo
        The repository (its store and index must be reachable from every worker).
    name
        The entry's name.
    sample_type
        An ``@atdata.packable`` class: rows hold its fields (or one column of its
        instances). Its schema is published unless ``schema_ref`` names one.
    schema_ref, metadata
        As ``Repo.insert``.

    After a successful write, :attr:`entry` and :attr:`stored` are the new entry and
    its dataset (set on the driver's sink object).
    """

    def __init__(
        self,
        repo: Repo,
        *,
        name: str,
        sample_type: type | None = None,
        schema_ref: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(repo, Repo):
            raise InvalidArgument(f"repo={repo!r:.200} is not an atdata.local.Repo")
        self.repo = repo
        self._args: dict[str, Any] = {"name": name, "schema_ref": schema_ref, "metadata": metadata}
        self._sample_type = sample_type
        self.pending: PendingInsert | None = None
        self._row_type: type | None = None
        self.entry: Any = None
        self.stored: Any = None

    def get_name(self) -> str:
        return f"atdata({self._args['name']})"

    def on_write_start(self, schema: Any = None) -> None:
        """Stage the insert (driver, before the first write task is serialised)."""
        if self.pending is None:
            self.pending = self.repo.stage_insert(self._sample_type, **self._args)
            # Workers pack with the class the schema record generates: it pickles as its
            # record, so the user's class need not be importable on every worker.
            self._row_type = self.repo.index.decode_schema(self.pending.schema_ref)

    def write(self, blocks: Iterable[Block], ctx: TaskContext) -> list[WrittenShard]:
        """Stage this task's rows as shard ``ctx.task_idx`` (a retry replaces it).

        The worker's mmap threshold is pinned first (:mod:`atdata.ray._memory`), so its
        memory stays flat however many write tasks it runs.
        """
        pending = self._require_pending()
        pin_mmap_threshold()
        return pending.write_shard(samples_from_blocks(blocks, self._row_type or pending.sample_type), ctx.task_idx)

    def on_write_complete(self, write_result: WriteResult[list[WrittenShard]]) -> None:
        """Commit every task's shard as one entry, ordered by task index."""
        if self.pending is None:
            raise InvalidArgument(f"nothing to insert as {self._args['name']!r}: the dataset has no rows")
        shards = [shard for returned in write_result.write_returns for shard in returned or ()]
        self.entry, self.stored = self.repo.commit_insert(self.pending, shards)

    def on_write_failed(self, error: Exception) -> None:
        """Delete every object of the insert; the error propagates (Ray re-raises it)."""
        self.abort()

    def abort(self) -> None:
        """Delete every object this write staged, from any worker (safe to call twice)."""
        if self.pending is not None:
            self.pending.abort()

    def _require_pending(self) -> PendingInsert:
        if self.pending is None:  # Ray calls on_write_start before serialising the sink
            raise InvalidArgument("RepoDatasink.write ran before on_write_start: use ds.write_datasink(sink)")
        return self.pending
