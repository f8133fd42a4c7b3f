"""Names and hive paths are checked up front (issue 13 case 5): nothing is written for a bad one."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from atdata.errors import InvalidArgument
from atdata.index_redis import LocalIndex
from atdata.local import Repo
from atdata.local.cli import main
from atdata.local.servers import RedisServer

from .conftest import write_source

BAD_PREFIXES = ["sets/{a,b}", "sets/{000..009}", "sets/x?y", "sets/x#y", "sets/[ab]", "sets/*", "sets/a\nb"]


@pytest.mark.parametrize("prefix", BAD_PREFIXES)
def test_s3_hive_prefix_with_url_metacharacters_is_refused_naming_the_rule(prefix: str, s3_server: Any) -> None:
    with pytest.raises(InvalidArgument, match=r"hive_path=.*would change the meaning of the shard URLs") as info:
        Repo(s3_credentials=s3_server.credentials, hive_path=f"bucket-{uuid.uuid4().hex[:8]}/{prefix}")
    assert "my-bucket/datasets/v1" in str(info.value)  # the fix


@pytest.mark.parametrize("name", ["hive-{1..2}", "hive?x", "hive#x"])
def test_directory_hive_with_url_metacharacters_is_refused(
    tmp_path: Path, redis_server: RedisServer, name: str
) -> None:
    with pytest.raises(InvalidArgument, match="hive_path="):
        Repo(hive_path=str(tmp_path / name), redis=redis_server.url)
    assert os.listdir(tmp_path) == []


def test_from_parts_prefix_is_checked_too(tmp_path: Path, redis_server: RedisServer, key_prefix: str) -> None:
    from atdata.disk_store import DiskDataStore

    index = LocalIndex(redis=redis_server.url, key_prefix=key_prefix)
    with pytest.raises(InvalidArgument, match=r"prefix='a\{b\}'"):
        Repo.from_parts(index, DiskDataStore(tmp_path), "a{b}")


@pytest.mark.parametrize("name", ["two\nlines", "tab\there", "esc\x1b[31m", "nul\x00", "sep\u2028x", "cr\r"])
def test_entry_names_with_control_characters_are_refused_before_writing(
    tmp_path: Path, redis_server: RedisServer, key_prefix: str, name: str
) -> None:
    source = write_source(tmp_path / "src", 5)
    repo = Repo(hive_path=str(tmp_path / "hive"), redis=redis_server.url, key_prefix=key_prefix)
    with pytest.raises(InvalidArgument, match=r"name=.*control characters.*printable"):
        repo.insert(source, name=name)
    assert not (tmp_path / "hive").exists() or os.listdir(tmp_path / "hive") == []
    assert list(repo.index.entries) == [] and list(repo.index.list_schemas()) == []
    with pytest.raises(InvalidArgument, match="control characters"):
        repo.index.add_entry(source, name=name)  # the index keeps the same rule
    assert list(repo.index.entries) == []


def test_entry_names_longer_than_an_entry_record_allows_are_refused_everywhere(
    tmp_path: Path, redis_server: RedisServer, key_prefix: str
) -> None:
    """200 bytes of UTF-8, the lexicon's maxLength for an entry's name: every name can be promoted."""
    source = write_source(tmp_path / "src", 3)
    repo = Repo(hive_path=str(tmp_path / "hive"), redis=redis_server.url, key_prefix=key_prefix)
    longest = "é" * 100  # 200 bytes
    entry, _ = repo.insert(source, name=longest)
    assert repo.index.get_entry_by_name(longest).cid == entry.cid
    for call in (
        lambda: repo.insert(source, name=longest + "x"),
        lambda: repo.index.add_entry(source, name="n" * 201),
        lambda: repo.index.rename_entry(longest, "n" * 5000),
    ):
        with pytest.raises(InvalidArgument, match=r"bytes long: entry names hold at most 200 bytes"):
            call()
    assert [e.name for e in repo.index.entries] == [longest]


def test_printable_unicode_names_are_fine(tmp_path: Path, redis_server: RedisServer, key_prefix: str) -> None:
    repo = Repo(hive_path=str(tmp_path / "hive"), redis=redis_server.url, key_prefix=key_prefix)
    entry, _ = repo.insert(write_source(tmp_path / "src", 3), name="données/été 2024")
    assert repo.index.get_entry_by_name("données/été 2024").cid == entry.cid


def test_cli_refuses_a_bad_name_and_hive_in_one_line(
    tmp_path: Path, redis_server: RedisServer, key_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write_source(tmp_path / "src", 3)
    conn = ["--redis-url", redis_server.url, "--key-prefix", key_prefix]
    src = str(tmp_path / "src" / "src-000000.tar")
    code = main(
        ["insert", src, "--name", "a\nb", "--type", "atdata:DictSample", "--hive-path", str(tmp_path / "h"), *conn]
    )
    err = capsys.readouterr().err
    assert code != 0 and "control characters" in err and len(err.strip().splitlines()) == 1
    code = main(["insert", src, "--name", "ok", "--type", "atdata:DictSample", "--hive-path", "bkt/a{b}", *conn])
    err = capsys.readouterr().err
    assert code != 0 and "would change the meaning" in err
