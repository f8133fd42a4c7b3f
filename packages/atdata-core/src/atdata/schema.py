"""Schema codec: sample type <-> schema record <-> generated sample type, and schema refs.

A schema record is the JSON-able dict of the spec that an index stores for each
published sample type (exact format: ``## Schema records`` in the atdata-core README)::

    {"name": "ImageSample", "version": "1.0.0",
     "fields": [{"name": "image", "fieldType": {"$type": "local#ndarray", "dtype": "float32"},
                 "optional": False}, ...],
     "description": "...", "createdAt": "2026-01-01T00:00:00.000000Z"}

Field type descriptors follow the original atdata project's local records
(``"$type": "local#primitive" | "local#ndarray" | "local#array"``, plus ``"local#dict"``
for ``dict[str, Any]``), so records it wrote decode here. :func:`from_record` generates a
packable dataclass with the same fields, so data written with the original class reads
with the generated one and back (the wire format depends only on field names and kinds).

Schema refs name a published version: ``local://schemas/{module}.{Class}@{semver}`` (any
dotted name, a module part optional: ``local://schemas/Test@1.0.0``), or a schema
published on ATProto by its ``at://`` record URI (:func:`check_schema_ref` takes both).
"""

from __future__ import annotations

import copyreg
import dataclasses
import keyword
import re
import typing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Optional

import numpy as np
from numpy.typing import NDArray

from ._sample.fields import PRIMITIVE_KINDS, FieldSpec, spec_for_annotation
from .errors import InvalidArgument, InvalidSchemaRef, SchemaError, UnsupportedFieldType
from .sample import DictSample, PackableSample, fields_of, packable

__all__ = [
    "SCHEMA_REF_PREFIX",
    "SchemaRef",
    "check_schema_ref",
    "from_record",
    "parse_schema_ref",
    "same_fields",
    "schema_ref",
    "to_record",
]

#: Every local schema ref starts with this.
SCHEMA_REF_PREFIX = "local://schemas/"

_EXAMPLE_REF = "local://schemas/mymodule.ImageSample@1.0.0"
# Semantic Versioning 2.0.0, the regex semver.org recommends.
_SEMVER = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)
_TYPE_PREFIX = "local#"
# NAME: dotted segments (hyphens allowed: modules imported by path have them). What atdata
# publishes is module.Class, but the module part is optional: 'Test' is a name too.
_REF_NAME = re.compile(r"[\w-]+(?:\.[\w-]+)*")
# at://AUTHORITY/COLLECTION/RKEY: the record URI of a schema published on ATProto.
_AT_REF = re.compile(r"at://[\w.:%-]+/[A-Za-z][\w-]*(?:\.[\w-]+)+/[\w.:~-]+")
_REF_FORMS = (
    f"expected {SCHEMA_REF_PREFIX}{{name}}@{{semver}} (e.g. {_EXAMPLE_REF!r} or "
    f"'{SCHEMA_REF_PREFIX}Test@1.0.0') or the at:// URI of a published schema "
    "(at://did:plc:.../science.alt.dataset.schema/RKEY)"
)


@dataclass(frozen=True)
class SchemaRef:
    """A parsed schema ref: ``name`` is ``"module.Class"``, ``version`` a semver string.

    ``str(ref)`` gives back ``local://schemas/{name}@{version}``.
    """

    name: str
    version: str

    @property
    def module(self) -> str:
        """The module part of :attr:`name` (everything before the last dot)."""
        return self.name.rpartition(".")[0]

    @property
    def class_name(self) -> str:
        """The class part of :attr:`name` (after the last dot)."""
        return self.name.rpartition(".")[2]

    def __str__(self) -> str:
        return f"{SCHEMA_REF_PREFIX}{self.name}@{self.version}"


def schema_ref(sample_type: type, version: str) -> str:
    """``local://schemas/{module}.{Class}@{version}`` for ``sample_type``.

    Raises
    ------
    InvalidSchemaRef
        If ``version`` is not semver or the class's module and name do not make a valid ref.
    InvalidArgument
        If ``sample_type`` is not a class (a sample instance, say).
    """
    if not isinstance(sample_type, type):
        raise InvalidArgument(
            f"a schema ref names a sample class, got {type(sample_type).__name__} {sample_type!r:.100}: "
            "pass the @atdata.packable class itself (e.g. type(sample))"
        )
    return str(parse_schema_ref(f"{SCHEMA_REF_PREFIX}{sample_type.__module__}.{sample_type.__name__}@{version}"))


def parse_schema_ref(ref: str) -> SchemaRef:
    """Split and validate a local schema ref: ``local://schemas/{name}@{semver}``.

    ``name`` is what atdata publishes, ``module.Class``, or any dotted name (the module
    part is optional: ``local://schemas/Test@1.0.0`` is valid). For refs that may also be
    an ``at://`` URI, use :func:`check_schema_ref`.

    Raises
    ------
    InvalidSchemaRef
        If ``ref`` is not of that form; the message shows the expected forms.
    """
    if not isinstance(ref, str) or not ref.startswith(SCHEMA_REF_PREFIX) or "@" not in ref:
        raise InvalidSchemaRef(f"invalid schema ref {ref!r}: {_REF_FORMS}")
    name, _, version = ref[len(SCHEMA_REF_PREFIX) :].rpartition("@")
    if not _REF_NAME.fullmatch(name):
        raise InvalidSchemaRef(f"invalid schema ref {ref!r}: {name!r} is not a (dotted) name; {_REF_FORMS}")
    if not _SEMVER.fullmatch(version):
        raise InvalidSchemaRef(
            f"invalid schema ref {ref!r}: version {version!r} is not semver MAJOR.MINOR.PATCH; {_REF_FORMS}"
        )
    return SchemaRef(name=name, version=version)


def check_schema_ref(ref: Any) -> SchemaRef | None:
    """Validate any ref an entry may record: the parsed local ref, or None for an ``at://`` URI.

    Raises
    ------
    InvalidSchemaRef
        ``ref`` is neither ``local://schemas/{name}@{semver}`` nor the ``at://`` URI of a
        schema record; the message shows both forms.
    """
    if isinstance(ref, str) and ref.startswith("at://"):
        if not _AT_REF.fullmatch(ref):
            raise InvalidSchemaRef(
                f"invalid schema ref {ref!r}: not an at://AUTHORITY/COLLECTION/RKEY URI; {_REF_FORMS}"
            )
        return None
    return parse_schema_ref(ref)


def to_record(sample_type: type, version: str, description: str | None = None) -> dict[str, Any]:
    """The schema record of ``sample_type`` at ``version`` (JSON-able).

    Parameters
    ----------
    sample_type
        A packable sample class.
    version
        Semver string, e.g. ``"1.0.0"``.
    description
        Free text stored with the record.

    Raises
    ------
    InvalidArgument
        If ``version`` is not semver or ``sample_type`` is not a packable sample class
        (``DictSample`` included: it has no fixed fields).
    """
    if not isinstance(version, str) or not _SEMVER.fullmatch(version):
        raise InvalidArgument(f"schema version {version!r} is not semver MAJOR.MINOR.PATCH (e.g. '1.0.0')")
    if isinstance(sample_type, type) and issubclass(sample_type, DictSample):
        raise InvalidArgument("DictSample has no fixed fields to publish: publish a @atdata.packable class")
    fields = fields_of(sample_type)  # first: it names a value that is no sample class
    return {
        "name": sample_type.__name__,
        "version": version,
        "fields": [_field_to_json(spec) for spec in fields],
        "description": description,
        "createdAt": datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
    }


def from_record(record: dict[str, Any], *, module: str | None = None) -> type[PackableSample]:
    """A packable sample class with the fields of ``record``; the same class for the same record.

    Parameters
    ----------
    record
        A schema record (as :func:`to_record` or an index returns).
    module
        The generated class's ``__module__`` (e.g. the module part of the schema ref,
        so that :func:`schema_ref` of the generated class gives back the ref). Defaults to
        the prefix of a dotted record name, else ``"atdata.schema"``.

    Raises
    ------
    SchemaError
        If the record is malformed (the message names the bad part).
    UnsupportedFieldType
        If a field type descriptor is unknown to this version of atdata.
    """
    name, version, specs = _parse_record(record)
    prefix, _, class_name = name.rpartition(".")
    module = module or prefix or __name__
    key = (class_name, version, specs, module)
    cls = _generated.get(key)
    if cls is None:
        cls = _generate(class_name, module, specs)
        cls.__atdata_record__ = (_canonical(record), module)  # type: ignore[attr-defined]
        _generated[key] = cls
    return cls


def same_fields(record_a: dict[str, Any], record_b: dict[str, Any]) -> bool:
    """Whether two records describe the same schema: name, version and fields equal.

    ``createdAt`` and ``description`` are ignored; equivalent spellings of a field type
    (e.g. an omitted ``optional``) compare equal.

    Raises
    ------
    SchemaError
        If either record is malformed.
    """
    return _parse_record(record_a) == _parse_record(record_b)


# --- record <-> FieldSpec -----------------------------------------------------------------


def _field_to_json(spec: FieldSpec) -> dict[str, Any]:
    return {"name": spec.name, "fieldType": _type_to_json(spec), "optional": spec.optional}


def _type_to_json(spec: FieldSpec) -> dict[str, Any]:
    if spec.kind in PRIMITIVE_KINDS:
        return {"$type": f"{_TYPE_PREFIX}primitive", "primitive": spec.kind}
    if spec.kind == "ndarray":
        return {"$type": f"{_TYPE_PREFIX}ndarray", **({"dtype": spec.dtype} if spec.dtype else {})}
    if spec.kind == "list":
        assert spec.items is not None
        return {"$type": f"{_TYPE_PREFIX}array", "items": _type_to_json(spec.items)}
    return {"$type": f"{_TYPE_PREFIX}dict"}


def _parse_record(record: Any) -> tuple[str, str, tuple[FieldSpec, ...]]:
    if not isinstance(record, dict):
        raise SchemaError(f"a schema record must be a dict, got {type(record).__name__}")
    name, version, fields = record.get("name"), record.get("version"), record.get("fields")
    if not isinstance(name, str) or not all(p.isidentifier() and not keyword.iskeyword(p) for p in name.split(".")):
        raise SchemaError(f"schema record 'name' must be a class name, got {name!r}")
    if not isinstance(version, str) or not _SEMVER.fullmatch(version):
        raise SchemaError(f"schema record {name!r}: 'version' must be semver, got {version!r}")
    if not isinstance(fields, list):
        raise SchemaError(f"schema record {name}@{version}: 'fields' must be a list, got {fields!r:.80}")
    specs = tuple(_field_from_json(name, f) for f in fields)
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise SchemaError(f"schema record {name}@{version}: duplicate field names in {names}")
    return name, version, specs


def _field_from_json(owner: str, field: Any) -> FieldSpec:
    if not isinstance(field, dict):
        raise SchemaError(f"schema record {owner!r}: a field must be a dict, got {field!r:.80}")
    name, optional = field.get("name"), field.get("optional", False)
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise SchemaError(f"schema record {owner!r}: field name must be an identifier, got {name!r}")
    if not isinstance(optional, bool):
        raise SchemaError(f"schema record {owner!r}: field {name!r} 'optional' must be true/false, got {optional!r}")
    spec = _type_from_json(owner, name, field.get("fieldType"))
    return dataclasses.replace(spec, optional=optional)


def _type_from_json(owner: str, name: str, descriptor: Any) -> FieldSpec:
    type_name = descriptor.get("$type") if isinstance(descriptor, dict) else None
    kind = type_name.rpartition("#")[2] if isinstance(type_name, str) else None
    primitive = descriptor.get("primitive") if kind == "primitive" else None
    if isinstance(primitive, str) and primitive in PRIMITIVE_KINDS:  # a list here is unhashable
        return FieldSpec(name=name, kind=primitive)
    if kind == "ndarray":
        dtype = descriptor.get("dtype")
        annotation = NDArray if dtype is None else _ndarray_annotation(owner, name, dtype)
        return spec_for_annotation(annotation, name=name, owner=owner)
    if kind == "array":
        items = _type_from_json(owner, name, descriptor.get("items"))
        if items.kind in PRIMITIVE_KINDS:
            return FieldSpec(name=name, kind="list", items=dataclasses.replace(items, name="item"))
    if kind == "dict":
        return FieldSpec(name=name, kind="dict")
    raise UnsupportedFieldType(
        f"schema record {owner!r}: field {name!r} has a type descriptor this atdata cannot read: "
        f"{descriptor!r:.200}. Known: local#primitive (str/int/float/bool/bytes), local#ndarray "
        f"(optional dtype), local#array (items: a primitive), local#dict."
    )


def _ndarray_annotation(owner: str, name: str, dtype: Any) -> Any:
    try:
        return NDArray[np.dtype(dtype).type]  # type: ignore[misc]
    except TypeError as exc:
        raise UnsupportedFieldType(f"schema record {owner!r}: field {name!r} has an unknown dtype {dtype!r}") from exc


def _annotation(spec: FieldSpec) -> Any:
    if spec.kind in PRIMITIVE_KINDS:
        annotation: Any = PRIMITIVE_KINDS[spec.kind]
    elif spec.kind == "ndarray":
        annotation = NDArray if spec.dtype is None else NDArray[np.dtype(spec.dtype).type]  # type: ignore[misc]
    elif spec.kind == "list":
        assert spec.items is not None
        annotation = list[PRIMITIVE_KINDS[spec.items.kind]]  # type: ignore[index, valid-type, name-defined]
    else:
        annotation = dict[str, Any]
    # typing.Optional, not `X | None`: the generated class must match what users write by hand
    return Optional[annotation] if spec.optional else annotation  # noqa: UP045


def _canonical(record: dict[str, Any]) -> dict[str, Any]:
    return {k: record.get(k) for k in ("name", "version", "fields", "description")}


# --- generated classes --------------------------------------------------------------------

_generated: dict[tuple[str, str, tuple[FieldSpec, ...], str], type[PackableSample]] = {}


class _GeneratedSample(type):
    """Metaclass of generated sample classes: lets ``pickle`` rebuild them from their record.

    A generated class lives in no module, so pickling it by name would fail in a
    DataLoader worker; ``copyreg`` sends its record instead and :func:`from_record`
    regenerates (or finds in its cache) the same class on the other side.
    """


def _reduce_generated(cls: _GeneratedSample) -> tuple[Any, tuple[Any, ...]]:
    record, module = cls.__atdata_record__  # type: ignore[attr-defined]
    return _class_from_record, (record, module)


def _class_from_record(record: dict[str, Any], module: str) -> type[PackableSample]:
    return from_record(record, module=module)


copyreg.pickle(_GeneratedSample, _reduce_generated)


def _generate(class_name: str, module: str, specs: tuple[FieldSpec, ...]) -> type[PackableSample]:
    # Trailing optional fields default to None, so callers may leave them out.
    first_default = len(specs)
    while first_default > 0 and specs[first_default - 1].optional:
        first_default -= 1
    namespace: dict[str, Any] = {
        "__module__": module,
        "__qualname__": class_name,
        "__doc__": f"Sample type generated from the schema record {class_name!r}.",
        "__annotations__": {s.name: _annotation(s) for s in specs},
        **{s.name: None for s in specs[first_default:]},
    }
    try:
        cls = _GeneratedSample(class_name, (PackableSample,), namespace)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"cannot generate a class {class_name!r} from its schema record: {exc}") from exc
    return typing.cast(type[PackableSample], packable(cls))  # a missing field raises MissingField
