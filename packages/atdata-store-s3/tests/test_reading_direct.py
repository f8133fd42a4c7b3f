"""The s3:// opener's direct socket reads on a real server: exact bytes, any read size.

Over plain HTTP the opener fills each buffer with one ``recv(MSG_WAITALL)`` (see
``reading._DirectBody``); these tests pin that it returns exactly the object, stops at
its end on a kept-alive connection (the next object reads at once), and is the path
actually taken against ``rclone serve s3``.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest

from atdata.store_s3 import S3DataStore, read_url

pytestmark = pytest.mark.real

SIZES = [0, 1, 8191, 70_001, (3 << 20) + 5]


@pytest.mark.parametrize("read_size", [1000, 1 << 20, 8 << 20, None])
def test_direct_reads_return_exactly_each_object(s3_server: Any, read_size: int | None) -> None:
    store = S3DataStore(s3_server.credentials, f"direct-{uuid.uuid4().hex[:12]}", create_bucket=True)
    payloads = {size: os.urandom(size) for size in SIZES}
    urls = {size: store.write_bytes(f"obj-{size}", payload) for size, payload in payloads.items()}
    for _ in range(2):  # the same pooled connections again: no read waits past a body's end
        for size, url in urls.items():
            with read_url(url) as stream:
                assert stream.raw._direct is not None  # plain HTTP: the direct path is taken
                if read_size is None:
                    got = stream.read()
                else:
                    got = b"".join(iter(lambda: stream.read(read_size), b""))
            assert got == payloads[size], size
