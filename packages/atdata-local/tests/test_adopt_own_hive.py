"""Adopting a hive the index already owns changes nothing (real valkey, directory hive).

Adoption records every insert found in the hive as one gc must keep (their entries live
in a lost index). Run by the hive's own index (a user unsure whether it is needed), that
marked the index's own removed datasets and failed inserts as kept forever.
"""

from __future__ import annotations

from pathlib import Path

from atdata.local import Repo
from atdata.local.servers import RedisServer

from .conftest import write_source


def test_adopt_by_the_owner_keeps_gc_working(tmp_path: Path, redis_server: RedisServer, key_prefix: str) -> None:
    repo = Repo(None, str(tmp_path / "hive"), redis_server.url, key_prefix=key_prefix)
    repo.insert(write_source(tmp_path / "a", 10), name="kept")
    repo.insert(write_source(tmp_path / "b", 20), name="dropped")
    before = repo.adopt_hive()
    assert before.get("adopted") is None or before["adopted"]["inserts"] == []
    repo.index.remove_entry("dropped")
    report = repo.gc(grace=0)
    assert report.kept_adopted == 0 and len(report.removed) >= 2, report
    assert repo.verify("kept").ok
