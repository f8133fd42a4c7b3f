"""End-to-end PyTorch DataLoader throughput, 2 workers: atdata vs LitData and webdataset.

The peers (and torch) live in a virtual environment of their own (default
``/tmp/atdata-read-torch-venv``, made on first use like ``read_peers.py``'s: the CPU
torch wheel, litdata, webdataset, this checkout's atdata-core), never in the project's.
There the same samples are written as tar shards (webdataset's ``TarWriter``) and as a
LitData dataset (``litdata.optimize``), then each reader runs in a process of its own
for ``--epochs`` epochs; an epoch is timed from making the DataLoader iterator to its
last batch, so worker start-up counts. Every batch holds 32 samples and reaches the
training loop as torch tensors:

- atdata ``ordered(batch_size=32)`` in one process, no DataLoader: the single-process rate
  the DataLoader is compared with (its batches to tensors by ``torch.from_numpy``);
- atdata ``DataLoader(ds.ordered(batch_size=32) / ds.shuffled(...), batch_size=None,
  num_workers=2)``, then ``torch.from_numpy`` of each field (batches cross through
  shared memory, one batch per worker message);
- atdata ``ds.ordered(batch_size=32).torch_loader(num_workers=2)`` (and shuffled): the same
  DataLoader with 8 batches per worker message, handed on one by one in the same order,
  and its default persistent workers (the first epoch starts them, later ones reuse them);
- LitData ``StreamingDataLoader(StreamingDataset(dir), batch_size=32, num_workers=2)``;
- webdataset ``WebLoader(WebDataset(shards).map(msgpack decode).batched(32),
  batch_size=None, num_workers=2)``.

Peak RSS is the largest sum of the resident sets of the reader's whole process tree
(main process and workers), sampled every 20 ms, per epoch: flat across epochs means no
leak. CPU us/sample is the CPU time of the whole tree (main process and workers, user +
system) per sample in its cheapest epoch: it hardly depends on the machine's load, unlike
samples/s, so "tree CPU ... x single-process's" says what a quiet 2-core machine allows
(on 2 cores the wall-clock ratio cannot beat 2 / that). Printed: samples/s of each reader
in its fastest epoch and in its first (where workers start, and ours walk every shard
before reading indexed ones: see the core README, "Indexed reads"), and the ratios the
goals are stated in (ours vs LitData, vs webdataset, and vs our single-process rate), all
of the fastest epoch. Peak RSS includes the shard pages the workers map (page cache).

    python tools/bench/read_torch.py                    # training 100,000 + image 20,000, 3 epochs
    python tools/bench/read_torch.py --quick            # training 20,000 + image 5,000, 2 epochs
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # read_core (sample types), read_peers (venv), _common

READERS = ["atdata single-process ordered/32", "atdata DataLoader ordered/32", "atdata DataLoader shuffled/32",
           "atdata torch_loader ordered/32", "atdata torch_loader shuffled/32",
           "LitData StreamingDataLoader", "webdataset WebLoader"]  # fmt: skip
OURS = [r for r in READERS if r.startswith(("atdata DataLoader", "atdata torch_loader"))]
WORKERS = 2
BATCH = 32


# -- inside the benchmark environment ------------------------------------------------------


def write_data(root: Path, kind: str, n: int) -> dict[str, str]:
    from read_peers import write_all

    paths = write_all(root, kind, n, formats=("tar", "litdata"))
    return {k: str(v) for k, v in paths.items()}


def tree_rss_mb() -> float:
    """Resident set of this process and all its descendants, in MiB."""
    total, todo = 0, [os.getpid()]
    while todo:
        pid = todo.pop()
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))
            for task in Path(f"/proc/{pid}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, StopIteration, ValueError):
            continue
    return total / 1024


class PeakRss:
    """The largest tree RSS seen while the block runs (a sampling thread)."""

    def __enter__(self) -> PeakRss:
        self.peak, self._stop = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, tree_rss_mb())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, tree_rss_mb())


def tree_ticks() -> dict[int, int]:
    """CPU clock ticks (user + system) of each live descendant of this process (zombies too)."""
    ticks, todo = {}, [os.getpid()]
    while todo:
        pid = todo.pop()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            if pid != os.getpid():
                ticks[pid] = int(fields[11]) + int(fields[12])  # utime, stime
            for task in Path(f"/proc/{pid}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, IndexError, ValueError):
            continue
    return ticks


class TreeCpu:
    """CPU seconds the block costs the whole process tree: this process, its workers alive at
    the end (persistent ones) and those reaped meanwhile. Unlike samples/s it hardly moves
    with the machine's load, so ours / single-process CPU is the load-free part of the ratio."""

    def __enter__(self) -> TreeCpu:
        import resource

        self._start = (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
        self._ticks = tree_ticks()
        return self

    def __exit__(self, *exc: object) -> None:
        import resource

        ticks, hz = tree_ticks(), os.sysconf("SC_CLK_TCK")
        me, reaped = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        own = sum(getattr(me, f) - getattr(self._start[0], f) for f in ("ru_utime", "ru_stime"))
        gone = sum(getattr(reaped, f) - getattr(self._start[1], f) for f in ("ru_utime", "ru_stime"))
        gone -= sum(t for pid, t in self._ticks.items() if pid not in ticks) / hz  # counted before they ended
        live = sum(t - self._ticks.get(pid, 0) for pid, t in ticks.items()) / hz
        self.seconds = own + gone + live


def epoch_source(reader: str, kind: str, paths: dict[str, str]):  # noqa: ANN201
    """A function returning a fresh iterable of one epoch, and the one turning a batch into tensors."""
    import torch

    field = "features" if kind == "training" else "image"
    if reader.startswith("atdata"):
        from read_core import WORKLOADS

        import atdata

        shards = sorted(str(p) for p in Path(paths["tar"]).iterdir())
        ds = atdata.Dataset[WORKLOADS[kind][0]](shards)
        if reader == "atdata single-process ordered/32":
            loader = ds.ordered(batch_size=BATCH)
            return lambda: loader, lambda b: (torch.from_numpy(getattr(b, field)), b.label)
        loader = ds.ordered(batch_size=BATCH) if "ordered" in reader else ds.shuffled(batch_size=BATCH, seed=0)
        if "torch_loader" in reader:  # our DataLoader: 8 batches per worker message, persistent workers
            tl = loader.torch_loader(num_workers=WORKERS)
            return lambda: tl, lambda b: (torch.from_numpy(getattr(b, field)), b.label)
        dl = torch.utils.data.DataLoader(loader, batch_size=None, num_workers=WORKERS, persistent_workers=False)
        return lambda: dl, lambda b: (torch.from_numpy(getattr(b, field)), b.label)
    if reader.startswith("LitData"):
        import litdata as ld

        ds = ld.StreamingDataset(paths["litdata"])
        dl = ld.StreamingDataLoader(ds, batch_size=BATCH, num_workers=WORKERS)
        return lambda: dl, lambda b: (b[field], b["label"])
    import msgpack
    import numpy as np
    import webdataset as wds

    shards = sorted(str(p) for p in Path(paths["tar"]).iterdir())

    def decode(sample: dict) -> tuple:
        data = msgpack.unpackb(sample["msgpack"])
        raw = data[field]
        return np.load(__import__("io").BytesIO(raw)) if isinstance(raw, bytes) else raw, data["label"]

    pipeline = wds.WebDataset(shards, shardshuffle=False, empty_check=False).map(decode).batched(BATCH)
    dl = wds.WebLoader(pipeline, batch_size=None, num_workers=WORKERS)
    return lambda: dl, lambda b: (torch.as_tensor(b[0]), b[1])


def run_reader(reader: str, kind: str, paths: dict[str, str], epochs: int) -> dict:
    make, to_tensors = epoch_source(reader, kind, paths)
    rates, peaks, counts, cpus = [], [], [], []
    for _ in range(epochs):
        with PeakRss() as rss, TreeCpu() as cpu:
            start, count = time.perf_counter(), 0
            for batch in make():
                tensor, _labels = to_tensors(batch)
                count += len(tensor)
            rates.append(count / (time.perf_counter() - start))
        peaks.append(rss.peak)
        counts.append(count)
        cpus.append(cpu.seconds)
    return {"rates": rates, "peaks": peaks, "counts": counts, "cpus": cpus}


def inside(args: argparse.Namespace) -> None:

    print(f"# read_torch: {os.cpu_count()} CPUs, {args.epochs} epochs, DataLoader num_workers={WORKERS}, batch {BATCH}")
    print(
        f"{'workload':9} {'samples':>8} {'reader':34} {'samples/s':>10} {'1st epoch':>10} {'CPU us/sample':>8}"
        "   peak tree RSS/epoch (MiB)"
    )
    rows: list[dict] = []
    for kind, n in (("training", args.training), ("image", args.image)):
        if not n:
            continue
        with tempfile.TemporaryDirectory(prefix="atdata-torch-") as tmp:
            paths = write_data(Path(tmp), kind, n)
            best = {}
            for reader in READERS:
                command = [sys.executable, __file__, "--child", reader, kind, json.dumps(paths), str(args.epochs)]
                out = subprocess.run(command, capture_output=True, text=True, check=False)
                if out.returncode != 0:
                    raise SystemExit(f"{reader} failed:\n{out.stderr[-3000:]}")
                result = json.loads(out.stdout.strip().splitlines()[-1])
                assert all(c == n for c in result["counts"]), (reader, result["counts"], n)
                best[reader] = max(result["rates"])
                best[reader + " cpu"] = min(result["cpus"])
                peaks = " ".join(f"{p:,.0f}" for p in result["peaks"])
                cpu = min(result["cpus"]) / n * 1e6
                first = result["rates"][0]
                print(
                    f"{kind:9} {n:>8} {reader:34} {best[reader]:>10,.0f} {first:>10,.0f} {cpu:>8.1f}   {peaks}",
                    flush=True,
                )
                best[reader + " peaks"] = result["peaks"]
            rows += ratio_rows(kind, n, best)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


def ratio_rows(kind: str, n: int, best: dict) -> list[dict]:
    from _common import result_row

    size = f"{n} samples"
    rows = []
    for ours in OURS:
        peak = max(best[ours + " peaks"])
        for base in ("LitData StreamingDataLoader", "webdataset WebLoader", "atdata single-process ordered/32"):
            rows.append(
                result_row(
                    f"torch {kind}: {ours} vs {base}",
                    best[ours],
                    best[base],
                    "samples/s",
                    size=size,
                    baseline_name=base,
                    peak_rss_mb=peak,
                )  # fmt: skip
            )
            print(f"{kind:9} {n:>8} {ours} / {base}: {best[ours] / best[base]:.2f}x")
        single = "atdata single-process ordered/32"
        print(f"{kind:9} {n:>8} {ours}: tree CPU {best[ours + ' cpu'] / best[single + ' cpu']:.2f}x single-process's")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--training", type=int, default=100_000)
    parser.add_argument("--image", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="training 20,000 + image 5,000 samples, 2 epochs")
    parser.add_argument("--json", metavar="PATH", help="also write result rows (tools/bench/_common.py format) to PATH")
    parser.add_argument("--venv", type=Path, default=Path(tempfile.gettempdir()) / "atdata-read-torch-venv")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        reader, kind, paths, epochs = args.child
        print(json.dumps(run_reader(reader, kind, json.loads(paths), int(epochs))))
        return
    if args.inside:
        inside(args)
        return
    if args.quick:
        args.training, args.image, args.epochs = 20_000, 5_000, 2
    from read_peers import ensure_venv

    python = ensure_venv(args.venv, peers=["litdata", "webdataset"])
    forwarded = ["--training", str(args.training), "--image", str(args.image), "--epochs", str(args.epochs)]
    if args.json:
        forwarded += ["--json", str(Path(args.json).resolve())]
    os.execv(str(python), [str(python), __file__, "--inside", *forwarded])


if __name__ == "__main__":
    main()
