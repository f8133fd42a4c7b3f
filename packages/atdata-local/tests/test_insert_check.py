"""Insert checks what it indexes (issue 13 case 6), on the real valkey and ``rclone serve s3``.

Every sample's field names and wire types are checked against the sample type; a
mismatch raises ``SchemaMismatch`` naming the shard, the member and both field lists,
and nothing is left behind: no entry, no staged shard (the store is listed after).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest

import atdata
from atdata.errors import EntryNotFound, SchemaMismatch, SchemaNotFound
from atdata.local import Repo
from atdata.local.cli import main
from atdata.local.servers import RedisServer, S3Server

pytestmark = pytest.mark.real

SAMPLE_MODULE = """
import atdata
from numpy.typing import NDArray

@atdata.packable
class TrainingSample:
    features: NDArray
    label: int

@atdata.packable
class ImageSample:
    image: NDArray
    label: int
"""


# The same classes here (for Repo.insert) as in the module the CLI imports (--type).
_classes: dict[str, Any] = {"__name__": __name__}
exec(compile(SAMPLE_MODULE, "<sample module>", "exec", dont_inherit=True), _classes)  # noqa: S102
TrainingSample, ImageSample = _classes["TrainingSample"], _classes["ImageSample"]


def _raw(i: int, **fields: Any) -> tuple[str, bytes]:
    """One stored sample: a key and its msgpack member, written as given (no type check)."""
    return f"{i:06d}", msgpack.packb(fields)


def _good(i: int) -> tuple[str, bytes]:
    return _raw(i, features=atdata.npy.encode(np.full(4, i, np.float32)), label=i)


def _write(directory: Path, samples: list[tuple[str, bytes]], maxcount: int) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    return atdata.write_samples(samples, str(directory / "src-%06d.tar"), maxcount=maxcount)


@pytest.fixture
def s3_repo(s3_server: S3Server, redis_server: RedisServer, key_prefix: str) -> Repo:
    return Repo(s3_server.credentials, f"check-{uuid.uuid4().hex[:12]}/sets", redis_server.url, key_prefix=key_prefix)


def _assert_nothing_left(repo: Repo, name: str) -> None:
    """No entry under ``name`` and no object an insert writes (shards, metadata, content records)."""
    with pytest.raises(EntryNotFound):
        repo.index.get_entry_by_name(name)
    left = [
        info.key for info in repo.store.list_objects(repo.prefix) if "data--" in info.key or "/content/" in info.key
    ]
    assert left == []


def test_the_issues_reproduction_training_data_inserted_as_image_sample(tmp_path: Path, s3_repo: Repo) -> None:
    source = _write(tmp_path / "src", [_good(i) for i in range(50)], maxcount=20)
    with pytest.raises(SchemaMismatch) as caught:
        s3_repo.insert(atdata.Dataset[ImageSample](source), name="images", maxcount=10)
    err = caught.value
    assert err.url == source[0] and err.member == "000000.msgpack"
    assert err.expected == ["image: ndarray", "label: int"]
    assert err.found == ["features: ndarray (.npy bytes)", "label: int"]
    message = str(err)
    assert source[0] in message and "000000.msgpack" in message and "missing field(s) ['image']" in message
    assert str(err.expected) in message and str(err.found) in message
    _assert_nothing_left(s3_repo, "images")
    with pytest.raises(SchemaNotFound):  # the first sample is checked before the schema is published
        s3_repo.index.get_latest_schema(f"{ImageSample.__module__}.ImageSample")


@pytest.mark.parametrize(
    ("bad", "what", "found"),
    [
        (b"\xc1 not msgpack at all", "are not msgpack", None),
        (msgpack.packb([1, 2, 3]), "holds a msgpack list", None),
        (msgpack.packb({"label": 7}), "missing field(s) ['features']", ["label: int"]),
        (
            msgpack.packb({"features": atdata.npy.encode(np.zeros(4, np.float32)), "label": 7, "extra": "x"}),
            "field(s) ['extra'] not in the type",
            ["features: ndarray (.npy bytes)", "label: int", "extra: str"],
        ),
        (msgpack.packb({"features": 3, "label": 7}), "wrong wire type", ["features: int", "label: int"]),
    ],
    ids=["garbage", "not-a-map", "missing-field", "extra-field", "int-for-ndarray"],
)
def test_a_bad_member_after_staged_shards_leaves_nothing(
    tmp_path: Path, s3_repo: Repo, bad: bytes, what: str, found: list[str] | None
) -> None:
    """The bad member is sample 45: four shards of 10 are staged (and committed) by then."""
    samples = [_good(i) for i in range(45)] + [("000045", bad)] + [_good(i) for i in range(46, 60)]
    source = _write(tmp_path / "src", samples, maxcount=30)
    with pytest.raises(SchemaMismatch) as caught:
        s3_repo.insert(atdata.Dataset[TrainingSample](source), name="bad", maxcount=10)
    assert caught.value.url == source[1] and caught.value.member == "000045.msgpack"
    assert caught.value.found == found and what in str(caught.value)
    _assert_nothing_left(s3_repo, "bad")


def test_matching_data_still_inserts_and_reads(tmp_path: Path, s3_repo: Repo) -> None:
    source = _write(tmp_path / "src", [_good(i) for i in range(300)], maxcount=128)  # layout path, 3 lengths
    entry, stored = s3_repo.insert(atdata.Dataset[TrainingSample](source), name="ok", maxcount=100)
    labels = [s.label for s in atdata.Dataset[TrainingSample](entry.data_urls[0])]
    assert labels == list(range(300)) and len(stored.shard_list) == 3


def test_a_schema_ref_dataset_is_checked_against_the_published_schema(tmp_path: Path, s3_repo: Repo) -> None:
    ref = s3_repo.index.publish_schema(ImageSample, version="1.0.0")
    source = _write(tmp_path / "src", [_good(i) for i in range(5)], maxcount=5)
    with pytest.raises(SchemaMismatch, match="missing field"):
        s3_repo.insert(atdata.Dataset(source), name="by-ref", schema_ref=ref)
    _assert_nothing_left(s3_repo, "by-ref")


def test_cli_insert_with_the_wrong_type_exits_1_and_writes_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    s3_server: S3Server,
    s3_repo: Repo,
    redis_server: RedisServer,
    key_prefix: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    module = f"check_samples_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(SAMPLE_MODULE)
    monkeypatch.chdir(tmp_path)
    source = _write(tmp_path / "src", [_good(i) for i in range(40)], maxcount=20)
    env_file = tmp_path / "s3.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in s3_server.credentials.items()))
    bucket, prefix = s3_repo.store.url_for(s3_repo.prefix).removeprefix("s3://").split("/", 1)
    argv = ["--hive-path", f"{bucket}/{prefix}", "--s3-credentials", str(env_file)]
    argv += ["--redis-url", redis_server.url, "--key-prefix", key_prefix, "--no-progress"]
    brace = str(tmp_path / "src" / "src-{000000..000001}.tar")
    code = main(["insert", brace, "--name", "imgs", "--type", f"{module}:ImageSample", *argv])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert "SchemaMismatch" in err or "does not match ImageSample" in err
    assert source[0] in err and "000000.msgpack" in err and "['image: ndarray', 'label: int']" in err
    _assert_nothing_left(s3_repo, "imgs")
    code = main(["insert", source[0], "--name", "train", "--type", f"{module}:TrainingSample", "--json", *argv])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["samples"] == 20
