"""Issue 13's index cases, the way a user met them: through ``Repo.insert`` on a real Redis.

Case 2: identical content inserted under a second name removed the first name.
Case 8: two scripts' ``__main__.TrainingSample`` with other fields: the second insert
auto-published a patch version with the other fields.
Case 9: insert, then ``publish_schema(T, version="1.0.0", description=...)``: the
description was dropped.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

import atdata
from atdata.errors import AmbiguousEntry, SchemaConflict
from atdata.local import Repo
from atdata.local.servers import RedisServer

pytestmark = pytest.mark.real


def _training_sample(fields: dict[str, Any]) -> Any:
    """A ``__main__.TrainingSample``, as a script run with ``python script.py`` defines it."""
    return atdata.packable(type("TrainingSample", (), {"__annotations__": fields, "__module__": "__main__"}))


def _source(directory: Path, sample_type: Any, make: Any, n: int = 12) -> atdata.Dataset[Any]:
    directory.mkdir(parents=True)
    samples = [{**make(i).as_wds, "__key__": f"{i:06d}"} for i in range(n)]
    return atdata.Dataset[sample_type](atdata.write_samples(samples, str(directory / "s-%06d.tar"), maxcount=5))


@pytest.fixture
def repo(tmp_path: Path, redis_server: RedisServer) -> Repo:
    return Repo(hive_path=str(tmp_path / "hive"), redis=redis_server.url, key_prefix=f"cases-{uuid.uuid4().hex}:")


def test_case_2_identical_content_under_a_second_name_keeps_the_first(repo: Repo, tmp_path: Path) -> None:
    T = _training_sample({"features": NDArray, "label": int})
    source = _source(tmp_path / "src", T, lambda i: T(features=np.full(4, i, dtype=np.float32), label=i))
    train, _ = repo.insert(source, name="train", metadata={"split": "train"})
    copy, _ = repo.insert(source, name="train-copy")
    assert copy.cid == train.cid  # content stored once
    assert repo.index.get_entry_by_name("train") == train
    assert repo.index.get_entry_by_name("train-copy").name == "train-copy"
    assert sorted(e.name for e in repo.index.all_entries) == ["train", "train-copy"]
    with pytest.raises(AmbiguousEntry, match="'train', 'train-copy'"):
        repo.index.remove_entry(train.cid)
    repo.index.remove_entry("train-copy")
    assert repo.index.get_entry_by_name("train") == train
    assert repo.gc(0).removed == []  # the shared shards still belong to "train"
    assert sum(1 for _ in atdata.Dataset[T](train.data_urls[0]).ordered()) == 12


def test_case_8_another_scripts_class_of_the_same_name_is_refused(repo: Repo, tmp_path: Path) -> None:
    ours = _training_sample({"features": NDArray, "label": int})
    theirs = _training_sample({"text": str})
    first, _ = repo.insert(
        _source(tmp_path / "a", ours, lambda i: ours(features=np.zeros(2, dtype=np.float32), label=i)), name="a"
    )
    objects = sorted(info.key for info in repo.store.list_objects(""))
    with pytest.raises(SchemaConflict) as refused:
        repo.insert(_source(tmp_path / "b", theirs, lambda i: theirs(text=f"t{i}")), name="b")
    message = str(refused.value)
    assert "features: ndarray, label: int" in message and "text: str" in message
    assert "publish_schema(TrainingSample, version='1.0.1')" in message
    assert sorted(info.key for info in repo.store.list_objects("")) == objects  # nothing written
    assert [e.name for e in repo.index.all_entries] == ["a"]
    schema = repo.index.get_latest_schema("__main__.TrainingSample")
    assert (schema["version"], [f["name"] for f in schema["fields"]]) == ("1.0.0", ["features", "label"])
    assert first.schema_ref.endswith("@1.0.0")


def test_case_9_description_published_after_the_insert_is_stored(repo: Repo, tmp_path: Path) -> None:
    T = _training_sample({"label": int})
    entry, _ = repo.insert(_source(tmp_path / "src", T, lambda i: T(label=i)), name="described")
    ref = repo.index.publish_schema(T, version="1.0.0", description="Labels for the spec's example")
    assert ref == entry.schema_ref
    assert repo.index.get_schema(ref)["description"] == "Labels for the spec's example"
