"""The five src trees type-check with mypy (STYLE.md: CI type-checks with mypy).

Configuration (namespace layout, libraries without stubs) lives in the root
``pyproject.toml`` under ``[tool.mypy]``, so a developer's ``uv run mypy ...`` and this
test check the same thing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC_TREES = [
    "packages/atdata-core/src",
    "packages/atdata-index-redis/src",
    "packages/atdata-store-s3/src",
    "packages/atdata-local/src",
    "packages/atdata-atmosphere/src",
    "packages/atdata-ray/src",
]


@pytest.mark.slow
def test_src_trees_type_check_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-incremental", *SRC_TREES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert result.returncode == 0, f"mypy found type errors:\n{result.stdout}{result.stderr}"
