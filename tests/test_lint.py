"""Every Python file passes ruff's lint and its formatter (configured once in ``ruff.toml``),
and no source module or function outgrows its size unless its package README says why.

A developer runs the same checks with ``uv run ruff check .`` and ``uv run ruff format .``.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("check", [["check", "."], ["format", "--check", "."]], ids=["lint", "format"])
def test_ruff_is_clean(check: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *check], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"ruff {' '.join(check)} failed:\n{result.stdout}{result.stderr}"


# -- module and function size -------------------------------------------------------------

MODULE_LINES = 400
FUNCTION_LINES = 60  # docstring included (the root README's Layout section)
SIZE_SECTION = "## Module and function size"
# A README line naming an exception: "- `Class.method` (`atdata/x/y.py`, why...)" for a
# function, "- `atdata/x/y.py` (why...)" for a module; paths are relative to the package's src/.
_EXCEPTION = re.compile(r"^- `(?P<first>[\w./]+)`(?: \(`(?P<path>[\w./]+\.py)`)?")


def _sizes() -> dict[str, int]:
    """Lines of every source module (``pkg/src/path``) and function (``pkg/src/path::Qual.name``)."""
    sizes: dict[str, int] = {}

    def walk(node: ast.AST, where: str, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = prefix + child.name
                sizes[f"{where}::{name}"] = (child.end_lineno or child.lineno) - child.lineno + 1
                walk(child, where, name + ".")
            elif isinstance(child, ast.ClassDef):
                walk(child, where, prefix + child.name + ".")

    for path in sorted(ROOT.glob("packages/*/src/**/*.py")):
        where = path.relative_to(ROOT).as_posix()
        text = path.read_text()
        sizes[where] = len(text.splitlines())
        walk(ast.parse(text), where, "")
    return sizes


def _readme_exceptions() -> set[str]:
    """What the packages' READMEs list under "Module and function size", as :func:`_sizes` names it."""
    listed: set[str] = set()
    for readme in sorted(ROOT.glob("packages/*/README.md")):
        src = readme.parent.relative_to(ROOT).as_posix() + "/src/"
        text = readme.read_text()
        if SIZE_SECTION not in text:
            continue
        section = text.split(SIZE_SECTION, 1)[1].split("\n## ", 1)[0]
        for line in section.splitlines():
            match = _EXCEPTION.match(line)
            if match is None:
                continue
            if match["path"]:
                listed.add(f"{src}{match['path']}::{match['first']}")
            elif match["first"].endswith(".py"):
                listed.add(src + match["first"])
    return listed


def _limit(name: str) -> int:
    return FUNCTION_LINES if "::" in name else MODULE_LINES


def test_no_source_module_or_function_outgrows_its_size_unless_its_readme_says_why() -> None:
    listed = _readme_exceptions()
    over = {name: lines for name, lines in _sizes().items() if lines > _limit(name) and name not in listed}
    assert over == {}, (
        f"over {MODULE_LINES} lines (module) or {FUNCTION_LINES} (function, docstring included): split it "
        f"along a real seam, or say why it stays whole in its package README's {SIZE_SECTION!r} section"
    )


def test_every_size_exception_a_readme_lists_is_still_one() -> None:
    sizes = _sizes()
    stale = sorted(name for name in _readme_exceptions() if sizes.get(name, 0) <= _limit(name))
    assert stale == [], "gone, renamed or back under the limit: remove the README note (or fix its name)"
