"""``RepoDatasource``: an entry read back as a ``ray.data.Dataset``, one read task per shard.

Each read task opens its shard with core's reader (``atdata.Dataset``; whatever
verification the reader does, the task does) and yields one Ray block per batch:
typed numpy columns, one per field, so ``ds.iter_batches()`` and
``ds.iter_torch_batches()`` see arrays. The repo's store travels to the workers with
the task; rebuilding it there registers its credentials for the shard URLs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import atdata
from atdata.local import Repo
from ray.data import Datasource, ReadTask
from ray.data.block import Block, BlockMetadata

from ._memory import pin_mmap_threshold
from ._rows import batch_to_block

__all__ = ["RepoDatasource"]

#: Rows per Ray block when reading.
DEFAULT_BATCH_SIZE = 1024


class RepoDatasource(Datasource):
    """The entry ``name_or_cid`` of ``repo``; samples decode as ``sample_type`` (default: its schema's class)."""

    def __init__(
        self, repo: Repo, name_or_cid: str, *, sample_type: type | None = None, batch_size: int = DEFAULT_BATCH_SIZE
    ) -> None:
        super().__init__()
        entry = _entry(repo, name_or_cid)
        self.entry = entry
        self.sample_type = sample_type or repo.index.decode_schema(entry.schema_ref)
        self.shards = atdata.Dataset(list(entry.data_urls)).shard_list
        self._store = repo.store
        self._batch_size = batch_size

    def get_name(self) -> str:
        return "atdata"

    def estimate_inmemory_data_size(self) -> int | None:
        return None

    def get_read_tasks(
        self, parallelism: int, per_task_row_limit: int | None = None, data_context: Any = None
    ) -> list[ReadTask]:
        """One task per shard, in the entry's order."""
        return [
            ReadTask(
                _reader(url, self.sample_type, self._store, self._batch_size),
                BlockMetadata(num_rows=None, size_bytes=None, input_files=(url,), exec_stats=None),
                per_task_row_limit=per_task_row_limit,
            )
            for url in self.shards
        ]


def _entry(repo: Repo, name_or_cid: str) -> Any:
    if name_or_cid.startswith("bafy"):
        return repo.index.get_entry(name_or_cid)
    return repo.index.get_entry_by_name(name_or_cid)


def _reader(url: str, sample_type: type, store: Any, batch_size: int) -> Any:
    def read() -> Iterator[Block]:
        _ = store  # unpickled in this worker, it registered its credentials for url
        pin_mmap_threshold()  # the worker's memory flat over its tasks: atdata.ray._memory
        batches: Iterator[Any] = iter(atdata.Dataset(url, sample_type=sample_type).ordered(batch_size=batch_size))
        for batch in batches:
            yield batch_to_block(batch.columns)

    return read
