"""The documented imports of atdata-index-redis, and nothing else, are public."""

from __future__ import annotations

import atdata.index_redis
from atdata.protocols import AbstractIndex, IndexEntry


def test_all_is_the_public_surface() -> None:
    public = {name for name in vars(atdata.index_redis) if not name.startswith("_")}
    assert set(atdata.index_redis.__all__) == {"LocalDatasetEntry", "LocalIndex", "StoredContent"}
    assert set(atdata.index_redis.__all__) <= public


def test_documented_imports() -> None:
    from atdata.index_redis import LocalDatasetEntry, LocalIndex
    from atdata.index_redis.testing import LocalIndexConformance
    from atdata.testing import IndexConformance

    assert issubclass(LocalIndex, AbstractIndex)
    assert issubclass(LocalIndexConformance, IndexConformance)
    entry = LocalDatasetEntry(name="n", schema_ref="local://schemas/m.T@1.0.0", data_urls=["a.tar"])
    assert isinstance(entry, IndexEntry)
    assert entry.cid.startswith("bafyrei")
    assert (entry.wds_url, entry.sample_kind) == ("a.tar", entry.schema_ref)


def test_cid_module_names() -> None:
    from atdata import cid

    assert set(cid.__all__) == {
        "ParsedCID",
        "cid_from_bytes",
        "encode_dag_cbor",
        "entry_cid",
        "generate_cid",
        "parse_cid",
        "verify_cid",
    }
