"""The index suite on fakeredis (the quick loop); tests/integration runs it on real servers."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import fakeredis
import pytest

from atdata.index_redis import LocalIndex
from atdata.index_redis.testing import LocalIndexConformance


@pytest.mark.fake
class TestIndexOnFakeredis(LocalIndexConformance):
    @pytest.fixture
    def index_factory(self) -> Callable[[], LocalIndex]:
        server = fakeredis.FakeServer()  # one per test: nothing to clean up
        return lambda: LocalIndex(redis=fakeredis.FakeRedis(server=server), key_prefix=f"t{uuid.uuid4().hex[:10]}:")
