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

        Publishing the same version with the same fields again is a no-op. With
        ``version=None`` the latest published version is reused if its fields match,
        else the next patch version is published (``1.0.0`` for the first).

        Raises
        ------
        SchemaConflict
            That version is already published with different fields.
        InvalidArgument
            ``version`` is not ``MAJOR.MINOR.PATCH``.
        """
        if version is not None:
            check_version(version)
            return self._publish(sample_type, version, description)
        name = _schema_name(sample_type)
        for _ in range(5):  # another writer may take the next version first: retry
            latest = self._latest_version(name)
            if latest is not None:
                current = self._schema_record(name, latest)
                if _schema.same_fields(current, _schema.to_record(sample_type, latest)):
                    return _schema.schema_ref(sample_type, latest)
            try:
                return self._publish(sample_type, next_patch(latest), description)
            except SchemaConflict:
                continue
        raise SchemaConflict(f"could not pick a new version for {name}: other writers keep publishing; retry")

    def _publish(self, sample_type: type, version: str, description: str | None) -> str:
        record = _schema.to_record(sample_type, version, description=description)
        ref = _schema.schema_ref(sample_type, version)
        name = _schema.parse_schema_ref(ref).name
        existing = self._run(
            "PUBLISH_SCHEMA", self._key("schema:", f"{name}@{version}"), name, version, json.dumps(record)
        )
        if existing and not _schema.same_fields(json.loads(existing), record):
            raise SchemaConflict(
                f"{ref} is already published with different fields; publish under a new version "
                f"(e.g. version={next_patch(self._latest_version(name))!r}, or version=None for the next patch)"
            )
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
            raise SchemaNotFound(f"{ref!r} is a schema published on ATProto, not in {self!r}: read it from there")
        try:
            return self._schema_record(*parsed)
        except SchemaNotFound:
            raise SchemaNotFound(f"no schema published as {ref!r} in {self!r}") from None

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
        with translate_errors(self._spec):
            versions = [_text(v) for v in self.redis.smembers(self._key("schema_versions:", name))]
        return max(versions, key=semver_key) if versions else None

    def list_schemas(self) -> Iterator[dict[str, Any]]:
        """Every published schema record (streamed with SSCAN)."""
        key = self._key("schemas")
        cursor: int = 0
        while True:
            with translate_errors(self._spec):
                cursor, members = self.redis.sscan(key, cursor, count=_SCAN_BATCH)
                pipe = self.redis.pipeline(transaction=False)
                for member in members:
                    pipe.get(self._key("schema:", _text(member)))
                raws = pipe.execute() if members else []
            yield from (json.loads(raw) for raw in raws if raw is not None)
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


def _schema_name(sample_type: type) -> str:
    """``module.Class`` as the schema ref spells it."""
    return _schema.parse_schema_ref(_schema.schema_ref(sample_type, "1.0.0")).name
