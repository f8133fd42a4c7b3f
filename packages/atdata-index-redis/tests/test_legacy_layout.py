"""An index written by the first key layout is converted on first use, nothing lost.

The old keys are written here by hand, as the first layout's scripts wrote them, on
fakeredis and on a real valkey server.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import fakeredis
import pytest
import redis

from atdata.index_redis import LocalIndex
from atdata.index_redis._entry import content_cid
from atdata.index_redis.testing import raw_keys
from atdata.testing.index import REF, FakeDataset


@pytest.fixture(
    params=[pytest.param("fakeredis", marks=pytest.mark.fake), pytest.param("valkey", marks=pytest.mark.real)]
)
def server(request: pytest.FixtureRequest) -> Iterator[tuple[Any, Callable[[], LocalIndex]]]:
    """A raw client (to write the old keys, bypassing the index) and a maker of fresh indexes."""
    prefix = f"legacy-{uuid.uuid4().hex[:12]}:"
    if request.param == "fakeredis":
        fake = fakeredis.FakeServer()
        yield (
            fakeredis.FakeRedis(server=fake),
            lambda: LocalIndex(redis=fakeredis.FakeRedis(server=fake), key_prefix=prefix),
        )
        return
    url = request.getfixturevalue("redis_server").url
    raw = redis.Redis.from_url(url)
    yield raw, lambda: LocalIndex.from_url(url, key_prefix=prefix)
    for key in raw.scan_iter(match="{" + prefix + "}*"):
        raw.delete(key)


def _write_old_entry(client: Any, prefix: str, url: str, name: str, seq: int, metadata: object) -> str:
    base = "{" + prefix + "}"
    cid = content_cid(REF, [url])
    content = json.dumps({"cid": cid, "schema_ref": REF, "data_urls": [url], "metadata": metadata})
    client.hset(f"{base}entry:{cid}", mapping={"name": name, "content": content, "seq": seq, "created_at": "t"})
    client.zadd(f"{base}versions:{name}", {cid: seq})
    client.set(f"{base}name:{name}", cid)
    client.sadd(f"{base}entries", cid)
    client.set(f"{base}seq", seq)
    return cid


def test_first_layout_is_converted_on_first_use(server: tuple[Any, Callable[[], LocalIndex]]) -> None:
    raw, make = server
    prefix = make().key_prefix
    v1 = _write_old_entry(raw, prefix, "v1.tar", "ds", 1, {"shape": [], "note": {}})
    v2 = _write_old_entry(raw, prefix, "v2.tar", "ds", 2, None)
    other = _write_old_entry(raw, prefix, "o.tar", "other", 3, {"k": 1})
    index = make()
    entries = {e.name: e for e in index.all_entries}
    assert {n: e.cid for n, e in entries.items()} == {"ds": v2, "other": other}
    assert [(e.cid, e.metadata) for e in index.get_entry_versions("ds")] == [
        (v2, None),
        (v1, {"shape": [], "note": {}}),
    ]
    assert index.get_entry(other).metadata == {"k": 1}
    kinds = {key.split("}", 1)[1].split(":", 1)[0] for key in raw_keys(index)}
    assert not kinds & {"entry", "name", "versions", "entries"}  # the old keys are gone
    assert index.add_entry(FakeDataset("v1.tar"), name="ds", schema_ref=REF).cid == v1  # seq continues: newest
    assert index.get_entry_by_name("ds").cid == v1
    assert make().get_entry_by_name("other").cid == other  # a second client: nothing left to convert
