"""Insert throughput: ``Repo.insert`` against webdataset ``TarWriter`` + boto3 upload.

Starts a real valkey and a real ``rclone serve s3`` on 127.0.0.1, writes local source
shards of ``--sample-kib`` samples at each size (1x, 4x, 16x ``--mib``), then copies
the same source into the same rclone server, each phase in its own subprocess so
that peak RSS is the phase's own:

- ``repo``:          ``Repo.insert(atdata.Dataset(source), maxcount=...)``: the checked
                     insert (every sample's field names and wire types checked against
                     ``BenchSample``, ``atdata.conform``), streaming multipart uploads,
                     schema + content record + index entry
- ``repo cached``:   the same with ``cache_local=True`` (local temp file, then upload)
- ``baseline``:      ``wds.WebDataset(source)`` (no decoding) into ``wds.ShardWriter``
                     local files, each uploaded with boto3 ``upload_file`` when it closes
                     (boto3's default transfer config), then deleted

It prints MB/s of source data, the ratio repo / baseline (target >= 0.8x) and each
phase's peak RSS, which should stay flat from 1x to 16x (the data is streamed).

    uv run python tools/bench/insert_throughput.py              # 32, 128, 512 MiB
    uv run python tools/bench/insert_throughput.py --quick      # 8, 32, 128 MiB
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
from pathlib import Path
from typing import Any

from _common import add_json_flag, boto3_client, result_row, write_rows

import atdata

MiB = 1 << 20
PHASES = ["repo", "repo cached", "baseline"]


@atdata.packable
class BenchSample:
    index: int
    data: bytes


def write_source(directory: Path, total: int, sample_bytes: int) -> list[str]:
    """Local tar shards of ``total`` bytes of samples (atdata's writer: the same bytes either way)."""
    block = os.urandom(sample_bytes)
    count = max(total // sample_bytes, 1)
    samples = (BenchSample(index=i, data=block).as_wds | {"__key__": f"{i:09d}"} for i in range(count))
    return atdata.write_samples(samples, str(directory / "source-%06d.tar"), maxsize=64 * MiB)


def run_phase(name: str, source: list[str], conf: dict[str, Any]) -> dict[str, float]:
    """Runs in a fresh subprocess: one copy of ``source`` into the server (imports not timed)."""
    import boto3  # noqa: F401  # imported here, before the timer (boto3_client uses it)
    import webdataset as wds

    from atdata.local import Repo

    start = time.perf_counter()
    if name.startswith("repo"):
        repo = Repo(
            conf["credentials"], f"{conf['bucket']}/{uuid.uuid4().hex}", conf["redis_url"], key_prefix=conf["prefix"]
        )
        _, stored = repo.insert(
            atdata.Dataset(source, sample_type=BenchSample),
            name=f"bench-{uuid.uuid4().hex[:8]}",
            maxcount=conf["maxcount"],
            cache_local=name == "repo cached",
        )
        shards = len(stored.shard_list)
    else:
        client = boto3_client(conf["credentials"])
        prefix = uuid.uuid4().hex
        uploaded: list[str] = []

        def upload(path: str) -> None:
            key = f"{prefix}/{os.path.basename(path)}"
            client.upload_file(path, conf["bucket"], key)
            os.remove(path)
            uploaded.append(key)

        with tempfile.TemporaryDirectory() as tmp:
            reader = wds.WebDataset(source, shardshuffle=False, empty_check=False)
            with wds.ShardWriter(
                os.path.join(tmp, "data-%06d.tar"), maxcount=conf["maxcount"], post=upload, verbose=0
            ) as sink:
                for sample in reader:
                    sink.write({"__key__": sample["__key__"], "msgpack": sample["msgpack"]})
        shards = len(uploaded)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "shards": shards,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def measure(name: str, source: list[str], conf: dict[str, Any]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--phase", name, "--source", json.dumps(source), "--conf", json.dumps(conf)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"phase {name!r} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=32, help="1x dataset size in MiB (default: %(default)s)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 16], help="multiples of --mib (default: 1 4 16)")
    parser.add_argument("--sample-kib", type=int, default=64, help="bytes per sample, KiB (default: %(default)s)")
    parser.add_argument("--maxcount", type=int, default=256, help="samples per output shard (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="1x = 8 MiB")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--conf", help=argparse.SUPPRESS)
    add_json_flag(parser)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(run_phase(args.phase, json.loads(args.source), json.loads(args.conf))))
        return
    base = 8 if args.quick else args.mib

    from atdata.local.servers import start_redis, start_s3

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="atdata-bench-insert-") as tmp:
        root = Path(tmp)
        with (
            start_redis(root / "redis") as redis_server,
            start_s3(root / "s3", access_key="bench-key", secret_key="bench-secret") as s3_server,
        ):
            conf = {
                "credentials": s3_server.credentials,
                "bucket": f"bench-{uuid.uuid4().hex[:12]}",
                "redis_url": redis_server.url,
                "prefix": f"bench-{uuid.uuid4().hex}:",
                "maxcount": args.maxcount,
            }
            print(f"{'size':>8}  {'phase':<12} {'MB/s':>8} {'ratio':>6} {'peak RSS':>10} {'shards':>6}")
            for factor in args.sizes:
                source_dir = root / f"source-{factor}"
                source_dir.mkdir()
                source = write_source(source_dir, factor * base * MiB, args.sample_kib * 1024)
                nbytes = sum(os.path.getsize(path) for path in source)
                results = {name: measure(name, source, conf) for name in PHASES}
                baseline = nbytes / results["baseline"]["seconds"] / 1e6
                for name in PHASES:
                    result = results[name]
                    speed = nbytes / result["seconds"] / 1e6
                    ratio = speed / baseline
                    print(
                        f"{factor * base:>5} MiB  {name:<12} {speed:>8.1f} {ratio:>5.2f}x "
                        f"{result['peak_rss_mb']:>7.0f} MiB {int(result['shards']):>6}",
                        flush=True,
                    )
                    if name != "baseline":
                        rows.append(
                            result_row(
                                f"insert, {name}",
                                speed,
                                baseline,
                                "MB/s",
                                size=f"{factor * base} MiB",
                                baseline_name="wds.WebDataset -> ShardWriter -> boto3 upload_file",
                                peak_rss_mb=result["peak_rss_mb"],
                            )
                        )
                for path in source:
                    os.remove(path)
    print("target: repo / baseline >= 0.8x; peak RSS flat from 1x to 16x")
    write_rows(args.json, rows)


if __name__ == "__main__":
    main()
