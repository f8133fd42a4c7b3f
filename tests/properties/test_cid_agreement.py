"""CID determinism across packages: core, the Redis index and the Repo agree.

An entry's CID is ``generate_cid({"schema_ref": ..., "data_urls": [...]})`` and nothing
else: ``atdata.cid.generate_cid`` (core), ``LocalIndex.add_entry`` (index-redis) and
``Repo.insert`` (local, on real Redis + real S3) give the same CID for the same pair,
whatever the dict order, the entry name, the metadata or the process; and a different
CID as soon as the schema ref or any data URL changes. Core's tests pin the encoding,
the index suite pins ``add_entry`` against core; this pins all three together.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray

import atdata
from atdata.cid import generate_cid
from atdata.index_redis import LocalIndex
from atdata.local import Repo
from atdata.testing.index import FakeDataset
from atdata.testing.strategies import ENTRY_NAMES
from tests.properties._strategies import real_server_settings, semvers

pytestmark = pytest.mark.real

METADATA = st.none() | st.dictionaries(st.text(max_size=6), st.integers(-100, 100) | st.text(max_size=6), max_size=4)
URLS = st.lists(st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40), min_size=1, max_size=4)


@atdata.packable
class Row:
    x: NDArray[np.float32]
    tag: str


def _content(schema_ref: str, urls: list[str]) -> dict[str, Any]:
    return {"schema_ref": schema_ref, "data_urls": list(urls)}


@real_server_settings(300)
@given(
    module=st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True),
    version=semvers,
    urls=URLS,
    names=st.lists(ENTRY_NAMES, min_size=2, max_size=2, unique=True),
    metadata=st.lists(METADATA, min_size=2, max_size=2),
    changed_url=st.text(min_size=1, max_size=10),
    index_of_change=st.integers(0, 3),
)
def test_core_and_index_agree_and_only_content_matters(
    index_factory: Callable[[], LocalIndex],
    module: str,
    version: str,
    urls: list[str],
    names: list[str],
    metadata: list[dict[str, Any] | None],
    changed_url: str,
    index_of_change: int,
) -> None:
    ref = f"local://schemas/{module}.Sample@{version}"
    expected = generate_cid(_content(ref, urls))
    assert generate_cid({"data_urls": list(urls), "schema_ref": ref}) == expected  # dict order

    first, second = index_factory(), index_factory()
    a = first.add_entry(FakeDataset(urls), name=names[0], schema_ref=ref, metadata=metadata[0])
    b = second.add_entry(FakeDataset(list(urls)), name=names[1], schema_ref=ref, metadata=metadata[1])
    assert a.cid == b.cid == expected
    assert first.get_entry_by_name(names[0]).cid == second.get_entry(expected).cid == expected

    other_urls = list(urls)
    position = index_of_change % len(urls)
    other_urls[position] = other_urls[position] + changed_url
    assert first.add_entry(FakeDataset(other_urls), name=names[0], schema_ref=ref).cid != expected
    other_ref = f"local://schemas/{module}.Sample@{version}-rc.1"
    assert first.add_entry(FakeDataset(urls), name=names[0], schema_ref=other_ref).cid != expected
    assert first.add_entry(FakeDataset(urls + urls[:1]), name=names[0], schema_ref=ref).cid != expected


def _insert(repo: Repo, rows: list[int], name: str, metadata: dict[str, Any] | None) -> Any:
    with tempfile.TemporaryDirectory(prefix="atdata-props-") as tmp:
        samples = [Row(x=np.full(3, i, np.float32), tag=str(i)) for i in rows]
        paths = atdata.write_samples(
            [{**s.as_wds, "__key__": f"{i:06d}"} for i, s in enumerate(samples)],
            str(Path(tmp, "s-%06d.tar")),
            maxcount=4,
        )
        return repo.insert(atdata.Dataset[Row](paths), name=name, maxcount=3, metadata=metadata)


@real_server_settings(80, share=0.5)  # three inserts per example
@given(rows=st.lists(st.integers(0, 50), min_size=1, max_size=10), metadata=st.lists(METADATA, min_size=2, max_size=2))
def test_repo_insert_cid_is_the_core_cid_of_its_entry(
    repo_factory: Callable[[], Repo], index_factory: Callable[[], LocalIndex], rows: list[int], metadata: list[Any]
) -> None:
    repo = repo_factory()
    entry, stored = _insert(repo, rows, "first", metadata[0])
    assert entry.cid == generate_cid(_content(entry.schema_ref, entry.data_urls))
    assert repo.index.get_entry_by_name("first").cid == entry.cid

    # The index package, given the stored dataset, computes the same CID in another index.
    elsewhere = index_factory().add_entry(stored, name="elsewhere", schema_ref=entry.schema_ref, metadata=metadata[1])
    assert elsewhere.cid == entry.cid

    # Same content again, other name and metadata: the same shards, so the same CID.
    again, _ = _insert(repo, rows, "second", metadata[1])
    assert again.cid == entry.cid and again.data_urls == entry.data_urls

    # Different samples: new shards, new URLs, a different CID.
    changed, _ = _insert(repo, [*rows, 51], "third", metadata[0])
    assert changed.data_urls != entry.data_urls and changed.cid != entry.cid


def test_another_process_recomputes_the_same_cids(repo_factory: Callable[[], Repo], redis_server: Any) -> None:
    """A fresh interpreter with other hash seeds reads the entries and recomputes every CID."""
    repo = repo_factory()
    entries = [_insert(repo, list(range(n)), f"d{n}", {"n": n})[0] for n in (1, 4, 7)]
    code = (
        "import json, sys\n"
        "from atdata.cid import generate_cid\n"
        "from atdata.index_redis import LocalIndex\n"
        "url, prefix, names = json.load(sys.stdin)\n"
        "index = LocalIndex.from_url(url, key_prefix=prefix)\n"
        "out = []\n"
        "for name in names:\n"
        "    e = index.get_entry_by_name(name)\n"
        "    out.append([e.cid, generate_cid({'data_urls': e.data_urls, 'schema_ref': e.schema_ref})])\n"
        "print(json.dumps(out))\n"
    )
    request = json.dumps([redis_server.url, repo.index.key_prefix, [e.name for e in entries]])
    for seed in ("0", "4242"):
        done = subprocess.run(
            [sys.executable, "-c", code],
            input=request,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        assert json.loads(done.stdout) == [[e.cid, e.cid] for e in entries]
