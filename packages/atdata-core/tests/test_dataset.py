"""Dataset[T]: typed samples and batches from tar shards, in a known order, resumable."""

from __future__ import annotations

import pickle
import tarfile
from pathlib import Path

import msgpack
import numpy as np
import pytest
import webdataset as wds
from numpy.typing import NDArray

import atdata
from atdata._read.shard import iter_chunks
from atdata.dataset import Loader, merge_state_dicts
from atdata.errors import InvalidArgument, SampleDecodeError, ShardError, UnsupportedURL
from atdata.shard_url import ShardURL

FIXTURE = Path("/work/shared/fixtures/upstream-test-samples.tar")


@atdata.packable
class TrainingSample:
    features: NDArray[np.float32]
    label: int
    source: str


@atdata.packable
class Mixed:
    image: NDArray
    score: float
    tags: list[str]
    note: str | None
    extra: dict


@atdata.packable
class UpstreamSample:
    id: int
    name: str
    value: int


def training(i: int) -> TrainingSample:
    return TrainingSample(features=np.full(128, i, dtype=np.float32), label=i, source=f"s{i}")


def write_shards(directory: Path, samples: list, per_shard: int, stem: str = "data") -> str:
    """Write ``samples`` with webdataset's TarWriter, keys 000000.., return the brace pattern."""
    shards = (len(samples) + per_shard - 1) // per_shard
    for s in range(shards):
        with wds.TarWriter(str(directory / f"{stem}-{s:06d}.tar")) as sink:
            for i in range(s * per_shard, min(len(samples), (s + 1) * per_shard)):
                sink.write({**samples[i].as_wds, "__key__": f"{i:06d}"})
    return str(directory / f"{stem}-{{000000..{shards - 1:06d}}}.tar")


@pytest.fixture
def dataset(tmp_path: Path) -> atdata.Dataset[TrainingSample]:
    return atdata.Dataset[TrainingSample](write_shards(tmp_path, [training(i) for i in range(100)], 10))


def labels(items) -> list[int]:
    out: list[int] = []
    for item in items:
        out += item.label if isinstance(item, atdata.SampleBatch) else [item.label]
    return out


# -- construction -------------------------------------------------------------------------


def test_generic_alias_url_shards_and_type(dataset: atdata.Dataset[TrainingSample], tmp_path: Path) -> None:
    assert dataset.sample_type is TrainingSample
    assert dataset.url.endswith("data-{000000..000009}.tar")
    assert dataset.shard_list == [str(tmp_path / f"data-{i:06d}.tar") for i in range(10)]
    listed = atdata.Dataset[TrainingSample](["file://" + dataset.shard_list[0], dataset.shard_list[1]])
    assert labels(listed) == list(range(20))
    assert atdata.Dataset(dataset.shard_list[0]).sample_type is atdata.DictSample
    assert atdata.Dataset(dataset.shard_list[0], sample_type=TrainingSample).sample_type is TrainingSample


def test_bad_urls_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedURL, match="brace"):
        atdata.Dataset[TrainingSample]("data-{000..002.tar")
    with pytest.raises(InvalidArgument, match="empty"):
        atdata.Dataset[TrainingSample]([])
    with pytest.raises(atdata.errors.ObjectNotFound, match="missing.tar"):
        list(atdata.Dataset[TrainingSample](str(tmp_path / "missing.tar")))
    with pytest.raises(UnsupportedURL, match="gs"):
        list(atdata.Dataset[TrainingSample]("gs://bucket/x.tar"))
    with pytest.raises(InvalidArgument, match=r"is a directory.*brace pattern"):
        list(atdata.Dataset[TrainingSample](str(tmp_path)))
    with pytest.raises(InvalidArgument, match="is a directory"):
        list(atdata.Dataset[TrainingSample](str(tmp_path)).raw_samples())
    for wrong in (42, None, b"data.tar"):  # not a URL at all: named, not a bare TypeError
        with pytest.raises(InvalidArgument, match="must be a string or a list of strings"):
            atdata.Dataset[TrainingSample](wrong)  # type: ignore[arg-type]


def test_upstream_fixture_reads() -> None:
    ds = atdata.Dataset[UpstreamSample](str(FIXTURE))
    assert [(s.id, s.name, s.value) for s in ds.ordered()] == [(i, f"test_sample_{i}", 10 * i) for i in range(3)]
    (batch,) = ds.ordered(batch_size=8)
    assert batch.id == [0, 1, 2] and batch.keys == [f"sample_{i:06d}" for i in range(3)]


def test_metadata_is_read_once(tmp_path: Path) -> None:
    meta = tmp_path / "meta.msgpack"
    meta.write_bytes(msgpack.packb({"description": "x", "n": 3}))
    ds = atdata.Dataset[UpstreamSample](str(FIXTURE), metadata_url=str(meta))
    assert ds.metadata == {"description": "x", "n": 3}
    meta.write_bytes(msgpack.packb({"changed": True}))
    assert ds.metadata == {"description": "x", "n": 3}
    assert atdata.Dataset[UpstreamSample](str(FIXTURE)).metadata is None
    meta.write_bytes(msgpack.packb([1, 2]))
    with pytest.raises(InvalidArgument, match="map"):
        atdata.Dataset[UpstreamSample](str(FIXTURE), metadata_url=str(meta)).metadata


# -- decoding -----------------------------------------------------------------------------


def test_batches_stack_arrays_and_list_the_rest(dataset: atdata.Dataset[TrainingSample]) -> None:
    batches = list(dataset.ordered(batch_size=32))
    assert [len(b) for b in batches] == [32, 32, 32, 4]
    first = batches[0]
    assert first.features.shape == (32, 128) and first.features.dtype == np.float32
    assert first.features.flags.writeable and first.features.flags.c_contiguous
    np.testing.assert_array_equal(first.features[:, 0], np.arange(32, dtype=np.float32))
    assert first.label == list(range(32)) and first.source[:2] == ["s0", "s1"]
    assert first.keys[:2] == ["000000", "000001"]
    assert list(first)[5] == training(5) and first[-1] == training(31)
    assert [len(b) for b in dataset.ordered(batch_size=32, drop_last=True)] == [32, 32, 32]
    with pytest.raises(AttributeError, match="no field 'nope'"):
        first.nope


def test_per_sample_and_batched_reads_agree(dataset: atdata.Dataset[TrainingSample]) -> None:
    samples = list(dataset.ordered())
    assert samples == [training(i) for i in range(100)]
    rebuilt = [s for b in dataset.ordered(batch_size=7) for s in b]
    assert rebuilt == samples


def test_batches_fall_back_exactly_for_irregular_samples(tmp_path: Path) -> None:
    samples = [
        Mixed(image=np.arange(6, dtype=">i4").reshape(2, 3), score=1.5, tags=["a"], note=None, extra={"k": 1}),
        Mixed(image=np.zeros((3,), dtype=np.uint8), score=2.0, tags=[], note="n", extra={}),
        Mixed(image=np.asfortranarray(np.ones((2, 2))), score=0.0, tags=["b", "c"], note="m", extra={"z": [1]}),
    ]
    ds = atdata.Dataset[Mixed](write_shards(tmp_path, samples, 2))
    (batch,) = ds.ordered(batch_size=3)
    assert isinstance(batch.image, list) and batch.note == [None, "n", "m"]
    assert list(batch) == samples == list(ds.ordered())
    assert batch.image[0].dtype == np.dtype(">i4")
    same_shape = [
        Mixed(image=np.full((2, 2), i, dtype=">f8"), score=float(i), tags=[], note=None, extra={}) for i in range(3)
    ]
    (stacked,) = atdata.Dataset[Mixed](write_shards(tmp_path, same_shape, 5, "same")).ordered(batch_size=4)
    assert stacked.image.shape == (3, 2, 2) and stacked.image.dtype == np.dtype(">f8")
    assert list(stacked) == same_shape


def test_dict_samples_read_any_shard(dataset: atdata.Dataset[TrainingSample]) -> None:
    ds = atdata.Dataset[atdata.DictSample](dataset.url)
    first = next(iter(ds.ordered()))
    assert first.label == 0 and first["source"] == "s0" and first.features.shape == (128,)
    batch = next(iter(ds.ordered(batch_size=10)))
    assert batch.features.shape == (10, 128) and batch.label == list(range(10))


def test_sample_of_another_type_names_expected_and_found_fields(dataset: atdata.Dataset[TrainingSample]) -> None:
    wrong = atdata.Dataset[UpstreamSample](dataset.url)
    for loader in (wrong.ordered(), wrong.ordered(batch_size=4), wrong.shuffled(batch_size=4, seed=0)):
        with pytest.raises(SampleDecodeError) as excinfo:
            next(iter(loader))
        message = str(excinfo.value)
        assert "'id', 'name', 'value'" in message and "'features', 'label', 'source'" in message
        assert "data-0000" in message and "sample '0000" in message


def test_corrupt_shard_fails_after_the_good_samples(dataset: atdata.Dataset[TrainingSample]) -> None:
    path = Path(dataset.shard_list[3])
    data = bytearray(path.read_bytes())
    with tarfile.open(path) as tar:
        sixth = tar.getmembers()[5]
    data[sixth.offset_data - 512 + 3] ^= 0xFF  # its ustar header (after webdataset's PAX header)
    path.write_bytes(bytes(data))
    seen: list[int] = []
    with pytest.raises(ShardError, match="data-000003.tar"):
        for sample in dataset.ordered():
            seen.append(sample.label)
    assert seen == list(range(35))
    raw: list[str] = []
    with pytest.raises(ShardError, match="checksum"):
        for key, _ in dataset.raw_samples():
            raw.append(key)
    assert len(raw) == 35


def test_raw_samples_are_webdatasets_bytes(dataset: atdata.Dataset[TrainingSample]) -> None:
    expected = [(s["__key__"], s["msgpack"]) for s in wds.WebDataset(dataset.url, shardshuffle=False)]
    assert list(dataset.raw_samples()) == expected


# -- order, workers, ranks ----------------------------------------------------------------


def test_shuffle_depends_only_on_seed_and_epoch(dataset: atdata.Dataset[TrainingSample]) -> None:
    a = labels(dataset.shuffled(buffer_size=20, seed=7, pool_shards=2))
    b = labels(dataset.shuffled(buffer_size=20, seed=7, pool_shards=2))
    assert a == b and sorted(a) == list(range(100)) and a != list(range(100))
    assert labels(dataset.shuffled(buffer_size=20, seed=8, pool_shards=2)) != a
    loader = dataset.shuffled(buffer_size=20, seed=7, pool_shards=2, batch_size=16)
    epoch0, epoch1 = labels(loader), labels(loader)
    assert epoch0 == a and epoch1 != a and sorted(epoch1) == list(range(100))
    loader.set_epoch(1)
    assert labels(loader) == epoch1


@pytest.mark.parametrize("mode", ["ordered", "shuffled"])
@pytest.mark.parametrize("workers", [1, 2, 3, 8])
def test_workers_split_the_one_order_without_overlap(
    dataset: atdata.Dataset[TrainingSample], mode: str, workers: int
) -> None:
    def make() -> Loader:
        return dataset.ordered() if mode == "ordered" else dataset.shuffled(buffer_size=15, seed=3, pool_shards=2)

    whole = labels(make())
    position = {label: i for i, label in enumerate(whole)}
    parts = [labels(make().iter_worker(w, workers)) for w in range(workers)]
    assert sorted(x for p in parts for x in p) == list(range(100))
    for part in parts:  # each worker reads a subsequence of the single-process order
        assert [position[x] for x in part] == sorted(position[x] for x in part)


def test_rank_must_be_in_the_world(dataset: atdata.Dataset[TrainingSample]) -> None:
    with pytest.raises(InvalidArgument, match="rank"):
        dataset.ordered(rank=2, world_size=2)
    with pytest.raises(InvalidArgument, match="even"):
        dataset.ordered(rank=0, world_size=2, even="none")


def test_loader_pickles_into_workers(dataset: atdata.Dataset[TrainingSample]) -> None:
    loader = dataset.shuffled(buffer_size=10, seed=1, batch_size=8)
    assert labels(pickle.loads(pickle.dumps(loader))) == labels(loader)
    batch = next(iter(dataset.ordered(batch_size=4)))
    assert list(pickle.loads(pickle.dumps(batch))) == list(batch)


# -- resume -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["ordered", "shuffled"])
@pytest.mark.parametrize("batch_size", [None, 1, 7, 32])
def test_resume_mid_epoch_repeats_and_loses_nothing(
    dataset: atdata.Dataset[TrainingSample], mode: str, batch_size
) -> None:
    def make() -> Loader:
        if mode == "ordered":
            return dataset.ordered(batch_size=batch_size)
        return dataset.shuffled(buffer_size=25, seed=11, batch_size=batch_size, pool_shards=3)

    whole = labels(make())
    for stop in (0, 1, 13, 40, 99, 100):
        loader = make()
        head: list[int] = []
        it = iter(loader)
        while len(head) < stop:
            head += labels([next(it)])
        state = loader.state_dict()
        resumed = make()
        resumed.load_state_dict(state)
        assert head + labels(resumed) == whole, stop
        assert resumed.epoch == 0 and resumed.state_dict()["finished"]
        assert sorted(labels(resumed)) == list(range(100)) and resumed.epoch == 1  # the next epoch, whole


def test_resume_through_the_dataset_and_with_another_worker_count(dataset: atdata.Dataset[TrainingSample]) -> None:
    loader = dataset.shuffled(buffer_size=10, seed=2, batch_size=5, pool_shards=1)
    whole = set(labels(dataset.shuffled(buffer_size=10, seed=2, batch_size=5, pool_shards=1)))
    states, head = [], []
    for worker in range(2):  # two workers each read two batches, then the job stops
        it = loader.iter_worker(worker, 2)
        head += labels([next(it), next(it)])
        states.append(loader.state_dict())
    merged = merge_state_dicts(states)
    rest = []
    for worker in range(3):  # resume on three workers
        ds = atdata.Dataset[TrainingSample](dataset.url)
        ds.load_state_dict(merged)
        rest += labels(ds.shuffled(buffer_size=10, batch_size=5, pool_shards=1).iter_worker(worker, 3))
    assert sorted(head + rest) == sorted(whole) and len(head) == 20


def test_drop_last_must_be_a_bool(dataset: atdata.Dataset[TrainingSample]) -> None:
    # "no" or "false" would be truthy and silently drop the last partial batch
    with pytest.raises(InvalidArgument, match=r"drop_last must be True or False, got 'no'"):
        dataset.ordered(batch_size=4, drop_last="no")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="drop_last"):
        dataset.shuffled(batch_size=4, drop_last=None)  # type: ignore[arg-type]


def test_state_of_another_loader_is_refused(dataset: atdata.Dataset[TrainingSample]) -> None:
    state = dataset.shuffled(buffer_size=10, seed=1).state_dict()
    with pytest.raises(InvalidArgument, match="buffer_size"):
        dataset.shuffled(buffer_size=20, seed=1).load_state_dict(state)
    with pytest.raises(InvalidArgument, match="mode"):
        dataset.ordered().load_state_dict(state)
    with pytest.raises(InvalidArgument, match="seed"):
        dataset.shuffled(buffer_size=10, seed=2).load_state_dict(state)
    drawn = dataset.shuffled(buffer_size=10)  # no seed given: takes the saved one
    drawn.load_state_dict(state)
    assert drawn.seed == 1
    with pytest.raises(InvalidArgument, match="not an atdata loader state"):
        dataset.ordered().load_state_dict({"epoch": 1})
    with pytest.raises(InvalidArgument, match="batch_size"):
        dataset.ordered(batch_size=0)


@atdata.packable
class ImageSample:
    image: NDArray[np.uint8]
    label: int


def test_large_arrays_are_copied_into_the_batch(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    samples = [ImageSample(image=rng.integers(0, 255, (3, 64, 64), dtype=np.uint8), label=i) for i in range(10)]
    ds = atdata.Dataset[ImageSample](write_shards(tmp_path, samples, 4))
    batches = list(ds.ordered(batch_size=4))
    assert [b.image.shape for b in batches] == [(4, 3, 64, 64), (4, 3, 64, 64), (2, 3, 64, 64)]
    assert [s for b in batches for s in b] == samples == list(ds.ordered())


# -- remote shards ------------------------------------------------------------------------

_REMOTE: dict[str, bytes] = {}
_OPENED: list[str] = []


def _open_remote(url: str):
    import io

    if url not in _REMOTE:
        raise atdata.errors.ObjectNotFound(f"no object at {url!r}")
    _OPENED.append(url)
    return io.BytesIO(_REMOTE[url])


atdata.register_opener("remotetest", _open_remote)


def test_remote_shards_stream_through_prefetching_threads(dataset: atdata.Dataset[TrainingSample]) -> None:
    urls = []
    for i, path in enumerate(dataset.shard_list):
        urls.append(f"remotetest://bucket/data-{i:06d}.tar")
        _REMOTE[urls[-1]] = Path(path).read_bytes()
    remote = atdata.Dataset[TrainingSample]("remotetest://bucket/data-{000000..000009}.tar")
    _OPENED.clear()
    it = iter(remote.ordered(batch_size=10))
    first = next(it)
    assert first.label == list(range(10))
    assert len(_OPENED) >= 2  # the next shard was already being read
    assert labels([first, *it]) == list(range(100))
    assert sorted(labels(remote.shuffled(buffer_size=30, seed=4, batch_size=7))) == list(range(100))
    assert [k for k, _ in remote.raw_samples()] == [k for k, _ in dataset.raw_samples()]


def test_remote_errors_surface_in_the_reader(dataset: atdata.Dataset[TrainingSample]) -> None:
    _REMOTE["remotetest://b/ok.tar"] = Path(dataset.shard_list[0]).read_bytes()
    _REMOTE["remotetest://b/cut.tar"] = Path(dataset.shard_list[1]).read_bytes()[:5000]
    seen: list[int] = []
    with pytest.raises(ShardError, match="cut.tar"):
        for sample in atdata.Dataset[TrainingSample](["remotetest://b/ok.tar", "remotetest://b/cut.tar"]).ordered():
            seen.append(sample.label)
    assert seen[:10] == list(range(10)) and 10 < len(seen) < 20
    with pytest.raises(atdata.errors.ObjectNotFound, match="missing.tar"):
        list(atdata.Dataset[TrainingSample](["remotetest://b/ok.tar", "remotetest://b/missing.tar"]).ordered())


# -- property: any stop point, any worker counts before and after -------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@pytest.fixture(scope="module")
def uneven(tmp_path_factory: pytest.TempPathFactory) -> str:
    return write_shards(tmp_path_factory.mktemp("uneven"), [training(i) for i in range(61)], 7)


@settings(deadline=None)
@given(
    shuffle=st.booleans(),
    batch_size=st.sampled_from([None, 1, 4, 16]),
    before=st.integers(1, 4),
    after=st.integers(1, 4),
    stops=st.lists(st.integers(0, 30), min_size=4, max_size=4),
    seed=st.integers(0, 2**32),
)
def test_each_sample_exactly_once_across_a_resume_with_other_worker_counts(
    uneven: str, shuffle: bool, batch_size, before: int, after: int, stops: list[int], seed: int
) -> None:
    def make(ds: atdata.Dataset[TrainingSample]) -> Loader:
        if shuffle:
            return ds.shuffled(buffer_size=5, seed=seed, batch_size=batch_size, pool_shards=2)
        return ds.ordered(batch_size=batch_size)

    loader = make(atdata.Dataset[TrainingSample](uneven))
    head: list[int] = []
    states = []
    for worker in range(before):
        taken = 0
        copy = pickle.loads(pickle.dumps(loader))  # each worker reads its own copy
        for item in copy.iter_worker(worker, before):
            head += labels([item])
            taken += 1
            if taken >= stops[worker]:
                break
        states.append(copy.state_dict())
    merged = merge_state_dicts(states)
    rest: list[int] = []
    for worker in range(after):
        ds = atdata.Dataset[TrainingSample](uneven)
        ds.load_state_dict(merged)
        resumed = make(ds)
        if not merged["finished"]:  # (a finished epoch resumes with the next one)
            rest += labels(resumed.iter_worker(worker, after))
    assert sorted(head + rest) == list(range(61))


@atdata.packable
class FixedSample:
    features: NDArray[np.float32]
    label: int
    source: str


def fixed(i: int) -> FixedSample:
    return FixedSample(features=np.full(4, i, np.float32), label=i % 100, source="cam")


def test_runs_of_one_layout_are_cut_into_batches_exactly(tmp_path: Path) -> None:
    samples = [fixed(i) for i in range(230)]
    samples[150] = FixedSample(
        features=np.full(4, 150, np.float32), label=200, source="ca"
    )  # same length, other layout
    ds = atdata.Dataset[FixedSample](write_shards(tmp_path, samples, 100, "fixed"))
    chunks = [chunk for url in ds.shard_list for chunk in iter_chunks(url)]
    assert all(chunk.rows is not None for chunk in chunks)  # one size: the walker gives the byte matrix
    expected = list(ds.ordered())
    assert expected == samples
    for size in (1, 7, 32, 100, 230):
        batches = list(ds.ordered(batch_size=size))
        assert [s for b in batches for s in b] == expected
        assert all(b.features.flags.writeable and b.features.flags.c_contiguous for b in batches)
        assert batches[0].label == [s.label for s in expected[:size]]
    loader = ds.ordered(batch_size=32)
    it = iter(loader)
    first = [next(it), next(it)]
    state = loader.state_dict()
    resumed = ds.ordered(batch_size=32)
    resumed.load_state_dict(state)
    rest = list(resumed)
    assert [s for b in first + rest for s in b] == expected


def test_paths_read_as_their_strings(tmp_path: Path) -> None:
    pattern = write_shards(tmp_path, [fixed(i) for i in range(6)], 3, "paths")
    shards = atdata.Dataset[FixedSample](pattern).shard_list
    assert list(atdata.Dataset[FixedSample](Path(shards[0])).ordered()) == [fixed(i) for i in range(3)]
    both = atdata.Dataset[FixedSample]([Path(shards[0]), shards[1]])
    assert both.shard_list == shards and list(both.ordered()) == [fixed(i) for i in range(6)]


# -- length ------------------------------------------------------------------------------


def test_len_is_the_count_the_shard_urls_carry(tmp_path: Path) -> None:
    pattern = write_shards(tmp_path, [training(i) for i in range(25)], 10)
    shards = atdata.Dataset(pattern).shard_list
    counted = atdata.Dataset[TrainingSample]([ShardURL(url, num_samples=n) for url, n in zip(shards, (10, 10, 5))])
    assert len(counted) == counted.num_samples == 25 == len(list(counted))


def test_len_of_plain_urls_is_a_type_error_saying_why(dataset: atdata.Dataset[TrainingSample]) -> None:
    assert dataset.num_samples is None
    with pytest.raises(TypeError, match=r"len\(\) of Dataset\[TrainingSample\].* is unknown: its shard URLs carry no"):
        len(dataset)
    assert bool(dataset) is True  # truth does not need the length
    assert len(list(dataset)) == 100  # list() takes the TypeError as "no length hint"
    partly = atdata.Dataset([ShardURL(dataset.shard_list[0], num_samples=10), *dataset.shard_list[1:]])
    assert partly.num_samples is None
