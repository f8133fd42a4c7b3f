"""The CLI prints a warning as one `atdata: warning:` line (real valkey and rclone).

Python's default shows the file, line number and source line of the warn() call, which
reads like a crash to someone running a command.
"""

from __future__ import annotations

import uuid
import warnings
from pathlib import Path

import pytest

from atdata.local.cli import main
from atdata.local.servers import RedisServer, S3Server

from .conftest import write_source


def test_credentials_warning_is_one_line(
    tmp_path: Path, redis_server: RedisServer, s3_server: S3Server, capsys: pytest.CaptureFixture[str]
) -> None:
    env_file = tmp_path / "s3.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in s3_server.credentials.items()) + "AWS_TYPO=1\n")
    source = write_source(tmp_path / "src", 5)
    shown_before = warnings.showwarning
    code = main([
        "insert", source.shard_list[0], "--name", "w", "--schema-ref", "local://schemas/Missing@1.0.0",
        "--redis-url", redis_server.url, "--key-prefix", f"test-{uuid.uuid4().hex}:",
        "--hive-path", f"warn-{uuid.uuid4().hex[:12]}/sets", "--s3-credentials", str(env_file),
    ])  # fmt: skip
    err = capsys.readouterr().err.splitlines()
    assert code == 1  # the schema is not published: the command still fails as it should
    warned = [line for line in err if "AWS_TYPO" in line]
    assert len(warned) == 1 and warned[0].startswith("atdata: warning: credentials file"), err
    assert not any(".py:" in line for line in err), err
    assert warnings.showwarning is shown_before
