"""``atdata ls``, ``show``, ``insert``, ``rm`` and ``gc``: the datasets of a Repo from the shell.

Connection defaults are the embedded servers of ``atdata local up`` (see ``_connect``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
from typing import Any, cast

import atdata
from atdata.errors import InvalidArgument
from atdata.index_redis import LocalDatasetEntry, LocalIndex
from atdata.sample import PackableSample
from atdata.urls import expand_urls

from .._progress import InsertProgress
from .._verify import find_entry
from ..repo import DEFAULT_GRACE, DEFAULT_MAXCOUNT, DEFAULT_MAXSIZE
from ._base import Output, common_options, examples
from ._connect import add_index_options, add_store_options, configure_reads, make_index, make_repo
from ._sizes import ShardSizes, SizeProbe, human_bytes

__all__ = ["load_type", "register", "resolve_entry"]

_CONNECTION_HELP = (
    "With nothing configured, commands use the local servers of `atdata local up`, on the ports it "
    "recorded (default: Redis on localhost:6379, S3 on localhost:9000)."
)


_EXAMPLES = {
    "ls": ("atdata ls", "atdata ls --all --json"),
    "show": ("atdata show train-v1", "atdata show bafyrei..."),
    "insert": (
        "atdata insert 'data-{000000..000009}.tar' --name train-v1 --type mymodule:ImageSample",
        "atdata insert s3://bucket/raw/data-000000.tar --name train-v2 --schema-ref "
        'local://schemas/mymodule.ImageSample@1.0.0 --maxcount 10000 --metadata \'{"split": "train"}\'',
    ),
    "rm": ("atdata rm train-v1", "atdata rm bafyrei..."),
    "gc": ("atdata gc --dry-run", "atdata gc --grace 2h"),
}


def _command(subparsers: Any, name: str, help_text: str, description: str, handler: Any) -> argparse.ArgumentParser:
    """A data command: ``--json``/``--debug``, the index options, and its handler."""
    parser = subparsers.add_parser(
        name,
        help=help_text,
        description=f"{description} {_CONNECTION_HELP}",
        parents=[common_options()],
        **examples(*_EXAMPLES[name]),
    )
    add_index_options(parser)
    parser.set_defaults(handler=handler)
    return parser


def register(subparsers: Any) -> None:
    """Add ``ls``, ``show``, ``insert``, ``rm`` and ``gc``."""
    _register_ls(subparsers)
    _register_show(subparsers)
    _register_insert(subparsers)
    _register_rm(subparsers)
    _register_gc(subparsers)


def _register_ls(subparsers: Any) -> None:
    ls = _command(
        subparsers,
        "ls",
        "list indexed datasets (name, CID, schema, shards, samples, size)",
        "List the datasets in the index, sorted by name: the newest version of each name (--all: every "
        "version, newest first) with its CID, schema, number of shards, samples (recorded at insert; '?' if "
        "not) and total size (measured in the store; '?' when the store cannot be read).",
        _ls,
    )
    ls.add_argument("--all", action="store_true", help="every version of each name, not only the newest")
    _add_credentials_only(ls)


def _register_show(subparsers: Any) -> None:
    show = _command(
        subparsers,
        "show",
        "show one dataset by name or CID",
        "Show a dataset: name, CID, schema, data URLs, shards, samples and size (missing shards are reported, exit "
        "1), entry metadata and how many versions the name has.",
        _show,
    )
    show.add_argument("ref", metavar="NAME|CID", help="a dataset name (its newest version) or a CID (bafyrei...)")
    _add_credentials_only(show)


def _register_insert(subparsers: Any) -> None:
    insert = _command(
        subparsers,
        "insert",
        "copy shards into the repo and index them",
        "Copy the samples of a dataset (local tar shards, a brace pattern such as "
        "'data-{000000..000009}.tar', or s3:// URLs) into the hive as new shards, then index them under "
        "--name in one atomic write. Samples are copied without decoding. Shows progress (bytes, shards, "
        "samples/s) on a terminal.",
        _insert,
    )
    insert.add_argument("source", metavar="PATH_OR_URL", help="shards to copy: path, brace pattern or URL")
    insert.add_argument("--name", required=True, help="the dataset name (re-using one adds its newest version)")
    kind = insert.add_mutually_exclusive_group(required=True)
    kind.add_argument(
        "--type",
        metavar="MODULE:CLASS",
        help="the sample class, e.g. mymodule:ImageSample (importable from the current directory)",
    )
    kind.add_argument("--schema-ref", help="a published schema ref instead of a class (see `atdata schemas`)")
    insert.add_argument(
        "--maxcount", type=_size, default=DEFAULT_MAXCOUNT, help="samples per shard (default: %(default)s)"
    )
    insert.add_argument(
        "--maxsize",
        type=_size,
        default=DEFAULT_MAXSIZE,
        help="bytes per shard, e.g. 500M or 1GiB (default: %(default)s)",
    )
    insert.add_argument(
        "--cache-local", action="store_true", help="write each shard to a local temp file, then upload it"
    )
    insert.add_argument(
        "--metadata", type=_json_object, help='entry metadata as a JSON object, e.g. \'{"split": "train"}\''
    )
    insert.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_store_options(insert)


def _register_rm(subparsers: Any) -> None:
    rm = _command(
        subparsers,
        "rm",
        "remove a dataset from the index (its shards stay until gc)",
        "Remove one entry, by CID or the newest under a name (the name then points at its previous version, "
        "if any). Its shards stay in the store until `atdata gc` deletes the ones no entry references.",
        _rm,
    )
    rm.add_argument("ref", metavar="NAME|CID", help="a dataset name (its newest version) or a CID")


def _register_gc(subparsers: Any) -> None:
    gc = _command(
        subparsers,
        "gc",
        "delete shards no dataset references",
        "Delete the objects under the hive that inserts wrote but no index entry references (left by "
        "crashed or failed inserts, or by removed entries). A run is kept while any of its objects is "
        "younger than --grace, so inserts in progress are safe. Use the same --redis-url/--key-prefix as "
        "the inserts: entries of another index do not count as references.",
        _gc,
    )
    gc.add_argument(
        "--grace",
        type=_duration,
        default=DEFAULT_GRACE.total_seconds(),
        help="minimum age, e.g. 30m, 2h, 1d or seconds (default: 1h)",
    )
    gc.add_argument("--dry-run", action="store_true", help="only list what would be deleted")
    gc.add_argument(
        "--force",
        action="store_true",
        help="delete even if the index has no entries at all (gc refuses by default: an index that was "
        "reset, or the wrong Redis, would make every dataset look unreferenced)",
    )
    add_store_options(gc)


def _add_credentials_only(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--s3-credentials",
        metavar="PATH",
        default=os.environ.get("ATDATA_S3_CREDENTIALS"),
        help="credentials .env file for measuring S3 shards (default as for `atdata insert`)",
    )


# -- argument types ---------------------------------------------------------------------

_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


def _size(text: str) -> int | None:
    if text.lower() == "none":
        return None
    match = re.fullmatch(r"\s*(\d+)\s*([A-Za-z]*)\s*", text)
    unit = match[2].upper().removesuffix("B") if match else ""
    unit = unit + "B" if unit.endswith("I") else unit
    if match is None or unit not in _UNITS or int(match[1]) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive count or size (e.g. 10000, 500M, 1GiB, none)")
    return int(match[1]) * _UNITS[unit]


def _duration(text: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 90, 30m, 2h, 1d)")
    return float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError('must be a JSON object such as \'{"split": "train"}\'')
    return value


def load_type(spec: str) -> type[PackableSample]:
    """The class named ``module:Class`` (the current directory is importable, as for python -m)."""
    module_name, sep, class_name = spec.partition(":")
    if not sep or not module_name or not class_name:
        raise InvalidArgument(f"--type {spec!r} is invalid: use MODULE:CLASS, e.g. mymodule:ImageSample")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidArgument(f"--type {spec!r}: cannot import {module_name!r} ({exc})") from exc
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, PackableSample)):
        raise InvalidArgument(f"--type {spec!r}: {module_name}.{class_name} is not an @atdata.packable class")
    return cls


# -- entries ----------------------------------------------------------------------------


def resolve_entry(index: LocalIndex, ref: str) -> LocalDatasetEntry:
    """The entry with CID ``ref``, else the newest named ``ref`` (the rule ``Repo.verify`` uses)."""
    return cast("LocalDatasetEntry", find_entry(index, ref))


def _describe(entry: LocalDatasetEntry, sizes: ShardSizes | None, shards: int) -> dict[str, Any]:
    return {
        "name": entry.name,
        "cid": entry.cid,
        "schema_ref": entry.schema_ref,
        "data_urls": entry.data_urls,
        "shards": shards,
        "samples": atdata.Dataset(entry.data_urls).num_samples,  # recorded at insert; None: unknown
        "size": None if sizes is None else sizes.total,
        "missing_shards": None if sizes is None else sizes.missing,
        "metadata": entry.metadata,
    }


def _size_text(row: dict[str, Any]) -> str:
    if row["size"] is None:
        return "?"
    missing = f" ({row['missing_shards']} missing)" if row["missing_shards"] else ""
    return human_bytes(row["size"]) + missing


def _count_text(row: dict[str, Any]) -> str:
    return "?" if row["samples"] is None else f"{row['samples']:,}"


def _short_schema(ref: str) -> str:
    return ref.removeprefix("local://schemas/")


def _ls(args: argparse.Namespace, out: Output) -> int:
    index = make_index(args)
    probe = SizeProbe(configure_reads(args))
    rows = []
    for entry, versions in _listing(index, every_version=args.all):
        shards = expand_urls(entry.data_urls)
        rows.append({**_describe(entry, probe.measure(shards), len(shards)), "versions": versions})
    table = [("NAME", "CID", "SCHEMA", "SHARDS", "SAMPLES", "SIZE")] + [
        (r["name"], r["cid"], _short_schema(r["schema_ref"]), str(r["shards"]), _count_text(r), _size_text(r))
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(6)]
    text = "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table)
    out.emit(rows, text if rows else f"no datasets in {index!r}")
    _warn_sizes(probe)
    return 0


def _listing(index: LocalIndex, *, every_version: bool) -> list[tuple[LocalDatasetEntry, int]]:
    """Entries by name; per name the newest only, or every version newest first."""
    listing = []
    for name in sorted(entry.name for entry in index.all_entries):
        versions = index.get_entry_versions(name)
        listing += [(entry, len(versions)) for entry in (versions if every_version else versions[:1])]
    return listing


def _show(args: argparse.Namespace, out: Output) -> int:
    index = make_index(args)
    entry = resolve_entry(index, args.ref)
    probe = SizeProbe(configure_reads(args))
    shards = expand_urls(entry.data_urls)
    row = _describe(entry, probe.measure(shards), len(shards))
    row["versions"] = len(index.get_entry_versions(entry.name))
    lines = [
        f"name:      {row['name']}",
        f"cid:       {row['cid']}",
        f"schema:    {row['schema_ref']}",
        *(f"data_url:  {url}" for url in entry.data_urls),
        f"shards:    {row['shards']}",
        f"samples:   {_count_text(row)}",
        f"size:      {_size_text(row)}",
        f"metadata:  {json.dumps(row['metadata'])}",
        f"versions:  {row['versions']} under this name",
    ]
    out.emit(row, "\n".join(lines))
    _warn_sizes(probe)
    if row["missing_shards"]:
        print(f"atdata: error: {row['missing_shards']} of {row['shards']} shards are missing", file=sys.stderr)
        return 1
    return 0


def _warn_sizes(probe: SizeProbe) -> None:
    if probe.errors:
        print(f"atdata: warning: sizes unknown: {probe.errors[0]}", file=sys.stderr)


def _insert(args: argparse.Namespace, out: Output) -> int:
    repo = make_repo(args)
    if args.type:
        dataset: atdata.Dataset[Any] = atdata.Dataset(args.source, sample_type=load_type(args.type))
    else:
        dataset = atdata.Dataset(args.source)
    tracker = InsertProgress(bar=not args.no_progress, description=args.name)
    try:
        entry, stored = repo.insert(
            dataset,
            name=args.name,
            cache_local=args.cache_local,
            maxcount=args.maxcount,
            maxsize=args.maxsize,
            schema_ref=args.schema_ref,
            metadata=args.metadata,
            progress=tracker,
        )
    finally:
        tracker.close()
    result = {
        "name": entry.name,
        "cid": entry.cid,
        "schema_ref": entry.schema_ref,
        "data_urls": entry.data_urls,
        "shards": len(stored.shard_list),
        "samples": tracker.samples,
        "bytes": tracker.bytes,
        "seconds": round(tracker.seconds, 3),
        "samples_per_second": round(tracker.samples_per_second, 1),
    }
    text = (
        f"inserted {entry.name!r}: {tracker.samples} samples in {len(stored.shard_list)} shards "
        f"({human_bytes(tracker.bytes)}, {tracker.samples_per_second:,.0f} samples/s)\n"
        f"cid:      {entry.cid}\nschema:   {entry.schema_ref}\ndata_url: {entry.data_urls[0]}"
    )
    out.emit(result, text)
    return 0


def _rm(args: argparse.Namespace, out: Output) -> int:
    index = make_index(args)
    entry = resolve_entry(index, args.ref)
    # By name: exactly that name's newest version. By CID: refused (AmbiguousEntry, naming
    # them) when several names share it, so no name is dropped that the user did not give.
    index.remove_entry(entry.cid if args.ref == entry.cid else entry)
    sharing = [other.name for other in index.all_entries if other.cid == entry.cid]  # their shards are these
    after = f"its shards stay: {', '.join(map(repr, sharing))} uses them" if sharing else "`atdata gc` frees its shards"
    out.emit(
        {"removed": entry.cid, "name": entry.name, "shared_with": sharing},
        f"removed {entry.name!r} ({entry.cid}); {after}",
    )
    return 0


def _gc(args: argparse.Namespace, out: Output) -> int:
    repo = make_repo(args)
    report = repo.gc(args.grace, dry_run=args.dry_run, force=args.force)
    verb = "would delete" if report.dry_run else "deleted"
    lines = [f"{verb} {len(report.removed)} object(s), {human_bytes(report.removed_bytes)}"]
    lines += [f"  {url}" for url in report.removed]
    if report.kept_recent:
        lines.append(f"kept {report.kept_recent} unreferenced object(s) younger than the grace period")
    if report.kept_adopted:
        lines.append(f"kept {report.kept_adopted} object(s) the hive held when it was adopted")
    out.emit(report.to_dict(), "\n".join(lines))
    return 0
