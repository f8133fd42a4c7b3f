"""The LocalIndex, LocalDatasetEntry and Schema Storage snippets of the spec, on real shards.

Each runs on fakeredis and on a real valkey server (its own key prefix per test).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fakeredis
import numpy as np
import pytest
from numpy.typing import NDArray

import atdata
from atdata.index_redis import LocalDatasetEntry, LocalIndex


def _image_sample() -> Any:
    # Declared in a module named "mymodule", as the spec's refs say.
    cls = type("ImageSample", (), {"__annotations__": {"image": NDArray, "label": str}, "__module__": "mymodule"})
    return atdata.packable(cls)


@pytest.fixture(
    params=[pytest.param("fakeredis", marks=pytest.mark.fake), pytest.param("valkey", marks=pytest.mark.real)]
)
def index(request: pytest.FixtureRequest) -> Iterator[LocalIndex]:
    if request.param == "fakeredis":
        yield LocalIndex(redis=fakeredis.FakeRedis())
        return
    index = LocalIndex.from_url(
        request.getfixturevalue("redis_server").url, key_prefix=f"spec-{uuid.uuid4().hex[:12]}:"
    )
    yield index
    keys = list(index.redis.scan_iter(match=index.key_pattern))
    if keys:
        index.redis.delete(*keys)


def test_spec_local_index_and_schema_storage(
    index: LocalIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ImageSample: Any = _image_sample()
    samples = [ImageSample(image=np.full((2, 3), i, dtype=np.uint8), label=f"l{i}") for i in range(20)]
    shards = atdata.write_samples(samples, "data-%06d.tar", maxcount=2)
    assert len(shards) == 10

    # Adding Entries
    dataset = atdata.Dataset[ImageSample]("data-{000000..000009}.tar")
    entry = index.add_entry(
        dataset,
        name="my-dataset",
        schema_ref="local://schemas/mymodule.ImageSample@1.0.0",
        metadata={"description": "Training images"},
    )
    assert entry.cid.startswith("bafyrei")
    assert entry.name == "my-dataset"
    assert entry.data_urls == ["data-{000000..000009}.tar"]

    # Listing and Retrieving
    assert [f"{e.name}: {e.cid}" for e in index.entries] == [f"my-dataset: {entry.cid}"]
    assert index.all_entries == [entry]
    assert index.get_entry_by_name("my-dataset") == entry
    assert index.get_entry(entry.cid) == entry

    # LocalDatasetEntry
    assert isinstance(entry, LocalDatasetEntry) and isinstance(entry, atdata.IndexEntry)
    assert entry.metadata == {"description": "Training images"}
    assert (entry.wds_url, entry.sample_kind) == ("data-{000000..000009}.tar", entry.schema_ref)

    # Schema Storage
    schema_ref = index.publish_schema(ImageSample, version="1.0.0", description="Image with label annotation")
    assert schema_ref == "local://schemas/mymodule.ImageSample@1.0.0"
    schema = index.get_schema(schema_ref)
    assert schema["name"] == "ImageSample" and schema["version"] == "1.0.0"
    assert schema["description"] == "Image with label annotation" and schema["createdAt"]
    assert [f"{s['name']}@{s['version']}" for s in index.list_schemas()] == ["ImageSample@1.0.0"]

    SampleType: Any = index.decode_schema(schema_ref)
    read = atdata.Dataset[SampleType](entry.data_urls[0])
    back = [s for batch in read.ordered(batch_size=4) for s in batch]
    assert [s.label for s in back] == [s.label for s in samples]
    np.testing.assert_array_equal(back[7].image, samples[7].image)


def test_add_entry_derives_schema_from_dataset(index: LocalIndex) -> None:
    ImageSample: Any = _image_sample()
    entry = index.add_entry(atdata.Dataset[ImageSample]("data-{000000..000009}.tar"), name="derived")
    assert entry.schema_ref == "local://schemas/mymodule.ImageSample@1.0.0"
    assert index.get_schema(entry.schema_ref)["name"] == "ImageSample"


def test_dict_sample_dataset_needs_an_explicit_schema_ref(index: LocalIndex) -> None:
    with pytest.raises(atdata.errors.AtdataError, match="pass schema_ref="):
        index.add_entry(atdata.Dataset[atdata.DictSample]("d.tar"), name="untyped")
    assert index.all_entries == []
