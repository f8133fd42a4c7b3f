"""``DataStoreConformance``: the behaviour every ``AbstractDataStore`` backend must have.

A backend's tests subclass it and provide three things::

    class TestDiskStore(DataStoreConformance):
        @pytest.fixture
        def store(self, tmp_path):            # a fresh, empty, isolated store
            return DiskDataStore(tmp_path)

        def raw_keys(self, store, prefix):    # committed keys, read WITHOUT the store
            ...

        def leftovers(self, store):           # half-written state: temp files, open multipart uploads
            ...

The same bodies then run on the disk store, moto's in-process mock and real S3
servers, so "nothing half-written survives a failure" means the same everywhere.
Behaviour only one backend has gets its own test in that backend's subclass.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import re
import tarfile
from collections.abc import Iterator, Sequence
from typing import Any, Generic, TypeVar

import msgpack
import pytest

from atdata.errors import InvalidArgument, ObjectNotFound, StoreError
from atdata.protocols import AbstractDataStore, WrittenShard
from atdata.staging import InsertKeys

__all__ = ["DataStoreConformance"]

S = TypeVar("S", bound=AbstractDataStore)

_SHARD_NAME = re.compile(r"data--[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}--(\d{6})\.tar")


def make_raw_samples(n: int, payload_size: int = 16) -> list[tuple[str, bytes]]:
    """``n`` distinct ``(key, msgpack bytes)`` pairs, as ``Dataset.raw_samples()`` yields them."""
    return [(f"{i:08d}", msgpack.packb({"i": i, "blob": bytes([i % 256]) * payload_size})) for i in range(n)]


def written(urls: Sequence[str]) -> list[WrittenShard]:
    """``write_shards``' result, checked to carry what was measured while writing."""
    assert all(isinstance(url, WrittenShard) for url in urls)
    return [url for url in urls if isinstance(url, WrittenShard)]


class _FakeDataset:
    """Stands in for ``atdata.Dataset``: the store only relies on ``raw_samples()``."""

    def __init__(self, samples: list[tuple[str, bytes]]) -> None:
        self.samples = samples

    def raw_samples(self) -> Iterator[tuple[str, bytes]]:
        return iter(self.samples)


class _Boom(RuntimeError):
    pass


def _failing(samples: list[tuple[str, bytes]], after: int) -> Iterator[tuple[str, bytes]]:
    for i, sample in enumerate(samples):
        if i == after:
            raise _Boom(f"source failed at sample {after}")
        yield sample


class DataStoreConformance(Generic[S]):
    """Test bodies shared by every data store backend (see the module docstring)."""

    #: What ``supports_streaming()`` must return for this backend.
    streaming: bool = True
    #: Payload bytes per sample in ``test_large_shard``: big enough that a shard spans
    #: several upload parts on backends that upload in parts.
    large_sample_size: int = 1 << 20

    @pytest.fixture
    def store(self) -> S:
        raise NotImplementedError("a fresh, empty, isolated store")

    def raw_keys(self, store: S, prefix: str = "") -> list[str]:
        """Committed keys under ``prefix``, read directly (not through the store)."""
        raise NotImplementedError

    def leftovers(self, store: S) -> list[str]:
        """Anything half-written (temp files, open multipart uploads), read directly."""
        raise NotImplementedError

    # helpers -----------------------------------------------------------------

    def read_shard(self, store: S, url: str) -> tuple[list[tuple[str, bytes]], bytes]:
        """Members of a shard read as a stream (``r|``, as webdataset reads), and its bytes."""
        with store.open_read(url) as stream:
            data = stream.read()
        members = []
        with tarfile.open(fileobj=io.BytesIO(data), mode="r|") as tar:
            for info in tar:
                assert info.name.endswith(".msgpack"), info.name
                extracted = tar.extractfile(info)
                assert extracted is not None
                members.append((info.name[: -len(".msgpack")], extracted.read()))
        return members, data

    def assert_clean(self, store: S, prefix: str) -> None:
        assert self.raw_keys(store, prefix) == []
        assert list(store.list_objects(prefix)) == []
        assert self.leftovers(store) == []

    # tests -------------------------------------------------------------------

    def test_is_a_data_store(self, store: S) -> None:
        assert isinstance(store, AbstractDataStore)
        assert store.supports_streaming() is self.streaming

    def test_write_bytes_round_trip(self, store: S) -> None:
        url = store.write_bytes("meta/ds.msgpack", b"\x81\xa1a\x01")
        assert url == store.url_for("meta/ds.msgpack")
        with store.open_read(url) as stream:
            assert stream.read() == b"\x81\xa1a\x01"
        assert self.raw_keys(store) == ["meta/ds.msgpack"]

    def test_write_bytes_replaces(self, store: S) -> None:
        store.write_bytes("k", b"old")
        url = store.write_bytes("k", b"new")
        with store.open_read(url) as stream:
            assert stream.read() == b"new"

    def test_text_and_url_prefixes_are_refused_before_writing(self, store: S) -> None:
        with pytest.raises(InvalidArgument, match="takes bytes, got str"):
            store.write_bytes("meta/ds.json", "text")  # type: ignore[arg-type]
        with pytest.raises(InvalidArgument, match="not a URL"):
            store.write_shards(make_raw_samples(3), prefix=store.url_for("datasets/v1"))
        for prefix in ("v{1,2}", "v1?x", "v1#x"):  # the returned URLs would not name the shards
            with pytest.raises(InvalidArgument, match="would change the meaning"):
                store.write_shards(make_raw_samples(3), prefix=prefix)
        assert self.raw_keys(store) == []

    def test_open_read_missing_names_url(self, store: S) -> None:
        store.write_bytes("nope/present.tar", b"x")  # the root exists, the object does not
        url = store.url_for("nope/missing.tar")
        with pytest.raises(ObjectNotFound) as info:
            store.open_read(url)
        assert url in str(info.value)

    def test_write_shards_names_order_and_content(self, store: S) -> None:
        samples = make_raw_samples(45)
        urls = store.write_shards(_FakeDataset(samples), prefix="datasets/v1", maxcount=20)
        assert len(urls) == 3
        indexes = []
        runs = set()
        for url in urls:
            assert url.startswith(store.url_for("datasets/v1/"))
            match = _SHARD_NAME.fullmatch(url.rsplit("/", 1)[-1])
            assert match, url
            indexes.append(int(match.group(1)))
            runs.add(url.rsplit("--", 1)[0])
        assert indexes == [0, 1, 2] and len(runs) == 1
        read = []
        for position, url in enumerate(urls):
            members, data = self.read_shard(store, url)
            assert isinstance(url, WrittenShard)
            assert (url.shard_index, url.insert_id) == (position, urls[0].insert_id)
            assert url.key == InsertKeys("datasets/v1", url.insert_id).shard(position)
            assert store.url_for(url.key) == url
            assert url.sha256 == hashlib.sha256(data).hexdigest()
            assert (url.size, url.num_samples) == (len(data), len(members))
            read.extend(members)
        assert read == samples
        assert sorted(self.raw_keys(store, "datasets/v1/")) == sorted(
            url[len(store.url_for("")) :].lstrip("/") for url in urls
        )

    def test_two_writes_never_collide(self, store: S) -> None:
        first = store.write_shards(make_raw_samples(3), prefix="p")
        second = store.write_shards(make_raw_samples(3), prefix="p")
        assert set(first).isdisjoint(second)
        assert len(self.raw_keys(store, "p/")) == 2

    def test_maxsize_bounds_each_shard(self, store: S) -> None:
        samples = make_raw_samples(40, payload_size=700)
        urls = written(store.write_shards(samples, prefix="sized", maxsize=8 * 1024))
        assert len(urls) > 1
        assert all(url.size <= 8 * 1024 for url in urls)
        assert [s for url in urls for s in self.read_shard(store, url)[0]] == samples

    def test_large_shard(self, store: S) -> None:
        samples = make_raw_samples(12, payload_size=self.large_sample_size)
        urls = written(store.write_shards(samples, prefix="large"))
        assert len(urls) == 1
        members, data = self.read_shard(store, urls[0])
        assert members == samples
        assert hashlib.sha256(data).hexdigest() == urls[0].sha256

    def test_cache_local_writes_identical_shards(self, store: S) -> None:
        samples = make_raw_samples(30)
        streamed = written(store.write_shards(samples, prefix="a", maxcount=8))
        cached = written(store.write_shards(samples, prefix="b", maxcount=8, cache_local=True))
        assert [u.sha256 for u in streamed] == [u.sha256 for u in cached]
        assert [s for url in cached for s in self.read_shard(store, url)[0]] == samples

    def test_empty_dataset_writes_nothing(self, store: S) -> None:
        assert store.write_shards([], prefix="empty") == []
        self.assert_clean(store, "empty")

    def test_progress_counts_bytes_and_shards(self, store: S) -> None:
        seen = [0, 0]

        def progress(nbytes: int, nshards: int) -> None:
            seen[0] += nbytes
            seen[1] += nshards

        urls = written(store.write_shards(make_raw_samples(25), prefix="prog", maxcount=10, progress=progress))
        assert seen == [sum(u.size for u in urls), 3]

    @pytest.mark.parametrize("cache_local", [False, True])
    def test_failing_source_leaves_nothing(self, store: S, cache_local: bool) -> None:
        samples = make_raw_samples(50)
        with pytest.raises(StoreError) as info:
            store.write_shards(_failing(samples, after=35), prefix="fail", maxcount=10, cache_local=cache_local)
        assert isinstance(info.value.__cause__, _Boom)
        assert "source failed at sample 35" in str(info.value)
        self.assert_clean(store, "fail")

    def test_bad_sample_leaves_nothing(self, store: S) -> None:
        samples: list[Any] = [*make_raw_samples(15), ("bad.key", b"\x80")]
        with pytest.raises(InvalidArgument, match="bad.key"):
            store.write_shards(samples, prefix="bad", maxcount=4)
        self.assert_clean(store, "bad")

    @pytest.mark.parametrize("limits", [{"maxcount": 0}, {"maxsize": -1}, {"maxcount": 2.5}, {"maxcount": True}])
    def test_bad_limits_rejected_before_writing(self, store: S, limits: dict[str, Any]) -> None:
        with pytest.raises(InvalidArgument, match=next(iter(limits))):
            store.write_shards(make_raw_samples(3), prefix="limits", **limits)
        self.assert_clean(store, "limits")

    def test_list_objects_prefix_size_mtime(self, store: S) -> None:
        store.write_bytes("x/one", b"1")
        store.write_bytes("x/two", b"22")
        store.write_bytes("y/three", b"333")
        listed = {info.key: info for info in store.list_objects("x/")}
        assert sorted(listed) == ["x/one", "x/two"]
        assert listed["x/two"].size == 2
        assert listed["x/two"].url == store.url_for("x/two")
        assert listed["x/two"].mtime > 1_600_000_000
        assert {info.key for info in store.list_objects()} == {"x/one", "x/two", "y/three"}

    def test_object_size_of_stored_missing_and_deleted_objects(self, store: S) -> None:
        url = store.write_bytes("sized/obj", b"x" * 1234)
        assert store.object_size(url) == 1234
        store.write_bytes("sized/obj", b"yy")  # replaced: the new size, not a cached one
        assert store.object_size(url) == 2
        assert store.object_size(store.url_for("sized/never-written")) is None
        assert store.object_size(store.url_for("no-such-dir/obj")) is None
        store.delete(["sized/obj"])
        assert store.object_size(url) is None

    def test_object_size_of_written_shards_matches_their_record(self, store: S) -> None:
        shards = written(store.write_shards(make_raw_samples(50, payload_size=300), prefix="sz", maxcount=20))
        assert [store.object_size(str(shard)) for shard in shards] == [shard.size for shard in shards]

    def test_delete_ignores_missing(self, store: S) -> None:
        store.write_bytes("d/a", b"a")
        store.write_bytes("d/b", b"b")
        store.delete(["d/a", "d/never-existed"])
        assert self.raw_keys(store, "d/") == ["d/b"]

    def test_abort_leaves_nothing(self, store: S) -> None:
        writer = store.open_write("aborted/obj")
        writer.write(b"x" * (3 << 20))
        writer.abort()
        writer.abort()
        self.assert_clean(store, "aborted")

    def test_pickle_round_trip(self, store: S) -> None:
        url = store.write_bytes("pickled", b"data")
        clone = pickle.loads(pickle.dumps(store))
        assert clone == store
        with clone.open_read(url) as stream:
            assert stream.read() == b"data"
