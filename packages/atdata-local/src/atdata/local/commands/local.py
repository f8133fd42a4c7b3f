"""``atdata local up|down|status|env``: the embedded Redis and S3 servers behind the defaults.

``LocalIndex()`` connects to localhost:6379 and the spec's ``Repo`` to
http://localhost:9000 with minioadmin/minioadmin; ``atdata local up`` makes both
true on a fresh machine with the servers the atdata-local wheel installed. On other
ports (``--redis-port``/``--s3-port``) it records them (``servers.json``, read through
:mod:`atdata.server_record`), and every command, ``LocalIndex()`` and ``Repo()`` with
nothing configured use the recorded ports; ``env`` prints them as shell exports.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from atdata import server_record
from atdata.errors import LocalServerError

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
        **examples("atdata local up", "atdata local status", 'eval "$(atdata local env)"', "atdata local down"),
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
        "ports, and record their pids and ports in the data directory (servers.json): with nothing "
        "configured, every atdata command and LocalIndex()/Repo() in any new process then use "
        "these ports. `atdata local env` prints them as shell exports.",
        "atdata local up",
        "atdata local up --data-dir /tmp/atdata-home --redis-port 6380 --s3-port 9001",
    )
    up.add_argument("--redis-port", type=_port, help=f"default: {servers.DEFAULT_REDIS_PORT}")
    up.add_argument("--s3-port", type=_port, help=f"default: {servers.DEFAULT_S3_PORT}")
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

    _register_env(add)
    _register_status(add)


def _register_env(add: Any) -> None:
    """``atdata local env`` (``add`` makes an action parser with ``--data-dir``)."""
    env = add(
        "env",
        "print the shell exports that reach the recorded servers",
        "Print `export` lines for the servers `atdata local up` recorded in the data directory: "
        "ATDATA_REDIS_URL (LocalIndex, Repo and every command), AWS_ENDPOINT and AWS_ENDPOINT_URL "
        "(atdata's and boto3's name for the S3 endpoint) and the S3 server's AWS_ACCESS_KEY_ID / "
        "AWS_SECRET_ACCESS_KEY, plus ATDATA_HOME with --data-dir. Use it as "
        '`eval "$(atdata local env)"`, so other tools (boto3, the aws CLI, redis-cli -u "$ATDATA_REDIS_URL") '
        "and programs that do not read the record reach the same servers. Exit 1 if nothing is recorded.",
        'eval "$(atdata local env)"',
        "atdata local env --data-dir /tmp/atdata-home --json",
    )
    env.set_defaults(handler=_env)


def _register_status(add: Any) -> None:
    """``atdata local status``: probes the recorded ports unless ports are given."""
    status = add(
        "status",
        "show both servers and where their data lives",
        "Show whether Redis and S3 answer, who started them, and where their data and logs are; "
        "for an S3 server `up` started, the AWS_* settings that reach it.",
        "atdata local status",
        "atdata local status --json",
    )
    for name, port in (("redis", servers.DEFAULT_REDIS_PORT), ("s3", servers.DEFAULT_S3_PORT)):
        status.add_argument(f"--{name}-port", type=int, help=f"default: the port `up` recorded, else {port}")
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


def _port(text: str) -> int:
    port = int(text) if text.isdigit() else 0
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1-65535)")
    return port


def _up(args: argparse.Namespace, out: Output) -> int:
    wanted = {"redis": args.redis_port, "s3": args.s3_port}  # None: not given
    redis_port, s3_port = args.redis_port or servers.DEFAULT_REDIS_PORT, args.s3_port or servers.DEFAULT_S3_PORT
    entries = servers.up(args.data_dir, redis_port=redis_port, s3_port=s3_port)
    for entry in entries:  # a recorded server keeps its port: say so rather than ignore the option
        if wanted[entry.name] not in (None, entry.port):
            print(
                f"atdata: warning: {entry.name} already runs on port {entry.port}, not {wanted[entry.name]}; "
                "`atdata local down` first to move it",
                file=sys.stderr,
            )
    out.emit([e.to_dict() for e in entries], _table(entries) + _credentials_hint(entries))
    return 0


def _down(args: argparse.Namespace, out: Output) -> int:
    stopped = servers.down(args.data_dir)
    text = "\n".join(f"stopped {e.name} (pid {e.pid}) on {e.url}" for e in stopped) or "nothing to stop"
    out.emit([e.to_dict() for e in stopped], text)
    return 0


def _status(args: argparse.Namespace, out: Output) -> int:
    record = server_record.read_record(args.data_dir)
    ports = {
        name: given or record.get(name, {}).get("port") or default
        for name, given, default in (
            ("redis", args.redis_port, servers.DEFAULT_REDIS_PORT),
            ("s3", args.s3_port, servers.DEFAULT_S3_PORT),
        )
    }
    entries = servers.status(args.data_dir, redis_port=ports["redis"], s3_port=ports["s3"])
    out.emit([e.to_dict() for e in entries], _table(entries) + _credentials_hint(entries))
    return 0


def _env(args: argparse.Namespace, out: Output) -> int:
    home = args.data_dir or server_record.data_dir()
    exports = _exports(home, explicit_home=args.data_dir is not None)
    lines = [f"export {name}={shlex.quote(value)}" for name, value in exports.items()]
    if "ATDATA_REDIS_URL" not in exports:
        lines.append("# no Redis recorded: LocalIndex() uses localhost:6379 (run `atdata local up`)")
    if "AWS_ENDPOINT" in exports and "AWS_ACCESS_KEY_ID" not in exports:
        lines.append("# the S3 server's keys are not recorded: export its own AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
    out.emit(exports, "\n".join(lines))
    return 0


def _exports(home: Path, *, explicit_home: bool) -> dict[str, str]:
    """The variables that reach the servers recorded in ``home`` (see ``env``'s help)."""
    if not server_record.read_record(home):
        raise LocalServerError(
            f"no servers are recorded in {home / server_record.RECORD_FILE}: run `atdata local up` first"
            + ("" if explicit_home else " (or pass the --data-dir it used)")
        )
    exports = {"ATDATA_HOME": str(home)} if explicit_home else {}
    redis_url = server_record.recorded_redis_url(home)
    if redis_url is not None:
        exports["ATDATA_REDIS_URL"] = redis_url
    s3 = server_record.recorded_s3(home)
    if s3 is not None:
        exports["AWS_ENDPOINT"] = exports["AWS_ENDPOINT_URL"] = s3.endpoint_url
        if s3.access_key and s3.secret_key:
            exports["AWS_ACCESS_KEY_ID"], exports["AWS_SECRET_ACCESS_KEY"] = s3.access_key, s3.secret_key
    return exports
