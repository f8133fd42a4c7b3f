"""``RepoConformance``: what ``Repo`` must do on any index and data store (needs pytest).

A backend pair's tests subclass it and supply two fixtures::

    class TestRepoOnFakeredisAndDisk(RepoConformance):
        @pytest.fixture
        def index_factory(self):      # makes fresh, isolated indexes on one server
            ...

        @pytest.fixture
        def store(self, tmp_path):    # a fresh, empty store
            return DiskDataStore(tmp_path / "hive")

The suite builds ``Repo.from_parts(index, store, "hive/v1")`` and runs the same bodies on
(fakeredis, disk), (valkey, rclone) and (a Redis cluster, moto.server): inserts read
back, dedup, the failure rule (nothing left by a failed insert; an index write that may
have landed keeps its data), gc and hive ownership.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

import atdata
from atdata.cid import entry_cid
from atdata.errors import IndexConnectionError, InvalidArgument, StoreError
from atdata.protocols import AbstractDataStore, AbstractIndex

from ._owner import OWNER_NAME
from .repo import Repo

__all__ = ["ConformancePoint", "RepoConformance", "damage_object"]

PREFIX = "hive/v1"


@atdata.packable
class ConformancePoint:
    """The sample type of the suite: an array and an int."""

    features: NDArray
    label: int


def _labels(dataset: atdata.Dataset[Any]) -> list[Any]:
    return [sample.label for sample in atdata.Dataset[ConformancePoint](dataset.url).ordered()]


def damage_object(store: AbstractDataStore, url: str, how: str, offset: int | None = None) -> None:
    """Damage the stored object at ``url`` as storage does, through ``store`` (any backend).

    ``how``: ``"deleted"``; ``"truncated"`` (cut in half); ``"flipped"`` (one bit of the
    byte at ``offset``, default the middle byte, changed in place).
    """
    (info,) = [i for i in store.list_objects() if i.url == str(url)]
    if how == "deleted":
        store.delete([info.key])
        return
    with store.open_read(info.url) as stream:
        data = bytearray(stream.read())
    if how == "truncated":
        del data[len(data) // 2 :]
    elif how == "flipped":
        data[len(data) // 2 if offset is None else offset] ^= 0x10
    else:
        raise ValueError(f"how={how!r}: use 'deleted', 'truncated' or 'flipped'")
    store.write_bytes(info.key, bytes(data))


class RepoConformance:
    """Test bodies shared by every (index, store) pair (see the module docstring)."""

    @pytest.fixture
    def index_factory(self) -> Callable[[], AbstractIndex]:
        raise NotImplementedError("makes fresh, isolated indexes")

    @pytest.fixture
    def store(self) -> AbstractDataStore:
        raise NotImplementedError("a fresh, empty data store")

    @pytest.fixture
    def repo(self, index_factory: Callable[[], AbstractIndex], store: AbstractDataStore) -> Repo:
        return Repo.from_parts(index_factory(), store, PREFIX)

    @pytest.fixture
    def source(self, tmp_path: Path) -> atdata.Dataset[ConformancePoint]:
        points: list[Any] = [ConformancePoint(features=np.full(4, i, np.float32), label=i) for i in range(60)]
        samples = [{**point.as_wds, "__key__": f"{i:06d}"} for i, point in enumerate(points)]
        return atdata.Dataset[ConformancePoint](atdata.write_samples(samples, str(tmp_path / "src-%06d.tar"), 25))

    def objects(self, repo: Repo) -> list[str]:
        """Every key under the hive but the owner record, read through the store."""
        return sorted(i.key for i in repo.store.list_objects(f"{PREFIX}/") if not i.key.endswith(OWNER_NAME))

    # tests -------------------------------------------------------------------

    def test_insert_reads_back_by_name_with_the_spec_cid(
        self, repo: Repo, source: atdata.Dataset[ConformancePoint]
    ) -> None:
        entry, stored = repo.insert(source, name="points", maxcount=20)
        assert len(stored.shard_list) == 3 and entry.data_urls == [stored.url]
        assert entry.data_urls[0].startswith(repo.store.url_for(f"{PREFIX}/data--"))
        assert "{000000..000002}" in entry.data_urls[0]
        assert entry.cid == entry_cid(entry.schema_ref, entry.data_urls)
        assert repo.index.get_entry_by_name("points").cid == entry.cid
        assert _labels(atdata.Dataset(repo.index.get_entry_by_name("points").data_urls[0])) == list(range(60))
        assert len(self.objects(repo)) == 4  # 3 shards + the content record

    def test_identical_content_is_stored_once(self, repo: Repo, source: atdata.Dataset[ConformancePoint]) -> None:
        first, _ = repo.insert(source, name="a", maxcount=20)
        stored = self.objects(repo)
        second, again = repo.insert(source, name="b", maxcount=20)
        assert second.cid == first.cid and self.objects(repo) == stored
        assert _labels(again) == list(range(60))

    @pytest.mark.parametrize("how", ["deleted", "truncated"])
    def test_a_broken_stored_copy_is_replaced_not_reused(
        self, repo: Repo, source: atdata.Dataset[ConformancePoint], how: str
    ) -> None:
        first, stored = repo.insert(source, name="train", maxcount=20)
        repo.insert(source, name="train-copy", maxcount=20, metadata={"copy": 1})  # shares the stored copy
        repo.insert(source, name="moved-on", maxcount=20)
        moved, _ = repo.insert(source, name="moved-on", maxcount=30)  # its newest version is other content
        damage_object(repo.store, stored.shard_list[1], how)
        before = set(self.objects(repo))

        entry, fresh = repo.insert(source, name="train", maxcount=20)
        assert entry.cid != first.cid and _labels(fresh) == list(range(60))
        after = set(self.objects(repo))
        assert before <= after and len(after - before) == 4  # nothing deleted; 3 fresh shards + their record
        for name in ("train", "train-copy"):  # the name that shared the broken copy is repaired
            named = repo.index.get_entry_by_name(name)
            assert named.name == name and named.cid == entry.cid
            assert _labels(atdata.Dataset(named.data_urls[0])) == list(range(60))
        assert repo.index.get_entry_by_name("train-copy").metadata == {"copy": 1}
        assert repo.index.get_entry_by_name("moved-on").cid == moved.cid
        assert first.cid in {content.cid for content in repo.index.contents}  # still in the names' history

        again, _ = repo.insert(source, name="third", maxcount=20)  # the fresh copy is whole: reused
        assert again.cid == entry.cid and set(self.objects(repo)) == after

    def test_a_failed_index_write_leaves_nothing(
        self, repo: Repo, source: atdata.Dataset[ConformancePoint], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def down(*args: Any, **kwargs: Any) -> Any:
            raise IndexConnectionError("index down")

        repo.index.publish_schema(ConformancePoint, version=None)
        monkeypatch.setattr(repo.index, "add_entry", down)
        with pytest.raises(IndexConnectionError, match="index down"):
            repo.insert(source, name="lost", maxcount=20)
        assert self.objects(repo) == [] and repo.index.all_entries == []

    def test_an_index_write_that_landed_keeps_its_data(
        self, repo: Repo, source: atdata.Dataset[ConformancePoint], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        real = repo.index.add_entry

        def lands_then_fails(*args: Any, **kwargs: Any) -> Any:
            real(*args, **kwargs)
            raise IndexConnectionError("reply lost")

        monkeypatch.setattr(repo.index, "add_entry", lands_then_fails)
        with pytest.raises(IndexConnectionError) as info:
            repo.insert(source, name="landed", maxcount=20)
        assert any("may have landed" in note for note in getattr(info.value, "__notes__", []))
        assert _labels(atdata.Dataset(repo.index.get_entry_by_name("landed").data_urls[0])) == list(range(60))

    def test_a_failed_store_write_leaves_nothing(
        self, repo: Repo, source: atdata.Dataset[ConformancePoint], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        real = repo.store.write_bytes

        def full(key: str, data: bytes) -> str:
            if "/content/" in key:
                raise StoreError(f"no space for {key}")
            return real(key, data)

        monkeypatch.setattr(repo.store, "write_bytes", full)
        with pytest.raises(StoreError, match="no space"):
            repo.insert(source, name="full", maxcount=20)
        assert self.objects(repo) == []

    def test_gc_removes_only_unreferenced_inserts(self, repo: Repo, source: atdata.Dataset[ConformancePoint]) -> None:
        kept, _ = repo.insert(source, name="kept", maxcount=30)  # 2 shards + content record
        dropped, _ = repo.insert(source, name="dropped", maxcount=20)  # 3 shards + content record
        repo.index.remove_entry(dropped.name)
        repo.store.write_bytes(f"{PREFIX}/notes.txt", b"not ours")  # no insert wrote it: never touched
        recent = repo.gc(grace=3600)
        assert recent.removed == [] and recent.kept_recent == 4  # too young
        preview = repo.gc(grace=0, dry_run=True)
        assert len(preview.removed) == 4 and preview.dry_run and len(self.objects(repo)) == 8
        report = repo.gc(grace=0)
        assert sorted(report.removed) == sorted(preview.removed) and report.removed_bytes > 0
        assert len(self.objects(repo)) == 4 and f"{PREFIX}/notes.txt" in self.objects(repo)
        assert _labels(atdata.Dataset(kept.data_urls[0])) == list(range(60))

    def test_a_hive_belongs_to_one_index(
        self,
        repo: Repo,
        index_factory: Callable[[], AbstractIndex],
        source: atdata.Dataset[ConformancePoint],
    ) -> None:
        repo.insert(source, name="mine", maxcount=20)
        mine = self.objects(repo)
        stranger = Repo.from_parts(index_factory(), repo.store, PREFIX)
        with pytest.raises(InvalidArgument, match="belongs to the index with"):
            stranger.insert(source, name="theirs")
        with pytest.raises(InvalidArgument, match="refusing gc"):
            stranger.gc(grace=0)
        assert self.objects(repo) == mine  # untouched
        assert len(self.objects(repo)) == 4
