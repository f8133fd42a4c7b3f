"""The tar walker reads exactly what WebDataset reads, and fails loudly where it is silent."""

from __future__ import annotations

import contextlib
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import webdataset as wds
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from webdataset.tariterators import tarfile_samples

from atdata import register_opener
from atdata._read.shard import iter_chunks
from atdata.errors import ShardError

_MEMORY: dict[str, bytes] = {}
register_opener("memtest", lambda url: io.BytesIO(_MEMORY[url]))


def ours(url: str, chunk: int | None = None) -> list[tuple[str, bytes]]:
    found = iter_chunks(url) if chunk is None else iter_chunks(url, chunk)
    return [(key, bytes(view)) for part in found for key, view in zip(part.keys, part.views)]


def reference(path: Path) -> list[tuple[str, bytes]]:
    return [(s["__key__"], s["msgpack"]) for s in tarfile_samples([{"url": str(path)}]) if "msgpack" in s]


@contextlib.contextmanager
def tar_format(fmt: int) -> Iterator[None]:
    """TarWriter takes tarfile's default format; switch it to write GNU or USTAR headers."""
    old = tarfile.TarFile.format
    tarfile.TarFile.format = fmt
    try:
        yield
    finally:
        tarfile.TarFile.format = old


def write_wds(path: Path, samples: list[dict[str, bytes | str]], fmt: int = tarfile.PAX_FORMAT) -> None:
    with tar_format(fmt), wds.TarWriter(str(path), encoder=False) as sink:
        for sample in samples:
            sink.write(sample)


_key_part = st.one_of(
    st.from_regex(r"[0-9a-z_]{1,12}", fullmatch=True),  # the layout the vectorised fast path takes
    st.text(st.characters(codec="utf-8", exclude_characters="/\0"), min_size=1, max_size=120),
)
_keys = st.lists(_key_part, min_size=1, max_size=3).map("/".join)
_extensions = st.sampled_from(["msgpack", "txt", "json", "cls", "npy", "MSGPACK", "b.msgpack", "msgpack.gz"])
_sample = st.fixed_dictionaries(
    {"__key__": _keys},
    optional={"ext": st.dictionaries(_extensions, st.binary(max_size=1500), max_size=3)},
).map(lambda d: {"__key__": d["__key__"], **d.get("ext", {})})


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], deadline=None)
@given(
    samples=st.lists(_sample, max_size=12),
    fmt=st.sampled_from([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT]),
)
def test_reads_exactly_what_webdataset_reads(tmp_path: Path, samples: list[dict], fmt: int) -> None:
    path = tmp_path / "shard.tar"
    try:
        write_wds(path, samples, fmt)
    except ValueError:  # USTAR cannot hold long or non-ASCII names; not a shard anyone can write
        assume(False)
    try:
        expected = reference(path)
    except ValueError:  # webdataset refuses duplicate members; so must we
        with pytest.raises(ShardError, match="duplicate"):
            ours(str(path))
        return
    _MEMORY["memtest://s.tar"] = path.read_bytes()
    with tarfile.open(path) as tar:
        has_members = bool(tar.getmembers())
    if not expected and has_members:  # webdataset yields nothing; we say the shard holds no sample
        for url, chunk in ((str(path), None), ("memtest://s.tar", 512), ("memtest://s.tar", 1536)):
            with pytest.raises(ShardError, match=r"holds no '\.msgpack' member"):
                ours(url, chunk)
        return
    assert ours(str(path)) == expected
    assert ours("memtest://s.tar", chunk=512) == expected
    assert ours("memtest://s.tar", chunk=1536) == expected


def test_long_names_use_pax_and_gnu_headers(tmp_path: Path) -> None:
    key = "d" * 150 + "/" + "k" * 200 + "é"
    samples = [{"__key__": key, "msgpack": b"\x80"}, {"__key__": "short", "msgpack": b"\x81", "txt": b""}]
    for fmt, typeflag in [(tarfile.PAX_FORMAT, tarfile.XHDTYPE), (tarfile.GNU_FORMAT, tarfile.GNUTYPE_LONGNAME)]:
        path = tmp_path / f"{fmt}.tar"
        write_wds(path, samples, fmt)
        assert path.read_bytes()[156:157] == typeflag  # the walker really met the extension header
        assert ours(str(path)) == [(key, b"\x80"), ("short", b"\x81")] == reference(path)


def test_skips_directories_links_and_meta_members(tmp_path: Path) -> None:
    path = tmp_path / "mixed.tar"
    with tarfile.open(path, "w") as tar:
        for name, kind in [
            ("dir", tarfile.DIRTYPE),
            ("link.msgpack", tarfile.SYMTYPE),
            ("__meta__", tarfile.REGTYPE),
            ("__x__/y.msgpack", tarfile.REGTYPE),
            ("noext", tarfile.REGTYPE),
            ("a.msgpack", tarfile.REGTYPE),
        ]:
            info = tarfile.TarInfo(name)
            info.type = kind
            data = b"payload" if kind == tarfile.REGTYPE else b""
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert ours(str(path)) == [("a", b"payload")] == reference(path)


def _shard(tmp_path: Path, n: int = 4) -> Path:
    path = tmp_path / "good.tar"
    # USTAR: one header block and one data block per member, so offsets are easy to name.
    write_wds(
        path, [{"__key__": f"{i:03d}", "msgpack": bytes([i]) * (300 + i)} for i in range(n)], tarfile.USTAR_FORMAT
    )
    return path


def test_truncated_anywhere_raises_shard_error_after_the_complete_samples(tmp_path: Path) -> None:
    data = _shard(tmp_path).read_bytes()
    full = ours(str(tmp_path / "good.tar"))
    with tarfile.open(tmp_path / "good.tar") as tar:
        data_ends = [m.offset_data + m.size for m in tar.getmembers()]
    end_marker = (data_ends[-1] + 511) // 512 * 512
    for cut in [*range(0, end_marker + 512, 97), end_marker + 511]:
        path = tmp_path / "cut.tar"
        path.write_bytes(data[:cut])
        got: list[tuple[str, bytes]] = []
        with pytest.raises(ShardError, match=r"cut\.tar") as excinfo:
            for part in iter_chunks(str(path)):
                got += [(k, bytes(v)) for k, v in zip(part.keys, part.views)]
        assert got == full[: len(got)]
        complete = sum(1 for end in data_ends if cut >= end)
        assert len(got) == complete, (cut, got)
        assert "truncated" in str(excinfo.value)


def test_corrupt_header_raises_naming_shard_offset_and_member(tmp_path: Path) -> None:
    data = bytearray(_shard(tmp_path).read_bytes())
    data[2 * 1024 + 5] ^= 0x40  # a byte of the third member's name
    path = tmp_path / "bad.tar"
    path.write_bytes(bytes(data))
    got = []
    with pytest.raises(ShardError) as excinfo:
        for part in iter_chunks(str(path)):
            got += part.keys
    assert got == ["000", "001"]
    message = str(excinfo.value)
    assert "bad.tar" in message and "checksum" in message and "byte 2048" in message and "'001.msgpack'" in message
    # tarfile (and so webdataset) silently stop at the same header: we do not.
    assert [k for k, _ in reference(path)] == ["000", "001"]


def test_same_error_point_whatever_the_buffer_size(tmp_path: Path) -> None:
    data = bytearray(_shard(tmp_path, n=6).read_bytes())
    data[3 * 1024 + 130] = ord("9")  # garble the size field of the fourth member
    _MEMORY["memtest://corrupt.tar"] = bytes(data)
    outcomes = set()
    for chunk in (512, 1024, 3000, 1 << 20):
        got = []
        with pytest.raises(ShardError) as excinfo:
            for part in iter_chunks("memtest://corrupt.tar", chunk):
                got += part.keys
        outcomes.add((tuple(got), str(excinfo.value)))
    assert len(outcomes) == 1
    assert next(iter(outcomes))[0] == ("000", "001", "002")


def test_duplicate_member_and_gzip_and_empty_are_shard_errors(tmp_path: Path) -> None:
    dup = tmp_path / "dup.tar"
    write_wds(dup, [{"__key__": "a", "msgpack": b"1"}, {"__key__": "a", "msgpack": b"2"}])
    with pytest.raises(ShardError, match="duplicate"):
        ours(str(dup))
    gz = tmp_path / "x.tar.gz"
    write_wds(gz, [{"__key__": "a", "msgpack": b"1"}])
    with pytest.raises(ShardError, match="gzip"):
        ours(str(gz))
    empty = tmp_path / "empty.tar"
    empty.write_bytes(b"")
    with pytest.raises(ShardError, match="empty.tar"):
        ours(str(empty))


def test_member_larger_than_the_read_size(tmp_path: Path) -> None:
    path = tmp_path / "big.tar"
    big = bytes(range(256)) * 40
    write_wds(path, [{"__key__": "big", "msgpack": big}, {"__key__": "small", "msgpack": b"x"}])
    assert ours(str(path), chunk=1024) == [("big", big), ("small", b"x")]


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
def test_vectorised_fast_path_hands_over_to_the_general_walk(tmp_path: Path, fmt: int) -> None:
    samples: list[dict[str, bytes | str]] = [{"__key__": f"{i:04d}", "msgpack": b"x" * 700} for i in range(20)]
    samples += [{"__key__": f"v{i:04d}", "msgpack": b"y" * (100 * i)} for i in range(10)]  # sizes vary
    samples += [{"__key__": "mid", "msgpack": b"m", "txt": b"t"}]  # a second member
    samples += [{"__key__": "dir.with.dots/" + "k" * 90, "msgpack": b"long"}]
    samples += [{"__key__": f"{i:04d}b", "msgpack": b"z" * 700} for i in range(20)]
    path = tmp_path / "mixed.tar"
    write_wds(path, samples, fmt)
    expected = reference(path)
    assert len(expected) == 52
    assert ours(str(path)) == expected
    assert ours(str(path), chunk=4096) == expected  # runs split across reads


def walk_all(url: str, chunk: int | None = None) -> tuple[list[tuple[str, bytes]], str | None]:
    """Every sample up to the error, and the error's message (None if the shard is whole)."""
    got: list[tuple[str, bytes]] = []
    try:
        for part in iter_chunks(url) if chunk is None else iter_chunks(url, chunk):
            got += [(k, bytes(v)) for k, v in zip(part.keys, part.views)]
            if part.rows is not None:  # the byte matrix of one-size samples holds the same bytes
                assert [row.tobytes() for row in part.rows] == [bytes(v) for v in part.views]
    except ShardError as exc:
        return got, str(exc)
    return got, None


# Keys and sizes from small sets, so runs of one stride form and then break in every way:
# another padded size, a repeated key (one sample of two members), a __meta__ name, dots.
_run_key = st.sampled_from(["k", "__k__", "a.b", "d/", "_x", "é"]).flatmap(
    lambda stem: st.integers(0, 3).map(lambda i: f"{stem}{i:03d}")
)
_run_sample = st.builds(
    lambda key, size, extra: {"__key__": key, "msgpack": b"m" * size, **({"txt": b"t"} if extra else {})},
    _run_key,
    st.sampled_from([700, 600, 1024, 1025, 0, 3000]),
    st.sampled_from([False, False, False, True]),
)


@settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow], deadline=None, max_examples=100
)
@given(
    samples=st.lists(_run_sample, min_size=1, max_size=40),
    fmt=st.sampled_from([tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT]),
    damage=st.none() | st.tuples(st.integers(0, 200_000), st.integers(1, 255)),
    chunk=st.sampled_from([512, 1536, 4096, 10240, 1 << 20]),
)
def test_vectorised_paths_read_and_fail_exactly_as_the_general_walk(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    samples: list[dict],
    fmt: int,
    damage: tuple[int, int] | None,
    chunk: int,
) -> None:
    path = tmp_path / "run.tar"
    try:
        write_wds(path, samples, fmt)
    except ValueError:  # USTAR cannot hold non-ASCII names
        assume(False)
    data = bytearray(path.read_bytes())
    if damage is not None:
        offset, flip = damage
        data[offset % len(data)] ^= flip
    url = f"memtest://run-{fmt}.tar"
    _MEMORY[url] = bytes(data)
    fast = [walk_all(url), walk_all(url, chunk)]
    with monkeypatch.context() as patched:
        patched.setattr("atdata._read.tarwalk.fast_prefix", lambda buf, key: None)
        general = walk_all(url)
    assert fast == [general, general]
    if damage is None and general[1] is None:
        assert general[0] == reference(path)


def test_sample_views_are_made_on_demand_and_agree_every_way() -> None:
    from atdata._read.tarwalk import SampleViews

    data = memoryview(bytes(range(100)))
    starts, ends = [0, 10, 40, 90], [5, 30, 41, 100]
    expected = [bytes(range(a, b)) for a, b in zip(starts, ends)]
    lazy = SampleViews(data, starts, ends)
    assert len(lazy) == 4
    assert [bytes(v) for v in lazy[1:3]] == expected[1:3]  # a slice before any view is kept
    assert bytes(lazy[-1]) == expected[-1] and [bytes(v) for v in lazy] == expected
    assert [bytes(v) for v in lazy[::2]] == expected[::2]  # and after


@pytest.mark.parametrize("stream", [False, True])
def test_a_shard_with_members_but_no_msgpack_one_says_so(tmp_path: Path, stream: bool) -> None:
    """Read as an empty shard, a tar of images alone (not atdata samples) would yield nothing silently."""
    path = tmp_path / "images.tar"
    with tarfile.open(path, "w") as tar:
        for name in ("0001.jpg", "0001.cls"):
            info = tarfile.TarInfo(name)
            info.size = 3
            tar.addfile(info, io.BytesIO(b"abc"))
    url = str(path)
    if stream:
        url = "memtest://images.tar"
        _MEMORY[url] = path.read_bytes()
    with pytest.raises(
        ShardError, match=r"holds no '\.msgpack' member \(its last member is '0001\.cls'\).*write_samples"
    ):
        ours(url)
    empty = tmp_path / "empty.tar"
    tarfile.open(empty, "w").close()
    assert ours(str(empty)) == []  # no member at all: an empty shard, as before
