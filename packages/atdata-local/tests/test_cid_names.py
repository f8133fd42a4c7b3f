"""A name that is a CID is refused (real valkey, directory hive).

`atdata show/rm/verify NAME_OR_CID` look a CID up first, so an entry named with another
dataset's CID could not be reached by its name, and `atdata rm` of it removed the other
dataset's entry.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from atdata.errors import InvalidArgument
from atdata.local import Repo
from atdata.local.cli import main
from atdata.local.servers import RedisServer

from .conftest import write_source


def test_cid_shaped_names_are_refused_everywhere_a_name_is_given(
    tmp_path: Path, redis_server: RedisServer, key_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = Repo(None, str(tmp_path / "hive"), redis_server.url, key_prefix=key_prefix)
    source = write_source(tmp_path / "src", 10)
    first, _ = repo.insert(source, name="first")
    v0 = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"  # a CIDv0 counts too
    for name in (first.cid, v0):
        with pytest.raises(InvalidArgument, match="is a CID"):
            repo.insert(write_source(tmp_path / "other", 5), name=name)
        with pytest.raises(InvalidArgument, match="is a CID"):
            repo.index.add_entry(source, name=name)
        with pytest.raises(InvalidArgument, match="is a CID"):
            repo.index.rename_entry("first", name)
    assert [e.name for e in repo.index.all_entries] == ["first"]
    conn = ["--redis-url", redis_server.url, "--key-prefix", key_prefix, "--hive-path", str(tmp_path / "hive")]
    code = main(["insert", source.shard_list[0], "--name", first.cid, "--schema-ref", first.schema_ref, *conn])
    assert code == 1 and "is a CID" in capsys.readouterr().err
    assert repo.index.get_entry_by_name("first").cid == first.cid
