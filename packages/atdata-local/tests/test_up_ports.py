"""`atdata local up` with ports other than the ones its running servers recorded says so.

A second `up --redis-port P` while this data directory's Redis runs on another port
reuses the running server (nothing is restarted); it used to ignore P silently.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from atdata.local._process import free_port
from atdata.local.cli import main

from .test_local_command import home  # noqa: F401 - the fixture: a fresh ATDATA_HOME, servers stopped after

pytestmark = [pytest.mark.real, pytest.mark.usefixtures("home")]


def test_up_on_other_ports_warns_and_keeps_the_running_servers(capsys: pytest.CaptureFixture[str]) -> None:
    redis_port, s3_port = free_port(), free_port()
    assert main(["local", "up", "--redis-port", str(redis_port), "--s3-port", str(s3_port)]) == 0
    capsys.readouterr()
    other = free_port()
    assert main(["local", "up", "--redis-port", str(other)]) == 0
    captured = capsys.readouterr()
    assert f"atdata: warning: redis already runs on port {redis_port}, not {other}" in captured.err
    assert "s3 already runs" not in captured.err  # --s3-port not given: reusing it is what was asked
    assert f"redis://127.0.0.1:{redis_port}/0" in captured.out
    assert main(["local", "up"]) == 0 and "warning" not in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["0", "65536", "99999", "-1", "abc"])
def test_up_refuses_a_port_that_is_not_a_tcp_port(capsys: pytest.CaptureFixture[str], bad: str) -> None:
    with pytest.raises(SystemExit) as info:
        main(["local", "up", "--redis-port", bad])
    assert info.value.code == 2 and "is not a TCP port" in capsys.readouterr().err
    assert not (Path(os.environ["ATDATA_HOME"]) / "servers.json").exists()
