"""``atdata local up|down|status``: the embedded Redis and S3 servers behind the defaults.

``LocalIndex()`` connects to localhost:6379 and the spec's ``Repo`` to
http://localhost:9000 with minioadmin/minioadmin; ``atdata local up`` makes both
true on a fresh machine with the servers the atdata-local wheel installed.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .. import servers
from ._base import Output, common_options, examples

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``atdata local`` and its subcommands."""
    group = subparsers.add_parser(
        "local",
        help="start, stop and inspect the local Redis and S3 servers",
        description=(
            "Run a real Redis server (valkey) on localhost:6379 and a real S3-compatible "
            "server (rclone serve s3, credentials minioadmin/minioadmin) on localhost:9000, "
            "the defaults LocalIndex() and Repo use. State lives under the data directory: "
            "--data-dir, else $ATDATA_HOME, else ~/.atdata."
        ),
        **examples("atdata local up", "atdata local status", "atdata local down"),
    )
    actions = group.add_subparsers(title="actions", metavar="ACTION", required=True)

    def add(name: str, help_text: str, description: str, *example_commands: str) -> argparse.ArgumentParser:
        parser = actions.add_parser(
            name, help=help_text, description=description, parents=[common_options()], **examples(*example_commands)
        )
        parser.add_argument(
            "--data-dir",
            type=Path,
            default=None,
            help="where the servers keep their state (default: $ATDATA_HOME or ~/.atdata)",
        )
        return parser

    up = add(
        "up",
        "start both servers (reusing any already running)",
        "Start Redis (AOF persistence) and S3 unless something already serves their "
        "ports, and record their pids and ports in the data directory.",
        "atdata local up",
        "atdata local up --data-dir /tmp/atdata-home --redis-port 6380 --s3-port 9001",
    )
    up.add_argument("--redis-port", type=int, default=servers.DEFAULT_REDIS_PORT, help="default: %(default)s")
    up.add_argument("--s3-port", type=int, default=servers.DEFAULT_S3_PORT, help="default: %(default)s")
    up.set_defaults(handler=_up)

    down = add(
        "down",
        "stop the servers `atdata local up` started",
        "Stop the servers recorded in the data directory; their data stays on disk. "
        "Servers that were already running before `up` are left alone.",
        "atdata local down",
        "atdata local down --data-dir /tmp/atdata-home",
    )
    down.set_defaults(handler=_down)

    status = add(
        "status",
        "show both servers and where their data lives",
        "Show whether Redis and S3 answer, who started them, and where their data and logs are; "
        "for an S3 server `up` started, the AWS_* settings that reach it.",
        "atdata local status",
        "atdata local status --json",
    )
    status.add_argument("--redis-port", type=int, default=servers.DEFAULT_REDIS_PORT, help="default: %(default)s")
    status.add_argument("--s3-port", type=int, default=servers.DEFAULT_S3_PORT, help="default: %(default)s")
    status.set_defaults(handler=_status)


def _describe(entry: servers.ServerStatus) -> str:
    state = "running" if entry.running else "stopped"
    if entry.running and not entry.managed:
        state += " (not started by atdata; reused as is)"
    lines = [f"{entry.name:<6} {state:<8} {entry.url}"]
    if entry.pid is not None:
        lines.append(f"       pid {entry.pid}")
    if entry.data_dir:
        lines.append(f"       data {entry.data_dir}")
    if entry.log:
        lines.append(f"       log  {entry.log}")
    if entry.note:
        lines.append(f"       note: {entry.note}")
    return "\n".join(lines)


def _table(entries: list[servers.ServerStatus]) -> str:
    return "\n".join(_describe(entry) for entry in entries)


def _credentials_hint(entries: list[servers.ServerStatus]) -> str:
    """The AWS_* line for an S3 server atdata started (so its keys are the spec's defaults).

    Empty for a server atdata did not start or that is stopped: its keys are not known.
    ``status`` repeats it, so a new shell need not scroll back to ``up``'s output.
    """
    s3 = next(e for e in entries if e.name == "s3")
    if not (s3.running and s3.managed):
        return ""
    return (
        f"\nS3 credentials (the spec's defaults): AWS_ENDPOINT={s3.url} "
        f"AWS_ACCESS_KEY_ID={servers.DEFAULT_S3_ACCESS_KEY} AWS_SECRET_ACCESS_KEY={servers.DEFAULT_S3_SECRET_KEY}"
    )


def _up(args: argparse.Namespace, out: Output) -> int:
    entries = servers.up(args.data_dir, redis_port=args.redis_port, s3_port=args.s3_port)
    out.emit([e.to_dict() for e in entries], _table(entries) + _credentials_hint(entries))
    return 0


def _down(args: argparse.Namespace, out: Output) -> int:
    stopped = servers.down(args.data_dir)
    text = "\n".join(f"stopped {e.name} (pid {e.pid}) on {e.url}" for e in stopped) or "nothing to stop"
    out.emit([e.to_dict() for e in stopped], text)
    return 0


def _status(args: argparse.Namespace, out: Output) -> int:
    entries = servers.status(args.data_dir, redis_port=args.redis_port, s3_port=args.s3_port)
    out.emit([e.to_dict() for e in entries], _table(entries) + _credentials_hint(entries))
    return 0
