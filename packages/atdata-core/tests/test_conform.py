"""``atdata.conform``: stored samples checked against a sample type, by layout or one by one."""

from __future__ import annotations

import pickle
from pathlib import Path

import msgpack
import numpy as np
import pytest
from numpy.typing import NDArray

import atdata
from atdata import npy
from atdata.conform import SampleCheck
from atdata.errors import SchemaMismatch


@atdata.packable
class Fixed:
    features: NDArray[np.float32]
    label: int
    tag: str


@atdata.packable
class Loose:
    value: float
    note: str | None


def _fixed(i: int, **override: object) -> tuple[str, bytes]:
    fields = {"features": npy.encode(np.full(4, i, np.float32)), "label": i % 100, "tag": "abc"} | override
    return f"{i:06d}", msgpack.packb(fields)


def _shards(tmp_path: Path, samples: list[tuple[str, bytes]]) -> atdata.Dataset[Fixed]:
    return atdata.Dataset[Fixed](atdata.write_samples(samples, str(tmp_path / "s-%06d.tar"), maxcount=1000))


def test_fixed_size_chunks_are_checked_by_layout_without_unpacking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    original = SampleCheck.sample
    monkeypatch.setattr(
        SampleCheck, "sample", lambda self, url, key, raw: calls.append(key) or original(self, url, key, raw)
    )
    ds = _shards(tmp_path, [_fixed(i) for i in range(500)])
    assert len(list(ds.raw_samples(check=Fixed))) == 500
    assert calls == []  # every chunk fitted the layout learnt from its first row


def test_a_same_size_sample_with_another_key_is_caught_on_the_layout_path(tmp_path: Path) -> None:
    samples = [_fixed(i) for i in range(500)]
    key, raw = samples[321]
    samples[321] = (key, raw.replace(b"label", b"lbael"))  # same length: only the layout's key bytes differ
    ds = _shards(tmp_path, samples)
    got = []
    with pytest.raises(SchemaMismatch) as caught:
        got.extend(ds.raw_samples(check=Fixed))
    assert caught.value.member == "000321.msgpack" and caught.value.url == ds.shard_list[0]
    assert caught.value.expected == ["features: ndarray[float32]", "label: int", "tag: str"]
    assert caught.value.found == ["features: ndarray (.npy bytes)", "lbael: int", "tag: str"]
    assert len(got) < 321  # the chunk holding it yielded nothing


def test_a_string_that_is_not_utf8_is_caught(tmp_path: Path) -> None:
    samples = [_fixed(i) for i in range(50)]
    key, raw = samples[7]
    samples[7] = (key, raw.replace(b"abc", b"a\xffc"))
    with pytest.raises(SchemaMismatch, match="000007.msgpack"):
        list(_shards(tmp_path, samples).raw_samples(check=Fixed))


def test_a_wrong_dtype_is_a_wrong_wire_type(tmp_path: Path) -> None:
    samples = [_fixed(0), _fixed(1, features=npy.encode(np.zeros(4, np.int64)))]
    with pytest.raises(SchemaMismatch, match="wrong wire type.*float32"):
        list(_shards(tmp_path, samples).raw_samples(check=Fixed))


def test_what_the_decoder_takes_matches(tmp_path: Path) -> None:
    """An int for a float field and an absent optional field read fine, so they match."""
    samples = [("a", msgpack.packb({"value": 3})), ("b", msgpack.packb({"value": 1.5, "note": "x"}))]
    paths = atdata.write_samples(samples, str(tmp_path / "l-%06d.tar"))
    assert [k for k, _ in atdata.Dataset[Loose](paths).raw_samples(check=Loose)] == ["a", "b"]
    assert [s.value for s in atdata.Dataset[Loose](paths)] == [3.0, 1.5]


def test_dict_sample_takes_any_map_but_not_garbage(tmp_path: Path) -> None:
    paths = atdata.write_samples([("a", msgpack.packb({"x": 1})), ("b", b"\xc1")], str(tmp_path / "d-%06d.tar"))
    with pytest.raises(SchemaMismatch, match="'b.msgpack'.*not msgpack") as caught:
        list(atdata.Dataset(paths).raw_samples(check=atdata.DictSample))
    assert caught.value.found is None


def test_schema_mismatch_pickles_with_its_facts() -> None:
    with pytest.raises(SchemaMismatch) as caught:
        SampleCheck(Fixed).sample("s3://b/x.tar", "k", msgpack.packb({"label": 1}))
    again = pickle.loads(pickle.dumps(caught.value))
    assert (again.url, again.member, again.expected, again.found) == (
        "s3://b/x.tar",
        "k.msgpack",
        caught.value.expected,
        ["label: int"],
    )
    assert str(again) == str(caught.value)


def test_samples_of_several_lengths_are_matched_by_layout_per_length(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ints of 1, 2 and 3 bytes and strings of 1 to 3 bytes: several lengths, and layouts
    that share a length (a 2-byte int with a 1-byte tag, a 1-byte int with a 2-byte tag)."""
    calls: list[str] = []
    original = SampleCheck.sample
    monkeypatch.setattr(
        SampleCheck, "sample", lambda self, url, key, raw: calls.append(key) or original(self, url, key, raw)
    )
    samples = [_fixed(i, label=i * 7 % 70000, tag="x" * (1 + i % 3)) for i in range(3000)]
    ds = _shards(tmp_path, samples)
    assert len(list(ds.raw_samples(check=Fixed))) == 3000
    assert len(calls) < 30  # only the stragglers of a chunk's rare lengths are unpacked


def test_with_several_lengths_the_first_bad_member_is_named(tmp_path: Path) -> None:
    samples = [_fixed(i, label=i * 7 % 70000, tag="x" * (1 + i % 3)) for i in range(3000)]
    samples[2500] = ("002500", msgpack.packb({"features": 1, "label": 2, "tag": "x"}))  # short: a length of its own
    key, raw = samples[1200]
    samples[1200] = (key, raw.replace(b"\xa3tag", b"\xa3tog"))  # same length as its neighbours
    with pytest.raises(SchemaMismatch) as caught:
        list(_shards(tmp_path, samples).raw_samples(check=Fixed))
    assert caught.value.member == "001200.msgpack" and "tog: str" in str(caught.value.found)
