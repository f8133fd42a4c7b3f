"""Repo.stage_insert / commit_insert: an insert whose shards other processes write (atdata.ray's path)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

import atdata
from atdata.errors import EntryNotFound, InvalidArgument
from atdata.local import PendingInsert, Repo

from .conftest import Point, make_points, write_source


def insert_keys(repo: Repo) -> list[str]:
    return sorted(i.key for i in repo.store.list_objects(repo.prefix) if "data--" in i.key or "content/" in i.key)


def test_shards_from_many_writers_commit_as_one_entry_in_index_order(disk_repo: Repo) -> None:
    pending = disk_repo.stage_insert(Point, name="many-writers")
    assert insert_keys(disk_repo) == []  # staging writes no shard and no entry
    written = []
    for index in (2, 0, 1):  # writers finish in any order, each in its own process
        worker: PendingInsert = pickle.loads(pickle.dumps(pending))
        written += worker.write_shard(make_points(5, start=10 * index), index)
    written += pickle.loads(pickle.dumps(pending)).write_shard(make_points(5, start=10), 1)  # a retry
    with pytest.raises(EntryNotFound):
        disk_repo.index.get_entry_by_name("many-writers")  # nothing staged is visible
    entry, stored = disk_repo.commit_insert(pending, written)
    labels = [s.label for s in atdata.Dataset[Point](stored.shard_list).ordered()]
    assert labels == [*range(0, 5), *range(10, 15), *range(20, 25)]  # by index, the retry counted once
    assert disk_repo.index.get_entry_by_name("many-writers").cid == entry.cid


def test_an_aborted_insert_leaves_nothing(disk_repo: Repo) -> None:
    pending = disk_repo.stage_insert(Point, name="aborted")
    for index in range(3):
        pickle.loads(pickle.dumps(pending)).write_shard(make_points(2), index)
    assert len(insert_keys(disk_repo)) == 3
    pending.abort()
    assert insert_keys(disk_repo) == []
    with pytest.raises(InvalidArgument, match="no samples"):
        disk_repo.commit_insert(disk_repo.stage_insert(Point, name="empty"), [])
    with pytest.raises(EntryNotFound):
        disk_repo.index.get_entry_by_name("empty")


def test_insert_and_a_staged_insert_of_the_same_samples_are_one_content(disk_repo: Repo, tmp_path: Path) -> None:
    # Repo.insert runs stage_insert -> shards -> commit_insert in one process: the same
    # content record, so each finds the other's shards and reuses them (same CID).
    source = write_source(tmp_path / "one-shard", 7)
    pending = disk_repo.stage_insert(Point, name="staged")
    first, _ = disk_repo.commit_insert(pending, pending.write_shard(source.raw_samples(), 0))
    kept = insert_keys(disk_repo)
    second, stored = disk_repo.insert(source, name="inserted")
    assert second.cid == first.cid
    assert [str(url) for url in second.data_urls] == [str(url) for url in first.data_urls]
    assert insert_keys(disk_repo) == kept  # the insert's own copy was dropped
    assert [s.label for s in stored.ordered()] == list(range(7))
