"""ShardURL: a plain str carrying where its bucket lives and what was measured."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

import atdata
from atdata import openers
from atdata.cid import generate_cid
from atdata.disk_store import DiskDataStore
from atdata.errors import InvalidArgument, UnsupportedURL
from atdata.manifest import ShardRecord
from atdata.shard_url import ShardURL, StorageLocation
from atdata.staging import WrittenShard
from atdata.urls import expand_urls

HERE = StorageLocation("http://127.0.0.1:9000", "us-east-1")
PATTERN = "s3://b/x/data--{000000..000002}.tar"


@atdata.packable
class Row:
    features: NDArray
    label: int


def written(url: str) -> WrittenShard:
    record = ShardRecord(url, size=1, num_samples=1, sha256="ab" * 32, chunks=("0" * 32,))
    return WrittenShard(url, key="k.tar", insert_id="i", shard_index=0, record=record, location=HERE)


def test_the_string_value_is_the_url_unchanged() -> None:
    url = ShardURL(PATTERN, location=HERE)
    assert str(url) == PATTERN and url == PATTERN and hash(url) == hash(PATTERN)
    assert repr(url) == repr(PATTERN) and repr([url]) == repr([PATTERN])  # print(entry.data_urls) as the spec shows
    assert json.dumps([url]) == json.dumps([PATTERN])
    assert {url: 1}[PATTERN] == 1
    assert url.replace("s3://", "") == "b/x/data--{000000..000002}.tar"  # str methods stay str's


def test_the_cid_covers_the_plain_string_only() -> None:
    plain = generate_cid({"schema_ref": "local://schemas/m.T@1.0.0", "data_urls": [PATTERN]})
    carried = generate_cid({"schema_ref": "local://schemas/m.T@1.0.0", "data_urls": [ShardURL(PATTERN, location=HERE)]})
    assert carried == plain


def test_pickles_with_its_facts() -> None:
    url = written("s3://b/k.tar")
    clone = pickle.loads(pickle.dumps(url))
    assert type(clone) is WrittenShard and clone == url and clone.facts() == url.facts()
    assert (clone.key, clone.insert_id, clone.shard_index) == ("k.tar", "i", 0)
    assert ShardURL.from_json(str(url), url.to_json()).facts() == url.facts()  # bookkeeping is not a fact


def test_json_round_trip_and_unknown_facts_dropped() -> None:
    url = ShardURL("s3://b/k.tar", location=HERE, size=3)
    facts = url.to_json()
    assert facts == {"location": {"endpoint_url": "http://127.0.0.1:9000", "region": "us-east-1"}, "size": 3}
    back = ShardURL.from_json(str(url), {**facts, "added_later": [1]})
    assert back.facts() == url.facts()


def test_brace_expansion_passes_shared_facts_only() -> None:
    shards = expand_urls([ShardURL(PATTERN, location=HERE, sha256="00" * 32), "plain.tar"])
    assert shards[:3] == [f"s3://b/x/data--{i:06d}.tar" for i in range(3)]
    assert all(isinstance(s, ShardURL) and s.location == HERE and s.sha256 is None for s in shards[:3])
    assert type(shards[3]) is str
    one = written("s3://b/k.tar")
    assert expand_urls([one])[0] is one  # naming one shard: keeps every fact


def test_a_dataset_keeps_the_facts_through_pickle() -> None:
    dataset = atdata.Dataset[Row](ShardURL(PATTERN, location=HERE))
    clone = pickle.loads(pickle.dumps(dataset))
    assert [s.location for s in clone.shard_list] == [HERE] * 3  # type: ignore[attr-defined]
    assert clone.url == PATTERN and clone.url.location == HERE  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"endpoint_url": "localhost:9000"}, "http\\(s\\)://host:port"),
        ({"endpoint_url": "http://user:pw@host:9000"}, "never holds a secret"),
        ({"region": ""}, "non-empty string"),
    ],
)
def test_bad_locations_are_refused(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        StorageLocation(**kwargs)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: ShardURL(""), "non-empty string"),
        (lambda: ShardURL("s3://b/k", secret="x"), "no fact 'secret'"),
        (lambda: ShardURL("s3://b/k", location={"endpoint_url": "x"}), "StorageLocation"),
        (lambda: ShardURL.from_json("s3://b/k", {"location": {"password": "x"}}), "storage location"),
    ],
)
def test_bad_shard_urls_are_refused(call: Any, match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        call()


def test_disk_store_shards_have_no_location(tmp_path: Path) -> None:
    store = DiskDataStore(tmp_path)
    rows = [Row(features=np.zeros(2, np.float32), label=i) for i in range(3)]
    paths = atdata.write_samples(rows, str(tmp_path / "src-%06d.tar"))
    urls = store.write_shards(atdata.Dataset[Row](paths))
    assert isinstance(urls[0], WrittenShard) and urls[0].location is None and urls[0].num_samples == 3


class _Point:
    def __init__(self, value: str) -> None:
        self.value = value

    def load(self) -> Any:
        if self.value == "broken":
            raise ImportError("no module named broken_plugin")
        return lambda url: open(__file__, "rb")  # noqa: SIM115 - the caller closes it


def test_a_scheme_is_loaded_from_its_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    """How a process that never imported atdata.store_s3 reads s3:// (core has no boto3)."""
    monkeypatch.setattr(openers, "_openers", {})
    monkeypatch.setattr(openers, "entry_points", lambda group, name: [_Point(name)] if name != "none" else [])
    with openers.open_url("plugin://x/y") as stream:
        assert stream.read(10)
    assert "plugin" in openers.registered_schemes()
    with pytest.raises(UnsupportedURL, match="broken.*failed to load: ImportError"):
        openers.open_url("broken://x/y")
    with pytest.raises(UnsupportedURL, match="no opener for scheme 'none'"):
        openers.open_url("none://x/y")
