"""``atdata schemas`` and ``atdata schema show REF``: the sample schemas in the index."""

from __future__ import annotations

import argparse
from typing import Any

from atdata.errors import InvalidArgument, SchemaNotFound
from atdata.index_redis import LocalIndex
from atdata.schema import SCHEMA_REF_PREFIX

from ._base import Output, common_options, examples
from ._connect import add_index_options, make_index

__all__ = ["find_schema", "register"]


def register(subparsers: Any) -> None:
    """Add ``schemas`` and ``schema show``."""
    schemas = subparsers.add_parser(
        "schemas",
        help="list published sample schemas",
        description="List every schema published in the index: module.Class@version (what `atdata schema show` "
        "takes), number of fields, description; --json adds each record's full ref. "
        "Uses the local Redis of `atdata local up` unless --redis-url or $ATDATA_REDIS_URL says otherwise.",
        parents=[common_options()],
        **examples("atdata schemas", "atdata schemas --json"),
    )
    add_index_options(schemas)
    schemas.set_defaults(handler=_list)

    schema = subparsers.add_parser(
        "schema",
        help="inspect one schema",
        description="Inspect the sample schemas published in the index.",
        **examples("atdata schema show mymodule.ImageSample"),
    )
    actions = schema.add_subparsers(title="actions", metavar="ACTION", required=True)
    show = actions.add_parser(
        "show",
        help="show a schema's fields",
        description="Show one schema record: its fields (name, type, optional), version, description. "
        "REF is a schema ref (local://schemas/module.Class@1.0.0), module.Class for its latest "
        "version, or Class@version / Class when only one module publishes that class name.",
        parents=[common_options()],
        **examples(
            "atdata schema show mymodule.ImageSample",
            "atdata schema show local://schemas/mymodule.ImageSample@1.0.0 --json",
        ),
    )
    show.add_argument("ref", metavar="REF", help="schema ref, module.Class, Class@version or Class")
    add_index_options(show)
    show.set_defaults(handler=_show)


def find_schema(index: LocalIndex, ref: str) -> dict[str, Any]:
    """The record ``ref`` names, in any of the forms ``schema show`` accepts.

    Raises
    ------
    SchemaNotFound
        Nothing matches (the message says how to list schemas).
    """
    if ref.startswith(SCHEMA_REF_PREFIX):
        return index.get_schema(ref)
    name, _, version = ref.partition("@")
    if "." in name:
        if version:
            return index.get_schema(f"{SCHEMA_REF_PREFIX}{ref}")
        return index.get_latest_schema(name)
    matches = [
        (r, record)
        for r, record in index.schemas_by_ref()
        if record.get("name") == name and (not version or record.get("version") == version)
    ]
    if not matches:
        raise SchemaNotFound(f"no schema {ref!r} in {index!r}; `atdata schemas` lists them")
    modules = sorted({_short(r).rpartition("@")[0] for r, _ in matches})
    if len(modules) > 1:  # one class name from several modules: never pick one silently
        raise InvalidArgument(
            f"schema {ref!r} is ambiguous in {index!r}: {', '.join(modules)} are all published; "
            f"name one, e.g. `atdata schema show {modules[0]}`"
        )
    return max((record for _, record in matches), key=lambda r: _semver(r.get("version", "0.0.0")))


def _short(ref: str) -> str:
    """``module.Class@version``: a ref without its ``local://schemas/`` prefix (``schema show`` takes it)."""
    return ref.removeprefix(SCHEMA_REF_PREFIX)


def _semver(version: str) -> tuple[int, ...]:
    core = version.split("-", 1)[0].split("+", 1)[0]
    return tuple(int(part) if part.isdigit() else 0 for part in core.split("."))


def _type_text(field_type: dict[str, Any]) -> str:
    kind = str(field_type.get("$type", "?")).removeprefix("local#")
    if kind == "primitive":
        return str(field_type.get("primitive"))
    if kind == "ndarray":
        return f"ndarray[{field_type['dtype']}]" if field_type.get("dtype") else "ndarray"
    if kind == "array":
        return f"list[{_type_text(field_type.get('items', {}))}]"
    return kind


def _list(args: argparse.Namespace, out: Output) -> int:
    index = make_index(args)
    records = sorted(
        ({**record, "ref": ref} for ref, record in index.schemas_by_ref()),
        key=lambda r: (r["ref"].rpartition("@")[0], _semver(r.get("version", "0.0.0"))),
    )
    lines = [
        f"{_short(r['ref'])}  {len(r.get('fields', []))} fields"
        + (f"  {r['description']}" if r.get("description") else "")
        for r in records
    ]
    out.emit(records, "\n".join(lines) if lines else f"no schemas in {index!r}")
    return 0


def _show(args: argparse.Namespace, out: Output) -> int:
    record = find_schema(make_index(args), args.ref)
    fields = record.get("fields", [])
    width = max((len(f.get("name", "")) for f in fields), default=4)
    lines = [f"{record.get('name')}@{record.get('version')}"]
    if record.get("description"):
        lines.append(record["description"])
    lines += [
        f"  {f.get('name', '').ljust(width)}  {_type_text(f.get('fieldType', {}))}{'  (optional)' if f.get('optional') else ''}"
        for f in fields
    ]
    if record.get("createdAt"):
        lines.append(f"created {record['createdAt']}")
    out.emit(record, "\n".join(lines))
    return 0
