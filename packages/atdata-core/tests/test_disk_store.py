"""DiskDataStore: the store conformance suite on a local directory, plus disk specifics."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

import atdata
from atdata.disk_store import DiskDataStore
from atdata.errors import InvalidArgument
from atdata.testing import DataStoreConformance


class TestDiskDataStore(DataStoreConformance[DiskDataStore]):
    @pytest.fixture
    def store(self, tmp_path: Path) -> DiskDataStore:
        return DiskDataStore(tmp_path / "hive")

    def _files(self, store: DiskDataStore) -> list[Path]:
        return [Path(d, f) for d, _, files in os.walk(store.root) for f in files]

    def raw_keys(self, store: DiskDataStore, prefix: str = "") -> list[str]:
        keys = (p.relative_to(store.root).as_posix() for p in self._files(store) if not p.name.endswith(".tmp"))
        return sorted(k for k in keys if k.startswith(prefix))

    def leftovers(self, store: DiskDataStore) -> list[str]:
        return [str(p) for p in self._files(store) if p.name.endswith(".tmp")]


def test_file_url_and_plain_path_are_the_same_store(tmp_path: Path) -> None:
    assert DiskDataStore(tmp_path.as_uri()) == DiskDataStore(str(tmp_path))
    assert DiskDataStore(tmp_path).url_for("a/b.tar") == (tmp_path / "a" / "b.tar").as_uri()


@pytest.mark.parametrize("key", ["../escape", "/abs", "a//b", "a/./b", ""])
def test_keys_cannot_leave_the_root(tmp_path: Path, key: str) -> None:
    with pytest.raises(InvalidArgument, match="key"):
        DiskDataStore(tmp_path).write_bytes(key, b"x")


def test_non_local_root_rejected() -> None:
    with pytest.raises(InvalidArgument, match="s3://bucket"):
        DiskDataStore("s3://bucket/prefix")
    with pytest.raises(InvalidArgument, match="root=42"):
        DiskDataStore(42)  # type: ignore[arg-type]


def test_half_written_file_is_invisible(tmp_path: Path) -> None:
    store = DiskDataStore(tmp_path)
    writer = store.open_write("ds/shard.tar")
    writer.write(b"partial")
    assert not (tmp_path / "ds" / "shard.tar").exists()
    assert list(store.list_objects()) == []
    writer.commit()
    assert (tmp_path / "ds" / "shard.tar").read_bytes() == b"partial"


@atdata.packable
class Row:
    features: NDArray[np.float32]
    label: str


def test_dataset_resharded_and_read_back(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [Row(features=np.full(3, i, dtype=np.float32), label=f"r{i}") for i in range(10)]
    source = atdata.Dataset[Row](atdata.write_samples(rows, tmp_path / "src-%03d.tar", maxcount=4))
    urls = DiskDataStore(tmp_path / "hive").write_shards(source, prefix="v1", maxcount=3, progress=True)
    assert len(urls) == 4 and all(url.startswith("file://") for url in urls)
    back = list(atdata.Dataset[Row](urls).ordered())
    assert [r.label for r in back] == [r.label for r in rows]
    assert all(np.array_equal(a.features, b.features) for a, b in zip(back, rows, strict=True))
    assert "writing shards" in capsys.readouterr().err  # the tqdm bar
