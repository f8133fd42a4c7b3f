"""DataLoader workers reading ``s3://`` shards from the real S3 server (rclone), with real torch."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from torch.utils.data import DataLoader

import atdata
from atdata.local.servers import S3Server
from atdata.store_s3 import S3DataStore

SUPPORT = Path(__file__).resolve().parents[2] / "packages" / "atdata-core" / "tests" / "torch_support"
sys.path.insert(0, str(SUPPORT))
from torch_samples import TorchSample, labels, sample  # noqa: E402


@pytest.fixture
def store(s3_server: S3Server) -> Iterator[S3DataStore]:
    store = S3DataStore(s3_server.credentials, f"atdata-torch-{uuid.uuid4().hex[:12]}")
    yield store
    store.delete(info.key for info in store.list_objects())
    store.client.delete_bucket(Bucket=store.bucket)


def test_dataloader_workers_read_s3_shards_in_the_single_process_order(store: S3DataStore) -> None:
    """2 workers over 5 S3 shards: every sample once per epoch, the order one process reads,
    a new order each epoch."""
    urls = store.write_shards(((f"{i:06d}", sample(i).packed) for i in range(600)), prefix="torch", maxcount=130)
    loader = atdata.Dataset[TorchSample](list(urls)).shuffled(batch_size=32, seed=4, buffer_size=50)
    single = atdata.Dataset[TorchSample](list(urls)).shuffled(batch_size=32, seed=4, buffer_size=50)
    expected = [labels(single), labels(single)]
    got = [labels(DataLoader(loader, batch_size=None, num_workers=2)) for _ in range(2)]
    assert got == expected
    assert got[0] != got[1] and all(sorted(e) == list(range(600)) for e in got)
