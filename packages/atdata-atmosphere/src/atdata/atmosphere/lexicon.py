"""Validate records against the ``science.alt.dataset.*`` lexicons before they are written.

A PDS stores records of a lexicon it does not know without checking them
(``validationStatus: unknown``), so nothing but us keeps our records true to the
lexicon: every record is validated here before ``createRecord``, and records read
back are validated too. The lexicon files ship in ``lexicons/`` (copies of the
upstream ``science.alt.dataset`` set). Records are checked in their JSON form
(blobs as ``{"$type": "blob", "ref": {"$link": ...}, ...}``, bytes as
``{"$bytes": base64}``); the ATProto data model has no floats, so a float anywhere
is refused too.

Covers the lexicon features these files use: object (required, properties), string
(maxLength in UTF-8 bytes, const, pattern, formats at-uri / datetime / uri), integer
(minimum, maximum), boolean, bytes, blob (accept, maxSize), array (items, minLength,
maxLength), ref, union (``$type`` names a member; open unions accept other types) and
unknown.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from atdata.errors import InvalidRecord

__all__ = ["NAMESPACE", "lexicon", "now", "validate_record"]

#: The living namespace every record we write uses.
NAMESPACE = "science.alt.dataset"

_AT_URI = re.compile(r"at://[A-Za-z0-9:._%-]+(/[A-Za-z0-9.-]+(/[A-Za-z0-9._:~@-]+)?)?")
_URI = re.compile(r"[a-z][a-z0-9+.-]*:\S+")


def now() -> str:
    """The current time as a lexicon ``datetime`` (``createdAt``): UTC, milliseconds, ``Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@functools.cache
def lexicon(nsid: str) -> dict[str, Any]:
    """The lexicon document ``nsid`` (e.g. ``"science.alt.dataset.entry"``) as shipped here."""
    prefix, _, name = nsid.rpartition(".")
    if prefix != NAMESPACE:
        raise InvalidRecord(f"no lexicon {nsid!r} here: only {NAMESPACE}.* ships with atdata-atmosphere")
    try:
        text = resources.files(__package__).joinpath("lexicons", f"{name}.json").read_text()
    except FileNotFoundError as exc:
        raise InvalidRecord(f"no lexicon {nsid!r} in {NAMESPACE}") from exc
    doc: dict[str, Any] = json.loads(text)
    return doc


def validate_record(nsid: str, record: dict[str, Any]) -> None:
    """Check ``record`` against the record definition of lexicon ``nsid``.

    Raises
    ------
    InvalidRecord
        The record breaks the lexicon; the message names the NSID, the path
        (``$.storage.shards[3].checksum.digest``) and the rule.
    """
    main = lexicon(nsid)["defs"]["main"]
    if main.get("type") != "record":
        raise InvalidRecord(f"{nsid} is not a record lexicon")
    if record.get("$type") not in (None, nsid):
        raise InvalidRecord(f"{nsid} record: $type is {record.get('$type')!r}, expected {nsid!r}")
    _Validator(nsid).check(main["record"], record, "$")


class _Validator:
    def __init__(self, nsid: str) -> None:
        self.nsid = nsid

    def fail(self, path: str, why: str) -> InvalidRecord:
        return InvalidRecord(f"{self.nsid} record: {path} {why}")

    def resolve(self, ref: str, context: str) -> tuple[dict[str, Any], str]:
        """The definition ``ref`` points at, and the NSID that further local refs resolve in."""
        nsid, _, name = ref.partition("#")
        nsid = nsid or context
        return lexicon(nsid)["defs"][name or "main"], nsid

    def check(self, schema: dict[str, Any], value: Any, path: str, context: str | None = None) -> None:
        context = context or self.nsid
        kind = schema.get("type")
        if isinstance(value, float):
            raise self.fail(
                path, f"is a float ({value!r}): the ATProto data model has none (use an integer or a string)"
            )
        handler = getattr(self, f"_{kind}", None)
        if handler is None:
            raise self.fail(path, f"uses lexicon type {kind!r}, which this validator does not know")
        handler(schema, value, path, context)

    def _ref(self, schema: dict[str, Any], value: Any, path: str, context: str) -> None:
        target, nsid = self.resolve(schema["ref"], context)
        self.check(target, value, path, nsid)

    def _union(self, schema: dict[str, Any], value: Any, path: str, context: str) -> None:
        if not isinstance(value, dict) or not isinstance(value.get("$type"), str):
            raise self.fail(path, "must be an object with a $type naming one of " + ", ".join(schema["refs"]))
        wanted = value["$type"]
        for ref in schema["refs"]:
            full = ref if not ref.startswith("#") else context + ref
            if wanted in (full, full.removesuffix("#main")):
                target, nsid = self.resolve(full, context)
                self.check(target, value, path, nsid)
                return
        if schema.get("closed", True) is not False:
            raise self.fail(path, f"has $type {wanted!r}, not one of " + ", ".join(schema["refs"]))

    def _object(self, schema: dict[str, Any], value: Any, path: str, context: str) -> None:
        if not isinstance(value, dict):
            raise self.fail(path, f"must be an object, got {type(value).__name__}")
        for key in schema.get("required", []):
            if key not in value:
                raise self.fail(path, f"lacks the required field {key!r}")
        for key, item in value.items():
            prop = schema.get("properties", {}).get(key)
            if prop is not None:
                self.check(prop, item, f"{path}.{key}", context)
            else:
                self._no_floats(item, f"{path}.{key}")

    def _unknown(self, schema: dict[str, Any], value: Any, path: str, context: str) -> None:
        if not isinstance(value, dict):
            raise self.fail(path, f"must be an object (lexicon 'unknown'), got {type(value).__name__}")
        self._no_floats(value, path)

    def _no_floats(self, value: Any, path: str) -> None:
        if isinstance(value, float):
            raise self.fail(path, f"is a float ({value!r}): the ATProto data model has none")
        for key, item in (
            value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        ):
            self._no_floats(item, f"{path}.{key}" if isinstance(key, str) else f"{path}[{key}]")

    def _string(self, schema: dict[str, Any], value: Any, path: str, context: str) -> None:
        if not isinstance(value, str):
            raise self.fail(path, f"must be a string, got {type(value).__name__}")
        if "maxLength" in schema and len(value.encode()) > schema["maxLength"]:
            raise self.fail(path, f"is {len(value.encode())} bytes long, more than maxLength {schema['maxLength']}")
        if "const" in schema and value != schema["const"]:
            raise self.fail(path, f"must be {schema['const']!r}, got {value!r}")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            raise self.fail(path, f"{value!r} does not match {schema['pattern']!r}")
        fmt = schema.get("format")
        if fmt and not _FORMATS[fmt](value):
            raise self.fail(path, f"{value!r} is not a valid {fmt}")

    def _integer(self, schema: dict[str, Any], value: Any, path: str, context: str) -> None:
        if type(value) is not int:
            raise self.fail(path, f"must be an integer, got {type(value).__name__}")
        if value < schema.get("minimum", value) or value > schema.get("maximum", value):
            raise self.fail(path, f"{value} is outside [{schema.get('minimum')}, {schema.get('maximum')}]")

    def _boolean(self, schema: dict[str, Any], value: Any, path: str, context: str) -> None:
        if not isinstance(value, bool):
            raise self.fail(path, f"must be true or false, got {value!r}")

    def _bytes(self, schema: dict[str, Any], value: Any, path: str, context: str) -> None:
        raw = value.get("$bytes") if isinstance(value, dict) and set(value) == {"$bytes"} else None
        if not isinstance(raw, str):
            raise self.fail(path, 'must be bytes, written {"$bytes": "<base64>"}')
        size = len(base64.b64decode(raw + "=" * (-len(raw) % 4)))
        if size > schema.get("maxLength", size):
            raise self.fail(path, f"holds {size} bytes, more than maxLength {schema['maxLength']}")

    def _blob(self, schema: dict[str, Any], value: Any, path: str, context: str) -> None:
        ok = isinstance(value, dict) and value.get("$type") == "blob" and isinstance(value.get("ref"), dict)
        if not ok or not isinstance(value["ref"].get("$link"), str) or type(value.get("size")) is not int:
            raise self.fail(path, 'must be a blob ref {"$type": "blob", "ref": {"$link": cid}, "mimeType", "size"}')
        if schema.get("accept") and value.get("mimeType") not in schema["accept"]:
            raise self.fail(path, f"has mimeType {value.get('mimeType')!r}, accepted: {schema['accept']}")
        if value["size"] > schema.get("maxSize", value["size"]):
            raise self.fail(path, f"is {value['size']} bytes, more than maxSize {schema['maxSize']}")

    def _array(self, schema: dict[str, Any], value: Any, path: str, context: str) -> None:
        if not isinstance(value, list):
            raise self.fail(path, f"must be an array, got {type(value).__name__}")
        if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value)):
            raise self.fail(
                path, f"has {len(value)} items, outside [{schema.get('minLength', 0)}, {schema.get('maxLength')}]"
            )
        for i, item in enumerate(value):
            self.check(schema["items"], item, f"{path}[{i}]", context)


def _datetime(value: str) -> bool:
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


_FORMATS = {
    "at-uri": lambda v: bool(_AT_URI.fullmatch(v)),
    "datetime": _datetime,
    "uri": lambda v: bool(_URI.fullmatch(v)),
}
