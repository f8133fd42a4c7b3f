"""A hive belongs to one index (issue 13 case 1): another database, a flushed index, adoption."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atdata.errors import HiveOwnedElsewhere
from atdata.local import Repo
from atdata.local.cli import main
from atdata.local.servers import RedisServer

from .conftest import write_source
from .test_data_commands import SAMPLE_MODULE


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if "--json" in argv and captured.out.strip() else captured.out, captured.err


@pytest.fixture
def cli_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_server: Any) -> dict[str, Any]:
    module = f"hive_samples_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(SAMPLE_MODULE)
    monkeypatch.chdir(tmp_path)
    write_source(tmp_path / "a", 20)
    write_source(tmp_path / "b", 10)
    env_file = tmp_path / "s3.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in s3_server.credentials.items()))
    store = ["--hive-path", f"hive-{uuid.uuid4().hex[:12]}/sets", "--s3-credentials", str(env_file)]
    return {"type": f"{module}:CliPoint", "store": store, "root": tmp_path}


def test_case_1_gc_through_another_database_deletes_nothing(
    cli_setup: dict[str, Any], redis_server: RedisServer, key_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's reproduction: insert in db 0, insert + gc --grace 0 through db 4, then show."""
    db0 = ["--redis-url", f"redis://{redis_server.host}:{redis_server.port}/0", "--key-prefix", key_prefix]
    db4 = ["--redis-url", f"redis://{redis_server.host}:{redis_server.port}/4", "--key-prefix", key_prefix]
    src_a, src_b = str(cli_setup["root"] / "a" / "src-000000.tar"), str(cli_setup["root"] / "b" / "src-000000.tar")
    store, type_spec = cli_setup["store"], cli_setup["type"]
    code, _, err = run(capsys, "insert", src_a, "--name", "a", "--type", type_spec, *db0, *store)
    assert code == 0, err
    code, _, err = run(capsys, "insert", src_b, "--name", "other", "--type", type_spec, *db4, *store)
    assert code == 1 and "belongs to the index with index_id=" in err and "adopt" in err
    code, _, err = run(capsys, "gc", "--grace", "0", *db4, *store)
    assert code == 1 and "refusing gc" in err and "belongs to the index with index_id=" in err
    code, _, err = run(capsys, "gc", "--grace", "0", "--force", *db4, *store)  # --force does not override ownership
    assert code == 1 and "refusing gc" in err
    code, shown, err = run(capsys, "show", "a", "--json", "--s3-credentials", store[3], *db0)
    assert code == 0, err
    assert shown["missing_shards"] == 0
    redis.Redis(host=redis_server.host, port=redis_server.port, db=4).flushdb()


def test_flushed_index_never_adopts_and_adopt_keeps_what_the_hive_held(
    tmp_path: Path, redis_server: RedisServer, key_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = Repo(hive_path=str(tmp_path / "hive"), redis=redis_server.url, key_prefix=key_prefix)
    entry, _ = repo.insert(write_source(tmp_path / "src", 12, maxcount=5), name="kept")
    shards = sorted(p.name for p in (tmp_path / "hive").iterdir())
    client = redis.Redis.from_url(redis_server.url)
    client.delete(*client.scan_iter(match=repo.index.key_pattern))  # flushed: a new index id next time
    flushed = Repo(hive_path=str(tmp_path / "hive"), redis=redis_server.url, key_prefix=key_prefix)
    with pytest.raises(HiveOwnedElsewhere, match="belongs to the index with index_id="):
        flushed.insert(write_source(tmp_path / "src2", 3), name="new")
    with pytest.raises(HiveOwnedElsewhere, match="refusing gc"):
        flushed.gc(0, force=True)
    assert sorted(p.name for p in (tmp_path / "hive").iterdir()) == shards

    record = flushed.adopt_hive()
    assert record["index_id"] == flushed.index.owner_record["index_id"] and record["adopted"]["inserts"]
    report = flushed.gc(0, force=True)  # nothing indexed references the old insert, yet it stays
    assert report.removed == [] and report.kept_adopted > 0
    assert {p.name for p in (tmp_path / "hive").iterdir()} >= set(shards) - {"atdata-hive.json"}
    flushed.insert(write_source(tmp_path / "src3", 3), name="after-adoption")  # writes work again


def test_hive_with_data_but_no_owner_record_is_not_claimed(
    tmp_path: Path, redis_server: RedisServer, key_prefix: str
) -> None:
    repo = Repo(hive_path=str(tmp_path / "hive"), redis=redis_server.url, key_prefix=key_prefix)
    repo.insert(write_source(tmp_path / "src", 4), name="x")
    (tmp_path / "hive" / "atdata-hive.json").unlink()
    other = Repo(hive_path=str(tmp_path / "hive"), redis=redis_server.url, key_prefix=f"other-{key_prefix}")
    with pytest.raises(HiveOwnedElsewhere, match=r"holds the data of 1 insert\(s\) but no owner record"):
        other.insert(write_source(tmp_path / "src2", 4), name="y")
    assert not (tmp_path / "hive" / "atdata-hive.json").exists()


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(db=st.integers(1, 15), same_prefix=st.booleans(), force=st.booleans(), dry_run=st.booleans())
def test_gc_from_any_other_index_deletes_nothing(
    tmp_path_factory: pytest.TempPathFactory,
    redis_server: RedisServer,
    db: int,
    same_prefix: bool,
    force: bool,
    dry_run: bool,
) -> None:
    root = tmp_path_factory.mktemp("owner")
    prefix = f"own-{uuid.uuid4().hex[:8]}:"
    owner = Repo(hive_path=str(root / "hive"), redis=redis_server.url, key_prefix=prefix)
    owner.insert(write_source(root / "src", 6, maxcount=2), name="data")
    before = sorted(p.name for p in (root / "hive").iterdir())
    url = f"redis://{redis_server.host}:{redis_server.port}/{db}"
    other = Repo(hive_path=str(root / "hive"), redis=url, key_prefix=prefix if same_prefix else f"x{prefix}")
    with pytest.raises(HiveOwnedElsewhere):
        other.gc(0, force=force, dry_run=dry_run)
    assert sorted(p.name for p in (root / "hive").iterdir()) == before
