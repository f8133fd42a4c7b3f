"""Zero-config retrieval: the spec's "Retrieve later" in processes that configured nothing.

Issue 14: a fresh process with no AWS_* or ATDATA_* variables runs the spec's code
(``LocalIndex()``, ``get_entry_by_name``, ``atdata.Dataset[T](entry.data_urls[0])``)
against the servers ``atdata local up`` runs; spawned workers read an entry's URL the
same way, and nothing pickled for them holds a secret. Servers are real: ``atdata local
up`` itself (valkey + rclone with SigV4, on free ports) for the fresh-process test, the
session's rclone and valkey fixtures for the worker tests.
"""

from __future__ import annotations

import importlib
import json
import multiprocessing
import os
import pickle
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import atdata
from atdata.local import LocalIndex, Repo
from atdata.local._process import free_port
from atdata.local.servers import RedisServer, S3Server
from atdata.shard_url import ShardURL

pytestmark = pytest.mark.real

SAMPLE = """
import numpy as np
from numpy.typing import NDArray
import atdata

@atdata.packable
class TrainingSample:
    features: NDArray
    label: int
    source: str
"""

# The spec's insert step (Complete Workflow Example, steps 1-4), the S3 port made ours.
INSERT = (
    SAMPLE
    + """
import sys
from atdata.local import Repo
samples = [TrainingSample(features=np.full(128, i, np.float32), label=i % 10, source="synthetic") for i in range(100)]
atdata.write_samples(samples, "local-data.tar")
repo = Repo(
    s3_credentials={
        "AWS_ENDPOINT": sys.argv[1],
        "AWS_ACCESS_KEY_ID": "minioadmin",
        "AWS_SECRET_ACCESS_KEY": "minioadmin",
    },
    hive_path="datasets-bucket/training",
)
local_ds = atdata.Dataset[TrainingSample]("local-data.tar")
entry, stored_ds = repo.insert(local_ds, name="training-v1")
print(entry.cid)
"""
)

# The spec's "Retrieve later", verbatim, in a process that configured nothing.
RETRIEVE = (
    SAMPLE
    + """
from atdata.local import LocalIndex

# 5. Retrieve later
index = LocalIndex()
entry = index.get_entry_by_name("training-v1")
dataset = atdata.Dataset[TrainingSample](entry.data_urls[0])

for batch in dataset.ordered(batch_size=32):
    print(batch.features.shape)  # (32, 128)
print(entry.cid, sorted(int(x) for b in dataset.ordered(batch_size=50) for x in b.label)[:3])
"""
)

# The same without ever importing atdata.local or atdata.store_s3: core finds the s3://
# opener by its entry point.
RETRIEVE_WITHOUT_STORE_IMPORT = (
    SAMPLE
    + """
import sys
from atdata.index_redis import LocalIndex
entry = LocalIndex().get_entry_by_name("training-v1")
assert "atdata.store_s3" not in sys.modules
n = sum(len(b.label) for b in atdata.Dataset[TrainingSample](entry.data_urls[0]).ordered(batch_size=32))
print(n, "atdata.store_s3" in sys.modules)
"""
)


def scrubbed_env(home: Path) -> dict[str, str]:
    """The environment of a new user's shell: no AWS_* or ATDATA_* variables, HOME of their own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ATDATA_"))}
    env["HOME"] = str(home)
    return env


def nothing_configured(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """This process (and the workers it spawns) as scrubbed_env: no AWS_*/ATDATA_*, an empty HOME."""
    for name in [k for k in os.environ if k.startswith(("AWS_", "ATDATA_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))


def run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=240)


@pytest.fixture
def local_up(tmp_path: Path) -> Iterator[tuple[dict[str, str], int]]:
    """`atdata local up` on free ports, in a fresh HOME (so its record is ~/.atdata/servers.json)."""
    home = tmp_path / "home"
    home.mkdir()
    env = scrubbed_env(home)
    s3_port = free_port()
    up = run(
        [sys.executable, "-m", "atdata.local.cli", "local", "up", "--redis-port", str(free_port())]
        + ["--s3-port", str(s3_port)],
        env,
        tmp_path,
    )
    assert up.returncode == 0, up.stderr
    try:
        yield env, s3_port
    finally:
        down = run([sys.executable, "-m", "atdata.local.cli", "local", "down"], env, tmp_path)
        assert down.returncode == 0, down.stderr


def test_fresh_process_runs_the_spec_retrieve_step(local_up: tuple[dict[str, str], int], tmp_path: Path) -> None:
    env, s3_port = local_up
    inserted = run([sys.executable, "-c", INSERT, f"http://127.0.0.1:{s3_port}"], env, tmp_path)
    assert inserted.returncode == 0, inserted.stderr
    cid = inserted.stdout.split()[-1]

    retrieved = run([sys.executable, "-c", RETRIEVE], env, tmp_path)
    assert retrieved.returncode == 0, retrieved.stderr
    lines = retrieved.stdout.splitlines()
    assert lines[:4] == ["(32, 128)", "(32, 128)", "(32, 128)", "(4, 128)"]
    assert lines[4] == f"{cid} [0, 0, 0]"

    plain = run([sys.executable, "-c", RETRIEVE_WITHOUT_STORE_IMPORT], env, tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.split() == ["100", "True"]

    # What made it work is recorded per dataset, and holds no secret.
    record = json.loads((Path(env["HOME"]) / ".atdata" / "servers.json").read_text())
    assert oct((Path(env["HOME"]) / ".atdata" / "servers.json").stat().st_mode & 0o777) == "0o600"
    assert record["s3"]["endpoint_url"] == f"http://127.0.0.1:{s3_port}"


def test_without_the_record_the_error_names_the_bucket_endpoint_and_fix(
    local_up: tuple[dict[str, str], int], tmp_path: Path
) -> None:
    """The same fresh process, but `up`'s record gone: a named CredentialsError, not a bare boto error."""
    env, s3_port = local_up
    inserted = run([sys.executable, "-c", INSERT, f"http://127.0.0.1:{s3_port}"], env, tmp_path)
    assert inserted.returncode == 0, inserted.stderr
    record = Path(env["HOME"]) / ".atdata" / "servers.json"
    saved = record.read_text()
    state = json.loads(saved)
    for key in ("access_key", "secret_key"):
        state["s3"].pop(key)
    record.write_text(json.dumps(state))
    try:
        retrieved = run([sys.executable, "-c", RETRIEVE], env, tmp_path)
    finally:
        record.write_text(saved)
    assert retrieved.returncode != 0
    last = retrieved.stderr.strip().splitlines()[-1]
    assert last.startswith("atdata.errors.CredentialsError")
    assert "s3://datasets-bucket/training/" in last and f"http://127.0.0.1:{s3_port}" in last
    assert "AWS_ACCESS_KEY_ID" in last and "atdata.store_s3.configure(" in last


# -- spawned workers and pickles: the same resolution, no secret ------------------------


# Spawned children import what they unpickle by module name: the sample class and the
# worker function live in a module of their own (on sys.path, which spawn passes on).
WORKER_MODULE = """
import pickle
import atdata
from numpy.typing import NDArray


@atdata.packable
class WorkerSample:
    features: NDArray
    label: int


def read(payload, queue):
    \"\"\"Runs in a spawned process: nothing configured, only what was pickled.\"\"\"
    try:
        dataset = pickle.loads(payload)
        if isinstance(dataset, str):  # an entry's URL item, on its own
            dataset = atdata.Dataset[WorkerSample](dataset)
        queue.put(("ok", [int(x) for batch in dataset.ordered(batch_size=16) for x in batch.label]))
    except Exception as exc:
        queue.put(("error", f"{type(exc).__name__}: {exc}"))
"""


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    directory = tmp_path_factory.mktemp("worker")
    name = f"zc_worker_{uuid.uuid4().hex[:8]}"
    (directory / f"{name}.py").write_text(WORKER_MODULE)
    sys.path.insert(0, str(directory))
    try:
        yield importlib.import_module(name)
    finally:
        sys.path.remove(str(directory))


def _spawn_read(worker: Any, payload: bytes) -> tuple[str, Any]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=worker.read, args=(payload, queue))
    process.start()
    try:
        return queue.get(timeout=180)
    finally:
        process.join(timeout=30)


@pytest.fixture
def stored_entry(
    s3_server: S3Server, redis_server: RedisServer, tmp_path: Path, worker: Any
) -> Iterator[tuple[Repo, Any, atdata.Dataset[Any]]]:
    """An entry inserted through a Repo that knows the rclone server's keys (a dict)."""
    bucket = f"zero-{uuid.uuid4().hex[:12]}"
    repo = Repo(s3_server.credentials, f"{bucket}/w", redis=redis_server.url, key_prefix=f"zc-{uuid.uuid4().hex}:")
    samples = [worker.WorkerSample(features=np.full(4, i, np.float32), label=i) for i in range(40)]
    paths = atdata.write_samples(samples, str(tmp_path / "w-%06d.tar"), maxcount=15)
    entry, _ = repo.insert(atdata.Dataset[worker.WorkerSample](paths), name="w", maxcount=15)
    fresh = LocalIndex.from_url(redis_server.url, key_prefix=repo.index.key_prefix).get_entry_by_name("w")
    yield repo, fresh, atdata.Dataset[worker.WorkerSample](fresh.data_urls[0])
    repo.store.delete(info.key for info in repo.store.list_objects())


def test_entry_urls_carry_the_location_and_keep_the_cid(stored_entry: Any, s3_server: S3Server) -> None:
    repo, entry, dataset = stored_entry
    url = entry.data_urls[0]
    assert isinstance(url, ShardURL) and url.location is not None
    assert url.location.endpoint_url == s3_server.endpoint_url and url.location.region == "us-east-1"
    assert all(isinstance(shard, ShardURL) and shard.location == url.location for shard in dataset.shard_list)
    assert entry.cid == atdata.cid.generate_cid({"schema_ref": entry.schema_ref, "data_urls": [str(url)]})


@pytest.mark.parametrize("what", ["dataset", "url"])
def test_spawned_worker_reads_with_keys_from_its_environment(
    stored_entry: Any, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, what: str, worker: Any
) -> None:
    """Keys in the worker's environment, no endpoint: the recorded location says where."""
    repo, entry, dataset = stored_entry
    payload = pickle.dumps(dataset if what == "dataset" else entry.data_urls[0])
    assert s3_server.secret_key.encode() not in payload
    nothing_configured(monkeypatch, tmp_path)  # no AWS_ENDPOINT, no ~/.aws, no ~/.atdata
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    assert _spawn_read(worker, payload) == ("ok", list(range(40)))


def test_spawned_worker_reads_with_keys_from_the_local_up_record(
    stored_entry: Any, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, worker: Any
) -> None:
    """Nothing in the worker's environment: the record `atdata local up` keeps names the server's keys."""
    repo, entry, dataset = stored_entry
    nothing_configured(monkeypatch, tmp_path)
    record = tmp_path / ".atdata" / "servers.json"
    record.parent.mkdir()
    s3 = {"port": s3_server.port, "access_key": s3_server.access_key, "secret_key": s3_server.secret_key}
    record.write_text(json.dumps({"s3": s3}))
    payload = pickle.dumps(dataset)
    assert s3_server.secret_key.encode() not in payload
    assert _spawn_read(worker, payload) == ("ok", list(range(40)))


def test_pickled_repo_and_store_hold_no_secret(stored_entry: Any, s3_server: S3Server) -> None:
    repo, _, _ = stored_entry
    for obj in (repo, repo.store):
        assert s3_server.secret_key.encode() not in pickle.dumps(obj)
    clone = pickle.loads(pickle.dumps(repo.store))  # this process still knows the keys (the store's)
    assert clone == repo.store and clone.credentials.secret_access_key == s3_server.secret_key


def test_spawned_worker_without_keys_gets_a_named_error(
    stored_entry: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, s3_server: S3Server, worker: Any
) -> None:
    repo, _, dataset = stored_entry
    nothing_configured(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    status, message = _spawn_read(worker, pickle.dumps(dataset))
    assert status == "error" and message.startswith("CredentialsError")
    assert f"s3://{repo.store.bucket}/" in message and s3_server.endpoint_url in message


def test_wrong_secret_is_a_named_credentials_error(
    stored_entry: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, s3_server: S3Server, worker: Any
) -> None:
    repo, _, dataset = stored_entry
    nothing_configured(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    status, message = _spawn_read(worker, pickle.dumps(dataset))
    assert status == "error" and message.startswith("CredentialsRefused")
    assert f"s3://{repo.store.bucket}/" in message and "environment" in message
    assert "not-the-secret" not in message


def test_unknown_bucket_and_unreachable_endpoint_are_named(
    stored_entry: Any, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, worker: Any
) -> None:
    from atdata.errors import BucketNotFound, StoreUnavailable
    from atdata.shard_url import StorageLocation

    _, entry, _ = stored_entry
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    url = entry.data_urls[0]
    missing = ShardURL(str(url).replace("zero-", "gone-", 1), location=url.location)
    with pytest.raises(BucketNotFound) as info:
        list(atdata.Dataset[worker.WorkerSample](missing).ordered(batch_size=8))
    assert "s3://gone-" in str(info.value) and "bucket" in str(info.value)
    port = free_port()
    moved = ShardURL(str(url), location=StorageLocation(f"http://127.0.0.1:{port}", "us-east-1"))
    with pytest.raises(StoreUnavailable) as unreachable:
        list(atdata.Dataset[worker.WorkerSample](moved).ordered(batch_size=8))
    message = str(unreachable.value)
    assert f"http://127.0.0.1:{port}" in message and "configure(" in message


def test_local_index_uses_the_recorded_redis_when_nothing_is_given(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    nothing_configured(monkeypatch, tmp_path)
    (tmp_path / ".atdata").mkdir()
    (tmp_path / ".atdata" / "servers.json").write_text(json.dumps({"redis": {"port": 6390}}))
    assert "127.0.0.1:6390" in repr(LocalIndex())
    monkeypatch.setenv("ATDATA_REDIS_URL", "redis://127.0.0.1:6391/0")  # the environment still wins
    assert "127.0.0.1:6391" in repr(LocalIndex())
    assert "6392" in repr(LocalIndex(port=6392))


def test_dataloader_spawn_workers_read_an_entry_with_nothing_pickled_but_where(
    stored_entry: Any, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, worker: Any
) -> None:
    """Real torch: DataLoader workers started with "spawn" resolve keys themselves (here from
    their environment; the endpoint from the entry's recorded location)."""
    from torch.utils.data import DataLoader

    _, _, dataset = stored_entry
    nothing_configured(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    loader = DataLoader(dataset.ordered(batch_size=8), batch_size=None, num_workers=2, multiprocessing_context="spawn")
    assert sorted(int(x) for batch in loader for x in batch.label) == list(range(40))
