"""Promotion throughput: ``promote_to_atmosphere`` against raw ``atproto`` SDK calls doing the same.

Starts a real valkey, a real ``rclone serve s3`` and the test PDS (``tools/pds``, the
reference ``@atproto/pds``) on 127.0.0.1, inserts two local datasets with ``Repo.insert``,
then publishes each into a fresh account per turn (turns alternate, ``--repeat`` each):

- ``records``: an entry of ``--shards`` shards (1,000 by default) promoted keeping its S3
  URLs: ours reads every shard once for its sha256, publishes the schema and one entry
  record (lexicon-validated, CID checked); the baseline does the same work by hand:
  boto3 ``get_object`` + ``hashlib.sha256`` per shard, then the SDK's
  ``com.atproto.repo.create_record`` for the same two records.
- ``blobs``: a ``--blob-mib`` MiB dataset (50 by default, 5 MiB shards) promoted with
  ``data_store="blobs"``; the baseline reads each shard with boto3, ``client.upload_blob``s
  it with the SDK, then creates the schema and entry records.

Ratio = ours / baseline throughput (higher is better; 1.0 means no overhead).

    uv run python tools/bench/promote_throughput.py            # 1000 shards, 50 MiB, 3 turns
    uv run python tools/bench/promote_throughput.py --quick    # 200 shards, 10 MiB, 1 turn
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from _common import add_json_flag, boto3_client, peak_rss_mb, result_row, write_rows

import atdata

ROOT = Path(__file__).resolve().parents[2]
MiB = 1 << 20


@atdata.packable
class BenchSample:
    index: int
    data: bytes


def make_entry(repo: Any, tmp: Path, name: str, shards: int, shard_bytes: int) -> Any:
    """A local entry of ``shards`` shards of one sample of ``shard_bytes`` each."""
    block = os.urandom(shard_bytes)
    urls = atdata.write_samples(
        (BenchSample(index=i, data=block) for i in range(shards)), str(tmp / f"{name}-%06d.tar"), maxcount=1
    )
    entry, _ = repo.insert(atdata.Dataset[BenchSample](urls), name=name, maxcount=1)
    return entry


def ours(entry: Any, index: Any, pds_url: str, account: Any, blobs: bool) -> float:
    from atdata.atmosphere import AtmosphereClient
    from atdata.promote import promote_to_atmosphere

    client = AtmosphereClient(base_url=pds_url)
    client.login(account.handle, account.password)
    start = time.perf_counter()
    promote_to_atmosphere(entry, index, client, data_store="blobs" if blobs else None)
    return time.perf_counter() - start


def baseline(
    entry: Any, index: Any, pds_url: str, account: Any, blobs: bool, s3: Any, credentials: dict[str, str]
) -> float:
    """The same records by hand: boto3 reads + hashlib, then SDK calls (records built before the timer)."""
    from atproto import Client, models

    from atdata.atmosphere.lexicon import now
    from atdata.atmosphere.schemas import SCHEMA_NSID, schema_rkey, to_atmosphere
    from atdata.schema import parse_schema_ref
    from atdata.urls import expand_urls

    ref = parse_schema_ref(entry.schema_ref)
    schema = to_atmosphere(index.get_schema(entry.schema_ref), ref.name)
    client = Client(base_url=pds_url)
    client.login(account.handle, account.password, fetch_bsky_profile=False)
    urls = expand_urls(entry.data_urls)
    start = time.perf_counter()
    shards = []
    for url in urls:
        bucket, key = url[len("s3://") :].split("/", 1)
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        checksum = {"algorithm": "sha256", "digest": hashlib.sha256(body).hexdigest()}
        if blobs:
            blob = client.upload_blob(body).blob.model_dump(by_alias=True)
            shards.append({"blob": blob, "checksum": checksum})
        else:
            shards.append({"key": key, "checksum": checksum})
    made = client.com.atproto.repo.create_record(
        models.ComAtprotoRepoCreateRecord.Data(
            repo=account.did, collection=SCHEMA_NSID, record=schema, rkey=schema_rkey(ref.name, ref.version)
        )
    )
    storage: dict[str, Any] = (
        {"$type": "science.alt.dataset.storageBlobs", "blobs": shards}
        if blobs
        else {
            "$type": "science.alt.dataset.storageS3",
            "bucket": bucket,
            "endpoint": credentials["AWS_ENDPOINT"],
            "shards": shards,
        }
    )
    record = {
        "$type": "science.alt.dataset.entry",
        "name": entry.name,
        "schemaRef": made.uri,
        "storage": storage,
        "createdAt": now(),
    }
    client.com.atproto.repo.create_record(
        models.ComAtprotoRepoCreateRecord.Data(repo=account.did, collection="science.alt.dataset.entry", record=record)
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--shards", type=int, default=1000, help="shards of the records-only entry (default: %(default)s)"
    )
    parser.add_argument(
        "--blob-mib", type=int, default=50, help="size of the blobs dataset, MiB (default: %(default)s)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="turns of each side (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="200 shards, 10 MiB, one turn")
    add_json_flag(parser)
    args = parser.parse_args()
    if args.quick:
        args.shards, args.blob_mib, args.repeat = 200, 10, 1

    from atdata.atmosphere.testing import create_account, start_pds
    from atdata.local import Repo
    from atdata.local.servers import start_redis, start_s3

    rows = []
    with tempfile.TemporaryDirectory(prefix="atdata-bench-promote-") as tmp:
        root = Path(tmp)
        with (
            start_redis(root / "redis") as redis_server,
            start_s3(root / "s3", access_key="bench-key", secret_key="bench-secret") as s3_server,
            start_pds(root / "pds", tools_dir=ROOT / "tools" / "pds") as pds,
        ):
            credentials = s3_server.credentials
            repo = Repo(credentials, f"bench-{uuid.uuid4().hex[:8]}/ds", redis_server.url, key_prefix="bench:")
            s3 = boto3_client(credentials)
            cases = [
                ("records", make_entry(repo, root, "many", args.shards, 512), False, args.shards, "shards/s"),
                (
                    "blobs",
                    make_entry(repo, root, "blobs", args.blob_mib // 5 or 1, 5 * MiB),
                    True,
                    args.blob_mib * MiB / 1e6,
                    "MB/s",
                ),
            ]
            for label, entry, blobs, amount, unit in cases:
                times: dict[str, list[float]] = {"ours": [], "baseline": []}
                for _turn in range(args.repeat):
                    times["ours"].append(ours(entry, repo.index, pds.url, create_account(pds.url), blobs))
                    times["baseline"].append(
                        baseline(entry, repo.index, pds.url, create_account(pds.url), blobs, s3, credentials)
                    )
                best = {side: min(values) for side, values in times.items()}
                size = f"{args.shards} shards" if label == "records" else f"{args.blob_mib} MiB"
                operation = "promote, records only (S3 URLs kept)" if label == "records" else "promote as PDS blobs"
                rows.append(
                    result_row(
                        operation,
                        amount / best["ours"],
                        amount / best["baseline"],
                        unit,
                        size=size,
                        baseline_name="atproto SDK create_record/upload_blob + boto3 + hashlib",
                        peak_rss_mb=peak_rss_mb(),
                    )
                )
                print(
                    f"{operation:<40} {size:>12}  ours {best['ours']:.2f} s  SDK baseline {best['baseline']:.2f} s  "
                    f"ratio {best['baseline'] / best['ours']:.2f}x"
                )
    write_rows(args.json, rows)


if __name__ == "__main__":
    main()
