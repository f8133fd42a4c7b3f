"""``S3StoreConformance``: the core store suite plus S3-only behaviour, for any S3 server.

Subclasses supply a ``store`` fixture (a fresh bucket on their server); the same
bodies run on moto's in-process mock (unit tests) and on real HTTP servers (rclone,
moto.server) in the integration tests. Needs pytest.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from botocore.config import Config

from atdata.errors import StoreError
from atdata.openers import open_url
from atdata.testing.store import DataStoreConformance, make_raw_samples

from .store import S3DataStore

__all__ = ["S3StoreConformance"]


class _Injected(Exception):
    pass


class S3StoreConformance(DataStoreConformance[S3DataStore]):
    """The store suite on S3, with faults injected through botocore event hooks."""

    def raw_keys(self, store: S3DataStore, prefix: str = "") -> list[str]:
        client = store.client
        keys: list[str] = []
        try:
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=store.bucket, Prefix=prefix):
                keys.extend(item["Key"] for item in page.get("Contents", []))
        except client.exceptions.NoSuchBucket:
            return []
        return sorted(keys)

    def leftovers(self, store: S3DataStore) -> list[str]:
        try:
            uploads = store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", [])
        except (store.client.exceptions.NoSuchBucket, store.client.exceptions.NoSuchUpload):
            return []  # rclone answers NoSuchUpload for a bucket that never had an upload
        return [f"{u['Key']} (upload {u['UploadId']})" for u in uploads]

    def fail_on(self, store: S3DataStore, operation: str, *, after: int) -> list[int]:
        """Make the ``after``-th and later ``operation`` calls fail; returns the call counter."""
        calls = [0]
        lock = threading.Lock()

        def hook(**_: Any) -> None:
            with lock:
                calls[0] += 1
                if calls[0] > after:
                    raise _Injected(f"injected {operation} failure")

        store.client.meta.events.register(f"before-call.s3.{operation}", hook, unique_id=f"atdata-fail-{operation}")
        return calls

    def clear_faults(self, store: S3DataStore, operation: str) -> None:
        store.client.meta.events.unregister(f"before-call.s3.{operation}", unique_id=f"atdata-fail-{operation}")

    def test_object_size_in_a_missing_bucket_is_none(self, store: S3DataStore) -> None:
        assert store.object_size(f"s3://{store.bucket}-never-made/key") is None

    @pytest.mark.parametrize(
        ("operation", "after"),
        [("UploadPart", 3), ("CompleteMultipartUpload", 1), ("CreateMultipartUpload", 1), ("PutObject", 2)],
    )
    def test_fault_mid_upload_leaves_nothing(self, store: S3DataStore, operation: str, after: int) -> None:
        # 1 MiB samples, 3 per shard with 5 MiB parts: small shards use PutObject, so
        # the multipart cases use big shards and the PutObject case small ones.
        big = operation != "PutObject"
        samples = make_raw_samples(16, payload_size=(1 << 20) if big else 100)
        calls = self.fail_on(store, operation, after=after)
        try:
            with pytest.raises(StoreError) as info:
                store.write_shards(samples, prefix="faulty", maxcount=6 if big else 3)
        finally:
            self.clear_faults(store, operation)
        assert calls[0] > after
        assert "injected" in str(info.value) or "injected" in repr(info.value.__cause__)
        self.assert_clean(store, "faulty")

    def test_part_uploads_are_bounded(self, store: S3DataStore) -> None:
        active, peak = [0], [0]
        lock = threading.Lock()

        def before(**_: Any) -> None:
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            # Hold this upload until another one starts (or 2 s pass): overlap then shows
            # however slowly a loaded machine fills the next part.
            deadline = time.monotonic() + 2
            while active[0] < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.05)

        def after(**_: Any) -> None:
            with lock:
                active[0] -= 1

        events = store.client.meta.events
        events.register("before-call.s3.UploadPart", before, unique_id="atdata-peak-before")
        events.register("after-call.s3.UploadPart", after, unique_id="atdata-peak-after")
        try:
            urls = store.write_shards(make_raw_samples(40, payload_size=1 << 20), prefix="bounded", maxcount=20)
        finally:
            events.unregister("before-call.s3.UploadPart", unique_id="atdata-peak-before")
            events.unregister("after-call.s3.UploadPart", unique_id="atdata-peak-after")
        assert len(urls) == 2
        assert 1 < peak[0] <= store.max_concurrency

    def test_missing_bucket_without_create(self, store: S3DataStore) -> None:
        strict = S3DataStore(store._credentials_arg, store.bucket + "-absent", create_bucket=False)
        with pytest.raises(StoreError, match="create_bucket=True") as info:
            strict.write_shards(make_raw_samples(2), prefix="x")
        assert strict.bucket in str(info.value)

    def test_s3_urls_open_through_core(self, store: S3DataStore) -> None:
        url = store.write_bytes("opened/obj", b"payload" * 1000)
        with open_url(url) as stream:
            assert stream.read(7) == b"payload"
            assert len(stream.read()) == 7 * 999

    def test_retry_config_is_exposed(self, store: S3DataStore) -> None:
        tuned = S3DataStore(store._credentials_arg, store.bucket, config=Config(retries={"max_attempts": 2}))
        retries = tuned.client.meta.config.retries
        assert retries["mode"] == "standard"  # ours, kept
        assert retries["total_max_attempts"] == 3  # theirs: 2 retries after the first attempt
        assert tuned.client.meta.config.request_checksum_calculation == "when_required"
