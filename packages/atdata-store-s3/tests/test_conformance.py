"""The S3 store suite on moto's in-process mock (the quick loop)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from moto import mock_aws

from atdata.store_s3 import S3DataStore
from atdata.store_s3.testing import S3StoreConformance

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


@pytest.fixture
def moto_mock() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.mark.fake
class TestS3StoreOnMotoMock(S3StoreConformance):
    @pytest.fixture
    def store(self, moto_mock: None) -> S3DataStore:
        return S3DataStore(CREDENTIALS, f"atdata-{uuid.uuid4().hex[:12]}", part_size=5 << 20)
