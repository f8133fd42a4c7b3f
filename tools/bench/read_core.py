"""Read throughput of atdata's Dataset against plain WebDataset, measured in one run.

Writes the spec's ``TrainingSample`` (features float32[128], label int, source str) and an
image workload (image uint8[3,64,64], label int) into local tar shards with
webdataset's own ``TarWriter``, at 1x, 4x and 16x a base size, then reads every sample
with each reader in a fresh subprocess (best of ``--repeat`` rounds; each round runs every
reader once, in turn) and prints samples/s, the ratio to the baseline of the same size,
and each reader's peak RSS:

- ``webdataset``: ``wds.WebDataset(urls, shardshuffle=False)`` + ``msgpack.unpackb``
  of each sample (the baseline; arrays stay ``.npy`` bytes, so it does less work);
- ``ordered/32``, ``ordered/1`` (``batch_size=None``), ``shuffled/32``: ``atdata.Dataset``;
- ``ordered/32+verified``: ``ordered/32`` over URLs carrying a manifest (what an index
  entry's ``data_urls`` carry), so every chunk is checked before it is decoded. Its row
  compares it with ``ordered/32`` of the same run (the cost of verification), not with
  webdataset. The manifests are computed before the clock starts.

Each reader runs ``--epochs`` epochs, so peak RSS shows growth across epochs too.

    uv run python tools/bench/read_core.py            # base 10,000 training / 2,500 image samples
    uv run python tools/bench/read_core.py --base 2000 --sizes 1 4 --repeat 1   # quick look
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
from pathlib import Path

import numpy as np
from _common import add_json_flag, result_row, write_rows
from numpy.typing import NDArray

import atdata

READERS = ["webdataset", "ordered/32", "ordered/1", "shuffled/32", "ordered/32+verified"]
VERIFIED = "+verified"
PER_SHARD = 5_000


@atdata.packable
class TrainingSample:
    features: NDArray[np.float32]
    label: int
    source: str


@atdata.packable
class ImageSample:
    image: NDArray[np.uint8]
    label: int


WORKLOADS = {"training": (TrainingSample, 1), "image": (ImageSample, 4)}  # image base = base // 4


def make_sample(kind: str, i: int, rng: np.random.Generator):
    if kind == "training":
        return TrainingSample(features=rng.standard_normal(128, dtype=np.float32), label=i % 10, source="synthetic")
    return ImageSample(image=rng.integers(0, 255, (3, 64, 64), dtype=np.uint8), label=i % 10)


def write(directory: Path, kind: str, n: int) -> str:
    import webdataset as wds

    rng = np.random.default_rng(0)
    shards = (n + PER_SHARD - 1) // PER_SHARD
    for s in range(shards):
        with wds.TarWriter(str(directory / f"{kind}-{s:06d}.tar")) as sink:
            for i in range(s * PER_SHARD, min(n, (s + 1) * PER_SHARD)):
                sink.write({**make_sample(kind, i, rng).as_wds, "__key__": f"{i:09d}"})
    return str(directory / f"{kind}-{{000000..{shards - 1:06d}}}.tar")


def with_manifests(url: str) -> list[str]:
    """The shards of ``url``, each carrying its manifest record (as an index entry's URLs do)."""
    from atdata.manifest import Manifest, ShardRecord, digest_stream

    urls: list[str] = []
    for shard in atdata.Dataset(url).shard_list:
        with open(shard, "rb") as stream:
            size, sha256, chunks = digest_stream(stream)
        record = ShardRecord(shard, size, sum(1 for _ in atdata.Dataset(shard).raw_samples()), sha256, chunks)
        urls.append(atdata.ShardURL(shard, manifest=Manifest((record,))))
    return urls


def child(reader: str, kind: str, url: str, epochs: int, clock_name: str) -> None:
    """Read every sample ``epochs`` times; print samples/s of the best epoch and peak RSS."""
    clock = time.process_time if clock_name == "cpu" else time.perf_counter
    sample_type = WORKLOADS[kind][0]
    urls: str | list[str] = url
    if reader.endswith(VERIFIED):
        reader, urls = reader.removesuffix(VERIFIED), with_manifests(url)
    best = 0.0
    count = 0
    for epoch in range(epochs):
        start = clock()
        count = 0
        if reader == "webdataset":
            import msgpack
            import webdataset as wds

            for sample in wds.WebDataset(url, shardshuffle=False):
                msgpack.unpackb(sample["msgpack"])
                count += 1
        else:
            ds = atdata.Dataset[sample_type](urls)
            mode, size = reader.split("/")
            batch_size = None if size == "1" else int(size)
            loader = (
                ds.ordered(batch_size=batch_size) if mode == "ordered" else ds.shuffled(batch_size=batch_size, seed=0)
            )
            loader.set_epoch(epoch)
            if batch_size is None:
                for _ in loader:
                    count += 1
            else:
                for batch in loader:
                    count += len(batch)
        best = max(best, count / (clock() - start))
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rate": best, "count": count, "rss_mib": rss_mib}))


def measure(readers: list[str], kind: str, url: str, epochs: int, repeat: int, clock: str) -> dict[str, dict]:
    """Each reader's best of ``repeat`` runs (and its largest peak RSS).

    Each round runs every reader once, in turn, so load from other processes on a shared
    machine falls on all of them alike (the verified/unverified ratio is then steadier).
    """
    runs: dict[str, list[dict]] = {reader: [] for reader in readers}
    for _ in range(repeat):
        for reader in readers:
            out = subprocess.run(
                [sys.executable, __file__, "--child", reader, kind, url, "--epochs", str(epochs), "--clock", clock],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            runs[reader].append(json.loads(out.strip().splitlines()[-1]))
    return {
        reader: {**max(done, key=lambda r: r["rate"]), "rss_mib": max(r["rss_mib"] for r in done)}
        for reader, done in runs.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", nargs=3, metavar=("READER", "KIND", "URL"), help=argparse.SUPPRESS)
    parser.add_argument("--base", type=int, default=10_000, help="training samples at 1x (image: a quarter)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--readers", nargs="+", default=READERS, choices=READERS)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs per reader")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="time samples/s by wall clock, or by the reader's CPU time (steadier on a busy machine)",
    )
    add_json_flag(parser)
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.epochs, args.clock)
        return
    print(
        f"# read_core: {os.cpu_count()} CPUs, best of {args.repeat}, {args.epochs} epochs per run, {args.clock} clock"
    )
    print(f"{'workload':9} {'size':>5} {'samples':>8} {'reader':20} {'samples/s':>10} {'vs wds':>7} {'peak RSS':>9}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="atdata-bench-") as tmp:
        for kind in args.workloads:
            for size in args.sizes:
                n = args.base * size // WORKLOADS[kind][1]
                directory = Path(tmp) / f"{kind}-{size}"
                directory.mkdir()
                url = write(directory, kind, n)
                baseline = None
                rates: dict[str, float] = {}
                readers = ["webdataset", *[r for r in args.readers if r != "webdataset"]]
                results = measure(readers, kind, url, args.epochs, args.repeat, args.clock)
                for reader in readers:
                    result = results[reader]
                    assert result["count"] == n, (reader, result, n)
                    baseline = baseline or result["rate"]
                    rates[reader] = result["rate"]
                    print(
                        f"{kind:9} {size:>4}x {n:>8} {reader:20} {result['rate']:>10,.0f} "
                        f"{result['rate'] / baseline:>6.2f}x {result['rss_mib']:>7.0f}MiB",
                        flush=True,
                    )
                    unverified = rates.get(reader.removesuffix(VERIFIED))
                    if reader.endswith(VERIFIED) and unverified is not None:
                        rows.append(result_row(
                            f"read {kind} {reader} vs unverified", result["rate"], unverified, "samples/s",
                            size=f"{size}x ({n} samples)", baseline_name=f"{reader.removesuffix(VERIFIED)} unverified",
                            peak_rss_mb=result["rss_mib"],
                        ))  # fmt: skip
                    elif reader != "webdataset":
                        rows.append(result_row(
                            f"read {kind} {reader}", result["rate"], baseline, "samples/s", size=f"{size}x ({n} samples)",
                            baseline_name="webdataset + msgpack", peak_rss_mb=result["rss_mib"],
                        ))  # fmt: skip
                for path in directory.iterdir():
                    path.unlink()
    write_rows(args.json, rows)


if __name__ == "__main__":
    main()
