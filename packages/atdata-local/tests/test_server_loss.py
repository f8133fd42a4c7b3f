"""Redis lost in the middle of an insert: no entry, the user told what was left, gc collects it.

When the index write fails because Redis went away, the insert cannot tell whether the
write landed (a reply lost after the command ran looks the same), so its staged objects
are kept for ``gc`` and a note on the error says so (atdata.staging.StagedInsert.commit).
These tests kill a private valkey (never the session's) while shards are being staged,
then restart it on the same append-only file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from atdata.errors import EntryNotFound, IndexConnectionError
from atdata.local import Repo
from atdata.local._progress import InsertProgress
from atdata.local.cli import main
from atdata.local.servers import start_redis

from .conftest import write_source


class _StopRedisAfter(InsertProgress):
    """An insert's progress that stops ``server`` once ``shards`` shards are staged."""

    def __init__(self, server: Any, shards: int, **kwargs: Any) -> None:
        super().__init__(bar=False)
        self._server, self._shards = server, shards

    def report(self, nbytes: int, nshards: int) -> None:
        super().report(nbytes, nshards)
        if self.shards >= self._shards:
            self._server.stop()


_SAMPLE_MODULE = """
import atdata
from numpy.typing import NDArray


@atdata.packable
class Point:
    features: NDArray
    label: int
    source: str
"""


def _inserted(hive: Path) -> list[str]:
    """The objects inserts wrote under ``hive`` (not its owner record)."""
    return sorted(str(p.relative_to(hive)) for p in hive.rglob("*") if p.is_file() and p.name != "atdata-hive.json")


def test_redis_lost_mid_insert_indexes_nothing_and_gc_collects(tmp_path: Path) -> None:
    hive, source = tmp_path / "hive", write_source(tmp_path / "src", 120, maxcount=20)
    with start_redis(tmp_path / "redis", persistence="aof") as server:
        port = server.port
        repo = Repo(hive_path=str(hive), redis=server.url)
        repo.insert(write_source(tmp_path / "src-kept", 10), name="kept")
        kept = set(_inserted(hive))
        with pytest.raises(IndexConnectionError) as caught:
            repo.insert(source, name="lost", maxcount=20, progress=_StopRedisAfter(server, 2))
    notes = " ".join(getattr(caught.value, "__notes__", []))
    assert "atdata gc" in notes, "the error must say what is left and what removes it"
    assert set(_inserted(hive)) > kept, "a lost index write keeps the insert's objects for gc (it may have landed)"
    with start_redis(tmp_path / "redis", port=port, persistence="aof") as server:
        repo = Repo(hive_path=str(hive), redis=server.url)
        with pytest.raises(EntryNotFound):
            repo.index.get_entry_by_name("lost")
        repo.gc(grace=0)
        assert set(_inserted(hive)) == kept, "gc removes every object of the lost insert and nothing else"
        assert len(list(repo.index.get_entry_by_name("kept").data_urls)) == 1


def test_cli_prints_what_a_lost_insert_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_source(tmp_path / "src", 120, maxcount=20)
    (tmp_path / "loss_samples.py").write_text(_SAMPLE_MODULE)
    monkeypatch.chdir(tmp_path)
    with start_redis(tmp_path / "redis") as server:
        monkeypatch.setattr("atdata.local.commands.data.InsertProgress", lambda **kw: _StopRedisAfter(server, 2, **kw))
        code = main([
            "insert", str(tmp_path / "src" / "src-{000000..000005}.tar"), "--name", "lost",
            "--type", "loss_samples:Point", "--maxcount", "20", "--no-progress",
            "--redis-url", server.url, "--hive-path", str(tmp_path / "hive"),
        ])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[0].startswith("atdata: error: cannot reach Redis"), err
    assert any("`atdata gc` removes them" in line for line in err[1:]), err
