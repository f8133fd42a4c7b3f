"""Every Python file passes ruff's lint and its formatter (configured once in ``ruff.toml``).

A developer runs the same checks with ``uv run ruff check .`` and ``uv run ruff format .``.
"""

from __future__ import annotations

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
