"""`atdata verify NAME|CID|--all` and `Repo.verify` on a real Redis, over a directory hive and rclone S3.

Entries are inserted through the API, damaged as storage damages objects (a bit flipped,
an object cut short, an object gone), then checked through the command as a user runs it.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest

import atdata
from atdata.disk_store import DiskDataStore
from atdata.local import Repo
from atdata.local.servers import RedisServer, S3Server
from atdata.local.testing import damage_object

from .conftest import Point, write_source
from .test_data_commands import run

pytestmark = pytest.mark.real


@pytest.fixture(params=["directory", "rclone"])
def setup(
    request: pytest.FixtureRequest, tmp_path: Path, redis_server: RedisServer, key_prefix: str
) -> tuple[Repo, list[str]]:
    """A repo holding ``pts`` (3 shards) and ``other`` (1 shard), and the CLI options naming it."""
    conn = ["--redis-url", redis_server.url, "--key-prefix", key_prefix]
    if request.param == "rclone":
        server: S3Server = request.getfixturevalue("s3_server")
        env_file = tmp_path / "s3.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in server.credentials.items()))
        hive_path, credentials = f"verify-{uuid.uuid4().hex[:12]}/sets", server.credentials
        conn += ["--hive-path", hive_path, "--s3-credentials", str(env_file)]
    else:
        hive_path, credentials = str(tmp_path / "hive"), None
        conn += ["--hive-path", hive_path]
    repo = Repo(credentials, hive_path, redis_server.url, key_prefix=key_prefix)
    source = write_source(tmp_path / "src", 60, maxcount=20)
    repo.insert(source, name="pts", maxcount=20)
    repo.insert(atdata.Dataset(source.shard_list[0], sample_type=source.sample_type), name="other")
    return repo, conn


def _shards(repo: Repo, name: str) -> list[str]:
    return atdata.Dataset(repo.index.get_entry_by_name(name).data_urls[0]).shard_list


def test_a_healthy_entry_exits_0(setup: tuple[Repo, list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    repo, conn = setup
    code, out, err = run(capsys, "verify", "pts", *conn)
    assert code == 0, err
    assert out.count("  ok  ") == 3 and "3 shard(s) of 1 dataset(s) checked: all ok" in out
    code, data, err = run(capsys, "verify", repo.index.get_entry_by_name("pts").cid, "--json", *conn)
    assert code == 0 and data["ok"] and data["failed"] == 0
    (dataset,) = data["datasets"]
    assert dataset["names"] == ["pts"] and [s["status"] for s in dataset["shards"]] == ["ok"] * 3
    assert [s["url"] for s in dataset["shards"]] == [str(u) for u in _shards(repo, "pts")]


@pytest.mark.parametrize(
    ("how", "status", "words"),
    [
        ("flipped", "damaged", ["1 of 1 chunk(s) differ", "chunk 0 (bytes 0-"]),
        ("truncated", "wrong size", ["recorded (truncated)"]),
        ("deleted", "missing", ["no object at this URL"]),
    ],
)
def test_damage_exits_1_with_a_row_naming_the_shard(
    setup: tuple[Repo, list[str]], capsys: pytest.CaptureFixture[str], how: str, status: str, words: list[str]
) -> None:
    repo, conn = setup
    victim = str(_shards(repo, "pts")[1])
    damage_object(repo.store, victim, how)
    code, out, err = run(capsys, "verify", "pts", *conn)
    assert code == 1, (out, err)
    (row,) = [line for line in out.splitlines() if victim in line]
    assert f"  {status}  " in row and all(w in row for w in words), row
    assert out.count("  ok  ") == 2 and "3 shard(s) of 1 dataset(s) checked: 1 failed" in out
    code, data, _ = run(capsys, "verify", "pts", "--json", *conn)
    assert code == 1 and not data["ok"] and data["failed"] == 1
    (bad,) = [s for s in data["datasets"][0]["shards"] if not s["ok"]]
    assert bad["url"] == victim and bad["status"] == status
    report = repo.verify("pts")  # the API under the command says the same
    assert not report.ok and [(c.url, c.status) for c in report.failures] == [(victim, status)]


def test_all_checks_every_dataset(setup: tuple[Repo, list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    repo, conn = setup
    pts = repo.index.get_entry_by_name("pts")
    repo.index.add_entry(atdata.Dataset(pts.data_urls[0]), name="alias", schema_ref=pts.schema_ref)
    code, data, err = run(capsys, "verify", "--all", "--json", *conn)
    assert code == 0, err
    assert sorted(tuple(d["names"]) for d in data["datasets"]) == [("other",), ("pts", "alias")]
    assert data["shards"] == 4  # the content "pts" and "alias" share is read once
    damage_object(repo.store, str(_shards(repo, "other")[0]), "flipped", offset=700)
    code, out, _ = run(capsys, "verify", "--all", *conn)
    assert code == 1 and "4 shard(s) of 2 dataset(s) checked: 1 failed" in out
    assert [line.split()[:2] for line in out.splitlines() if "damaged" in line] == [["other", "damaged"]]


@pytest.mark.parametrize("ref", ["no-such-name", "bafyreinosuchcid"])
def test_an_unknown_name_or_cid_exits_2(
    setup: tuple[Repo, list[str]], capsys: pytest.CaptureFixture[str], ref: str
) -> None:
    _, conn = setup
    code, out, err = run(capsys, "verify", ref, *conn)
    assert code == 2 and out == ""
    assert err.startswith("atdata: error: ") and repr(ref) in err and len(err.strip().splitlines()) == 1


def test_an_entry_without_digests_is_unchecked_not_failed(
    setup: tuple[Repo, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    repo, conn = setup
    with repo.store.open_read(_shards(repo, "other")[0]) as stream:  # a copy atdata did not write
        plain = [repo.store.write_bytes("outside/plain.tar", stream.read())]
    schema_ref = repo.index.get_entry_by_name("other").schema_ref
    repo.index.add_entry(atdata.Dataset(plain[0]), name="plain", schema_ref=schema_ref)
    code, data, err = run(capsys, "verify", "plain", "--json", *conn)
    assert code == 0, err
    assert [s["status"] for s in data["datasets"][0]["shards"]] == ["unchecked"]
    damage_object(repo.store, plain[0], "deleted")
    code, data, _ = run(capsys, "verify", "plain", "--json", *conn)
    assert code == 1 and data["datasets"][0]["shards"][0]["status"] == "missing"


def test_verify_requires_a_ref_or_all(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["verify"], ["verify", "x", "--all"]):
        with pytest.raises(SystemExit) as info:
            run(capsys, *argv)
        assert info.value.code == 2
        assert "--help" in capsys.readouterr().err


def test_urls_carrying_only_a_sha256_are_checked_against_it(setup: tuple[Repo, list[str]]) -> None:
    repo, _ = setup
    with repo.store.open_read(_shards(repo, "other")[0]) as stream:  # as an ATProto entry records a shard
        data = stream.read()
    plain = repo.store.write_bytes("outside/whole.tar", data)
    url = atdata.ShardURL(plain, sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    repo.index.add_entry(atdata.Dataset(url), name="whole", schema_ref=repo.index.get_entry_by_name("other").schema_ref)
    assert [c.status for c in repo.verify("whole").shards] == ["ok"]
    damage_object(repo.store, plain, "flipped")
    (check,) = repo.verify("whole").shards
    assert check.status == "damaged" and f"(recorded {url.sha256})" in check.detail
    damage_object(repo.store, plain, "truncated")
    (check,) = repo.verify("whole").shards
    assert check.status == "wrong size" and f"{len(data)} recorded (truncated)" in check.detail


def test_shards_of_another_kind_than_the_hive_are_read_through_their_opener(
    setup: tuple[Repo, list[str]], tmp_path: Path
) -> None:
    repo, _ = setup
    source = atdata.Dataset[Point](_shards(repo, "other")[0])
    local = DiskDataStore(tmp_path / "elsewhere").write_shards(source, prefix="p")  # file:// URLs, with manifests
    repo.index.add_entry(
        atdata.Dataset(local[0]), name="elsewhere", schema_ref=repo.index.get_entry_by_name("other").schema_ref
    )
    assert [c.status for c in repo.verify("elsewhere").shards] == ["ok"]
    damage_object(DiskDataStore(tmp_path / "elsewhere"), local[0], "flipped", offset=100)
    (check,) = repo.verify("elsewhere").shards
    assert check.status == "damaged" and "chunk 0 (bytes 0-" in check.detail
    damage_object(DiskDataStore(tmp_path / "elsewhere"), local[0], "deleted")
    assert [c.status for c in repo.verify("elsewhere").shards] == ["missing"]
