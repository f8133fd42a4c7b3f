"""Every ``atdata`` command's ``--help`` ends with runnable examples of that command."""

from __future__ import annotations

import argparse

import pytest

from atdata.local.cli import build_parser, main

Command = tuple[tuple[str, ...], argparse.ArgumentParser]


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[Command]:
    found = [(path, parser)]
    for action in parser._actions:  # argparse exposes subcommands only through this list
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _commands(sub, (*path, name))
    return found


COMMANDS = _commands(build_parser())


def test_every_command_is_walked() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"", "ls", "insert", "local up", "schema show"} <= names


@pytest.mark.parametrize(("path", "parser"), COMMANDS, ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_help_shows_examples_of_this_command(path: tuple[str, ...], parser: argparse.ArgumentParser) -> None:
    text = parser.format_help()
    assert "examples:" in text
    examples = text.split("examples:", 1)[1].splitlines()
    commands = [line.strip() for line in examples if line.strip().startswith("atdata")]
    assert commands, text
    # one example per line, kept as written (not re-wrapped into a paragraph)
    assert all(c.startswith(" ".join(("atdata", *path))) for c in commands), commands


@pytest.mark.parametrize(
    "argv",
    [
        ["insert", "data.tar", "--name", "n", "--type", "m:C", "--maxcount", "0"],
        ["gc", "--grace", "soon"],
        ["bogus"],
        ["local", "up", "--redis-port", "high"],
    ],
)
def test_usage_errors_are_one_line_naming_the_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("atdata") and "error:" in lines[0] and "--help" in lines[0]
