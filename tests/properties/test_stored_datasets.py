"""Stored datasets: samples -> Repo.insert (real Redis + real S3) -> read back by name.

For generated sample types and any ``maxcount``/``maxsize`` split, the entry found by
name reads back the same samples in the same order, both with the original class and
with the class decoded from the entry's schema (what a user with only the index has);
inserting that decoded dataset again is recognised as the same content (same CID).
The package tests cover Repo over a local directory with one fixed sample type; this
goes through ``S3DataStore`` on ``rclone serve s3`` and the ``s3://`` opener.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import atdata
from atdata.local import Repo
from atdata.testing.strategies import ENTRY_NAMES
from atdata.urls import expand_urls
from tests.properties._strategies import assert_same_values, real_server_settings, sample_types, values_of

pytestmark = pytest.mark.real

NAMES = ENTRY_NAMES


@real_server_settings(100, share=0.7)  # two inserts per example
@given(
    data=st.data(),
    name=NAMES,
    maxcount=st.none() | st.integers(1, 12),
    maxsize=st.none() | st.integers(1, 20_000),
    source_maxcount=st.integers(1, 12),
    cache_local=st.booleans(),
)
def test_inserted_samples_read_back_by_name_in_order(
    repo_factory: Callable[[], Repo],
    data: st.DataObject,
    name: str,
    maxcount: int | None,
    maxsize: int | None,
    source_maxcount: int,
    cache_local: bool,
) -> None:
    generated = data.draw(sample_types(max_fields=4), label="sample type")
    sample_type = generated[0]
    samples = [sample_type(**row) for row in data.draw(values_of(generated, max_size=25), label="samples")]
    repo = repo_factory()

    with tempfile.TemporaryDirectory(prefix="atdata-props-") as tmp:
        paths = atdata.write_samples(samples, str(Path(tmp, "src-%06d.tar")), maxcount=source_maxcount)
        source = atdata.Dataset(paths, sample_type=sample_type)
        raw = list(source.raw_samples())
        entry, stored = repo.insert(source, name=name, maxcount=maxcount, maxsize=maxsize, cache_local=cache_local)

    shards = stored.shard_list
    sizes = {info.url: info.size for info in repo.store.list_objects(repo.prefix)}
    for url in shards:
        count = sum(1 for _ in atdata.Dataset(url).raw_samples())
        assert 1 <= count <= (maxcount or count)
        assert count == 1 or sizes[url] <= (maxsize or sizes[url])  # only a lone sample may exceed maxsize
    found = repo.index.get_entry_by_name(name)
    assert found.cid == entry.cid
    assert expand_urls(found.data_urls) == shards

    by_name = atdata.Dataset(found.data_urls, sample_type=sample_type)
    assert list(by_name.ordered(batch_size=None)) == samples

    decoded = repo.index.decode_schema(found.schema_ref)
    read = list(atdata.Dataset(found.data_urls, sample_type=decoded).ordered(batch_size=None))
    assert len(read) == len(samples)
    for expected, actual in zip(samples, read):
        assert_same_values(expected, actual)
    assert list(stored.raw_samples()) == raw  # copied as stored: same keys, same bytes

    # Re-inserting what the index alone describes (decoded class) is the same content:
    # the same schema ref (not a new schema for the generated class), shards and CID.
    again, _ = repo.insert(atdata.Dataset(found.data_urls, sample_type=decoded), name=name + "-again",
                           maxcount=maxcount, maxsize=maxsize)  # fmt: skip
    assert (again.schema_ref, again.data_urls, again.cid) == (found.schema_ref, found.data_urls, found.cid)
