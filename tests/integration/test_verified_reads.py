"""Issue 13 case 4 on the real servers: a byte flipped in a stored shard is caught, never read back.

An insert records each shard's manifest (size, sha256, chunk digests) with the index
entry and beside the shards in the hive. Reading the entry through the spec's own path,
``atdata.Dataset[T](entry.data_urls[0])``, checks every chunk before any sample in it is
decoded: after a byte of a stored shard is flipped (a file in a directory hive; the
object on rclone serve s3, rewritten through boto3), the read raises
``ShardDigestMismatch`` naming the shard, chunk and digests, and every sample yielded
before it equals the original. ``atdata verify`` reports the damage and exits 1.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
from numpy.typing import NDArray

import atdata
from atdata.errors import ShardDigestMismatch
from atdata.local import Repo
from atdata.local.servers import RedisServer, S3Server
from atdata.manifest import CHUNK_SIZE, Manifest

pytestmark = [pytest.mark.real]

SAMPLES = 3000  # about 3 MiB in one shard: several chunks


@atdata.packable
class Reading:
    values: NDArray[np.float32]
    step: int


def _samples() -> list[Reading]:
    return [Reading(values=np.full(250, i, np.float32), step=i) for i in range(SAMPLES)]


@pytest.fixture(params=["directory", "rclone"])
def hive(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Any, str, str]:
    """(credentials, hive_path, kind) of an empty hive."""
    if request.param == "rclone":
        server: S3Server = request.getfixturevalue("s3_server")
        return server.credentials, f"verify-{uuid.uuid4().hex[:12]}/hive", "rclone"
    return None, str(tmp_path / "hive"), "directory"


def _insert(hive: tuple[Any, str, str], redis_server: RedisServer, tmp_path: Path) -> tuple[Repo, Any]:
    credentials, hive_path, _ = hive
    atdata.write_samples(_samples(), tmp_path / "src.tar")
    repo = Repo(credentials, hive_path, redis_server.url, key_prefix=f"verify-{uuid.uuid4().hex}:")
    entry, _ = repo.insert(atdata.Dataset[Reading](str(tmp_path / "src.tar")), name="readings")
    return repo, entry


def _flip(repo: Repo, url: str, offset: int) -> None:
    """Flip one bit of the stored object at ``url``, in place, as storage damage would."""
    if url.startswith("s3://"):
        client = repo.store.client  # type: ignore[attr-defined]
        parts = urlsplit(url)
        key = parts.path.lstrip("/")
        body = bytearray(client.get_object(Bucket=parts.netloc, Key=key)["Body"].read())
        body[offset] ^= 0x10
        client.put_object(Bucket=parts.netloc, Key=key, Body=bytes(body))
        return
    path = Path(atdata.openers.local_path(url) or url)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))


def test_flipped_byte_in_stored_shard_is_caught_by_the_spec_read_path(
    hive: tuple[Any, str, str], redis_server: RedisServer, tmp_path: Path
) -> None:
    repo, entry = _insert(hive, redis_server, tmp_path)
    fetched = repo.index.get_entry_by_name("readings")  # what any fresh process gets
    url = fetched.data_urls[0]
    assert str(url) == str(entry.data_urls[0]) and isinstance(url, atdata.ShardURL)
    (shard,) = atdata.Dataset[Reading](url).shard_list
    assert [s.step for s in atdata.Dataset[Reading](url)] == list(range(SAMPLES))  # intact: reads in full

    _flip(repo, shard, 2 * CHUNK_SIZE + 777)  # inside chunk 2
    seen: list[tuple[int, np.ndarray]] = []
    with pytest.raises(ShardDigestMismatch) as caught:
        for batch in atdata.Dataset[Reading](fetched.data_urls[0]).ordered(batch_size=32):
            seen.extend(zip(batch.step, batch.values))
    message = str(caught.value)
    record = url.manifest.get(shard)  # type: ignore[union-attr]
    assert repr(str(shard)) in message and "chunk 2" in message
    assert f"bytes {2 * CHUNK_SIZE}-{3 * CHUNK_SIZE - 1}" in message and record.chunks[2] in message
    originals = _samples()
    assert 0 < len(seen) and all(
        step == o.step and np.array_equal(values, o.values) for (step, values), o in zip(seen, originals)
    )
    assert len(seen) * (512 + 1536) <= 2 * CHUNK_SIZE  # nothing from chunk 2 or after
    # Repo.verify (under `atdata verify`) names the shard and the damaged chunk's byte range.
    report = repo.verify("readings")
    (check,) = report.shards
    assert not report.ok and check.url == str(shard) and check.status == "damaged"
    assert f"1 of {len(record.chunks)} chunk(s) differ" in check.detail
    assert f"chunk 2 (bytes {2 * CHUNK_SIZE}-{3 * CHUNK_SIZE - 1})" in check.detail
    # Unbatched and shuffled reads refuse it too.
    with pytest.raises(ShardDigestMismatch):
        list(atdata.Dataset[Reading](url))
    with pytest.raises(ShardDigestMismatch):
        list(atdata.Dataset[Reading](url).shuffled(seed=1))


def test_manifest_is_stored_beside_the_shards(
    hive: tuple[Any, str, str], redis_server: RedisServer, tmp_path: Path
) -> None:
    repo, entry = _insert(hive, redis_server, tmp_path)
    (shard,) = atdata.Dataset[Reading](entry.data_urls[0]).shard_list
    (record,) = repo.store.list_objects(repo._hive.key("content/"))
    with repo.store.open_read(record.url) as stream:
        stored = Manifest.loads(stream.read())  # the hive's content record reads as the manifest
    assert stored == entry.data_urls[0].manifest and stored.shards[0].url == str(shard)
    assert stored.shards[0].num_samples == SAMPLES
