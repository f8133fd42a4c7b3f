"""The schema half of LocalIndex: records by ``name@version``, immutable once published.

A mixin over the index's connection (``_run``, ``_key``, ``redis``, ``_spec``) so that
entries and schemas share one client, one prefix and one error translation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from atdata import schema as _schema
from atdata.errors import InvalidArgument, SchemaConflict, SchemaError, SchemaNotFound
from atdata.protocols import DatasetLike

from ._checks import check_version, next_patch, semver_key, split_local_ref
from ._connection import ConnectionSpec, translate_errors
from ._entry import _text

__all__ = ["SchemaMethods"]

_SCAN_BATCH = 500


class SchemaMethods:
    """``publish_schema``, ``get_schema``, ``list_schemas`` ... of ``LocalIndex``."""

    _spec: ConnectionSpec
    _decoded: dict[str, type]
    redis: Any

    def _key(self, kind: str, ident: str = "") -> str:
        raise NotImplementedError

    def _run(self, name: str, key: str, *args: Any) -> Any:
        raise NotImplementedError

    def publish_schema(
        self,
        sample_type: type,
        *,
        version: str | None = "1.0.0",
        description: str | None = None,
    ) -> str:
        """Store the schema of ``sample_type``; returns ``local://schemas/{module}.{Class}@{version}``.

        Published fields never change under a version. Publishing a version again with the
        same fields stores nothing new, except a ``description`` given now: it replaces the
        stored one (so the spec's order, insert then ``publish_schema(T, version="1.0.0",
        description=...)``, keeps the description). ``version=None`` is the automatic path
        (``add_entry``/``Repo.insert`` without a ref): the newest version whose fields
        match, ``1.0.0`` when nothing is published under this name, and otherwise a
        ``SchemaConflict``: another class with this ``module.Class`` name (two scripts'
        ``__main__.TrainingSample``, say) never silently becomes a new version.

        Raises
        ------
        SchemaConflict
            That version is published with other fields (with ``version=None``: no
            published version has these fields); the message lists both field lists and
            how to publish deliberately.
        InvalidArgument
            ``version`` is not ``MAJOR.MINOR.PATCH``.
        """
        if version is not None:
            check_version(version)
            return self._publish(sample_type, version, description)
        name = _schema_name(sample_type)
        versions = self._versions(name)
        if not versions:
            try:
                return self._publish(sample_type, "1.0.0", description)
            except SchemaConflict:  # another writer published 1.0.0 first: compare with it below
                versions = ["1.0.0"]
        for published in versions:  # newest first: the newest version with these fields is reused
            if _schema.same_fields(self._schema_record(name, published), _schema.to_record(sample_type, published)):
                return self._publish(sample_type, published, description)
        latest, mine = self._schema_record(name, versions[0]), _schema.to_record(sample_type, versions[0])
        raise SchemaConflict(
            f"{name} is already published ({', '.join(versions)}; latest with fields [{field_list(latest)}]) and "
            f"no version has the fields of {sample_type.__qualname__}: [{field_list(mine)}]. "
            "Automatic publishing never gives other fields a new version silently: publish deliberately with "
            f"index.publish_schema({sample_type.__name__}, version={next_patch(versions[0])!r}) (or a new major) and "
            "pass that schema_ref=, or rename the class (or its module) if it is another schema"
        )

    def _publish(self, sample_type: type, version: str, description: str | None) -> str:
        record = _schema.to_record(sample_type, version, description=description)
        ref = _schema.schema_ref(sample_type, version)
        name = _schema.parse_schema_ref(ref).name
        key = self._key("schema:", f"{name}@{version}")
        existing = self._run("PUBLISH_SCHEMA", key, name, version, json.dumps(record))
        if not existing:
            return ref
        stored = json.loads(existing)
        if not _schema.same_fields(stored, record):
            raise SchemaConflict(
                f"{ref} is already published with other fields: [{field_list(stored)}]; "
                f"{sample_type.__qualname__} has [{field_list(record)}]. Published versions never change: "
                f"publish under a new version (e.g. version={next_patch(self._latest_version(name))!r})"
            )
        if description is not None and stored.get("description") != description:
            # Compare-and-set: a record another writer changed meanwhile is never overwritten blindly.
            self._run("DESCRIBE_SCHEMA", key, existing, json.dumps({**stored, "description": description}))
        return ref

    def get_schema(self, ref: str) -> dict[str, Any]:
        """The schema record stored under ``ref``.

        Raises
        ------
        InvalidSchemaRef
            ``ref`` is not ``local://schemas/{name}@{semver}`` nor an ``at://`` URI.
        SchemaNotFound
            Nothing is published under ``ref`` here (``at://`` schemas live on ATProto).
        """
        parsed = split_local_ref(ref)
        if parsed is None:
            raise SchemaNotFound(
                f"{ref!r} is a schema published on ATProto, not in {self!r}: read it from there "
                "(atdata.atmosphere's AtmosphereIndex.get_schema / decode_schema), or read the data "
                "with the sample class itself: atdata.Dataset[YourClass](entry.data_urls[0])"
            )
        try:
            return self._schema_record(*parsed)
        except SchemaNotFound:
            raise SchemaNotFound(
                f"no schema published as {ref!r} in {self!r}: publish it here "
                f"(index.publish_schema(YourClass, version={parsed[1]!r})), or read the data with the sample "
                "class itself: atdata.Dataset[YourClass](entry.data_urls[0])"
            ) from None

    def _schema_record(self, name: str, version: str) -> dict[str, Any]:
        with translate_errors(self._spec):
            raw = self.redis.get(self._key("schema:", f"{name}@{version}"))
        if raw is None:
            raise SchemaNotFound(f"no schema {name}@{version} in {self!r}")
        return dict(json.loads(raw))

    def get_latest_schema(self, name: str) -> dict[str, Any]:
        """The record of the highest published version of ``name`` (``module.Class``).

        Raises
        ------
        SchemaNotFound
            No version of ``name`` is published.
        """
        latest = self._latest_version(name)
        if latest is None:
            raise SchemaNotFound(f"no schema named {name!r} in {self!r} (names are 'module.Class')")
        return self._schema_record(name, latest)

    def _latest_version(self, name: str) -> str | None:
        versions = self._versions(name)
        return versions[0] if versions else None

    def _versions(self, name: str) -> list[str]:
        """The published versions of ``name``, newest first."""
        with translate_errors(self._spec):
            versions = [_text(v) for v in self.redis.smembers(self._key("schema_versions:", name))]
        return sorted(versions, key=semver_key, reverse=True)

    def list_schemas(self) -> Iterator[dict[str, Any]]:
        """Every published schema record (streamed with SSCAN)."""
        return (record for _, record in self.schemas_by_ref())

    def schemas_by_ref(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every published schema as ``(ref, record)``, e.g. ``("local://schemas/mod.Cls@1.0.0", {...})``.

        A record's ``name`` is the bare class name (the spec's record), so two modules'
        classes of one name are told apart only by their refs.
        """
        key = self._key("schemas")
        cursor: int = 0
        while True:
            with translate_errors(self._spec):
                cursor, members = self.redis.sscan(key, cursor, count=_SCAN_BATCH)
                refs = [_text(member) for member in members]
                pipe = self.redis.pipeline(transaction=False)
                for ref in refs:
                    pipe.get(self._key("schema:", ref))
                raws = pipe.execute() if refs else []
            yield from (
                (_schema.SCHEMA_REF_PREFIX + r, json.loads(raw)) for r, raw in zip(refs, raws) if raw is not None
            )
            if int(cursor) == 0:
                return

    def decode_schema(self, ref: str) -> type:
        """A packable sample class generated from the schema under ``ref`` (cached per ref).

        Usable with ``atdata.Dataset[T]``; data written with the original class reads back.
        """
        cached = self._decoded.get(ref)
        if cached is None:
            # The ref's module (not atdata.schema) so that publishing the class gives back ``ref``.
            record = self.get_schema(ref)  # a local ref, else it raised
            module = ref[len("local://schemas/") :].rpartition("@")[0].rpartition(".")[0]
            cached = self._decoded[ref] = _schema.from_record(record, module=module)
        return cached

    def _schema_ref_for(self, dataset: DatasetLike) -> str:
        """The ref of the dataset's sample type: a published version with the same fields, else a new one."""
        sample_type = getattr(dataset, "sample_type", None)
        if not isinstance(sample_type, type):
            raise InvalidArgument(
                f"cannot derive a schema_ref: {type(dataset).__name__} has no sample_type; pass schema_ref="
            )
        try:
            return self.publish_schema(sample_type, version=None)
        except SchemaConflict:
            raise
        except (SchemaError, InvalidArgument) as exc:  # same type, plus what to do in add_entry's terms
            raise type(exc)(f"{exc}; or pass schema_ref= to add_entry") from exc


def field_list(record: dict[str, Any]) -> str:
    """``x: int, y: str | None``: a record's fields as a reader of an error message wants them."""
    return ", ".join(
        f"{f['name']}: {_type_text(f['fieldType'])}{' | None' if f.get('optional') else ''}" for f in record["fields"]
    )


def _type_text(field_type: dict[str, Any]) -> str:
    kind = str(field_type.get("$type", "?")).rpartition("#")[2]
    if kind == "primitive":
        return str(field_type.get("primitive"))
    if kind == "array":
        return f"list[{_type_text(field_type.get('items', {}))}]"
    if kind == "ndarray" and field_type.get("dtype"):
        return f"ndarray[{field_type['dtype']}]"
    return kind


def _schema_name(sample_type: type) -> str:
    """``module.Class`` as the schema ref spells it."""
    return _schema.parse_schema_ref(_schema.schema_ref(sample_type, "1.0.0")).name
