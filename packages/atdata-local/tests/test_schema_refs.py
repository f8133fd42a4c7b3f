"""Schema refs are not over-strict (issue 13): any ``local://schemas/NAME@SEMVER`` (a module
part optional) and the ``at://`` URI of a published schema, through ``LocalIndex.add_entry``
and ``Repo.insert`` on the real valkey; reading an entry whose schema is not in the index
raises a ``SchemaNotFound`` that says what to do."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

import atdata
from atdata.errors import InvalidSchemaRef, SchemaNotFound
from atdata.index_redis import LocalIndex
from atdata.local import Repo
from atdata.local.servers import RedisServer

from .conftest import Point, write_source

pytestmark = pytest.mark.real

LOCAL_REF = "local://schemas/Test@1.0.0"
AT_REF = "at://did:plc:abc123/science.alt.dataset.schema/3kabc2x"


@pytest.fixture
def index(redis_server: RedisServer) -> LocalIndex:
    return LocalIndex.from_url(redis_server.url, key_prefix=f"refs-{uuid.uuid4().hex[:12]}:")


@pytest.mark.parametrize("ref", [LOCAL_REF, AT_REF])
def test_add_entry_takes_the_ref_and_reading_says_where_the_schema_is(
    index: LocalIndex, tmp_path: Path, ref: str
) -> None:
    source = write_source(tmp_path / "src", 5)
    entry = index.add_entry(atdata.Dataset(source.shard_list[0]), name="by-ref", schema_ref=ref)
    assert entry.schema_ref == ref and index.get_entry_by_name("by-ref").schema_ref == ref
    with pytest.raises(SchemaNotFound) as missing:
        index.decode_schema(entry.schema_ref)
    message = str(missing.value)
    assert repr(ref) in message and "atdata.Dataset[YourClass](entry.data_urls[0])" in message
    assert ("publish_schema(YourClass, version='1.0.0')" in message) if ref == LOCAL_REF else ("ATProto" in message)
    assert [s.label for s in atdata.Dataset[Point](entry.data_urls[0])] == list(range(5))  # the class reads it


@pytest.mark.parametrize("ref", [LOCAL_REF, AT_REF])
def test_repo_insert_records_any_ref_and_checks_the_samples_against_the_class(
    tmp_path: Path, redis_server: RedisServer, key_prefix: str, ref: str
) -> None:
    repo = Repo(hive_path=str(tmp_path / "hive"), redis=redis_server.url, key_prefix=key_prefix)
    entry, stored = repo.insert(write_source(tmp_path / "src", 12, maxcount=5), name="pts", schema_ref=ref)
    assert entry.schema_ref == ref and repo.index.get_entry_by_name("pts").cid == entry.cid
    assert list(repo.index.list_schemas()) == []  # Point cannot be published under another name
    assert [s.label for s in atdata.Dataset[Point](entry.data_urls[0])] == list(range(12))
    with pytest.raises(SchemaNotFound, match="atdata.Dataset"):
        repo.index.decode_schema(entry.schema_ref)


def test_a_ref_to_a_schema_the_index_cannot_read_needs_the_class(
    tmp_path: Path, redis_server: RedisServer, key_prefix: str
) -> None:
    repo = Repo(hive_path=str(tmp_path / "hive"), redis=redis_server.url, key_prefix=key_prefix)
    untyped = atdata.Dataset(write_source(tmp_path / "src", 3).shard_list)
    with pytest.raises(SchemaNotFound, match=r"cannot be checked against it: pass the sample class"):
        repo.insert(untyped, name="x", schema_ref=AT_REF)
    with pytest.raises(SchemaNotFound, match=r"publish it with repo.index.publish_schema"):
        repo.insert(untyped, name="x", schema_ref=LOCAL_REF)
    with pytest.raises(InvalidSchemaRef, match=r"'Test@1.0.0'.*local://schemas/\{name\}@\{semver\}"):
        repo.insert(untyped, name="x", schema_ref="Test@1.0.0")
    assert list(repo.store.list_objects()) == [] and repo.index.all_entries == []
