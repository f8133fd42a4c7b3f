"""Writing a Ray dataset into a Repo and reading it back, on a real Ray cluster, Redis and S3."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import ray
import ray.cloudpickle
import torch
from numpy.typing import NDArray

import atdata
from atdata.errors import EntryNotFound
from atdata.local import Repo
from atdata.ray import read_dataset, write_dataset

# Ray pickles this module's functions by value: its workers cannot import test modules.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

N, BLOCKS = 120, 4


@atdata.packable
class Row:
    """The sample type of these tests."""

    features: NDArray
    label: int
    source: str


def to_row(row: dict) -> dict:
    i = int(row["id"])
    return {"features": np.full(4, i, dtype=np.float32), "label": i, "source": f"s{i % 3}"}


def expected() -> list[tuple[list[float], int, str]]:
    return [([float(i)] * 4, i, f"s{i % 3}") for i in range(N)]


def as_tuples(dataset: atdata.Dataset) -> list[tuple[list[float], int, str]]:
    return [(s.features.tolist(), s.label, s.source) for s in dataset.ordered()]


def staged_objects(repo: Repo) -> list[str]:
    """Every insert-written object (shards, metadata, content records) under the hive."""
    return sorted(
        info.key for info in repo.store.list_objects(repo.prefix) if "data--" in info.key or "/content/" in info.key
    )


def pipeline() -> ray.data.Dataset:
    return ray.data.range(N, override_num_blocks=BLOCKS).map(to_row)


def test_write_then_read_back_equal(s3_repo: Repo) -> None:
    entry, stored = write_dataset(pipeline(), s3_repo, name="ray-points", sample_type=Row)
    assert len(stored.shard_list) == BLOCKS  # one shard per write task (block)
    assert s3_repo.index.get_entry_by_name("ray-points").cid == entry.cid
    assert as_tuples(atdata.Dataset[Row](stored.shard_list)) == expected()

    batches = list(read_dataset(s3_repo, "ray-points").iter_batches(batch_size=50, batch_format="numpy"))
    labels = np.concatenate([b["label"] for b in batches])
    assert labels.tolist() == list(range(N)) and labels.dtype == np.int64
    features = np.concatenate([b["features"] for b in batches])
    assert features.shape == (N, 4) and features.dtype == np.float32
    assert [s for b in batches for s in b["source"].tolist()] == [f"s{i % 3}" for i in range(N)]


def test_one_worker_and_two_workers_write_the_same_entry(s3_repo: Repo) -> None:
    _, one = write_dataset(pipeline(), s3_repo, name="one-worker", sample_type=Row, concurrency=1)
    _, two = write_dataset(pipeline(), s3_repo, name="two-workers", sample_type=Row, concurrency=2)
    assert as_tuples(one) == as_tuples(two) == expected()


def test_a_retried_task_replaces_its_shard(s3_repo: Repo, tmp_path) -> None:
    marker = tmp_path / "killed-once"

    def die_once(row: dict) -> dict:
        if int(row["id"]) == 70 and not marker.exists():  # block 2, mid-way through its rows
            marker.touch()
            import os
            import signal

            os.kill(os.getpid(), signal.SIGKILL)
        return to_row(row)

    ds = ray.data.range(N, override_num_blocks=BLOCKS).map(die_once)
    _, stored = write_dataset(ds, s3_repo, name="retried", sample_type=Row)
    assert marker.exists()  # the worker was killed and Ray retried its task
    assert as_tuples(stored) == expected()  # no sample twice, none missing
    assert len([key for key in staged_objects(s3_repo) if key.endswith(".tar")]) == BLOCKS


@pytest.mark.parametrize("failure", ["exception", "killed"])
def test_a_failed_pipeline_leaves_no_entry_and_gc_leaves_no_shard(s3_repo: Repo, failure: str) -> None:
    def fail_on_block_2(row: dict) -> dict:
        if int(row["id"]) == 70:
            if failure == "exception":
                raise ValueError("bad input row 70")
            import os
            import signal

            os.kill(os.getpid(), signal.SIGKILL)
        return to_row(row)

    ds = ray.data.range(N, override_num_blocks=BLOCKS).map(fail_on_block_2, max_retries=0)
    with pytest.raises(Exception, match="bad input row 70" if failure == "exception" else None):
        write_dataset(ds, s3_repo, name="failed", sample_type=Row)
    with pytest.raises(EntryNotFound):
        s3_repo.index.get_entry_by_name("failed")
    s3_repo.gc(grace=0, force=True)  # a task still running at abort time may have left a shard
    assert staged_objects(s3_repo) == []


def test_iter_torch_batches_yields_the_samples_as_tensors(s3_repo: Repo) -> None:
    write_dataset(pipeline(), s3_repo, name="ray-torch", sample_type=Row)
    ds = read_dataset(s3_repo, "ray-torch").select_columns(["features", "label"])
    batches = list(ds.iter_torch_batches(batch_size=50))
    assert [len(b["label"]) for b in batches] == [50, 50, 20]
    features = torch.cat([b["features"] for b in batches])
    labels = torch.cat([b["label"] for b in batches])
    assert isinstance(features, torch.Tensor) and features.dtype == torch.float32 and features.shape == (N, 4)
    assert torch.equal(features, torch.tensor([f for f, _, _ in expected()], dtype=torch.float32))
    assert labels.dtype == torch.int64 and torch.equal(labels, torch.arange(N))
