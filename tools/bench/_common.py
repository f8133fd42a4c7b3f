"""What every benchmark script shares with ``tools/bench/run``: the ``--json`` row format.

A benchmark script prints its own table for people and, given ``--json PATH``, also
writes a JSON list of rows, one per measured operation and dataset size::

    {"operation": "read training ordered/32",  # what was measured, one line
     "ours": 41234.5,                          # our throughput (higher is better)
     "baseline": 38000.1,                      # the baseline's, same run and data; null if none
     "baseline_name": "webdataset + msgpack",  # what the baseline is
     "unit": "samples/s",
     "ratio": 1.085,                           # ours / baseline; null without a baseline
     "peak_rss_mb": 121.0,                     # peak RSS of our side (MiB); null if not measured
     "size": "4x (40000 samples)"}             # the dataset size measured: 1x, 4x, 16x ...

``tools/bench/run`` runs every ``tools/bench/*.py`` that does not start with ``_`` with
``--json PATH`` (plus ``--quick`` when the script's ``--help`` offers it, or the small
sizes ``run`` knows for it) and writes BENCHMARKS.md from the rows.

Scripts import this module as ``from _common import ...``: Python puts the script's own
directory first on ``sys.path``.
"""

from __future__ import annotations

import argparse
import json
import resource
from typing import Any

__all__ = ["add_json_flag", "boto3_client", "peak_rss_mb", "result_row", "write_rows"]


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    """``--json PATH``: also write the result rows (this module's format) to PATH."""
    parser.add_argument("--json", metavar="PATH", help="also write result rows (tools/bench/_common.py format) to PATH")


def result_row(
    operation: str,
    ours: float,
    baseline: float | None,
    unit: str,
    *,
    size: str,
    baseline_name: str | None = None,
    peak_rss_mb: float | None = None,
) -> dict[str, Any]:
    """One row; ``ratio`` is derived so that every script computes it the same way."""
    return {
        "operation": operation,
        "ours": ours,
        "baseline": baseline,
        "baseline_name": baseline_name,
        "unit": unit,
        "ratio": ours / baseline if baseline else None,
        "peak_rss_mb": peak_rss_mb,
        "size": size,
    }


def write_rows(path: str | None, rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` to ``path`` as JSON (nothing when ``path`` is None: no ``--json`` given)."""
    if path is None:
        return
    with open(path, "w") as fh:
        json.dump(rows, fh, indent=1)


def boto3_client(credentials: dict[str, str], config: Any = None) -> Any:
    """The baselines' plain boto3 S3 client for ``credentials`` (the ``AWS_*`` dict servers give).

    boto3 is imported here, not at the top: scripts that never touch S3 import this module too.
    """
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=credentials["AWS_ENDPOINT"],
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
        config=config,
    )


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
