"""Ray Data write and read: ``atdata.ray`` against Ray Data's own WebDataset sink and source.

Starts a real valkey, a real ``rclone serve s3`` and a local Ray cluster (2 CPUs,
``atdata.ray.cluster``) on 127.0.0.1. At each size, one Ray pipeline makes the seed
workload's training samples (features float32[128], label int)::

    ray.data.range(N, override_num_blocks=N // rows_per_block).map_batches(make_samples)

and the same rows are written and read back by each side, on the same S3 server:

- write, ours:      ``atdata.ray.write_dataset(ds, repo, name=, sample_type=)``: one shard
                    per block staged by the workers, one index entry committed on the driver
- write, baseline:  ``ds.write_webdataset("s3://...", filesystem=pyarrow S3FileSystem)``:
                    Ray's own tar sink (``.npy`` / ``.cls`` members), one file per block
- read, ours:       ``atdata.ray.read_dataset(repo, name).iter_batches()``: one read task
                    per shard, verified reads, numpy columns
- read, baseline:   ``ray.data.read_webdataset(<the baseline's shards>).iter_batches()``:
                    the same samples in Ray's tar format, decoded by Ray's default decoder

It prints samples/s of both sides, the ratio (goal: ours >= 1.0x) and the peak RSS of
the busiest Ray worker process during each write (goal: flat in dataset size; the block
size is fixed, so the work of one task is too). Peak RSS per worker is read from
``/proc/PID/status`` (VmHWM), reset before each phase through ``/proc/PID/clear_refs``.

S3 and pyarrow: the AWS C++ SDK inside pyarrow sends each part of a multipart upload
with a streamed CRC checksum and no ``Content-Length``, which ``rclone serve s3``
refuses (HTTP 411, MissingContentLength). ``AWS_REQUEST_CHECKSUM_CALCULATION=WHEN_REQUIRED``
in the Ray node's environment (inherited by every worker) makes the SDK send plain
sized parts, as it did before checksums became its default. And ``try_create_dir=False``:
by default Ray's sink first makes a directory marker object (``prefix/``), after which
rclone's local backend refuses every part under that prefix (INTERNAL_FAILURE, rclone
logs "file already exists"); S3 needs no directories.

    uv run python tools/bench/ray_write.py                        # 250,000 and 1,000,000 samples
    uv run python tools/bench/ray_write.py --quick                # 20,000 and 80,000 samples
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# Before ray is imported (atdata.ray imports it): atdata.ray.cluster.DRIVER_ENV, and the
# S3 setting of the docstring, which the Ray node and so every worker inherit.
os.environ.update(
    {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0", "RAY_AUTH_MODE": "token"}
)
os.environ.setdefault("RAY_AUTH_TOKEN", uuid.uuid4().hex + uuid.uuid4().hex)
os.environ["AWS_REQUEST_CHECKSUM_CALCULATION"] = "WHEN_REQUIRED"

import numpy as np  # noqa: E402
from _common import add_json_flag, boto3_client, result_row, write_rows
from numpy.typing import NDArray

import atdata

FEATURES = 128


@atdata.packable
class TrainingSample:
    """The seed workload's training sample (as in read_core.py, without its constant source string)."""

    features: NDArray
    label: int


def make_samples(names: tuple[str, str]) -> Callable[[dict[str, NDArray]], dict[str, NDArray]]:
    """A ``map_batches`` function: ids -> features and labels, under the column ``names`` given."""
    features_name, label_name = names

    def make(batch: dict[str, NDArray]) -> dict[str, NDArray]:
        ids = batch["id"]
        rng = np.random.default_rng(int(ids[0]))
        features = rng.standard_normal((len(ids), FEATURES), dtype=np.float32)
        return {features_name: features, label_name: (ids % 10).astype(np.int64)}

    return make


def pipeline(samples: int, rows_per_block: int, names: tuple[str, str]) -> Any:
    import ray.data

    blocks = max(samples // rows_per_block, 1)
    return ray.data.range(samples, override_num_blocks=blocks).map_batches(
        make_samples(names), batch_size=None, batch_format="numpy"
    )


# -- peak RSS of the Ray workers ---------------------------------------------------------


def _children(pid: int) -> Iterator[int]:
    for path in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = path.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            yield int(path.parent.name)


def ray_workers(root_pid: int) -> list[int]:
    """Every ``ray::`` worker process below the cluster's ``ray start`` (not its agents)."""
    found, todo = [], [root_pid]
    while todo:
        for child in _children(todo.pop()):
            todo.append(child)
            try:
                name = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")[0]
            except OSError:
                continue
            if name.startswith(b"ray::") and b"Agent" not in name:
                found.append(child)
    return found


def _status_mib(pid: int, fields: tuple[str, ...]) -> list[float]:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return []
    values = {line.split(":")[0]: int(line.split()[1]) / 1024 for line in lines if line.startswith(fields)}
    return [values.get(name, 0.0) for name in fields]


class WorkerPeaks:
    """Peak memory of the busiest Ray worker while a phase runs, sampled every 50 ms.

    ``rss``: VmHWM (the kernel's peak, reset first through ``clear_refs``), which counts
    the pages of Ray's shared-memory object store a worker touched; ``private``: the
    largest sampled VmRSS - RssShmem, the worker's own memory.
    """

    def __init__(self, root_pid: int) -> None:
        self.root_pid, self.private = root_pid, 0.0
        self._stop = threading.Event()
        for pid in ray_workers(root_pid):
            try:
                Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux)
            except OSError:
                pass
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            for pid in ray_workers(self.root_pid):
                rss, shmem = _status_mib(pid, ("VmRSS", "RssShmem")) or (0.0, 0.0)
                self.private = max(self.private, rss - shmem)

    def stop(self) -> tuple[float, float]:
        """(peak VmHWM, peak private) in MiB, over every worker."""
        self._stop.set()
        self._thread.join()
        hwm = [_status_mib(pid, ("VmHWM",)) or [0.0] for pid in ray_workers(self.root_pid)]
        return max([0.0, *(h[0] for h in hwm)]), self.private


def timed(root_pid: int, run: Callable[[], int]) -> tuple[float, int, tuple[float, float]]:
    """(seconds, rows, (peak VmHWM, peak private) MiB of the busiest worker) of ``run``."""
    peaks = WorkerPeaks(root_pid)
    start = time.perf_counter()
    rows = run()
    seconds = time.perf_counter() - start
    return seconds, rows, peaks.stop()


def count_rows(ds: Any) -> int:
    """Pull every batch to the driver, as a training loop would."""
    return sum(len(batch[next(iter(batch))]) for batch in ds.iter_batches(batch_size=1024, batch_format="numpy"))


# -- the run -----------------------------------------------------------------------------


def measure_size(samples: int, rows_per_block: int, ctx: dict[str, Any], *, show: bool = True) -> list[dict[str, Any]]:
    """Write and read ``samples`` samples through both sides; the four timings as result rows."""
    import ray.data

    from atdata.ray import read_dataset, write_dataset

    repo, fs, bucket, pid = ctx["repo"], ctx["fs"], ctx["bucket"], ctx["pid"]
    name, prefix = f"bench-{uuid.uuid4().hex[:8]}", f"{bucket}/wds-{uuid.uuid4().hex[:8]}"

    def ours_write() -> int:
        _, stored = write_dataset(
            pipeline(samples, rows_per_block, ("features", "label")), repo, name=name, sample_type=TrainingSample
        )
        assert stored.shard_list, "write_dataset made an entry without shards"
        return samples

    def baseline_write() -> int:
        pipeline(samples, rows_per_block, ("features.npy", "label.cls")).write_webdataset(
            prefix, filesystem=fs, try_create_dir=False
        )
        return samples

    results = {
        "write baseline": timed(pid, baseline_write),
        "write ours": timed(pid, ours_write),
        "read baseline": timed(pid, lambda: count_rows(ray.data.read_webdataset(prefix, filesystem=fs))),
        "read ours": timed(pid, lambda: count_rows(read_dataset(repo, name))),
    }
    for phase, (_, rows, _) in results.items():
        if rows != samples:
            raise SystemExit(f"{phase}: {rows} rows, expected {samples}")
    rows_out = []
    for op, baseline_name in (
        ("write", "ds.write_webdataset to S3 (pyarrow S3FileSystem)"),
        ("read", "ray.data.read_webdataset from S3, default decoder"),
    ):
        ours_s, _, ours_rss = results[f"{op} ours"]
        base_s, _, base_rss = results[f"{op} baseline"]
        ours, base = samples / ours_s, samples / base_s
        if not show:
            continue
        print(
            f"{samples:>10,}  {op:<5} {ours:>12,.0f} {base:>12,.0f} {ours / base:>6.2f}x "
            f"{ours_rss[0]:>5.0f} / {ours_rss[1]:>4.0f} MiB {base_rss[0]:>5.0f} / {base_rss[1]:>4.0f} MiB",
            flush=True,
        )
        rows_out.append(
            result_row(
                f"ray {op}, seed samples",
                ours,
                base,
                "samples/s",
                size=f"{samples} samples",
                baseline_name=baseline_name,
                peak_rss_mb=ours_rss[0],
            )
        )
    return rows_out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, nargs="+", default=[250_000, 1_000_000], help="dataset sizes")
    parser.add_argument("--rows-per-block", type=int, default=25_000, help="rows per Ray block = per shard / file")
    parser.add_argument("--quick", action="store_true", help="20,000 and 80,000 samples, 5,000 rows per block")
    add_json_flag(parser)
    args = parser.parse_args()
    sizes, rows_per_block = ([20_000, 80_000], 5_000) if args.quick else (args.samples, args.rows_per_block)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="atdata-bench-ray-") as tmp:
        rows = run(Path(tmp), sizes, rows_per_block)
    print("goal: ours / baseline >= 1.0x; peak worker RSS flat in dataset size")
    write_rows(args.json, rows)


def run(root: Path, sizes: list[int], rows_per_block: int) -> list[dict[str, Any]]:
    """Start the servers and the cluster, measure every size, stop them all."""
    from atdata.local.servers import start_redis, start_s3
    from atdata.ray.cluster import start_local_cluster

    with (
        start_redis(root / "redis") as redis_server,
        start_s3(root / "s3", access_key="bench-key", secret_key="bench-secret") as s3_server,
    ):
        cluster = start_local_cluster(num_cpus=2)
        try:
            return measure_all(cluster, redis_server, s3_server, root, sizes, rows_per_block)
        finally:
            import ray

            ray.shutdown()
            cluster.stop()


def measure_all(
    cluster: Any, redis_server: Any, s3_server: Any, root: Path, sizes: list[int], rows_per_block: int
) -> list[dict[str, Any]]:
    import pyarrow.fs
    import ray

    from atdata.local import Repo

    ray.init(address=cluster.address, log_to_driver=False, logging_level="WARNING")
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # no line per dataset executed
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    creds = s3_server.credentials
    bucket = f"bench-{uuid.uuid4().hex[:12]}"
    boto3_client(creds).create_bucket(Bucket=bucket)
    keys = root / "s3.env"  # workers read the keys from this file (a pickled store carries none)
    keys.write_text("".join(f"{key}={value}\n" for key, value in creds.items()))
    fs = pyarrow.fs.S3FileSystem(
        access_key=creds["AWS_ACCESS_KEY_ID"],
        secret_key=creds["AWS_SECRET_ACCESS_KEY"],
        endpoint_override=creds["AWS_ENDPOINT"],
        scheme="http",
        region="us-east-1",
    )
    repo = Repo(str(keys), f"{bucket}/datasets", redis_server.url, key_prefix=f"bench-{uuid.uuid4().hex}:")
    ctx = {"repo": repo, "fs": fs, "bucket": bucket, "pid": cluster.process.pid}
    # Warm-up, not measured: every side once, so each worker has imported what it needs
    # and the first measured size pays no more start-up than the last.
    measure_size(2 * rows_per_block, rows_per_block, ctx, show=False)
    print(
        f"{'samples':>10}  {'op':<5} {'ours/s':>12} {'baseline/s':>12} {'ratio':>7} {'ours RSS / private':>18} {'base RSS / private':>18}"
    )
    rows: list[dict[str, Any]] = []
    for samples in sizes:
        rows += measure_size(samples, rows_per_block, ctx)
    return rows


if __name__ == "__main__":
    main()
