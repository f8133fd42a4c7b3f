"""Every documented import of atdata-local works, and __all__ lists exactly those."""

from __future__ import annotations

import types

import atdata.local
from atdata.openers import registered_schemes


def test_documented_names() -> None:
    from atdata.index_redis import LocalDatasetEntry as Entry
    from atdata.index_redis import LocalIndex as Index
    from atdata.local import (
        GcReport,
        LocalDatasetEntry,
        LocalIndex,
        PendingInsert,
        Repo,
        S3DataStore,
        ShardCheck,
        VerifyReport,
    )
    from atdata.store_s3 import S3DataStore as Store

    assert (LocalIndex, LocalDatasetEntry, S3DataStore) == (Index, Entry, Store)
    assert callable(Repo.insert) and callable(Repo.gc) and GcReport.__name__ == "GcReport"
    assert callable(Repo.stage_insert) and callable(Repo.commit_insert) and callable(PendingInsert.write_shard)
    assert callable(Repo.verify) and callable(Repo.verify_all) and {"ok", "failures"} <= set(dir(VerifyReport))
    assert ShardCheck("u", "ok").ok and not ShardCheck("u", "missing").ok


def test_all_matches_public_names() -> None:
    public = {n for n in vars(atdata.local) if not n.startswith("_") or n == "__version__"}
    # Submodules become attributes once any test imports them (cli, testing, ...): not re-exports.
    submodules = {n for n in public if isinstance(getattr(atdata.local, n), types.ModuleType)}
    assert set(atdata.local.__all__) == public - submodules


def test_importing_registers_the_s3_opener() -> None:
    assert "s3" in registered_schemes()
