"""``atdata adopt``: make this index the owner of a hive, on purpose.

A hive belongs to the index that first inserted into it (``atdata-hive.json``); inserts
and gc through any other index are refused, since gc would take that index's datasets
for garbage. When the owning index is really gone (a flushed or lost Redis), adopting is
the explicit step that lets a new index write there again; what the hive already holds
is recorded and never collected.
"""

from __future__ import annotations

import argparse
from typing import Any

from ._base import Output, common_options, examples
from ._connect import add_index_options, add_store_options, make_repo

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``adopt``."""
    adopt = subparsers.add_parser(
        "adopt",
        help="make this index the owner of a hive whose index is gone",
        description="Record the index named by --redis-url/--key-prefix as the owner of the hive named by "
        "--hive-path, replacing the owner record (or writing one for a hive that has data but none). Only for "
        "a hive whose owning index is gone: every insert already in the hive is listed in the new owner "
        "record and `atdata gc` never deletes it; re-insert that data to index it again.",
        parents=[common_options()],
        **examples("atdata adopt --hive-path my-bucket/datasets --redis-url redis://127.0.0.1:6379/0"),
    )
    add_index_options(adopt)
    add_store_options(adopt)
    adopt.set_defaults(handler=_adopt)


def _adopt(args: argparse.Namespace, out: Output) -> int:
    record = make_repo(args).adopt_hive()
    kept = record["adopted"]["inserts"]
    out.emit(record, f"this index ({record['index']}) now owns the hive; gc keeps the {len(kept)} insert(s) it held")
    return 0
