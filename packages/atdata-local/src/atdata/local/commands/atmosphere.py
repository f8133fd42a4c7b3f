"""``atdata promote NAME`` and ``atdata atmosphere ls|show``: publishing to and reading from a PDS.

The password comes from ``$ATDATA_PDS_PASSWORD`` or a prompt, never from an argument
(arguments land in shell history and ``ps``) and never in a log line. Reads need no
login: ``--repo`` names any repository (DID or handle).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any

from atdata.atmosphere import AtmosphereClient, AtmosphereEntry, AtmosphereIndex
from atdata.errors import AtmosphereAuthError, InvalidArgument
from atdata.promote import promote_to_atmosphere

from ._base import Output, common_options, examples
from ._connect import add_index_options, add_store_options, configure_reads, make_index
from .data import resolve_entry

__all__ = ["PASSWORD_ENV", "register"]

#: Where `atdata promote` takes the account's (app) password from, before prompting.
PASSWORD_ENV = "ATDATA_PDS_PASSWORD"
_DEFAULT_PDS = os.environ.get("ATDATA_PDS_URL", "https://bsky.social")


def register(subparsers: Any) -> None:
    """Add ``promote`` and ``atmosphere ls|show``."""
    promote = subparsers.add_parser(
        "promote",
        help="publish a local dataset to an ATProto PDS",
        description="Publish the local entry NAME (or CID) to the account's repository: its schema, then one "
        "science.alt.dataset.entry record (S3 URLs kept, or shards uploaded as blobs with --blobs). Atomic and "
        f"repeatable: promoting again returns the same AT-URI. The password is read from ${PASSWORD_ENV}, "
        "else prompted for; it is never an argument.",
        parents=[common_options()],
        **examples(
            "ATDATA_PDS_PASSWORD=... atdata promote train-v1 --pds http://127.0.0.1:2583 --handle alice.test",
            "atdata promote train-v1 --handle alice.bsky.social --tag images --license MIT --blobs",
        ),
    )
    promote.add_argument("ref", metavar="NAME", help="local entry name or CID")
    _add_pds(promote)
    promote.add_argument("--handle", required=True, help="account handle (or DID) to publish as")
    promote.add_argument("--name", dest="published_name", help="published name (default: the local name)")
    promote.add_argument("--description", help="description of the dataset")
    promote.add_argument("--tag", action="append", default=[], help="a discovery tag (repeatable)")
    promote.add_argument("--license", help="license, an SPDX identifier such as MIT")
    promote.add_argument("--blobs", action="store_true", help="upload the shards as PDS blobs (50 MiB each at most)")
    promote.add_argument("--republish", action="store_true", help="publish a new record even if promoted before")
    add_index_options(promote)
    add_store_options(promote)
    promote.set_defaults(handler=_promote)

    group = subparsers.add_parser(
        "atmosphere",
        help="datasets in an ATProto repository",
        description="List or show the dataset entries of a repository on a PDS (no login needed).",
        **examples("atdata atmosphere ls --pds http://127.0.0.1:2583 --repo alice.test"),
    )
    actions = group.add_subparsers(title="actions", metavar="ACTION", required=True)
    ls = actions.add_parser(
        "ls",
        help="list a repo's dataset entries",
        description="List the dataset entries of --repo: name, AT-URI, atdata CID, storage, shards.",
        parents=[common_options()],
        **examples("atdata atmosphere ls --pds http://127.0.0.1:2583 --repo alice.test --json"),
    )
    show = actions.add_parser(
        "show",
        help="show one dataset entry",
        description="Show one entry of --repo (REF: AT-URI, atdata CID or name) with its schema's fields.",
        parents=[common_options()],
        **examples("atdata atmosphere show train-v1 --pds http://127.0.0.1:2583 --repo alice.test"),
    )
    show.add_argument("ref", metavar="REF", help="AT-URI, atdata CID or name")
    for parser, handler in ((ls, _ls), (show, _show)):
        _add_pds(parser)
        parser.add_argument("--repo", required=True, help="the repository: a DID or a handle")
        parser.set_defaults(handler=handler)


def _add_pds(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pds", default=_DEFAULT_PDS, help="PDS URL (default: $ATDATA_PDS_URL, else %(default)s)")


def _password(handle: str) -> str:
    password = os.environ.get(PASSWORD_ENV)
    if password:
        return password
    if not sys.stdin.isatty():
        raise AtmosphereAuthError(f"no password for {handle}: set ${PASSWORD_ENV} (no terminal to prompt on)")
    return getpass.getpass(f"password for {handle}: ")


def _promote(args: argparse.Namespace, out: Output) -> int:
    configure_reads(args)  # shards are read (checksums) with the command's S3 credentials
    index = make_index(args)
    entry = resolve_entry(index, args.ref)
    client = AtmosphereClient(base_url=args.pds)
    client.login(args.handle, _password(args.handle))
    uri = promote_to_atmosphere(
        entry,
        index,
        client,
        name=args.published_name,
        description=args.description,
        tags=args.tag,
        license=args.license,
        data_store="blobs" if args.blobs else None,
        republish=args.republish,
    )
    out.emit({"uri": uri, "cid": entry.cid, "name": entry.name}, f"{entry.name} ({entry.cid}) -> {uri}")
    return 0


def _row(entry: AtmosphereEntry) -> dict[str, Any]:
    storage = str(entry.storage.get("$type", "")).rpartition(".")[2]
    return {"name": entry.name, "uri": entry.uri, "cid": entry.cid, "storage": storage, "shards": len(entry.shards)}


def _ls(args: argparse.Namespace, out: Output) -> int:
    index = AtmosphereIndex(AtmosphereClient(base_url=args.pds), repo=args.repo)
    rows = [_row(e) for e in index.entries]
    lines = [f"{r['name']}\t{r['storage']}\t{r['shards']} shard(s)\t{r['cid']}\t{r['uri']}" for r in rows]
    out.emit(rows, "\n".join(lines) or f"no dataset entries in {args.repo}")
    return 0


def _show(args: argparse.Namespace, out: Output) -> int:
    index = AtmosphereIndex(AtmosphereClient(base_url=args.pds), repo=args.repo)
    ref = args.ref
    if not isinstance(ref, str) or not ref:
        raise InvalidArgument("atdata atmosphere show takes an AT-URI, a CID or a name")
    entry = index.get_entry(ref) if ref.startswith(("at://", "bafy")) else index.get_entry_by_name(ref)
    schema = index.get_schema(entry.schema_ref)
    row = {
        **_row(entry),
        "schema_ref": entry.schema_ref,
        "schema": {"name": schema["name"], "version": schema["version"], "fields": schema["fields"]},
        "data_urls": entry.data_urls,
        "sha256": [s.sha256 for s in entry.shards],
        "description": entry.description,
        "tags": entry.tags,
        "license": entry.license,
        "metadata": entry.metadata,
    }
    fields = ", ".join(f["name"] for f in schema["fields"])
    text = (
        f"{entry.name}\n  uri: {entry.uri}\n  cid: {entry.cid}\n  schema: {schema['name']}@{schema['version']} "
        f"({fields})\n  storage: {row['storage']}, {row['shards']} shard(s)\n"
        + "".join(f"    {s.url}  sha256 {s.sha256}\n" for s in entry.shards)
    )
    out.emit(row, text)
    return 0
