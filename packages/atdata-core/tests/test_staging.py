"""The insert transaction (atdata.staging): names, stage -> commit / abort, and what pickles."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

from atdata.disk_store import DiskDataStore
from atdata.errors import InvalidArgument, StoreError
from atdata.staging import InsertKeys, StagedInsert, WrittenShard
from atdata.testing.store import make_raw_samples

ID = "0123abcd-0000-4000-8000-00000000beef"


def keys_in(store: DiskDataStore) -> list[str]:
    return sorted(info.key for info in store.list_objects())


def test_every_name_an_insert_writes_carries_its_id() -> None:
    keys = InsertKeys("datasets/v1", ID)
    assert keys.shard(7) == f"datasets/v1/data--{ID}--000007.tar"
    assert keys.metadata == f"datasets/v1/data--{ID}--metadata.msgpack"
    assert keys.content("ab" * 32) == f"datasets/v1/content/{'ab' * 32}--{ID}.json"
    assert InsertKeys.content_prefix("datasets/v1", "ab" * 32) == f"datasets/v1/content/{'ab' * 32}--"
    assert InsertKeys("", ID).shard(0) == f"data--{ID}--000000.tar"
    for name in (f"data--{ID}--000007.tar", f"data--{ID}--metadata.msgpack", f"content/{'ab' * 32}--{ID}.json"):
        assert InsertKeys.insert_id_of(name) == ID
    for other in ("notes.txt", f"data--{ID}--7.tar", f"x/data--{ID}--000007.tar", "atdata-hive.json"):
        assert InsertKeys.insert_id_of(other) is None


def test_brace_url_names_shards_zero_to_n(tmp_path: Path) -> None:
    store = DiskDataStore(tmp_path / "hive")
    staged = StagedInsert(store, "p", insert_id=ID)
    one = staged.write_shards(make_raw_samples(3))
    assert staged.keys.brace_url(one) == one[0] == store.url_for(f"p/data--{ID}--000000.tar")
    many = staged.write_shards(make_raw_samples(25), maxcount=10)
    assert staged.keys.brace_url(many) == store.url_for("p/") + f"data--{ID}--{{000000..000002}}.tar"
    with pytest.raises(InvalidArgument, match="shards 0..n-1"):
        staged.keys.brace_url(many[1:])
    with pytest.raises(InvalidArgument, match="shards 0..n-1"):
        InsertKeys("p", "another").brace_url(many)
    staged.abort()


def test_written_shards_know_their_key_insert_and_index(tmp_path: Path) -> None:
    store = DiskDataStore(tmp_path / "hive")
    staged = StagedInsert(store, "/p/")
    shards = staged.write_shards(make_raw_samples(25), maxcount=10)
    assert [s.shard_index for s in shards] == [0, 1, 2]
    assert [s.key for s in shards] == [staged.keys.shard(i) for i in range(3)] == list(staged.staged)
    assert {s.insert_id for s in shards} == {staged.insert_id} and staged.prefix == "p"
    clone = pickle.loads(pickle.dumps(shards[1]))
    assert isinstance(clone, WrittenShard) and clone == shards[1]
    fields = ("key", "insert_id", "shard_index", "sha256", "size", "num_samples")
    assert [getattr(clone, f) for f in fields] == [getattr(shards[1], f) for f in fields]
    assert shards[1].index("data--") > 0  # still a str: str methods are not hidden
    staged.abort()


def test_leaving_without_commit_aborts_everything_staged(tmp_path: Path) -> None:
    store = DiskDataStore(tmp_path / "hive")
    with pytest.raises(RuntimeError, match="boom"):
        with StagedInsert(store, "p") as staged:
            staged.write_shards(make_raw_samples(25), maxcount=10)
            staged.write_bytes(staged.keys.metadata, b"\x80")
            assert len(keys_in(store)) == 4
            raise RuntimeError("boom")
    assert keys_in(store) == [] and staged.staged == ()
    with StagedInsert(store, "p") as forgotten:
        forgotten.write_shards(make_raw_samples(3))
    assert keys_in(store) == []  # no commit: nothing staged survives


def test_commit_hands_the_objects_to_the_entry(tmp_path: Path) -> None:
    store = DiskDataStore(tmp_path / "hive")
    with StagedInsert(store, "p") as staged:
        shards = staged.write_shards(make_raw_samples(5))
        assert staged.commit(lambda: "entry", may_have_landed=lambda: pytest.fail("not asked")) == "entry"
    assert keys_in(store) == [shards[0].key] and staged.staged == ()


def test_a_failed_commit_aborts_unless_it_may_have_landed(tmp_path: Path) -> None:
    store = DiskDataStore(tmp_path / "hive")

    def lost() -> Any:
        raise ConnectionError("reply lost")

    for landed, left in ((False, 0), (True, 1)):
        with pytest.raises(ConnectionError) as info:
            with StagedInsert(store, f"p{landed}") as staged:
                staged.write_shards(make_raw_samples(5))
                staged.commit(lost, may_have_landed=lambda landed=landed: landed)  # type: ignore[misc]
        assert len(keys_in(store)) == left
        assert any("may have landed" in n for n in getattr(info.value, "__notes__", [])) is landed


def test_abort_without_an_error_raises_a_failed_delete_and_keeps_the_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = DiskDataStore(tmp_path / "hive")
    staged = StagedInsert(store, "p")
    staged.write_shards(make_raw_samples(5))

    def down(keys: Any) -> None:
        raise StoreError("store down")

    monkeypatch.setattr(store, "delete", down)
    with pytest.raises(StoreError, match="store down"):
        staged.abort()
    assert len(staged.staged) == 1  # still staged: a later abort retries
    error = RuntimeError("the insert's own error")
    staged.abort(error)
    assert staged.staged == () and any("atdata gc" in n for n in error.__notes__)


def test_another_process_stages_shards_of_the_same_insert(tmp_path: Path) -> None:
    """A pickled insert keeps its store, prefix and id (not the staged keys): writing a
    shard index again replaces that shard, as a retried worker's task would."""
    store = DiskDataStore(tmp_path / "hive")
    staged = StagedInsert(store, "p")
    first = staged.write_shards(make_raw_samples(3))
    worker = pickle.loads(pickle.dumps(staged))
    assert (worker.store, worker.prefix, worker.insert_id, worker.staged) == (store, "p", staged.insert_id, ())
    again = worker.write_shards(make_raw_samples(4))
    assert again[0].key == first[0].key and keys_in(store) == [first[0].key]
    assert again[0].num_samples == 4
    staged.abort()
    assert keys_in(store) == []


def test_a_url_is_not_a_prefix(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="not a URL"):
        StagedInsert(DiskDataStore(tmp_path), "s3://bucket/p")


def test_writers_in_other_processes_stage_shards_the_committer_adopts(tmp_path: Path) -> None:
    store = DiskDataStore(tmp_path / "hive")
    driver = StagedInsert(store, "p", insert_id=ID)
    worker = pickle.loads(pickle.dumps(driver))  # what a worker process gets: no staged keys
    first = worker.write_shards(make_raw_samples(3), first_index=2)
    again = worker.write_shards(make_raw_samples(4), first_index=2)  # a retried task: same key
    assert [s.shard_index for s in again] == [2] and again[0].key == first[0].key == driver.keys.shard(2)
    assert again[0].num_samples == 4 and keys_in(store) == [driver.keys.shard(2)]  # replaced, not added
    assert worker.write_shards([], first_index=5) == []  # no samples: no shard
    zero = worker.write_shards(make_raw_samples(2), first_index=0)
    assert driver.keys.urls([*zero, *again]) == [str(zero[0]), str(again[0])]  # a gap: one URL each
    driver.adopt([*zero, *again])
    assert sorted(driver.staged) == keys_in(store)
    with pytest.raises(InvalidArgument, match="another insert"):
        driver.adopt(StagedInsert(store, "p").write_shards(make_raw_samples(1)))
    with pytest.raises(InvalidArgument, match="first_index"):
        worker.write_shards(make_raw_samples(1), first_index=-1)
    driver.abort()
    assert len(keys_in(store)) == 1  # only the other insert's shard is left


def test_discard_deletes_what_any_process_staged_and_nothing_else(tmp_path: Path) -> None:
    store = DiskDataStore(tmp_path / "hive")
    driver = StagedInsert(store, "p", insert_id=ID)
    for index in (0, 3):
        pickle.loads(pickle.dumps(driver)).write_shards(make_raw_samples(2), first_index=index)
    other = StagedInsert(store, "p").write_shards(make_raw_samples(1))
    store.write_bytes("p/notes.txt", b"not an insert's")
    assert sorted(driver.discard()) == [driver.keys.shard(0), driver.keys.shard(3)]
    assert keys_in(store) == sorted([other[0].key, "p/notes.txt"])
