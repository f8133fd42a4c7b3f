"""Connection parameters: client, kwargs, URL, environment; pickling; reprs without secrets."""

from __future__ import annotations

import pickle

import fakeredis
import pytest
import redis
import redis.asyncio

from atdata.errors import InvalidArgument
from atdata.index_redis import LocalIndex
from atdata.index_redis._connection import ConnectionSpec
from atdata.testing.index import REF, FakeDataset

pytestmark = pytest.mark.fake


def test_kwargs_pass_to_redis_py_unchanged() -> None:
    index = LocalIndex(host="custom-host", port=6380, db=1, password="pw-secret", socket_timeout=3)
    client = index.redis
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["socket_timeout"]) == ("custom-host", 6380, 1, 3)
    assert kwargs["password"] == "pw-secret"
    assert repr(index) == "LocalIndex(custom-host:6380, db=1, key_prefix='atdata:')"


def test_default_is_localhost_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ATDATA_REDIS_URL", raising=False)
    assert repr(LocalIndex()) == "LocalIndex(localhost:6379, db=0, key_prefix='atdata:')"
    monkeypatch.setenv("ATDATA_REDIS_URL", "redis://:pw-secret@envhost:7000/2")
    index = LocalIndex()
    assert repr(index) == "LocalIndex(envhost:7000, db=2, key_prefix='atdata:')"
    assert index.redis.connection_pool.connection_kwargs["password"] == "pw-secret"
    # Explicit kwargs win over the environment.
    assert "kwhost" in repr(LocalIndex(host="kwhost"))


def test_from_url_keeps_the_password_out_of_reprs() -> None:
    index = LocalIndex.from_url("rediss://user:pw-secret@tlshost:6390/4", key_prefix="p:")
    assert repr(index) == "LocalIndex(tlshost:6390, db=4, key_prefix='p:')"
    assert "pw-secret" not in repr(index._spec)
    assert isinstance(index.redis.connection_pool.connection_class(), redis.SSLConnection)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(InvalidArgument, match="either redis="):
        LocalIndex(redis=fakeredis.FakeRedis(), host="h")
    with pytest.raises(InvalidArgument, match="braces"):
        LocalIndex(redis=fakeredis.FakeRedis(), key_prefix="a{b}")
    with pytest.raises(InvalidArgument, match="redis.Redis"):
        LocalIndex(redis=object())
    with pytest.raises(InvalidArgument, match="synchronous"):
        LocalIndex(redis=redis.asyncio.Redis())
    with pytest.raises(InvalidArgument, match="redis://"):
        LocalIndex.from_url("")
    with pytest.raises(InvalidArgument, match=r"'http://:\*\*\*@h:1/0' is not a Redis URL") as info:
        LocalIndex.from_url("http://:pw-secret@h:1/0")  # at construction, password masked
    assert "pw-secret" not in str(info.value)


@pytest.mark.parametrize("bad", ["nope", "localhost:6379", "redis://", "redis://h:port/0"])
def test_a_string_that_is_no_redis_url_is_named_at_construction(bad: str) -> None:
    with pytest.raises(InvalidArgument, match=f"redis='{bad}'.*redis://") as info:
        LocalIndex(redis=bad)
    assert "6379" not in str(info.value).replace(bad, "")  # the value given, never a default endpoint
    with pytest.raises(InvalidArgument, match=f"'{bad}'"):
        LocalIndex.from_url(bad)


def test_a_url_string_as_redis_is_accepted() -> None:
    index = LocalIndex(redis="redis://:pw-secret@urlhost:6381/3", key_prefix="u:", socket_timeout=2)
    assert repr(index) == "LocalIndex(urlhost:6381, db=3, key_prefix='u:')"
    kwargs = index.redis.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["socket_timeout"]) == ("urlhost", 6381, 3, 2)
    assert pickle.loads(pickle.dumps(index)).redis.connection_pool.connection_kwargs["password"] == "pw-secret"


def test_an_unknown_keyword_fails_at_construction() -> None:
    with pytest.raises(InvalidArgument, match=r"foo=.*redis.Redis does not take"):
        LocalIndex(foo=1)
    with pytest.raises(InvalidArgument, match=r"prot=.*did you mean port"):
        LocalIndex(host="h", prot=1)
    with pytest.raises(InvalidArgument, match="foo="):
        LocalIndex.from_url("redis://h:1/0", foo=1)
    with pytest.raises(InvalidArgument, match="foo="):
        LocalIndex(redis="redis://h:1/0", foo=1)


def test_a_bad_environment_url_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATDATA_REDIS_URL", "nope")
    with pytest.raises(InvalidArgument, match=r"\$ATDATA_REDIS_URL='nope'"):
        LocalIndex()


def test_bad_connection_kwargs_are_named_not_bare_type_or_value_errors() -> None:
    with pytest.raises(InvalidArgument, match=r"port='abc'.*6379"):
        LocalIndex(port="abc")
    with pytest.raises(InvalidArgument, match=r"port=0"):
        LocalIndex(port=0)
    with pytest.raises(InvalidArgument, match="prot") as info:
        LocalIndex(prot=6379, password="pw-secret")
    assert "redis.Redis" in str(info.value) and "pw-secret" not in str(info.value)


def test_pickle_carries_parameters_not_the_client() -> None:
    index = LocalIndex(host="h", port=7001, db=3, password="pw-secret", key_prefix="q:")
    index.redis  # build the client: it must not travel
    clone = pickle.loads(pickle.dumps(index))
    assert clone._client is None
    assert repr(clone) == repr(index)
    assert clone.redis.connection_pool.connection_kwargs["password"] == "pw-secret"


def test_spec_from_a_client_keeps_plain_kwargs_only() -> None:
    client = redis.Redis(host="h", port=7002, db=5, password="pw-secret", client_name="me")
    spec = ConnectionSpec.from_client(client)
    assert spec.kwargs["host"] == "h" and spec.kwargs["db"] == 5 and spec.kwargs["client_name"] == "me"
    assert "retry" not in spec.kwargs
    pickle.dumps(spec)
    assert repr(spec) == "ConnectionSpec(h:7002)"


def test_decode_responses_clients_work_too() -> None:
    index = LocalIndex(redis=fakeredis.FakeRedis(decode_responses=True))
    entry = index.add_entry(FakeDataset(["a.tar"]), name="n", schema_ref=REF, metadata={"k": "v"})
    assert index.get_entry_by_name("n") == entry == index.get_entry(entry.cid)
    assert index.all_entries == [entry]
    assert index.get_entry_versions("n") == [entry]
    index.remove_entry("n")
    assert index.all_entries == []
