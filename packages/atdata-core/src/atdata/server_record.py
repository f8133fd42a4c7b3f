"""The record ``atdata local up`` keeps of the servers it runs, readable by any package.

``atdata local up`` (atdata-local) starts Redis and an S3 server and writes
``servers.json`` in its data directory: ``$ATDATA_HOME``, else ``~/.atdata``. The index
and the S3 store read it through this module, without importing ``atdata.local``, so a
fresh process with nothing configured finds the servers (and the S3 server's keys) that
``up`` started. The file is a JSON object, one member per server::

    {
      "redis": {"port": 6379, "pid": 4242, "data_dir": "...", "log": "..."},
      "s3": {"port": 9000, "pid": 4243, "data_dir": "...", "log": "...",
             "endpoint_url": "http://127.0.0.1:9000",
             "access_key": "minioadmin", "secret_key": "minioadmin"}
    }

Only ``port`` is required; the servers listen on 127.0.0.1. The S3 keys are there
because the embedded server enforces them; ``up`` writes the file readable by its owner
only (mode 0600). A missing or unreadable record means "no embedded servers": callers
fall back to their defaults.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["HOST", "RECORD_FILE", "RecordedS3", "data_dir", "read_record", "recorded_redis_url", "recorded_s3"]

log = logging.getLogger(__name__)

RECORD_FILE = "servers.json"
HOST = "127.0.0.1"


def data_dir() -> Path:
    """Where the embedded servers keep their state: ``$ATDATA_HOME``, else ``~/.atdata``."""
    return Path(os.environ.get("ATDATA_HOME") or Path.home() / ".atdata").expanduser()


def read_record(home: Path | None = None) -> dict[str, dict[str, Any]]:
    """The servers recorded in ``home`` (default :func:`data_dir`); ``{}`` when there is no usable record."""
    path = (home or data_dir()) / RECORD_FILE
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("ignoring %s: %s (run `atdata local up` to rewrite it)", path, exc)
        return {}
    if not isinstance(record, dict):
        return {}
    return {name: entry for name, entry in record.items() if isinstance(entry, dict) and _port(entry) is not None}


@dataclass(frozen=True)
class RecordedS3:
    """The embedded S3 server as recorded: where it listens and the keys it enforces."""

    endpoint_url: str
    access_key: str | None
    secret_key: str | None = field(repr=False)
    record: Path


def recorded_s3(home: Path | None = None) -> RecordedS3 | None:
    """The S3 server ``atdata local up`` recorded, or None."""
    home = home or data_dir()
    entry = read_record(home).get("s3")
    if entry is None:
        return None
    endpoint = entry.get("endpoint_url") or f"http://{HOST}:{_port(entry)}"
    keys = [
        entry.get(k) if isinstance(entry.get(k), str) and entry.get(k) else None for k in ("access_key", "secret_key")
    ]
    return RecordedS3(str(endpoint), keys[0], keys[1], home / RECORD_FILE)


def recorded_redis_url(home: Path | None = None) -> str | None:
    """``redis://127.0.0.1:{port}/0`` of the Redis ``atdata local up`` recorded, or None."""
    entry = read_record(home).get("redis")
    return None if entry is None else f"redis://{HOST}:{_port(entry)}/0"


def _port(entry: dict[str, Any]) -> int | None:
    port = entry.get("port")
    return port if isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536 else None
