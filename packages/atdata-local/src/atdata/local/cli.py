"""The ``atdata`` command: argparse front end over the command groups in ``commands/``.

Each module in :mod:`atdata.local.commands` adds one command group (``atdata local ...``,
``atdata ls``, ...) through a ``register(subparsers)`` function, so a new command is a
new module and never an edit of this file. A handler receives the parsed arguments and
an :class:`Output`, and returns an exit code (None means 0).

Errors print one line (``atdata: error: ...``) and exit 1 (usage errors: exit 2); notes the error
carries follow, one line each (e.g. which objects a failed insert left for ``gc``); ``--debug`` shows the
traceback instead. ``--json`` makes every command print one JSON document.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import logging
import os
import pkgutil
import sys
import warnings
from collections.abc import Sequence
from typing import Any, NoReturn

from atdata.errors import AtdataError

from . import commands
from ._version import __version__
from .commands._base import Output, common_options, examples

__all__ = ["Output", "build_parser", "common_options", "examples", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line that names the help to read (exit 2).

    Subcommand parsers are made with the parent's class, so this covers every command.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """The full ``atdata`` parser, with every command group found in ``commands/``."""
    parser = _Parser(
        prog="atdata",
        description="Typed ML datasets in WebDataset shards, indexed in Redis, stored in S3.",
        parents=[common_options()],
        **examples(
            "atdata local up",
            "atdata insert 'data-{000000..000009}.tar' --name train-v1 --type mymodule:ImageSample",
            "atdata ls",
            "atdata show train-v1",
        ),
    )
    parser.set_defaults(json=False, debug=False)
    parser.add_argument("--version", action="version", version=f"atdata-local {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for module in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not module.name.startswith("_"):
            importlib.import_module(f"{commands.__name__}.{module.name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``atdata`` command; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    out = Output(json=args.json, stream=sys.stdout)
    try:
        with warnings.catch_warnings():  # restores showwarning (main also runs in-process, in tests)
            if not args.debug:
                warnings.showwarning = functools.partial(_show_warning, set())
            return int(args.handler(args, out) or 0)
    except BrokenPipeError:  # `atdata ... | head`: the reader left, nothing to report
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silences the flush at exit
        return 0
    except KeyboardInterrupt:
        print("atdata: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI's one place that turns errors into a line
        if args.debug:
            raise
        print(f"atdata: error: {_one_line(exc)} (--debug for details)", file=sys.stderr)
        for note in getattr(exc, "__notes__", ()):  # e.g. what a failed insert left for gc
            print(note if note.startswith("atdata: ") else f"atdata: {note}", file=sys.stderr)
        return 1


def _show_warning(shown: set[str], message: Warning | str, *_: Any, **__: Any) -> None:
    """A warning as one ``atdata: warning: ...`` line (not Python's file:line and source
    line), each text once (a credentials file read by two parts of one command warns once)."""
    text = str(message)
    if text not in shown:
        shown.add(text)
        print(f"atdata: warning: {text}", file=sys.stderr)


def _one_line(exc: Exception) -> str:
    """The first line of the message; unexpected (non-atdata) errors also name their type,
    since e.g. a bare ``KeyError`` message is just the quoted key."""
    first = (str(exc).strip().splitlines() or [""])[0]
    if isinstance(exc, AtdataError) and first:
        return first
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
