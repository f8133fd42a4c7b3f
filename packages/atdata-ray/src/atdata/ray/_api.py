"""``write_dataset`` / ``read_dataset``: the sink and the source in one call each.

``write_dataset`` also keeps the entry's order fixed (``preserve_order``) and makes
Ctrl-C clean: Ray calls ``on_write_failed`` only for an ``Exception``, so a
``KeyboardInterrupt`` on the driver would otherwise leave staged shards for ``gc``.
"""

from __future__ import annotations

from typing import Any

import ray.data
from atdata.local import Repo

from .datasink import RepoDatasink
from .datasource import DEFAULT_BATCH_SIZE, RepoDatasource

__all__ = ["read_dataset", "write_dataset"]


def write_dataset(
    ds: ray.data.Dataset,
    repo: Repo,
    *,
    name: str,
    sample_type: type | None = None,
    schema_ref: str | None = None,
    metadata: dict[str, Any] | None = None,
    concurrency: int | None = None,
) -> tuple[Any, Any]:
    """Write ``ds`` (rows of ``sample_type``'s fields, or of its instances) into ``repo`` as ``name``.

    Returns ``(entry, stored)`` as ``Repo.insert`` does. ``concurrency`` caps the write
    tasks running at once (None: Ray decides). On any failure, Ctrl-C included, no
    entry is made and every shard staged so far is deleted.
    """
    sink = RepoDatasink(repo, name=name, sample_type=sample_type, schema_ref=schema_ref, metadata=metadata)
    ds.context.execution_options.preserve_order = True  # task index = block index, whatever finishes first
    try:
        ds.write_datasink(sink, concurrency=concurrency)
    except BaseException:
        sink.abort()
        raise
    return sink.entry, sink.stored


def read_dataset(
    repo: Repo, name_or_cid: str, *, sample_type: type | None = None, batch_size: int = DEFAULT_BATCH_SIZE
) -> ray.data.Dataset:
    """The entry ``name_or_cid`` as a ``ray.data.Dataset``: one read task per shard, numpy columns."""
    source = RepoDatasource(repo, name_or_cid, sample_type=sample_type, batch_size=batch_size)
    return ray.data.read_datasource(source, override_num_blocks=len(source.shards))
