"""The s3:// opener's direct socket reads on a real server: exact bytes, any read size.

Over plain HTTP the opener fills each buffer with one ``recv(MSG_WAITALL)`` (see
``reading._DirectBody``); these tests pin that it returns exactly the object, stops at
its end on a kept-alive connection (the next object reads at once), and is the path
actually taken against ``rclone serve s3``.
"""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config

from atdata.errors import StoreUnavailable
from atdata.local.servers import start_s3
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


@pytest.mark.slow
def test_a_body_cut_off_mid_read_raises_once_naming_the_url(tmp_path: Path) -> None:
    server = start_s3(tmp_path / "data", access_key="atdata-cut", secret_key="atdata-cut-secret")
    try:
        store = S3DataStore(server.credentials, "cut", config=Config(retries={"max_attempts": 1}), create_bucket=True)
        url = store.write_bytes("big.bin", os.urandom(64 << 20))
        stream = read_url(url)
        assert stream.raw._direct is not None
        assert len(stream.read(1 << 20)) == 1 << 20
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGKILL)
        with pytest.raises(StoreUnavailable, match=r"^reading s3://cut/big\.bin: the connection") as caught:
            while stream.read(1 << 20):
                pass
        assert str(caught.value).count("s3://cut/big.bin") == 1  # not wrapped twice
    finally:
        server.stop()
