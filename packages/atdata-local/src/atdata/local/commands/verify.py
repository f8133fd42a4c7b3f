"""``atdata verify NAME|CID|--all``: check stored shards against what their insert recorded.

A thin front end over :meth:`atdata.local.Repo.verify` / ``verify_all``: it prints one
row per shard (or ``--json``) and exits 1 when any shard is missing, of another size or
damaged, so a cron job or CI step can alert on bit rot. An unknown name or CID exits 2
(as a usage error does), so "not there" is never mistaken for "damaged".
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from atdata.errors import EntryNotFound

from .._verify import VerifyReport
from ._base import Output, common_options, examples
from ._connect import add_index_options, add_store_options, make_repo

__all__ = ["register"]

_DESCRIPTION = (
    "Check every shard of a dataset (NAME: its newest version; a CID; or --all: every stored dataset, older "
    "versions included, each CID once) against what its insert recorded: the shard exists, has the recorded "
    "size, and its sha256 and per-chunk digests match (each shard is read once in full). Prints a row per "
    "shard: ok, missing, wrong size, damaged (naming the byte ranges that differ), error (the store failed), "
    "or unchecked (the entry records no digests for it, e.g. made by add_entry from outside URLs; not a "
    "failure). Exit status: 0 all good, 1 any shard failed, 2 no such name or CID. The CID cannot show "
    "damage (it covers the schema ref and the URLs, not the bytes); these digests do. With nothing "
    "configured, uses the local servers of `atdata local up`."
)


def register(subparsers: Any) -> None:
    """Add ``verify``."""
    verify = subparsers.add_parser(
        "verify",
        help="check stored shards (exists, size, sha256, chunk digests); exit 1 on damage",
        description=_DESCRIPTION,
        parents=[common_options()],
        **examples("atdata verify train-v1", "atdata verify bafyrei...", "atdata verify --all --json"),
    )
    which = verify.add_mutually_exclusive_group(required=True)
    which.add_argument("ref", nargs="?", metavar="NAME|CID", help="a dataset name (its newest version) or a CID")
    which.add_argument("--all", action="store_true", help="every stored dataset of the index")
    add_index_options(verify)
    add_store_options(verify)
    verify.set_defaults(handler=_verify)


def _verify(args: argparse.Namespace, out: Output) -> int:
    repo = make_repo(args)
    try:
        reports = list(repo.verify_all()) if args.all else [repo.verify(args.ref)]
    except EntryNotFound as exc:
        print(f"atdata: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    reports.sort(key=lambda report: (report.names, report.cid))
    failed = sum(len(report.failures) for report in reports)
    shards = sum(len(report.shards) for report in reports)
    summary = f"{shards} shard(s) of {len(reports)} dataset(s) checked: " + (f"{failed} failed" if failed else "all ok")
    data = {"ok": not failed, "shards": shards, "failed": failed, "datasets": [r.to_dict() for r in reports]}
    out.emit(data, _table(reports) + "\n" + summary)
    return 1 if failed else 0


def _table(reports: list[VerifyReport]) -> str:
    """NAME, STATUS, SHARD, DETAIL: a row per shard, the names of its dataset first."""
    rows = [("NAME", "STATUS", "SHARD", "DETAIL")]
    for report in reports:
        names = ",".join(report.names) or report.cid
        rows += [(names, check.status, check.url, check.detail) for check in report.shards]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join("  ".join([*(cell.ljust(w) for cell, w in zip(row[:3], widths)), row[3]]).rstrip() for row in rows)
