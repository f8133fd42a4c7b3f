"""SIGKILL an inserting process at random moments: never an entry without its data, and gc cleans up.

A forked child process inserts a dataset of many small shards through ``Repo.insert``;
the parent kills it (SIGKILL: no cleanup code runs) after a random delay spread over the
whole insert, from before the first shard to after the index write. After every kill
each entry in the index must read back completely; at the end ``gc`` must leave
exactly the objects that entries reference. Runs on rclone serve s3 and on a directory.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import atdata
from atdata.local import Repo
from atdata.local.servers import RedisServer, S3Server
from atdata.urls import expand_urls

pytestmark = [pytest.mark.real, pytest.mark.slow]

SAMPLES = 120
MAXCOUNT = 3  # 40 shards: many commit points to land a kill between


@atdata.packable
class Blob:
    index: int
    payload: bytes


class Source:
    """A dataset made on the fly: what ``Repo.insert`` needs (``raw_samples``, ``sample_type``)."""

    sample_type = Blob

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.metadata = {"seed": seed}

    def raw_samples(self) -> Iterator[tuple[str, bytes]]:
        for i in range(SAMPLES):
            time.sleep(0.002)  # a steady pace, so the measured duration predicts the next inserts
            yield f"{i:06d}", Blob(index=i, payload=bytes([self.seed % 256]) * 10_000).packed


def insert_child(credentials: Any, hive: str, redis_url: str, prefix: str, seed: int, ready: Any) -> None:
    """Runs in a forked child (imports already done, so it starts at once)."""
    repo = Repo(credentials, hive, redis_url, key_prefix=prefix)
    ready.send("ready")
    entry, _ = repo.insert(Source(seed), name=f"crashy-{seed}", maxcount=MAXCOUNT)
    ready.send(entry.cid)


def start_child(credentials: Any, hive: str, redis_url: str, seed: int, prefix: str) -> tuple[Any, Any]:
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=insert_child, args=(credentials, hive, redis_url, prefix, seed, send), daemon=True)
    child.start()
    assert receive.poll(60) and receive.recv() == "ready", "child failed to start"
    return child, receive


def check_entries_complete(repo: Repo, *, read: bool = False) -> set[str]:
    """Every entry's shards exist (and, with ``read``, hold all samples); returns the referenced URLs."""
    present = {info.url for info in repo.store.list_objects(repo.prefix)}
    referenced: set[str] = set()
    for entry in repo.index.entries:
        shards = expand_urls(entry.data_urls)
        missing = [url for url in shards if url not in present]
        assert not missing, f"entry {entry.name} ({entry.cid}) points at missing shards {missing[:3]}"
        if read:
            assert sum(1 for _ in atdata.Dataset(entry.data_urls).raw_samples()) == SAMPLES
        referenced.update(shards)
    return referenced


@pytest.fixture(params=["rclone", "directory"])
def hive(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Any, str]:
    if request.param == "rclone":
        server: S3Server = request.getfixturevalue("s3_server")
        return server.credentials, f"crash-{uuid.uuid4().hex[:12]}/hive"
    return None, str(tmp_path / "hive")


def test_sigkill_at_random_points_never_leaves_a_dangling_entry(
    hive: tuple[Any, str], redis_server: RedisServer
) -> None:
    credentials, hive_path = hive
    prefix = f"crash-{uuid.uuid4().hex}:"
    repo = Repo(credentials, hive_path, redis_server.url, key_prefix=prefix)
    seed_all = int(os.environ.get("ATDATA_CRASH_SEED") or random.randrange(2**32))  # rerun a failure with it
    rng = random.Random(seed_all)

    # Uninterrupted inserts measure how long one takes here (the first also creates bucket and schema).
    durations = []
    for _ in range(2):
        child, _ = start_child(credentials, hive_path, redis_server.url, 0, prefix)
        started = time.monotonic()
        child.join(240)
        durations.append(time.monotonic() - started)
        assert child.exitcode == 0
    duration = min(durations)

    outcomes = []
    for attempt in range(1, 9):
        seed = rng.choice([0, attempt])  # sometimes content already stored: the dedup path
        child, _ = start_child(credentials, hive_path, redis_server.url, seed, prefix)
        time.sleep(rng.uniform(0.0, duration * 1.05))
        os.kill(child.pid, signal.SIGKILL)
        child.join(60)
        outcomes.append("killed" if child.exitcode == -signal.SIGKILL else f"exit {child.exitcode}")
        check_entries_complete(repo)
    assert all(o in ("killed", "exit 0") for o in outcomes), outcomes
    kills = outcomes.count("killed")
    assert kills >= 3, (
        f"most children should die mid-insert ({outcomes}, {duration:.1f}s, ATDATA_CRASH_SEED={seed_all})"
    )

    report = repo.gc(grace=0)
    referenced = check_entries_complete(repo, read=True)
    remaining = list(repo.store.list_objects(repo.prefix))
    shards = {info.url for info in remaining if info.url.endswith(".tar")}
    assert shards == referenced, (
        f"gc left unreferenced shards: {sorted(shards - referenced)[:3]} (removed {len(report.removed)}, ATDATA_CRASH_SEED={seed_all})"
    )
    referenced_runs = {url.split("data--")[1][:36] for url in referenced}
    for info in remaining:  # metadata and content records of referenced runs only, and the owner record
        assert info.key.endswith("atdata-hive.json") or any(run in info.key for run in referenced_runs), info.key
    assert repo.gc(grace=0).removed == []
