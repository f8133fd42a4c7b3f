"""What every command module shares: its output, ``--json``/``--debug`` and ``--help`` examples.

Command modules import these from here, never from :mod:`atdata.local.cli` (which
imports the command modules): the dependency goes one way, cli -> commands -> _base.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any, TextIO

__all__ = ["Output", "common_options", "examples"]


@dataclass
class Output:
    """Where a command writes its result: JSON for scripts, text for people."""

    json: bool
    stream: TextIO

    def emit(self, data: Any, text: str) -> None:
        """Print ``data`` as JSON under ``--json``, else the human ``text``."""
        if self.json:
            json.dump(data, self.stream, indent=2, default=str)
            self.stream.write("\n")
        else:
            self.stream.write(text.rstrip("\n") + "\n")


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, except that an ``examples:`` epilog keeps one command per line."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("examples:"):
            return "\n".join(indent + line for line in text.splitlines())
        return super()._fill_text(text, width, indent)


def examples(*commands: str) -> dict[str, Any]:
    """Keyword arguments for ``add_parser``: ``--help`` ends with these example commands.

    A first-time user copies an example before reading option lists, so every command has some.
    """
    epilog = "examples:\n" + "\n".join(f"  {command}" for command in commands)
    return {"epilog": epilog, "formatter_class": _HelpFormatter}


def common_options() -> argparse.ArgumentParser:
    """Parent parser with ``--json`` and ``--debug`` for every leaf command.

    Defaults are suppressed so that a flag given before the subcommand
    (``atdata --json local status``) is not reset by the subparser.
    """
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON for scripts")
    parent.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks and debug logs"
    )
    return parent
