"""Every documented import of atdata-store-s3 works, and __all__ lists exactly those."""

from __future__ import annotations

import atdata.store_s3
from atdata.openers import registered_schemes
from atdata.protocols import AbstractDataStore


def test_documented_names() -> None:
    from atdata.store_s3 import S3Credentials, S3DataStore, configure, load_credentials, read_url

    assert issubclass(S3DataStore, AbstractDataStore)
    assert callable(configure) and callable(read_url) and callable(load_credentials)
    assert S3Credentials.__name__ == "S3Credentials"


def test_all_matches_public_names() -> None:
    public = {n for n in vars(atdata.store_s3) if not n.startswith("_") or n == "__version__"}
    submodules = {"reading", "store", "testing"}
    assert set(atdata.store_s3.__all__) == public - submodules


def test_importing_registers_the_s3_opener() -> None:
    assert "s3" in registered_schemes()
