"""What ``Repo.insert`` checks and reads before it writes anything.

Arguments the index or store would refuse are refused here, before the first upload;
the source's samples are opened (and refused if empty) and closed when the insert ends;
the sample type gives the schema ref, published first (a schema without an entry is
harmless, and publishing first fails fast on a conflict or an unreachable index).
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Iterator
from typing import Any

import atdata
from atdata import schema as _schema
from atdata.errors import InvalidArgument, SchemaConflict, SchemaNotFound
from atdata.names import check_entry_name
from atdata.protocols import AbstractIndex, DatasetLike
from atdata.sample import DictSample, PackableSample

__all__ = ["check_insert_args", "dataset_metadata", "resolve_type_schema", "source_samples"]


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
def source_samples(dataset: DatasetLike) -> Iterator[Iterator[Any]]:
    """``dataset.raw_samples()``, refused if empty before anything is written, and closed on
    exit: a failed insert stops the source's reader (prefetch threads, open shards) at once."""
    raw = getattr(dataset, "raw_samples", None)
    if not callable(raw):
        raise InvalidArgument(
            f"cannot insert a {type(dataset).__name__}: pass an atdata.Dataset (write samples to tar shards "
            "with atdata.write_samples first)"
        )
    samples = iter(raw())
    try:
        first = next(samples, None)
        if first is None:
            raise InvalidArgument(f"dataset {repr(dataset)[:200]} has no samples: nothing to insert")
        yield itertools.chain([first], samples)
    finally:
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


def resolve_type_schema(
    index: AbstractIndex, sample_type: Any, schema_ref: str | None, source: Any
) -> tuple[type, str]:
    """The sample type and (published) schema ref of an insert of ``source``'s samples."""
    packable = (
        isinstance(sample_type, type) and issubclass(sample_type, PackableSample) and sample_type is not DictSample
    )
    if schema_ref is None:
        if not packable:
            raise InvalidArgument(
                f"cannot tell the schema of {repr(source)[:200]}: use atdata.Dataset[YourSampleClass](...) "
                "(or sample_type=YourSampleClass) or pass schema_ref= of a published schema"
            )
        return sample_type, index.publish_schema(sample_type, version=None)
    ref = _schema.parse_schema_ref(schema_ref)
    try:
        record = index.get_schema(schema_ref)
    except SchemaNotFound:
        if not packable:
            raise SchemaNotFound(
                f"schema_ref={schema_ref!r} is not published in {index!r}: publish it with "
                "repo.index.publish_schema(SampleClass, version=...)"
            ) from None
        return sample_type, index.publish_schema(sample_type, version=ref.version)
    if not packable:
        return index.decode_schema(schema_ref), schema_ref
    if not _schema.same_fields(record, _schema.to_record(sample_type, ref.version)):
        raise SchemaConflict(
            f"schema_ref={schema_ref!r} has other fields than {sample_type.__qualname__}: pass the ref "
            "of this class's schema, or schema_ref=None to publish it"
        )
    return sample_type, schema_ref
