"""Schema round trip through a real LocalIndex, for generated sample types.

publish_schema -> get_schema -> decode_schema -> publish again is a fixed point (same
ref, same record but ``createdAt``), and shards written with either class (the original
or the one decoded from Redis) read back with the other with exactly equal values.

The index suite (``atdata.testing.index``) checks the fixed point for a few field kinds;
here every supported kind takes part (arrays of any dtype, typed arrays, optionals,
lists, dicts) and the data goes through real tar shards, not just ``from_bytes``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import atdata
from atdata.index_redis import LocalIndex
from atdata.sample import fields_of
from tests.properties._strategies import (
    MODULE,
    assert_same_values,
    real_server_settings,
    sample_types,
    semvers,
    values_of,
)

pytestmark = pytest.mark.real


def _write_then_read(samples: list[Any], reader: type) -> list[Any]:
    """Write ``samples`` into two tar shards, read them back as ``reader`` in order."""
    with tempfile.TemporaryDirectory(prefix="atdata-props-") as tmp:
        paths = atdata.write_samples(samples, str(Path(tmp, "s-%06d.tar")), maxcount=max(1, len(samples) // 2))
        return list(atdata.Dataset(paths, sample_type=reader).ordered(batch_size=None))


@real_server_settings(200)
@given(data=st.data(), version=semvers, description=st.none() | st.text(max_size=30))
def test_publish_get_decode_publish_is_a_fixed_point_and_data_crosses_both_ways(
    index_factory: Callable[[], LocalIndex], data: st.DataObject, version: str, description: str | None
) -> None:
    generated = data.draw(sample_types(), label="sample type")
    original = generated[0]
    index = index_factory()

    ref = index.publish_schema(original, version=version, description=description)
    assert ref == f"local://schemas/{MODULE}.{original.__name__}@{version}"
    record = index.get_schema(ref)
    decoded = index.decode_schema(ref)
    assert fields_of(decoded) == fields_of(original)
    assert index.publish_schema(decoded, version=version, description=description) == ref
    again = index.get_schema(ref)
    assert {k: v for k, v in again.items() if k != "createdAt"} == {k: v for k, v in record.items() if k != "createdAt"}

    # A fresh handle (as another process would open) decodes the same fields from Redis.
    fresh = LocalIndex(redis=index.redis, key_prefix=index.key_prefix).decode_schema(ref)
    assert fields_of(fresh) == fields_of(original)

    rows = data.draw(values_of(generated), label="sample values")
    written = [original(**row) for row in rows]
    read = _write_then_read(written, decoded)
    assert len(read) == len(written)
    for expected, actual in zip(written, read):
        assert type(actual) is decoded
        assert_same_values(expected, actual)

    written_decoded = [decoded(**row) for row in rows]
    read_back = _write_then_read(written_decoded, original)
    assert read_back == written  # the original class's own (NaN-aware) equality
