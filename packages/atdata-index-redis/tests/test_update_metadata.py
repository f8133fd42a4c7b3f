"""update_metadata: one version's metadata changes, nothing else does (fakeredis and valkey)."""

from __future__ import annotations

import uuid
from typing import Any

import fakeredis
import pytest
import redis

from atdata.errors import EntryNotFound
from atdata.index_redis import LocalIndex
from atdata.local.servers import RedisServer

_REF = "local://schemas/m.S@1.0.0"


class _Urls:
    def __init__(self, url: str) -> None:
        self.url = url


def _check(index: LocalIndex) -> None:
    old = index.add_entry(_Urls("s3://b/old.tar"), name="ds", schema_ref=_REF, metadata={"a": 1})
    new = index.add_entry(_Urls("s3://b/new.tar"), name="ds", schema_ref=_REF)
    updated = index.update_metadata(old, {"a": 1, "atmosphere": [{"uri": "at://did:plc:x/c/r"}]})
    assert updated.cid == old.cid and updated.metadata == {"a": 1, "atmosphere": [{"uri": "at://did:plc:x/c/r"}]}
    assert index.get_entry_by_name("ds").cid == new.cid  # the newest version stays the newest
    assert [e.metadata for e in index.get_entry_versions("ds")] == [None, updated.metadata]
    index.remove_entry(old)
    with pytest.raises(EntryNotFound, match="no version"):
        index.update_metadata(old, {"b": 2})
    assert [e.cid for e in index.get_entry_versions("ds")] == [new.cid]  # nothing was re-created


@pytest.mark.fake
def test_update_metadata_on_fakeredis() -> None:
    _check(LocalIndex(redis=fakeredis.FakeRedis(), key_prefix=f"t{uuid.uuid4().hex[:8]}:"))


def test_update_metadata_on_valkey(redis_server: RedisServer) -> None:
    client: Any = redis.Redis.from_url(redis_server.url)
    _check(LocalIndex(redis=client, key_prefix=f"t{uuid.uuid4().hex[:8]}:"))
