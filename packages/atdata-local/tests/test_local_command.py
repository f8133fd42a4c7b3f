"""`atdata local up|down|status` and the CLI's error and --json conventions."""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import redis

from atdata.errors import LocalServerError
from atdata.local import servers
from atdata.local._process import free_port, pid_alive
from atdata.local.cli import main

pytestmark = pytest.mark.real


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh ATDATA_HOME; whatever `up` started there is stopped afterwards."""
    path = tmp_path / "atdata-home"
    monkeypatch.setenv("ATDATA_HOME", str(path))
    yield path
    servers.down(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any, str]:
    """Run the CLI in-process; returns (exit code, parsed --json stdout or text, stderr)."""
    code = main(list(argv))
    captured = capsys.readouterr()
    out: Any = json.loads(captured.out) if "--json" in argv and captured.out else captured.out
    return code, out, captured.err


def test_up_status_down_roundtrip_keeps_data(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ports = ["--redis-port", str(free_port()), "--s3-port", str(free_port())]
    code, entries, _ = run(capsys, "local", "up", "--json", *ports)
    assert code == 0
    by_name = {e["name"]: e for e in entries}
    assert by_name["redis"]["running"] and by_name["redis"]["managed"]
    assert by_name["s3"]["running"] and by_name["s3"]["managed"]
    assert by_name["redis"]["data_dir"] == str(home.resolve() / "redis")
    assert by_name["s3"]["data_dir"] == str(home.resolve() / "s3")
    assert json.loads((home / "servers.json").read_text())["redis"]["pid"] == by_name["redis"]["pid"]

    r = redis.Redis.from_url(by_name["redis"]["url"])
    r.set("atdata:test:persisted", b"yes")
    r.close()
    s3 = boto3.client(
        "s3",
        endpoint_url=by_name["s3"]["url"],
        aws_access_key_id="minioadmin",
        aws_secret_access_key="minioadmin",
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket="datasets-bucket")
    s3.put_object(Bucket="datasets-bucket", Key="training/x.tar", Body=b"tar")

    # A second `up` reuses the running servers instead of starting new ones.
    code, again, _ = run(capsys, "local", "up", "--json", *ports)
    assert code == 0 and [e["pid"] for e in again] == [e["pid"] for e in entries]

    code, text, _ = run(capsys, "local", "status", *ports)
    assert code == 0 and "running" in text and str(home.resolve() / "redis") in text
    # status repeats the AWS_* line that up prints, for a shell opened after `up`
    code, up_text, _ = run(capsys, "local", "up", *ports)
    hint = (
        f"S3 credentials (the spec's defaults): AWS_ENDPOINT={by_name['s3']['url']} "
        "AWS_ACCESS_KEY_ID=minioadmin AWS_SECRET_ACCESS_KEY=minioadmin"
    )
    assert code == 0 and up_text.splitlines()[-1] == hint == text.splitlines()[-1]

    code, stopped, _ = run(capsys, "local", "down", "--json")
    assert code == 0 and {e["name"] for e in stopped} == {"redis", "s3"}
    assert not any(pid_alive(e["pid"]) for e in entries)
    code, after, _ = run(capsys, "local", "status", "--json", *ports)
    assert not any(e["running"] for e in after)
    code, text, _ = run(capsys, "local", "status", *ports)
    assert code == 0 and "AWS_" not in text  # a stopped server's keys help nobody

    # Restarted, both servers serve the data kept under the data directory.
    code, restarted, _ = run(capsys, "local", "up", "--json", *ports)
    assert code == 0
    r = redis.Redis.from_url(restarted[0]["url"])
    assert r.get("atdata:test:persisted") == b"yes"
    r.close()
    assert s3.get_object(Bucket="datasets-bucket", Key="training/x.tar")["Body"].read() == b"tar"


def test_up_reuses_a_server_it_did_not_start_and_down_leaves_it(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with servers.start_redis(tmp_path / "theirs") as theirs:
        code, entries, _ = run(
            capsys, "local", "up", "--json", "--redis-port", str(theirs.port), "--s3-port", str(free_port())
        )
        assert code == 0
        redis_entry = entries[0]
        assert redis_entry["running"] and not redis_entry["managed"] and redis_entry["pid"] is None
        assert redis_entry["data_dir"] is None  # not ours: we do not know where it keeps data
        code, stopped, _ = run(capsys, "local", "down", "--json")
        assert [e["name"] for e in stopped] == ["s3"]
        assert theirs.process is not None and theirs.process.running()


def test_status_of_stopped_servers_says_where_the_data_lives(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ports = ["--redis-port", str(free_port()), "--s3-port", str(free_port())]
    code, entries, _ = run(capsys, "local", "status", "--json", *ports)
    assert code == 0
    assert [(e["name"], e["running"], e["managed"]) for e in entries] == [("redis", False, False), ("s3", False, False)]
    assert [e["data_dir"] for e in entries] == [str(home.resolve() / "redis"), str(home.resolve() / "s3")]
    code, text, _ = run(capsys, "local", "status", *ports)
    assert "stopped" in text and str(home.resolve() / "s3") in text


def test_port_taken_by_another_program_is_one_line_error(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        code, _, err = run(capsys, "local", "up", "--redis-port", str(port), "--s3-port", str(free_port()))
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("atdata: error: ")
    assert f"port {port}" in err and "--redis-port" in err


def test_a_web_server_on_the_s3_port_is_not_taken_for_s3(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        port = web.server_address[1]
        code, _, err = run(capsys, "local", "up", "--redis-port", str(free_port()), "--s3-port", str(port))
    finally:
        web.shutdown()
        web.server_close()
    assert code == 1 and f"port {port}" in err and "does not speak the S3 protocol" in err


def test_an_s3_server_already_on_the_port_is_adopted(
    home: Path, moto_s3_server: servers.S3Server, capsys: pytest.CaptureFixture[str]
) -> None:
    code, entries, _ = run(
        capsys, "local", "up", "--json", "--redis-port", str(free_port()), "--s3-port", str(moto_s3_server.port)
    )
    assert code == 0
    s3_entry = entries[1]
    assert s3_entry["running"] and not s3_entry["managed"] and s3_entry["url"] == moto_s3_server.endpoint_url
    assert s3_entry["note"] is None  # moto accepts any keys


def test_an_adopted_s3_server_that_refuses_the_default_keys_gets_a_note(
    home: Path, s3_server: servers.S3Server, capsys: pytest.CaptureFixture[str]
) -> None:
    ports = ["--redis-port", str(free_port()), "--s3-port", str(s3_server.port)]
    code, text, _ = run(capsys, "local", "up", *ports)
    assert code == 0
    assert "note: this S3 server was not started by atdata and refuses access key 'minioadmin'" in text
    assert s3_server.secret_key not in text
    code, text, _ = run(capsys, "local", "status", *ports)
    assert code == 0 and "refuses access key" in text
    assert "AWS_" not in text and s3_server.secret_key not in text  # its keys are not ours to print


def test_debug_shows_the_traceback(home: Path) -> None:
    home.mkdir(parents=True)
    (home / "servers.json").write_text("{not json")
    with pytest.raises(LocalServerError, match="servers.json"):
        main(["local", "status", "--debug"])
    (home / "servers.json").unlink()


def test_corrupt_state_file_names_the_file(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home.mkdir(parents=True)
    (home / "servers.json").write_text("{not json")
    code, _, err = run(capsys, "local", "status")
    assert code == 1 and "servers.json" in err and "Traceback" not in err
    (home / "servers.json").unlink()


def test_data_dir_option_beats_atdata_home(home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "elsewhere"
    code, entries, _ = run(
        capsys, "local", "up", "--json", "--data-dir", str(other),
        "--redis-port", str(free_port()), "--s3-port", str(free_port()),
    )  # fmt: skip
    try:
        assert code == 0 and entries[0]["data_dir"] == str(other.resolve() / "redis")
        assert not (home / "servers.json").exists()
    finally:
        servers.down(other)


def test_console_script_help_and_usage_errors() -> None:
    atdata = Path(sys.executable).parent / "atdata"
    shown = subprocess.run([atdata, "local", "--help"], capture_output=True, text=True, check=True)
    assert "up" in shown.stdout and "status" in shown.stdout and "~/.atdata" in shown.stdout
    wrong = subprocess.run([atdata, "local", "sideways"], capture_output=True, text=True)
    assert wrong.returncode == 2 and "invalid choice" in wrong.stderr


def test_concurrent_ups_start_each_server_once(home: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    redis_port, s3_port = free_port(), free_port()
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: servers.up(home, redis_port=redis_port, s3_port=s3_port), range(2)))
    pids = [[entry.pid for entry in result] for result in results]
    assert pids[0] == pids[1] and all(pids[0])
    assert all(entry.managed and entry.running for result in results for entry in result)


def test_unexpected_errors_name_their_type(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise KeyError("redis")

    monkeypatch.setattr(servers, "status", broken)
    code, _, err = run(capsys, "local", "status")
    assert code == 1 and err == "atdata: error: KeyError: 'redis' (--debug for details)\n"
