"""The S3 store suite on real S3 HTTP servers: rclone serve s3 and moto.server.

Same test bodies as the moto-mock run (``S3StoreConformance``), over the wire. Behaviour
only rclone has (SigV4 rejection of a wrong secret, objects persisting across a
restart) gets its own tests in the rclone class.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from numpy.typing import NDArray

import atdata
from atdata.errors import AccessDenied, StoreError
from atdata.local.servers import S3Server, start_s3
from atdata.store_s3 import S3DataStore
from atdata.store_s3.testing import S3StoreConformance
from atdata.testing.store import make_raw_samples


def fresh_store(server: S3Server, **options: Any) -> Iterator[S3DataStore]:
    """A store on a new bucket; the bucket and everything in it are removed afterwards."""
    store = S3DataStore(server.credentials, f"atdata-{uuid.uuid4().hex[:16]}", part_size=5 << 20, **options)
    yield store
    client = store.client
    try:
        store.delete(info.key for info in store.list_objects())
        client.delete_bucket(Bucket=store.bucket)
    except client.exceptions.NoSuchBucket:
        pass


class _RawBody:
    """The urllib3-like body botocore reads an injected response from."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


class HttpFaults:
    """Faults injected at the HTTP layer, which only servers over the wire have."""

    def test_throttling_is_retried(self, store: S3DataStore) -> None:
        sent = [0]

        def slow_down(**_: Any) -> AWSResponse | None:
            sent[0] += 1
            if sent[0] > 2:
                return None  # send for real
            return AWSResponse("", 503, {}, _RawBody(b"<Error><Code>SlowDown</Code><Message>x</Message></Error>"))

        events = store.client.meta.events
        events.register("before-send.s3.UploadPart", slow_down, unique_id="atdata-slow-down")
        try:
            urls = store.write_shards(make_raw_samples(8, payload_size=1 << 20), prefix="retried")
        finally:
            events.unregister("before-send.s3.UploadPart", unique_id="atdata-slow-down")
        assert sent[0] > 2  # two throttled attempts, then real sends
        members, _ = S3StoreConformance().read_shard(store, urls[0])
        assert members == make_raw_samples(8, payload_size=1 << 20)


@pytest.mark.real
class TestStoreOnRclone(HttpFaults, S3StoreConformance):
    @pytest.fixture
    def store(self, s3_server: S3Server) -> Iterator[S3DataStore]:
        yield from fresh_store(s3_server)

    def test_wrong_secret_is_access_denied(self, s3_server: S3Server) -> None:
        wrong = {**s3_server.credentials, "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
        store = S3DataStore(wrong, f"atdata-{uuid.uuid4().hex[:16]}")
        with pytest.raises(AccessDenied) as info:
            store.write_shards(make_raw_samples(3), prefix="denied")
        assert store.bucket in str(info.value)
        assert "not-the-secret" not in str(info.value)

    def test_new_process_reads_with_configure(self, store: S3DataStore, tmp_path: Path) -> None:
        urls = store.write_shards(make_raw_samples(20), prefix="cross", maxcount=8)
        env_file = tmp_path / ".env"
        creds = store.credentials
        env_file.write_text(
            f"AWS_ENDPOINT={creds.endpoint_url}\nAWS_ACCESS_KEY_ID={creds.access_key_id}\n"
            f"AWS_SECRET_ACCESS_KEY={creds.secret_access_key}\n"
        )
        script = (
            "import hashlib, sys, atdata.store_s3\n"
            "from atdata.openers import open_url\n"
            "atdata.store_s3.configure(sys.argv[1])\n"
            "for url in sys.argv[2:]:\n"
            "    print(hashlib.sha256(open_url(url).read()).hexdigest())\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", script, str(env_file), *urls], capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == [url.sha256 for url in urls]


@pytest.mark.real
class TestStoreOnMotoServer(HttpFaults, S3StoreConformance):
    @pytest.fixture
    def store(self, moto_s3_server: S3Server) -> Iterator[S3DataStore]:
        yield from fresh_store(moto_s3_server)


@pytest.mark.real
@pytest.mark.slow
def test_server_killed_mid_upload_leaves_nothing(tmp_path: Path) -> None:
    """rclone dies while parts are uploading and comes back on the same port and directory.

    In-flight uploads fail (their multipart state died with the server); the write must
    then remove, on the restarted server, every shard it had already completed.
    """
    data = tmp_path / "data"
    server = start_s3(data, access_key="atdata-kill", secret_key="atdata-kill-secret", log_path=tmp_path / "log1")
    store = S3DataStore(
        server.credentials,
        "killed",
        part_size=5 << 20,
        config=Config(retries={"max_attempts": 8}, connect_timeout=2, read_timeout=10),
    )
    restarted: list[S3Server] = []
    completed_before_kill: list[Any] = []

    def kill_and_restart() -> None:
        process = server.process
        assert process is not None
        os.kill(process.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while process.running() and time.monotonic() < deadline:
            time.sleep(0.02)
        restarted.append(
            start_s3(
                data,
                port=server.port,
                access_key="atdata-kill",
                secret_key="atdata-kill-secret",
                log_path=tmp_path / "log2",
            )
        )

    def source() -> Iterator[tuple[str, bytes]]:
        for i, sample in enumerate(make_raw_samples(60, payload_size=1 << 20)):
            if i == 45:  # shard 0 complete, shard 1 completing, shard 2 filling
                completed_before_kill.extend(store.list_objects("mid/"))
                kill_and_restart()
            yield sample

    try:
        with pytest.raises(StoreError) as info:
            store.write_shards(source(), prefix="mid", maxcount=20)
        assert "s3://killed/mid/" in str(info.value)
        assert restarted, "the server was not restarted"
        assert completed_before_kill, "no shard was complete: the test would not exercise cleanup"
        assert list(store.list_objects("mid/")) == []
        assert TestStoreOnRclone().leftovers(store) == []
        assert not any((data / "killed").rglob("*.tar"))
    finally:
        for s in [server, *restarted]:
            s.stop()


@atdata.packable
class Row:
    features: NDArray[np.float32]
    label: str


@pytest.mark.real
def test_dataset_round_trip_through_s3(s3_server: S3Server, tmp_path: Path) -> None:
    rows = [Row(features=np.arange(8, dtype=np.float32) * i, label=f"r{i}") for i in range(50)]
    local = atdata.Dataset[Row](atdata.write_samples(rows, tmp_path / "local-%03d.tar", maxcount=20))
    for store in fresh_store(s3_server):
        urls = store.write_shards(local, prefix="datasets/v1", maxcount=16, cache_local=False)
        assert [u.num_samples for u in urls] == [16, 16, 16, 2]
        batches = list(atdata.Dataset[Row](urls).ordered(batch_size=32))
        assert batches[0].features.shape == (32, 8)
        assert [label for b in batches for label in b.label] == [r.label for r in rows]


@pytest.mark.real
@pytest.mark.slow
def test_server_killed_mid_read_names_the_url(tmp_path: Path) -> None:
    server = start_s3(tmp_path / "data", access_key="atdata-read", secret_key="atdata-read-secret")
    try:
        store = S3DataStore(server.credentials, "reads", config=Config(retries={"max_attempts": 1}))
        url = store.write_bytes("big.bin", os.urandom(64 << 20))
        stream = atdata.open_url(url)
        assert len(stream.read(1 << 20)) == 1 << 20
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGKILL)
        with pytest.raises(StoreError, match="s3://reads/big.bin"):
            while stream.read(1 << 20):
                pass
    finally:
        server.stop()
