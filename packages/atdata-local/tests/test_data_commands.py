"""`atdata ls|show|insert|gc|schemas|schema show` against a real Redis, rclone S3 and a directory."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

import atdata
from atdata.local.cli import main
from atdata.local.servers import RedisServer, S3Server
from atdata.store_s3 import S3DataStore

from .conftest import write_source

pytestmark = pytest.mark.real

SAMPLE_MODULE = """
import atdata
from numpy.typing import NDArray

@atdata.packable
class CliPoint:
    features: NDArray
    label: int
    source: str
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """A working directory holding an importable sample module (unique name) and source shards."""
    module = f"cli_samples_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(SAMPLE_MODULE)
    monkeypatch.chdir(tmp_path)
    write_source(tmp_path / "src", 50, maxcount=20)
    return tmp_path, f"{module}:CliPoint"


@pytest.fixture
def conn(redis_server: RedisServer, key_prefix: str) -> list[str]:
    return ["--redis-url", redis_server.url, "--key-prefix", key_prefix]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    out: Any = json.loads(captured.out) if "--json" in argv and captured.out.strip() else captured.out
    return code, out, captured.err


def test_insert_ls_show_schemas_gc_on_a_directory_hive(
    workdir: tuple[Path, str], conn: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    root, type_spec = workdir
    hive = ["--hive-path", str(root / "hive")]
    source = str(root / "src" / "src-{000000..000002}.tar")
    code, result, err = run(
        capsys,
        "insert",
        source,
        "--name",
        "pts",
        "--type",
        type_spec,
        "--maxcount",
        "10",
        "--metadata",
        '{"split": "train"}',
        "--json",
        *conn,
        *hive,
    )
    assert code == 0, err
    assert result["shards"] == 5 and result["samples"] == 50 and result["bytes"] > 0
    assert result["samples_per_second"] > 0
    cid = result["cid"]
    stored = atdata.Dataset(result["data_urls"][0])
    assert [s.label for s in stored.ordered()] == list(range(50))

    code, rows, _ = run(capsys, "ls", "--json", *conn)
    assert code == 0
    assert [(r["name"], r["cid"], r["shards"], r["missing_shards"]) for r in rows] == [("pts", cid, 5, 0)]
    assert rows[0]["size"] == result["bytes"]
    code, text, _ = run(capsys, "ls", *conn)
    assert code == 0 and "NAME" in text and cid in text and "CliPoint@1.0.0" in text

    for ref in ("pts", cid):
        code, shown, _ = run(capsys, "show", ref, "--json", *conn)
        assert code == 0 and shown["cid"] == cid and shown["metadata"] == {"split": "train"}
        assert shown["versions"] == 1
    code, text, _ = run(capsys, "show", "pts", *conn)
    assert "cid:       " + cid in text and "shards:    5" in text

    code, records, _ = run(capsys, "schemas", "--json", *conn)
    assert [(r["name"], r["version"]) for r in records] == [("CliPoint", "1.0.0")]
    module_class = type_spec.replace(":", ".")
    for ref in (f"local://schemas/{module_class}@1.0.0", module_class, "CliPoint@1.0.0", "CliPoint"):
        code, text, err = run(capsys, "schema", "show", ref, *conn)
        assert code == 0, err
        assert "features  ndarray" in text and "label     int" in text

    # Nothing to collect while the entry exists; everything once it is gone.
    code, report, _ = run(capsys, "gc", "--grace", "0", "--json", *conn, *hive)
    assert code == 0 and report["removed"] == []
    code, removed, _ = run(capsys, "rm", "pts", "--json", *conn)
    assert code == 0 and removed == {"removed": cid, "name": "pts", "shared_with": []}
    code, _, err = run(capsys, "rm", cid, *conn)
    assert code == 1 and "no dataset named or with CID" in err
    code, report, _ = run(capsys, "gc", "--grace", "1h", "--json", *conn, *hive)
    assert report["removed"] == [] and report["kept_recent"] == 6
    code, report, _ = run(capsys, "gc", "--grace", "0", "--dry-run", *conn, *hive)
    assert code == 0 and "would delete 6 object(s)" in report
    code, _, err = run(capsys, "gc", "--grace", "0", "--json", *conn, *hive)
    assert code == 1 and "refusing gc" in err and "--force" in err  # the index is empty now
    code, report, _ = run(capsys, "gc", "--grace", "0", "--force", "--json", *conn, *hive)
    assert len(report["removed"]) == 6
    assert [p.name for p in (root / "hive").rglob("*") if p.is_file()] == ["atdata-hive.json"]
    # Another index may not collect (or write into) this hive.
    other = ["--redis-url", conn[1], "--key-prefix", conn[3] + "other:"]
    code, _, err = run(capsys, "gc", "--grace", "0", *other, *hive)
    assert code == 1 and "belongs to the index with index_id=" in err


def test_names_sharing_content_are_listed_and_removed_one_by_one(
    workdir: tuple[Path, str], conn: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 13 case 2 at the command line: a second name for the same content keeps the first."""
    root, type_spec = workdir
    hive = ["--hive-path", str(root / "hive")]
    source = str(root / "src" / "src-{000000..000002}.tar")
    cids = []
    for name in ("train", "train-copy"):
        code, result, err = run(capsys, "insert", source, "--name", name, "--type", type_spec, "--json", *conn, *hive)
        assert code == 0, err
        cids.append(result["cid"])
    assert cids[0] == cids[1]
    code, rows, _ = run(capsys, "ls", "--json", *conn)
    assert [(r["name"], r["cid"]) for r in rows] == [("train", cids[0]), ("train-copy", cids[0])]
    code, _, err = run(capsys, "rm", cids[0], *conn)
    assert code == 1 and "'train', 'train-copy'" in err and "by name" in err  # nothing removed
    code, removed, _ = run(capsys, "rm", "train-copy", "--json", *conn)
    assert code == 0 and removed == {"removed": cids[0], "name": "train-copy", "shared_with": ["train"]}
    code, rows, _ = run(capsys, "ls", "--json", *conn)
    assert [(r["name"], r["missing_shards"]) for r in rows] == [("train", 0)]
    run(capsys, "insert", source, "--name", "train-copy", "--type", type_spec, *conn, *hive)
    code, text, _ = run(capsys, "rm", "train-copy", *conn)  # not "gc frees its shards": it would not
    assert code == 0 and text.strip().endswith("its shards stay: 'train' uses them"), text
    code, report, _ = run(capsys, "gc", "--grace", "0", "--json", *conn, *hive)
    assert code == 0 and report["removed"] == []  # the shards still belong to "train"


def test_insert_into_s3_with_a_credentials_file(
    workdir: tuple[Path, str], conn: list[str], s3_server: S3Server, capsys: pytest.CaptureFixture[str]
) -> None:
    root, type_spec = workdir
    env_file = root / "s3.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in s3_server.credentials.items()))
    store = ["--hive-path", f"cli-{uuid.uuid4().hex[:12]}/sets", "--s3-credentials", str(env_file)]
    code, result, err = run(
        capsys,
        "insert",
        str(root / "src" / "src-{000000..000002}.tar"),
        "--name",
        "s3pts",
        "--type",
        type_spec,
        "--maxsize",
        "8KiB",
        "--cache-local",
        "--json",
        *conn,
        *store,
    )
    assert code == 0, err
    assert result["data_urls"][0].startswith("s3://") and result["shards"] > 1
    code, newer, err = run(
        capsys,
        "insert",
        str(root / "src" / "src-000000.tar"),
        "--name",
        "s3pts",
        "--type",
        type_spec,
        "--json",
        *conn,
        *store,
    )
    assert code == 0, err
    code, rows, _ = run(capsys, "ls", "--json", "--s3-credentials", str(env_file), *conn)
    assert [(r["cid"], r["versions"]) for r in rows] == [(newer["cid"], 2)]
    code, rows, _ = run(capsys, "ls", "--all", "--json", "--s3-credentials", str(env_file), *conn)
    assert [r["cid"] for r in rows] == [newer["cid"], result["cid"]]
    assert rows[1]["size"] == result["bytes"] and rows[1]["missing_shards"] == 0
    assert rows[0]["size"] == newer["bytes"]
    assert "secret" not in json.dumps(rows) + json.dumps(result)


def test_insert_with_a_schema_ref_instead_of_a_type(
    workdir: tuple[Path, str], conn: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    root, type_spec = workdir
    hive = ["--hive-path", str(root / "hive")]
    source = str(root / "src" / "src-{000000..000002}.tar")
    code, first, _ = run(
        capsys, "insert", source, "--name", "a", "--type", type_spec, "--json", "--no-progress", *conn, *hive
    )
    assert code == 0
    code, second, err = run(
        capsys, "insert", source, "--name", "b", "--schema-ref", first["schema_ref"], "--json", *conn, *hive
    )
    assert code == 0, err
    assert second["cid"] == first["cid"]  # same content, same schema: the same entry, renamed


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["show", "nothing-here"], "no dataset named or with CID 'nothing-here'"),
        (["schema", "show", "Nope@1.0.0"], "no schema 'Nope@1.0.0'"),
        (
            ["insert", "src/src-000000.tar", "--name", "x", "--type", "no_such_module:X"],
            "cannot import 'no_such_module'",
        ),
        (
            ["insert", "src/src-000000.tar", "--name", "x", "--type", "json:JSONDecoder"],
            "is not an @atdata.packable class",
        ),
        (["insert", "src/src-000000.tar", "--name", "x", "--type", "nocolon"], "use MODULE:CLASS"),
    ],
)
def test_errors_are_one_line_and_exit_1(
    workdir: tuple[Path, str], conn: list[str], capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    hive = ["--hive-path", "./hive"] if argv[0] == "insert" else []
    code, out, err = run(capsys, *argv, *conn, *hive)
    assert code == 1
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("atdata: error: ")
    assert message in lines[0], lines[0]
    assert "Traceback" not in err


def test_unreachable_redis_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "ls", "--redis-url", "redis://127.0.0.1:1/0")
    assert code == 1 and "cannot reach Redis at 127.0.0.1:1" in err and len(err.strip().splitlines()) == 1


def test_debug_shows_the_traceback(conn: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "atdata.local.cli", "show", "nope", "--debug", *conn], capture_output=True, text=True
    )
    assert done.returncode != 0 and "Traceback" in done.stderr and "EntryNotFound" in done.stderr


@pytest.mark.parametrize("command", [["ls"], ["show"], ["insert"], ["rm"], ["gc"], ["schemas"], ["schema", "show"]])
def test_every_command_explains_itself(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "--json" in text and "--redis-url" in text and len(text) > 400


def test_insert_from_s3_into_a_directory(
    workdir: tuple[Path, str], conn: list[str], s3_server: S3Server, capsys: pytest.CaptureFixture[str]
) -> None:
    root, type_spec = workdir
    env_file = root / "s3.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in s3_server.credentials.items()))
    remote = S3DataStore(s3_server.credentials, f"src-{uuid.uuid4().hex[:12]}")
    urls = remote.write_shards(atdata.Dataset(str(root / "src" / "src-{000000..000002}.tar")), prefix="in", maxcount=25)
    pattern = urls[0].replace("--000000.tar", "--{000000..000001}.tar")
    code, result, err = run(
        capsys,
        "insert",
        pattern,
        "--name",
        "copied",
        "--type",
        type_spec,
        "--json",
        "--hive-path",
        str(root / "hive"),
        "--s3-credentials",
        str(env_file),
        *conn,
    )
    assert code == 0, err
    assert result["data_urls"][0].startswith("file://") and result["samples"] == 50
