"""Repo on a local directory hive and a real Redis: insert, dedup, failures, gc.

What every (index, store) pair must do is ``RepoConformance`` (run on this pair too, in
``test_repo_conformance.py``); the tests here are what the suite does not cover: the
spec's constructor, argument checks, progress, pickling, crashes of the index server.
"""

from __future__ import annotations

import os
import pickle
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest

import atdata
from atdata.errors import (
    EntryNotFound,
    IndexConnectionError,
    InvalidArgument,
    SchemaConflict,
    SchemaMismatch,
    SchemaNotFound,
)
from atdata.local import LocalDatasetEntry, Repo
from atdata.local._progress import InsertProgress

from .conftest import Point, make_points, write_source

pytestmark = pytest.mark.real


def hive_files(repo: Repo) -> list[str]:
    """Every object in the hive but the owner record."""
    return sorted(info.key for info in repo.store.list_objects() if info.key != "atdata-hive.json")


def labels(dataset: atdata.Dataset[Any]) -> list[int]:
    return [sample.label for sample in dataset.ordered()]


def test_insert_reads_back_same_samples_in_order(disk_repo: Repo, source: atdata.Dataset[Point]) -> None:
    entry, stored = disk_repo.insert(source, name="points", maxcount=25)
    assert isinstance(entry, LocalDatasetEntry)
    assert entry.name == "points"
    assert entry.data_urls == [stored.url]
    assert "{000000..000003}" in stored.url and stored.url.startswith("file://")
    assert len(stored.shard_list) == 4
    assert labels(stored) == list(range(100))
    assert [s.features[0] for s in stored.ordered()] == list(range(100))
    again = atdata.Dataset[Point](entry.data_urls[0])
    assert labels(again) == list(range(100))
    assert disk_repo.index.get_entry(entry.cid) == entry == disk_repo.index.get_entry_by_name("points")
    assert entry.schema_ref == disk_repo.index.publish_schema(Point, version=None)


@pytest.mark.parametrize(("maxcount", "maxsize", "shards"), [(10, None, 10), (None, 20_000, None), (1000, None, 1)])
def test_shard_limits(
    disk_repo: Repo, source: atdata.Dataset[Point], maxcount: int | None, maxsize: int | None, shards: int | None
) -> None:
    _, stored = disk_repo.insert(source, name="split", maxcount=maxcount, maxsize=maxsize)
    if shards is not None:
        assert len(stored.shard_list) == shards
    sizes = [os.path.getsize(atdata.openers.local_path(u) or "") for u in stored.shard_list]
    if maxsize is not None:
        assert len(sizes) > 1 and max(sizes) <= maxsize
    if shards == 1:
        assert "{" not in stored.url
    assert labels(stored) == list(range(100))


def test_identical_content_gets_the_same_cid_and_no_new_objects(disk_repo: Repo, source: atdata.Dataset[Point]) -> None:
    first, _ = disk_repo.insert(source, name="points", maxcount=40)
    files = hive_files(disk_repo)
    second, stored = disk_repo.insert(source, name="points", maxcount=40)
    assert second.cid == first.cid
    assert hive_files(disk_repo) == files
    assert len(disk_repo.index.all_entries) == 1
    assert labels(stored) == list(range(100))
    # Same content, another name: still one entry (the CID is content), now under the new name.
    third, _ = disk_repo.insert(source, name="renamed", maxcount=40)
    assert third.cid == first.cid and third.name == "renamed"
    assert hive_files(disk_repo) == files


def test_different_shard_limits_are_different_content(disk_repo: Repo, source: atdata.Dataset[Point]) -> None:
    a, _ = disk_repo.insert(source, name="points", maxcount=40)
    b, _ = disk_repo.insert(source, name="points", maxcount=50)
    assert a.cid != b.cid
    assert disk_repo.index.get_entry_by_name("points").cid == b.cid


def test_dataset_metadata_is_stored_next_to_the_shards(
    disk_repo: Repo, tmp_path: Path, source: atdata.Dataset[Point]
) -> None:
    meta = tmp_path / "meta.msgpack"
    meta.write_bytes(msgpack.packb({"split": "train", "n": 100}))
    with_meta = atdata.Dataset[Point](source.url, metadata_url=str(meta))
    entry, stored = disk_repo.insert(with_meta, name="m", metadata={"owner": "me"})
    assert entry.metadata == {"owner": "me"}
    assert stored.metadata_url is not None and stored.metadata_url.endswith("--metadata.msgpack")
    assert (
        Path(atdata.openers.local_path(stored.metadata_url) or "").parent
        == Path(atdata.openers.local_path(stored.shard_list[0]) or "").parent
    )
    assert stored.metadata == {"split": "train", "n": 100}
    # Same shards with other dataset metadata is other content.
    meta.write_bytes(msgpack.packb({"split": "val"}))
    other, _ = disk_repo.insert(atdata.Dataset[Point](source.url, metadata_url=str(meta)), name="m")
    assert other.cid != entry.cid


def test_a_stored_copy_whose_metadata_object_is_gone_is_not_reused(
    disk_repo: Repo, tmp_path: Path, source: atdata.Dataset[Point]
) -> None:
    meta = tmp_path / "meta.msgpack"
    meta.write_bytes(msgpack.packb({"split": "train"}))
    with_meta = atdata.Dataset[Point](source.url, metadata_url=str(meta))
    first, stored = disk_repo.insert(with_meta, name="m")
    assert stored.metadata_url is not None
    Path(atdata.openers.local_path(stored.metadata_url) or "").unlink()  # the shards are all there
    again, fresh = disk_repo.insert(with_meta, name="m")
    assert again.cid != first.cid and fresh.metadata == {"split": "train"}
    assert disk_repo.index.get_entry_by_name("m").cid == again.cid


def test_metadata_that_is_not_a_msgpack_map_is_refused(
    disk_repo: Repo, tmp_path: Path, source: atdata.Dataset[Point]
) -> None:
    meta = tmp_path / "meta.msgpack"
    meta.write_bytes(msgpack.packb([1, 2, 3]))
    with pytest.raises(InvalidArgument, match="msgpack map"):
        disk_repo.insert(atdata.Dataset[Point](source.url, metadata_url=str(meta)), name="m")
    assert hive_files(disk_repo) == []


def test_dict_sample_dataset_needs_a_published_schema_ref(disk_repo: Repo, source: atdata.Dataset[Point]) -> None:
    untyped = atdata.Dataset(source.url)
    with pytest.raises(InvalidArgument, match="schema_ref"):
        disk_repo.insert(untyped, name="x")
    with pytest.raises(SchemaNotFound, match="publish_schema"):
        disk_repo.insert(untyped, name="x", schema_ref="local://schemas/nowhere.Thing@1.0.0")
    assert list(disk_repo.store.list_objects()) == []  # refused before any write, owner record included
    ref = disk_repo.index.publish_schema(Point, version="2.0.0")
    entry, stored = disk_repo.insert(untyped, name="x", schema_ref=ref)
    assert entry.schema_ref == ref
    assert [s.label for s in stored.ordered()] == list(range(100))
    assert hive_files(disk_repo)  # written only once the schema was known


def test_schema_ref_must_match_the_sample_fields(disk_repo: Repo, source: atdata.Dataset[Point]) -> None:
    @atdata.packable
    class Other:
        value: int

    ref = disk_repo.index.publish_schema(Other, version="1.0.0")
    with pytest.raises(SchemaConflict, match="other fields"):
        disk_repo.insert(source, name="x", schema_ref=ref)
    assert list(disk_repo.store.list_objects()) == []
    new_ref = atdata.schema.schema_ref(Point, "3.1.0")  # unpublished: published by the insert
    entry, _ = disk_repo.insert(source, name="x", schema_ref=new_ref)
    assert entry.schema_ref == new_ref and disk_repo.index.get_schema(new_ref)["version"] == "3.1.0"
    assert hive_files(disk_repo)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": ""}, "name="),
        ({"name": "ok", "metadata": {"x": object()}}, "JSON"),
        ({"name": "ok", "metadata": [1]}, "metadata must be a dict"),
        ({"name": "ok", "maxcount": 0}, "maxcount=0"),
        ({"name": "ok", "maxsize": -1}, "maxsize=-1"),
        ({"name": "ok", "maxcount": "10"}, "maxcount='10'"),
        ({"name": "ok", "cache_local": "yes"}, "cache_local"),
    ],
)
def test_bad_arguments_write_nothing(
    disk_repo: Repo, source: atdata.Dataset[Point], kwargs: dict[str, Any], match: str
) -> None:
    with pytest.raises(InvalidArgument, match=match):
        disk_repo.insert(source, **kwargs)
    # Not even the hive's owner record or the schema: arguments are checked before any write.
    assert list(disk_repo.store.list_objects()) == []
    assert disk_repo.index.all_entries == []
    assert list(disk_repo.index.list_schemas()) == []


def test_a_list_of_samples_is_not_a_dataset(disk_repo: Repo) -> None:
    with pytest.raises(InvalidArgument, match="cannot insert a list: pass an atdata.Dataset"):
        disk_repo.insert(make_points(3), name="l")  # type: ignore[arg-type]
    assert hive_files(disk_repo) == []


def test_empty_dataset_is_refused(disk_repo: Repo, tmp_path: Path) -> None:
    empty = tmp_path / "empty.tar"
    tarfile.open(empty, "w").close()
    with pytest.raises(InvalidArgument, match="no samples"):
        disk_repo.insert(atdata.Dataset[Point](str(empty)), name="e")
    assert list(disk_repo.store.list_objects()) == []  # not even the owner record
    assert list(disk_repo.index.list_schemas()) == []


class _TrackedSource:
    """A dataset whose ``raw_samples`` generator records whether it was closed."""

    sample_type = Point

    def __init__(self, samples: list[tuple[str, bytes]]) -> None:
        self.samples, self.closed = samples, False

    def raw_samples(self) -> Iterator[tuple[str, bytes]]:
        try:
            yield from self.samples
        finally:
            self.closed = True


def test_a_failed_insert_closes_the_source_stream(disk_repo: Repo) -> None:
    """The source's reader (prefetch threads, open shards) stops when the insert fails,
    not when the exception's traceback is garbage-collected. Here the failure is the
    third sample, which is not a Point (a source that is not an atdata.Dataset is
    checked sample by sample)."""
    source = _TrackedSource([(f"{i:06d}", p.packed) for i, p in enumerate(make_points(2))] + [("bad", b"\xc1")])
    with pytest.raises(SchemaMismatch, match="member 'bad.msgpack' does not match Point") as info:
        disk_repo.insert(source, name="x")
    assert info.value is not None and source.closed
    assert hive_files(disk_repo) == []


def test_source_failure_mid_write_leaves_nothing(disk_repo: Repo, tmp_path: Path) -> None:
    source = write_source(tmp_path / "src", 60, maxcount=20)
    shard = Path(source.shard_list[1])
    shard.write_bytes(shard.read_bytes()[:5000])  # truncated: the reader fails in the middle
    with pytest.raises(atdata.errors.AtdataError):
        disk_repo.insert(source, name="broken", maxcount=5)
    assert hive_files(disk_repo) == []
    assert disk_repo.index.all_entries == []


def test_gc_waits_for_the_newest_object_of_a_run(disk_repo: Repo, source: atdata.Dataset[Point]) -> None:
    entry, stored = disk_repo.insert(source, name="x", maxcount=30)
    disk_repo.index.remove_entry(entry.cid)
    first = atdata.openers.local_path(stored.shard_list[0]) or ""
    os.utime(first, (time.time() - 7200, time.time() - 7200))  # one old object, the others fresh
    assert disk_repo.gc(grace=3600).removed == []
    with pytest.raises(InvalidArgument, match="grace"):
        disk_repo.gc(grace=-1)


def test_progress_counts_samples_bytes_and_shards(disk_repo: Repo, source: atdata.Dataset[Point]) -> None:
    tracker = InsertProgress(bar=False)
    _, stored = disk_repo.insert(source, name="p", maxcount=10, progress=tracker)
    assert tracker.samples == 100 and tracker.shards == 10
    assert tracker.bytes == sum(os.path.getsize(atdata.openers.local_path(u) or "") for u in stored.shard_list)


def test_repo_pickles_without_clients(disk_repo: Repo, source: atdata.Dataset[Point]) -> None:
    entry, _ = disk_repo.insert(source, name="p")
    clone = pickle.loads(pickle.dumps(disk_repo))
    assert clone.index.get_entry(entry.cid) == entry
    assert clone.store == disk_repo.store
    assert "Repo(DiskDataStore(" in repr(clone)


def test_hive_path_is_required() -> None:
    with pytest.raises(InvalidArgument, match="hive_path"):
        Repo()


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"index": 42}, r"Repo\(index=42\): Repo has no index= argument; .*redis=index\.redis"),
        ({"data_store": 42}, r"Repo\(data_store=42\): Repo has no data_store= argument; .*hive_path="),
        ({"store": "s3://b"}, r"Repo\(store='s3://b'\): .*hive_path="),
        ({"redis": "localhost:6379"}, r"redis='localhost:6379' is not a Redis URL.*redis://"),
        ({"redis": "nope"}, r"redis='nope' is not a Redis URL"),  # issue 13: the value given, not localhost:6379
        ({"indx": 3}, r"indx=.*redis\.Redis does not take.*host=, port="),
    ],
)
def test_bad_index_arguments_fail_at_construction(tmp_path: Path, kwargs: dict[str, Any], expected: str) -> None:
    with pytest.raises(InvalidArgument, match=expected):
        Repo(hive_path=str(tmp_path / "hive"), **kwargs)
    assert os.listdir(tmp_path) == []


def test_the_index_hint_works(disk_repo: Repo, source: atdata.Dataset[Point], tmp_path: Path) -> None:
    index = disk_repo.index
    repo = Repo(hive_path=str(tmp_path / "other"), redis=index.redis, key_prefix=index.key_prefix)
    entry, _ = repo.insert(source, name="via-hint")
    assert index.get_entry_by_name("via-hint") == entry


def test_gc_on_an_empty_index_needs_force(disk_repo: Repo, source: atdata.Dataset[Point]) -> None:
    entry, _ = disk_repo.insert(source, name="only")
    disk_repo.index.remove_entry(entry.cid)
    with pytest.raises(InvalidArgument, match="force=True"):
        disk_repo.gc(grace=0)
    assert len(disk_repo.gc(grace=0, dry_run=True).removed) == 2  # a dry run only reports
    assert len(disk_repo.gc(grace=0, force=True).removed) == 2
    assert hive_files(disk_repo) == []


class _StopsRedisAtTheEnd:
    """A dataset whose last sample stops the Redis server: the index write must then fail."""

    sample_type = Point
    metadata = None

    def __init__(self, source: atdata.Dataset[Point], server: Any) -> None:
        self.source, self.server = source, server

    def raw_samples(self) -> Any:
        yield from self.source.raw_samples()
        self.server.stop()


def test_redis_dying_before_the_index_write_keeps_data_for_gc(tmp_path: Path, source: atdata.Dataset[Point]) -> None:
    """Whether the entry landed cannot be told while Redis is down: the data stays, gc decides."""
    from atdata.local.servers import start_redis

    server = start_redis(tmp_path / "doomed-redis", persistence="aof")
    try:
        repo = Repo(hive_path=str(tmp_path / "hive"), redis=server.url)
        with pytest.raises(IndexConnectionError, match="cannot reach Redis") as info:
            repo.insert(_StopsRedisAtTheEnd(source, server), name="lost", maxcount=10)
        assert any("atdata gc" in note for note in getattr(info.value, "__notes__", []))
        assert len(hive_files(repo)) == 11  # 10 shards + content record
    finally:
        server.stop()
    with start_redis(tmp_path / "doomed-redis", persistence="aof", port=server.port) as again:
        repo = Repo(hive_path=str(tmp_path / "hive"), redis=again.url)
        with pytest.raises(EntryNotFound):
            repo.index.get_entry_by_name("lost")  # it had not landed
        assert len(repo.gc(grace=0, force=True).removed) == 11
        assert hive_files(repo) == []


def test_from_parts_takes_any_index_and_store(
    tmp_path: Path, redis_server: Any, key_prefix: str, source: atdata.Dataset[Point]
) -> None:
    from atdata.disk_store import DiskDataStore
    from atdata.index_redis import LocalIndex

    repo = Repo.from_parts(
        LocalIndex.from_url(redis_server.url, key_prefix=key_prefix), DiskDataStore(tmp_path), "/a/b/"
    )
    entry, stored = repo.insert(source, name="parts", maxcount=50)
    assert repo.prefix == "a/b" and stored.url.startswith((tmp_path / "a" / "b").as_uri() + "/data--")
    assert labels(atdata.Dataset[Point](entry.data_urls[0])) == list(range(100))
    with pytest.raises(InvalidArgument, match="not an atdata.AbstractIndex"):
        Repo.from_parts(object(), repo.store)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="not an atdata.AbstractDataStore"):
        Repo.from_parts(repo.index, "s3://bucket")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="not a URL"):
        Repo.from_parts(repo.index, repo.store, "s3://bucket/p")
