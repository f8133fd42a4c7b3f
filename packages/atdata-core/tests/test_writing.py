"""ShardWriter and write_samples: tar framing, rollover, atomic local files, bad input."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path
from typing import Any

import msgpack
import pytest
import webdataset as wds
from hypothesis import given, settings
from hypothesis import strategies as st

import atdata
from atdata.errors import InvalidArgument
from atdata.writing import ShardWriter, write_samples


class MemorySink:
    def __init__(self, log: list[str]) -> None:
        self.buffer = io.BytesIO()
        self.state = "open"
        self.log = log

    def write(self, data: bytes) -> int:
        return self.buffer.write(data)

    def commit(self) -> None:
        self.state = "committed"
        self.log.append("commit")

    def abort(self) -> None:
        self.state = "aborted"
        self.log.append("abort")


def collect(samples: list[Any], **limits: Any) -> tuple[list[MemorySink], ShardWriter]:
    sinks: list[MemorySink] = []
    log: list[str] = []

    def open_sink(index: int) -> MemorySink:
        assert index == len(sinks)
        sinks.append(MemorySink(log))
        return sinks[-1]

    with ShardWriter(open_sink, **limits) as writer:
        for sample in samples:
            writer.write(sample)
    return sinks, writer


def members(data: bytes) -> list[tuple[str, bytes]]:
    out = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r|") as tar:
        for info in tar:
            f = tar.extractfile(info)
            assert f is not None
            out.append((info.name, f.read()))
    return out


def pairs(n: int, size: int = 10) -> list[tuple[str, bytes]]:
    return [(f"{i:06d}", msgpack.packb({"i": i, "pad": b"p" * size})) for i in range(n)]


class FakePackable:
    """What the samples engineer's `.as_wds` returns, without depending on sample.py."""

    def __init__(self, key: str, value: int) -> None:
        self.as_wds = {"__key__": key, "msgpack": msgpack.packb({"value": value})}


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 3000), max_size=40),
    maxcount=st.none() | st.integers(1, 10),
    maxsize=st.none() | st.integers(1, 20_000),
)
def test_round_trip_and_limits(sizes: list[int], maxcount: int | None, maxsize: int | None) -> None:
    samples = [(f"s{i:05d}", os.urandom(n)) for i, n in enumerate(sizes)]
    sinks, writer = collect(samples, maxcount=maxcount, maxsize=maxsize)
    assert all(s.state == "committed" for s in sinks)
    read = [(name.removesuffix(".msgpack"), data) for s in sinks for name, data in members(s.buffer.getvalue())]
    assert read == samples
    assert len(writer.shards) == len(sinks)
    for info, sink in zip(writer.shards, sinks, strict=True):
        data = sink.buffer.getvalue()
        assert info.size == len(data) and info.sha256 == hashlib.sha256(data).hexdigest()
        assert maxcount is None or info.count <= maxcount
        # a shard may exceed maxsize only when it holds one sample that alone exceeds it
        assert maxsize is None or info.size <= maxsize or info.count == 1


def test_no_samples_no_shards() -> None:
    sinks, writer = collect([])
    assert sinks == [] and writer.shards == []


def test_accepts_packables_wds_dicts_and_pairs() -> None:
    samples = [FakePackable("a", 1), {"__key__": "b", "msgpack": msgpack.packb({"value": 2})}, ("c", b"\x80")]
    sinks, _ = collect(samples)
    assert [name for name, _ in members(sinks[0].buffer.getvalue())] == ["a.msgpack", "b.msgpack", "c.msgpack"]


def test_long_and_unicode_keys_survive() -> None:
    key = "dir/" + "ü" * 150
    sinks, _ = collect([(key, b"\x01")])
    assert members(sinks[0].buffer.getvalue()) == [(key + ".msgpack", b"\x01")]


def test_identical_input_gives_identical_bytes() -> None:
    first, _ = collect(pairs(5))
    second, _ = collect(pairs(5))
    assert first[0].buffer.getvalue() == second[0].buffer.getvalue()


@pytest.mark.parametrize(
    "sample",
    [
        ("a.b", b"x"),
        ("dir/", b"x"),
        ("__meta__", b"x"),
        ("", b"x"),
        (3, b"x"),
        ("k", "text"),
        object(),
        {"__key__": "k"},
    ],
)
def test_bad_samples_rejected_and_shard_aborted(sample: Any) -> None:
    log: list[str] = []
    writer = ShardWriter(lambda i: MemorySink(log))
    with pytest.raises(InvalidArgument):
        with writer:
            writer.write(("first", b"\x01"))
            writer.write(sample)
    assert log == ["abort"] and writer.shards == []


def test_repeated_key_rejected() -> None:
    with pytest.raises(InvalidArgument, match="'k' repeats"):
        collect([("k", b"1"), ("k", b"2")])


@pytest.mark.parametrize("limits", [{"maxcount": 0}, {"maxsize": 0}, {"maxcount": "10"}, {"maxsize": False}])
def test_bad_limits(limits: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument, match=next(iter(limits))):
        ShardWriter(lambda i: MemorySink([]), **limits)


def test_failing_sink_commit_aborts_it() -> None:
    class FailingCommit(MemorySink):
        def commit(self) -> None:
            raise OSError("disk full")

    log: list[str] = []
    writer = ShardWriter(lambda i: FailingCommit(log))
    with pytest.raises(OSError, match="disk full"):
        with writer:
            writer.write(("a", b"1"))
    assert log == ["abort"]


@pytest.mark.parametrize("pattern", ["shard-%06d.tar", "shard-{:06d}.tar", "shard-{i:06d}.tar"])
def test_write_samples_patterns_and_webdataset_reads_them(tmp_path: Path, pattern: str) -> None:
    samples = pairs(25)
    paths = write_samples(samples, str(tmp_path / pattern), maxcount=10)
    assert paths == [str(tmp_path / f"shard-{i:06d}.tar") for i in range(3)]
    assert sorted(os.listdir(tmp_path)) == [f"shard-{i:06d}.tar" for i in range(3)]
    read = [(s["__key__"], s["msgpack"]) for s in wds.WebDataset(paths, shardshuffle=False)]
    assert read == samples


def test_write_samples_single_file_and_public_name(tmp_path: Path) -> None:
    path = tmp_path / "one.tar"
    assert atdata.write_samples([FakePackable("x", 1)], path) == [str(path)]
    assert [n for n, _ in members(path.read_bytes())] == ["x.msgpack"]


@pytest.mark.parametrize("pattern", [42, None, ""])
def test_write_samples_pattern_that_is_not_a_path_is_named(pattern: object) -> None:
    with pytest.raises(InvalidArgument, match=r"pattern=.*data-%06d\.tar"):
        write_samples(pairs(1), pattern)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["existing-dir", "new-dir/"])
def test_write_samples_pattern_naming_a_directory_is_refused_before_writing(tmp_path: Path, name: str) -> None:
    (tmp_path / "existing-dir").mkdir()
    pattern = f"{tmp_path}/{name}"  # a Path would drop the trailing slash
    with pytest.raises(InvalidArgument, match=r"names a directory, not a shard file: use e\.g\. .*data-%06d\.tar"):
        write_samples(pairs(3), pattern)
    assert os.listdir(tmp_path) == ["existing-dir"] and os.listdir(tmp_path / "existing-dir") == []


def test_write_samples_pattern_without_placeholder_needs_no_limits(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="placeholder"):
        write_samples(pairs(3), str(tmp_path / "one.tar"), maxcount=1)
    assert os.listdir(tmp_path) == []


def test_write_samples_failure_removes_its_shards(tmp_path: Path) -> None:
    def source() -> Any:
        yield from pairs(25)
        raise RuntimeError("upstream broke")

    (tmp_path / "unrelated.tar").write_bytes(b"keep")
    with pytest.raises(RuntimeError, match="upstream broke"):
        write_samples(source(), str(tmp_path / "s-%03d.tar"), maxcount=10)
    assert os.listdir(tmp_path) == ["unrelated.tar"]


@given(
    name=st.text(st.characters(min_codepoint=1, max_codepoint=0x2FF), min_size=1, max_size=120),
    size=st.integers(0, 2**40),
)
def test_fast_header_is_byte_identical_to_tarfile(name: str, size: int) -> None:
    from atdata._tar_member import member_header, tarfile_header

    assert member_header(name, size) == tarfile_header(name, size)


@atdata.packable
class Label:
    label: int


@atdata.packable
class Caption:
    text: str


def test_second_sample_type_is_refused_naming_both_and_the_position(tmp_path: Path) -> None:
    samples = [Label(label=0), ("raw", msgpack.packb({"label": 1})), Label(label=2), Caption(text="x")]
    expected = r"position 3 has type .*\.Caption, but the first packable sample \(position 0\) has type .*\.Label"
    with pytest.raises(InvalidArgument, match=expected):
        write_samples(samples, str(tmp_path / "s-%03d.tar"), maxcount=1)
    assert os.listdir(tmp_path) == []  # the three shards already committed are deleted


def test_second_sample_type_aborts_the_open_shard() -> None:
    log: list[str] = []
    writer = ShardWriter(lambda i: MemorySink(log))
    with pytest.raises(InvalidArgument, match=r"position 1 has type atdata\.sample\.DictSample"):
        with writer:
            writer.write(Label(label=0))
            writer.write(atdata.DictSample(label=1))
    assert log == ["abort"] and writer.shards == []


def test_one_sample_type_with_dicts_and_pairs_is_accepted() -> None:
    samples = [Label(label=0), {**Label(label=1).as_wds, "__key__": "b"}, ("c", Label(label=2).packed), Label(label=3)]
    sinks, writer = collect(samples)
    assert [info.count for info in writer.shards] == [4]
    assert [name for name, _ in members(sinks[0].buffer.getvalue())][1:3] == ["b.msgpack", "c.msgpack"]


def test_write_samples_honours_file_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    urls = write_samples(pairs(5), f"file://{tmp_path}/f-%06d.tar", maxcount=3)
    assert urls == [f"file://{tmp_path}/f-000000.tar", f"file://{tmp_path}/f-000001.tar"]
    assert sorted(os.listdir(tmp_path)) == ["f-000000.tar", "f-000001.tar"]  # no ./file:/ folder
    assert [key for key, _ in atdata.Dataset(urls).raw_samples()] == [key for key, _ in pairs(5)]


@pytest.mark.parametrize(
    "pattern", ["s3://bucket/x-%06d.tar", "http://127.0.0.1:1/x-%06d.tar", "gs://b/x.tar", "file://otherhost/x.tar"]
)
def test_write_samples_refuses_other_schemes_before_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pattern: str
) -> None:
    """Issue 13 case 7: an s3:// pattern wrote ./s3:/bucket/x-000000.tar and returned the s3:// name."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(atdata.errors.UnsupportedURL, match=r"write_samples writes local files only.*write_shards"):
        write_samples(pairs(3), pattern)
    assert os.listdir(tmp_path) == []
