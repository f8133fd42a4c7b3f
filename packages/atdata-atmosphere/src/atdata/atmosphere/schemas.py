"""Sample schemas between the local index and ``science.alt.dataset.schema`` records.

A local schema record lists fields with ``local#...`` type descriptors (core's
``atdata.schema``); the living lexicon wants a JSON Schema (draft 7) body instead::

    {"$type": "science.alt.dataset.schema", "name": "mymodule.ImageSample", "version": "1.0.0",
     "schemaType": "jsonSchema",
     "schema": {"$type": "science.alt.dataset.schema#jsonSchemaFormat",
                "$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
                "properties": {"image": {"$ref": ".../atdata-ndarray-bytes/1.0.0#/$defs/ndarray",
                                         "atdataDtype": "float32"},
                               "label": {"type": "integer"}},
                "required": ["image", "label"], "atdataFieldOrder": ["image", "label"],
                "arrayFormatVersions": {"ndarrayBytes": "1.0.0"}},
     "createdAt": "...", "atdataSchemaVersion": 1}

DAG-CBOR sorts map keys, so ``properties`` loses the field order; ``atdataFieldOrder``
keeps it (the constructor's argument order). ``name`` is the dotted ``module.Class`` of
the local ref, so the class decoded back keeps its module. Records of the older
``ac.foundation.dataset`` namespace that list ``fields`` like the local records decode as
they are. The record key is ``module.Class:version``: one record per name and version,
which is what makes publishing idempotent.
"""

from __future__ import annotations

import re
from typing import Any

from atdata.errors import InvalidArgument, SchemaError
from atdata.schema import from_record, same_fields

from .lexicon import NAMESPACE, now

__all__ = ["SCHEMA_NSID", "from_atmosphere", "schema_rkey", "to_atmosphere"]

SCHEMA_NSID = f"{NAMESPACE}.schema"
_NDARRAY_REF = "https://alt.science/schemas/atdata-ndarray-bytes/1.0.0#/$defs/ndarray"
_JSON = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}
_PRIMITIVE = {v: k for k, v in _JSON.items()}
_RKEY = re.compile(r"[A-Za-z0-9._:~-]{1,512}")
_BYTES = {"type": "string", "format": "byte", "contentEncoding": "base64"}


def schema_rkey(name: str, version: str) -> str:
    """The record key of schema ``name`` (``module.Class``) at ``version``: ``name:version``.

    Record keys allow only ``A-Za-z0-9._:~-``: not the ``@`` of a local ref, nor the
    ``+`` of semver build metadata (written ``~``).

    Raises
    ------
    InvalidArgument
        The name holds characters no record key can (non-ASCII letters).
    """
    rkey = f"{name}:{version.replace('+', '~')}"
    if not _RKEY.fullmatch(rkey):
        raise InvalidArgument(
            f"schema {name}@{version} cannot be published: an ATProto record key allows only A-Za-z0-9._:~- "
            "(rename the module or class to ASCII)"
        )
    return rkey


def to_atmosphere(local: dict[str, Any], name: str) -> dict[str, Any]:
    """The ``science.alt.dataset.schema`` record of a local schema record.

    ``name`` is the ``module.Class`` part of the local schema ref.
    """
    fields = local["fields"]
    properties = {f["name"]: _property(f["fieldType"]) for f in fields}
    body: dict[str, Any] = {
        "$type": f"{SCHEMA_NSID}#jsonSchemaFormat",
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": properties,
        "required": [f["name"] for f in fields if not f.get("optional", False)],
        "atdataFieldOrder": [f["name"] for f in fields],
    }
    if any(f["fieldType"]["$type"].endswith("#ndarray") for f in fields):
        body["arrayFormatVersions"] = {"ndarrayBytes": "1.0.0"}
    record: dict[str, Any] = {
        "$type": SCHEMA_NSID,
        "name": name,
        "version": local["version"],
        "schemaType": "jsonSchema",
        "schema": body,
        "createdAt": local.get("createdAt") or now(),
        "atdataSchemaVersion": 1,
    }
    if local.get("description"):
        record["description"] = local["description"]
    return record


def from_atmosphere(record: dict[str, Any]) -> dict[str, Any]:
    """The local-style schema record (``fields`` with ``local#`` descriptors) of a PDS record.

    Accepts ``science.alt.dataset.schema`` (JSON Schema body) and the older
    ``ac.foundation.dataset`` records that list ``fields`` directly.

    Raises
    ------
    SchemaError
        The record describes no fields this atdata can read (names the record and field).
    """
    if isinstance(record.get("fields"), list):
        fields = record["fields"]
    else:
        body = record.get("schema")
        if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
            raise SchemaError(f"schema record {record.get('name')!r} has neither 'fields' nor a JSON Schema 'schema'")
        props, required = body["properties"], set(body.get("required", []))
        order = body.get("atdataFieldOrder") or list(props)
        fields = [
            {"name": n, "fieldType": _descriptor(record, n, props[n]), "optional": n not in required} for n in order
        ]
    return {
        "name": record.get("name"),
        "version": record.get("version"),
        "fields": fields,
        "description": record.get("description"),
        "createdAt": record.get("createdAt"),
    }


def decode(record: dict[str, Any]) -> type:
    """A packable sample class from a PDS schema record (either namespace)."""
    return from_record(from_atmosphere(record))


def same_schema(record_a: dict[str, Any], record_b: dict[str, Any]) -> bool:
    """Whether two PDS schema records have the same name, version and fields."""
    return same_fields(from_atmosphere(record_a), from_atmosphere(record_b))


def _property(descriptor: dict[str, Any]) -> dict[str, Any]:
    kind = descriptor["$type"].rpartition("#")[2]
    if kind == "primitive":
        primitive = descriptor["primitive"]
        return dict(_BYTES) if primitive == "bytes" else {"type": _JSON[primitive]}
    if kind == "ndarray":
        return {"$ref": _NDARRAY_REF, **({"atdataDtype": descriptor["dtype"]} if descriptor.get("dtype") else {})}
    if kind == "array":
        return {"type": "array", "items": _property(descriptor["items"])}
    return {"type": "object"}


def _descriptor(record: dict[str, Any], name: str, prop: Any) -> dict[str, Any]:
    if not isinstance(prop, dict):
        raise SchemaError(f"schema record {record.get('name')!r}: field {name!r} is {prop!r:.80}, not an object")
    if "$ref" in prop and "ndarray" in str(prop["$ref"]):
        return {"$type": "local#ndarray", **({"dtype": prop["atdataDtype"]} if prop.get("atdataDtype") else {})}
    kind = prop.get("type")
    if kind == "string" and prop.get("format") == "byte":
        return {"$type": "local#primitive", "primitive": "bytes"}
    if kind in _PRIMITIVE:
        return {"$type": "local#primitive", "primitive": _PRIMITIVE[kind]}
    if kind == "array":
        return {"$type": "local#array", "items": _descriptor(record, name, prop.get("items"))}
    if kind == "object":
        return {"$type": "local#dict"}
    raise SchemaError(
        f"schema record {record.get('name')!r}: field {name!r} has a JSON Schema type atdata cannot read: {prop!r:.120}"
    )
