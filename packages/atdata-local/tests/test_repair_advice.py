"""The fix `atdata verify` gives for a damaged shard works when followed (real valkey; directory and rclone).

A flipped bit keeps the shard's size, and insert dedup confirms a stored copy by size only,
so re-inserting identical content alone reuses the damaged copy: the advice must say to
delete the damaged object first, and doing so must repair every name.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

import atdata
from atdata.local import Repo
from atdata.local.servers import RedisServer, S3Server
from atdata.local.testing import damage_object

from .conftest import write_source

pytestmark = pytest.mark.real


@pytest.fixture(params=["directory", "rclone"])
def repo(request: pytest.FixtureRequest, tmp_path: Path, redis_server: RedisServer, key_prefix: str) -> Repo:
    if request.param == "rclone":
        server: S3Server = request.getfixturevalue("s3_server")
        return Repo(server.credentials, f"repair-{uuid.uuid4().hex[:12]}/sets", redis_server.url, key_prefix=key_prefix)
    return Repo(None, str(tmp_path / "hive"), redis_server.url, key_prefix=key_prefix)


def test_following_the_damaged_shard_advice_repairs_the_dataset(repo: Repo, tmp_path: Path) -> None:
    source = write_source(tmp_path / "src", 60, maxcount=20)
    entry, _ = repo.insert(source, name="pts", maxcount=20)
    victim = str(atdata.Dataset(entry.data_urls[0]).shard_list[1])
    damage_object(repo.store, victim, "flipped")

    (bad,) = repo.verify("pts").failures
    assert bad.status == "damaged" and "delete it and re-insert" in bad.detail
    with pytest.raises(atdata.errors.ShardDigestMismatch, match="delete it and re-insert"):
        list(atdata.Dataset(entry.data_urls[0], sample_type=source.sample_type).ordered())

    again, _ = repo.insert(source, name="pts", maxcount=20)
    assert again.cid == entry.cid, "a same-size damaged copy is reused: why the advice says delete it first"

    damage_object(repo.store, victim, "deleted")
    repaired, _ = repo.insert(source, name="pts", maxcount=20)
    assert repaired.cid != entry.cid
    assert repo.verify("pts").ok
    labels = [s.label for s in atdata.Dataset(repaired.data_urls[0], sample_type=source.sample_type).ordered()]
    assert labels == list(range(60))
