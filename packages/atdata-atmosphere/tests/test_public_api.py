"""Every documented import of atdata-atmosphere works, and __all__ lists exactly those."""

from __future__ import annotations

import atdata.atmosphere
import atdata.promote
from atdata.openers import registered_schemes
from atdata.protocols import AbstractIndex, IndexEntry


def test_documented_names() -> None:
    from atdata.atmosphere import AtmosphereClient, AtmosphereEntry, AtmosphereIndex
    from atdata.promote import promote_to_atmosphere

    assert issubclass(AtmosphereIndex, AbstractIndex)
    assert callable(promote_to_atmosphere)
    assert AtmosphereClient().base_url == "https://bsky.social"  # the documented default
    entry = AtmosphereEntry(
        uri="at://d/c/r", record_cid="b", name="n", schema_ref="at://d/s/r", data_urls=[], shards=[], cid="c"
    )
    assert isinstance(entry, IndexEntry)


def test_all_matches_public_names() -> None:
    submodules = {"client", "index", "lexicon", "reading", "records", "schemas", "testing", "uri"}
    public = {n for n in vars(atdata.atmosphere) if not n.startswith("_") or n == "__version__"}
    assert set(atdata.atmosphere.__all__) == public - submodules
    assert set(atdata.promote.__all__) == {n for n in vars(atdata.promote) if not n.startswith("_")}


def test_importing_registers_the_http_opener() -> None:
    assert {"http", "https"} <= set(registered_schemes())
