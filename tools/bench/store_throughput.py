"""Store throughput: atdata's S3 writes and reads against plain boto3 + webdataset.

Starts a real ``rclone serve s3`` on 127.0.0.1, then measures, in the same run and on
the same server, each phase in its own subprocess (so peak RSS is the phase's own):

- write, atdata:   ``S3DataStore.write_shards`` (streamed multipart uploads)
- write, baseline: webdataset ``TarWriter`` to a local file per shard, then boto3
                   ``upload_fileobj`` of those tar bytes (boto3's default transfer config)
- read, atdata:    ``atdata.open_url`` (the ``s3://`` opener) + webdataset's tar iterator,
                   and ``atdata.Dataset(...).raw_samples()`` (what re-sharding uses)
- read, baseline:  boto3 ``get_object`` + webdataset's tar iterator

and prints MB/s, peak RSS and the ratios atdata/baseline (targets: write >= 0.8x,
read >= 0.9x). Peak RSS of the atdata write should not grow with the dataset size:
compare the default 256 MiB run with ``--large`` (2 GiB).

    uv run python tools/bench/store_throughput.py [--large] [--sample-kib 256]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
from _common import add_json_flag, boto3_client, result_row, write_rows

MiB = 1 << 20


def samples(total_bytes: int, sample_bytes: int) -> Iterator[tuple[str, bytes]]:
    block = os.urandom(sample_bytes)
    for i in range(total_bytes // sample_bytes):
        yield f"{i:09d}", msgpack.packb({"i": i, "data": block})


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def phase(name: str, args: argparse.Namespace, creds: dict[str, str], bucket: str, urls: list[str]) -> dict[str, Any]:
    import boto3  # noqa: F401  # imported here, before the timer (boto3_client uses it)
    from botocore.config import Config

    from atdata.store_s3 import S3DataStore

    store = S3DataStore(creds, bucket)
    total, size = args.mib * MiB, args.sample_kib * 1024
    start = time.perf_counter()
    moved = 0
    out: dict[str, Any] = {}
    if name == "write-atdata":
        written = store.write_shards(samples(total, size), prefix=f"atdata-{uuid.uuid4().hex}", maxcount=args.per_shard)
        moved = sum(u.size for u in written)
        out["urls"] = list(written)
    elif name == "write-baseline":
        import webdataset as wds

        client = boto3_client(
            creds,
            Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required"),
        )
        prefix = f"baseline-{uuid.uuid4().hex}"
        source = samples(total, size)
        shard = 0
        with tempfile.TemporaryDirectory() as tmp:
            while True:
                path = Path(tmp, f"{shard:06d}.tar")
                count = 0
                with wds.TarWriter(str(path)) as sink:
                    for key, payload in source:
                        sink.write({"__key__": key, "msgpack": payload})
                        count += 1
                        if count == args.per_shard:
                            break
                if count == 0:
                    break
                moved += path.stat().st_size
                with open(path, "rb") as f:
                    client.upload_fileobj(f, bucket, f"{prefix}/{shard:06d}.tar")
                path.unlink()
                shard += 1
    elif name == "read-atdata-opener":
        import webdataset as wds

        from atdata.openers import open_url

        for url in urls:
            with open_url(url) as stream:
                for member in wds.tariterators.tar_file_iterator(stream):
                    moved += len(member["data"])
    elif name == "read-atdata-dataset":
        import atdata

        for _key, payload in atdata.Dataset[atdata.DictSample](urls).raw_samples():
            moved += len(payload)
    elif name == "read-baseline":
        import webdataset as wds

        client = store.client
        for url in urls:
            key = url.split("/", 3)[3]
            body = client.get_object(Bucket=bucket, Key=key)["Body"]
            for member in wds.tariterators.tar_file_iterator(body):
                moved += len(member["data"])
    else:
        raise SystemExit(f"unknown phase {name}")
    out.update(seconds=time.perf_counter() - start, bytes=moved, rss_mib=peak_rss_mib())
    return out


def run_phase(
    name: str, args: argparse.Namespace, creds: dict[str, str], bucket: str, urls: list[str]
) -> dict[str, Any]:
    payload = json.dumps({"creds": creds, "bucket": bucket, "urls": urls, "args": vars(args)})
    done = subprocess.run(
        [sys.executable, __file__, "--phase", name], input=payload, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"phase {name} failed:\n{done.stderr}")
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--large", action="store_true", help="2 GiB instead of 256 MiB")
    parser.add_argument("--sample-kib", type=int, default=256, help="payload per sample (KiB)")
    parser.add_argument("--per-shard", type=int, default=100, help="samples per shard")
    parser.add_argument("--mib", type=int, help="dataset size in MiB (overrides --large)")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    add_json_flag(parser)
    args = parser.parse_args()
    if args.phase:
        given = json.loads(sys.stdin.read())
        ns = argparse.Namespace(**given["args"])
        print(json.dumps(phase(args.phase, ns, given["creds"], given["bucket"], given["urls"])))
        return
    args.mib = args.mib or (2048 if args.large else 256)

    from atdata.local.servers import start_s3

    with tempfile.TemporaryDirectory(prefix="atdata-bench-") as tmp:
        server = start_s3(Path(tmp, "data"), access_key="bench-key", secret_key="bench-secret")
        try:
            creds, bucket = server.credentials, "bench"
            from atdata.store_s3 import S3DataStore

            S3DataStore(creds, bucket).write_bytes("ready", b"")  # creates the bucket for both sides
            results = {"write-baseline": run_phase("write-baseline", args, creds, bucket, [])}
            results["write-atdata"] = run_phase("write-atdata", args, creds, bucket, [])
            urls = results["write-atdata"]["urls"]
            for name in ("read-baseline", "read-atdata-opener", "read-atdata-dataset"):
                results[name] = run_phase(name, args, creds, bucket, urls)
        finally:
            server.stop()

    def mbps(name: str) -> float:
        return results[name]["bytes"] / results[name]["seconds"] / 1e6

    print(f"dataset {args.mib} MiB, {args.sample_kib} KiB samples, {args.per_shard} per shard, rclone serve s3")
    for name, r in results.items():
        print(f"  {name:22s} {mbps(name):8.1f} MB/s  {r['seconds']:7.2f} s  peak RSS {r['rss_mib']:7.1f} MiB")
    write = mbps("write-atdata") / mbps("write-baseline")
    read = mbps("read-atdata-opener") / mbps("read-baseline")
    dataset = mbps("read-atdata-dataset") / mbps("read-baseline")
    print(f"write ratio atdata/baseline      {write:.2f}x (target >= 0.8x)")
    print(f"read ratio opener/baseline       {read:.2f}x (target >= 0.9x)")
    print(f"read ratio Dataset.raw/baseline  {dataset:.2f}x (target >= 0.9x)")
    size = f"{args.mib} MiB"
    write_rows(args.json, [
        result_row(f"S3 {op}", mbps(ours), mbps(base), "MB/s", size=size, baseline_name=base_name,
                   peak_rss_mb=results[ours]["rss_mib"])
        for op, ours, base, base_name in (
            ("write: S3DataStore.write_shards", "write-atdata", "write-baseline", "wds TarWriter + boto3 upload"),
            ("read: s3:// opener + tar walk", "read-atdata-opener", "read-baseline", "boto3 get_object + wds tar walk"),
            ("read: Dataset.raw_samples", "read-atdata-dataset", "read-baseline", "boto3 get_object + wds tar walk"),
        )
    ])  # fmt: skip


if __name__ == "__main__":
    main()
