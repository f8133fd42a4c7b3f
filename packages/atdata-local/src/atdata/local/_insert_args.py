"""What ``Repo.insert`` checks and reads before it writes anything.

Arguments the index or store would refuse are refused here, before the first upload;
the sample type and schema ref are decided (reading the index only); the source's samples
are opened, checked against the sample type (refused if empty or if the first sample
does not match) and closed when the insert ends; then the schema is published, the
insert's first write (a schema without an entry is harmless, and publishing first
fails fast on a conflict or an unreachable index).
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import atdata
from atdata import schema as _schema
from atdata.conform import SampleCheck
from atdata.errors import InvalidArgument, SchemaConflict, SchemaNotFound
from atdata.names import check_entry_name
from atdata.protocols import AbstractIndex, DatasetLike
from atdata.sample import DictSample, PackableSample

__all__ = [
    "SchemaPlan",
    "check_insert_args",
    "dataset_metadata",
    "plan_schema",
    "plan_type_schema",
    "source_samples",
]


def check_insert_args(name: Any, metadata: Any, cache_local: Any) -> None:
    """Validate what the index would refuse, before anything is uploaded."""
    check_entry_name(name)
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise InvalidArgument(f"metadata must be a dict or None, got {type(metadata).__name__}")
        try:
            json.dumps(metadata, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidArgument(f"metadata must be JSON-serialisable (str keys, plain values): {exc}") from exc
    if not isinstance(cache_local, bool):
        raise InvalidArgument(f"cache_local={cache_local!r} is invalid: pass True or False")


@contextlib.contextmanager
def source_samples(dataset: DatasetLike, sample_type: type) -> Iterator[Iterator[Any]]:
    """``dataset.raw_samples()``, each checked against ``sample_type`` (:mod:`atdata.conform`),
    refused if empty, or if the first sample does not match, before anything is written;
    closed on exit: a failed insert stops the source's reader (prefetch threads, open
    shards) at once."""
    raw = _raw_samples(dataset)
    if isinstance(dataset, atdata.Dataset):
        samples = iter(dataset.raw_samples(check=sample_type))  # by layout, a chunk at a time
    else:
        samples = _checked(raw(), SampleCheck(sample_type), repr(dataset)[:200])
    try:
        first = next(samples, None)
        if first is None:
            raise InvalidArgument(f"dataset {repr(dataset)[:200]} has no samples: nothing to insert")
        yield itertools.chain([first], samples)
    finally:
        _close(samples)


def _raw_samples(dataset: DatasetLike) -> Any:
    raw = getattr(dataset, "raw_samples", None)
    if not callable(raw):
        raise InvalidArgument(
            f"cannot insert a {type(dataset).__name__}: pass an atdata.Dataset (write samples to tar shards "
            "with atdata.write_samples first)"
        )
    return raw


def _checked(samples: Iterable[tuple[str, bytes]], check: SampleCheck, source: str) -> Iterator[tuple[str, bytes]]:
    """The samples of a dataset that is not an ``atdata.Dataset``, checked one by one
    (closing this closes the source's iterator too)."""
    try:
        for key, raw in samples:
            check.sample(source, key, raw)
            yield key, raw
    finally:
        _close(samples)


def _close(samples: Any) -> None:
    close = getattr(samples, "close", None)  # generators have it; other iterators need none
    if close is not None:
        close()


def dataset_metadata(dataset: DatasetLike) -> bytes | None:
    """The bytes at ``dataset.metadata_url``, copied as stored (checked to be a msgpack map first)."""
    url = getattr(dataset, "metadata_url", None)
    if url is None or getattr(dataset, "metadata", None) is None:  # .metadata validates the map
        return None
    with atdata.open_url(url) as stream:
        return stream.read()


@dataclass(frozen=True)
class SchemaPlan:
    """What an insert indexes its samples as, decided before anything is written.

    ``publish`` says whether :meth:`apply` publishes the sample type's schema (under
    ``version``; None: the next version of the class) or ``schema_ref`` is already there.
    """

    sample_type: type
    schema_ref: str | None
    publish: bool = False
    version: str | None = None

    def apply(self, index: AbstractIndex) -> str:
        """The insert's schema ref, published first if it is new (the insert's first write)."""
        if self.publish:
            return index.publish_schema(self.sample_type, version=self.version)
        assert self.schema_ref is not None  # noqa: S101 - set whenever nothing is published
        return self.schema_ref


def plan_schema(index: AbstractIndex, dataset: DatasetLike, schema_ref: str | None) -> SchemaPlan:
    """The stored dataset's sample type and schema ref of an insert of ``dataset`` (reads only)."""
    _raw_samples(dataset)  # a list of samples, say: refused as such, not for its missing type
    return plan_type_schema(index, getattr(dataset, "sample_type", None), schema_ref, dataset)


def plan_type_schema(index: AbstractIndex, sample_type: Any, schema_ref: str | None, source: Any) -> SchemaPlan:
    """The :class:`SchemaPlan` of an insert of ``source``'s samples of ``sample_type`` (reads only)."""
    packable = (
        isinstance(sample_type, type) and issubclass(sample_type, PackableSample) and sample_type is not DictSample
    )
    if schema_ref is None:
        if not packable:
            raise InvalidArgument(
                f"cannot tell the schema of {repr(source)[:200]}: use atdata.Dataset[YourSampleClass](...) "
                "(or sample_type=YourSampleClass) or pass schema_ref= of a published schema"
            )
        return SchemaPlan(sample_type, None, publish=True)
    ref = _schema.check_schema_ref(schema_ref)  # None: the at:// URI of a schema published on ATProto
    try:
        record = index.get_schema(schema_ref)
    except SchemaNotFound:
        if not packable:
            hint = (
                "publish it with repo.index.publish_schema(SampleClass, version=...)"
                if ref is not None
                else "pass the sample class with it: atdata.Dataset[SampleClass](...) and schema_ref="
            )
            raise SchemaNotFound(
                f"schema_ref={schema_ref!r} is not in {index!r}, so the samples cannot be checked against it: {hint}"
            ) from None
        if ref is not None and _schema.schema_ref(sample_type, ref.version) == schema_ref:
            return SchemaPlan(sample_type, schema_ref, publish=True, version=ref.version)
        # Another name, or an at:// URI: the class cannot be published under it here, so the
        # entry records the ref as given (as add_entry does); the samples are checked against the class.
        return SchemaPlan(sample_type, schema_ref)
    if not packable:
        return SchemaPlan(index.decode_schema(schema_ref), schema_ref)
    mine = _schema.to_record(sample_type, ref.version if ref is not None else str(record.get("version")))
    if not _schema.same_fields(record, {**mine, "name": record.get("name")}):  # the fields, whatever the name
        raise SchemaConflict(
            f"schema_ref={schema_ref!r} has other fields than {sample_type.__qualname__}: pass the ref "
            "of this class's schema, or schema_ref=None to publish it"
        )
    return SchemaPlan(sample_type, schema_ref)
