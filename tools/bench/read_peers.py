"""Read throughput of atdata against LitData, MosaicML Streaming (MDS) and HF datasets.

The peers pull in torch, so they live in a virtual environment of their own (default
``/tmp/atdata-read-peers-venv``), never in the project's: run this script with any
Python and it creates that environment on first use (``pip install torch==2.13.0``, then
litdata, mosaicml-streaming, datasets and this checkout's atdata-core), then runs itself
inside it. There it writes the same samples in every format, reads each once per round
(best of ``--repeat`` rounds, all in this one run) and prints samples/s and the ratio to
plain webdataset iteration + ``msgpack.unpackb``:

    python tools/bench/read_peers.py                      # training 100,000 + image 20,000
    python tools/bench/read_peers.py --quick              # training 10,000 + image 2,500, one round

Readers: webdataset + msgpack (baseline); atdata ``ordered(batch_size=32)``,
``shuffled(batch_size=32)``, ``ordered()`` per sample; LitData ``StreamingDataset``
(per sample); MDS ``StreamingDataset`` map-style ``ds[i]``; HF datasets
``load_from_disk(...).with_format("numpy").iter(batch_size=32)``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent))  # read_core (the sample types), _common
PEERS = [
    "litdata",
    "mosaicml-streaming",
    "datasets",
    "webdataset",
]  # webdataset: the baseline (a dev dependency, not core's)
TORCH = "torch==2.13.0"  # the CPU wheel pip's find-links offers (PyPI's Linux torch is the CUDA build)
# MosaicML Streaming imports torchvision, and PyPI's torchvision does not load beside that CPU
# wheel ("operator torchvision::nms does not exist"): with it, a matching pair, which pip takes
# from this machine's disk (a CUDA build of torch, ~5.5 GB in the venv; it runs on the CPU).
TORCH_WITH_VISION = ["torch==2.14.1", "torchvision==0.29.1"]
PER_SHARD = 5_000


def ensure_venv(venv: Path, peers: list[str] = PEERS) -> Path:
    """The Python of ``venv``, made on first use: torch (see :data:`TORCH_WITH_VISION`),
    ``peers`` and this checkout's core."""
    python = venv / "bin" / "python"
    if not (venv / ".ready").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet"]
        torch = TORCH_WITH_VISION if "mosaicml-streaming" in peers else [TORCH]
        subprocess.run([*pip, *torch], check=True)
        # Pinned again: a peer asking for a newer torch would pull PyPI's CUDA build.
        subprocess.run([*pip, *torch, *peers], check=True)
        subprocess.run([*pip, "-e", str(ROOT / "packages" / "atdata-core")], check=True)
        (venv / ".ready").write_text("ok\n")
    return python


# -- inside the benchmark environment ------------------------------------------------------


def sample_dict(kind: str, i: int, rng) -> dict:  # noqa: ANN001
    """Sample ``i`` of a workload as a plain dict (the fields of read_core's sample types)."""
    from read_core import make_sample

    return dict(vars(make_sample(kind, i, rng)))


def litdata_item(args: tuple[str, int]) -> dict:
    import numpy as np

    kind, i = args
    return sample_dict(kind, i, np.random.default_rng(i))


def write_all(
    root: Path, kind: str, n: int, formats: tuple[str, ...] = ("tar", "litdata", "mds", "hf")
) -> dict[str, Path]:
    import numpy as np
    import webdataset as wds

    sample_type = sample_types()[kind]
    rng = np.random.default_rng(0)
    samples = [sample_dict(kind, i, rng) for i in range(n)]
    out = {k: root / k for k in formats}
    out["tar"].mkdir()
    for s in range(0, n, PER_SHARD):
        with wds.TarWriter(str(out["tar"] / f"data-{s // PER_SHARD:06d}.tar")) as sink:
            for i in range(s, min(n, s + PER_SHARD)):
                sink.write({"__key__": f"{i:09d}", "msgpack": sample_type(**samples[i]).packed})

    if "litdata" not in formats:
        return out
    import litdata as ld

    ld.optimize(
        fn=litdata_item,
        inputs=[(kind, i) for i in range(n)],
        output_dir=str(out["litdata"]),
        chunk_bytes="64MB",
        num_workers=1,
    )

    if "mds" not in formats:
        return out
    from streaming import MDSWriter

    if kind == "training":
        columns = {"features": "ndarray:float32:128", "label": "int", "source": "str"}
    else:
        columns = {"image": "ndarray:uint8:3,64,64", "label": "int"}
    with MDSWriter(out=str(out["mds"]), columns=columns) as writer:
        for sample in samples:
            writer.write(sample)

    import datasets as hf

    if kind == "training":
        features = hf.Features(
            {
                "features": hf.Sequence(hf.Value("float32"), length=128),
                "label": hf.Value("int64"),
                "source": hf.Value("string"),
            }
        )
    else:
        features = hf.Features({"image": hf.Array3D(shape=(3, 64, 64), dtype="uint8"), "label": hf.Value("int64")})
    hf.Dataset.from_generator(lambda: iter(samples), features=features).save_to_disk(str(out["hf"]))
    return out


def sample_types() -> dict[str, type]:
    from read_core import WORKLOADS

    return {kind: sample_type for kind, (sample_type, _) in WORKLOADS.items()}


def readers(kind: str, paths: dict[str, Path], n: int) -> dict[str, object]:
    import msgpack
    import webdataset as wds

    import atdata

    sample_type = sample_types()[kind]
    shards = sorted(str(p) for p in paths["tar"].iterdir())

    def webdataset() -> int:
        count = 0
        for sample in wds.WebDataset(shards, shardshuffle=False):
            msgpack.unpackb(sample["msgpack"])
            count += 1
        return count

    def ours(mode: str, batch_size: int | None):  # noqa: ANN202
        def read() -> int:
            ds = atdata.Dataset[sample_type](shards)
            loader = (
                ds.ordered(batch_size=batch_size) if mode == "ordered" else ds.shuffled(batch_size=batch_size, seed=0)
            )
            return sum(len(b) for b in loader) if batch_size else sum(1 for _ in loader)

        return read

    def litdata() -> int:
        import litdata as ld

        return sum(1 for _ in ld.StreamingDataset(str(paths["litdata"])))

    def mds() -> int:
        from streaming import StreamingDataset

        ds = StreamingDataset(local=str(paths["mds"]), shuffle=False, batch_size=1)
        for i in range(len(ds)):
            ds[i]
        return len(ds)

    def hf_datasets() -> int:
        import datasets as hf

        ds = hf.load_from_disk(str(paths["hf"])).with_format("numpy")
        return sum(len(b["label"]) for b in ds.iter(batch_size=32))

    return {
        "webdataset + msgpack": webdataset,
        "atdata ordered/32": ours("ordered", 32),
        "atdata shuffled/32": ours("shuffled", 32),
        "atdata ordered/1": ours("ordered", None),
        "LitData StreamingDataset": litdata,
        "MDS map-style": mds,
        "HF datasets numpy/32": hf_datasets,
    }


def rows_of(kind: str, n: int, best: dict[str, float]) -> list[dict]:
    """Result rows (tools/bench/_common.py): our readers against webdataset, LitData and
    HF datasets (every reader's rate is in the printed table)."""
    from _common import result_row

    size = f"{n} samples"
    rows = [  # only our readers are "ours"; the peers appear as baselines below
        result_row(
            f"read {kind}: {name}",
            rate,
            best["webdataset + msgpack"],
            "samples/s",
            size=size,
            baseline_name="webdataset + msgpack",
        )
        for name, rate in best.items()
        if name.startswith("atdata")
    ]
    for ours in ("atdata ordered/32", "atdata shuffled/32", "atdata ordered/1"):
        for peer in ("LitData StreamingDataset", "HF datasets numpy/32"):
            rows.append(
                result_row(
                    f"read {kind}: {ours} vs {peer}", best[ours], best[peer], "samples/s", size=size, baseline_name=peer
                )
            )
    return rows


def inside(args: argparse.Namespace) -> None:
    print(f"# read_peers: {os.cpu_count()} CPUs, best of {args.repeat}, {args.clock} clock")
    print(f"{'workload':9} {'samples':>8} {'reader':26} {'samples/s':>10} {'vs wds':>7}")
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    rows: list[dict] = []
    for kind, n in (("training", args.training), ("image", args.image)):
        if not n:
            continue
        with tempfile.TemporaryDirectory(prefix="atdata-peers-") as tmp:
            paths = write_all(Path(tmp), kind, n)
            table = readers(kind, paths, n)
            best = dict.fromkeys(table, 0.0)
            for _ in range(args.repeat):
                for name, read in table.items():
                    start = clock()
                    count = read()
                    rate = count / (clock() - start)
                    assert count == n, (name, count, n)
                    best[name] = max(best[name], rate)
            baseline = best["webdataset + msgpack"]
            for name, rate in best.items():
                print(f"{kind:9} {n:>8} {name:26} {rate:>10,.0f} {rate / baseline:>6.2f}x", flush=True)
            rows += rows_of(kind, n, best)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--training", type=int, default=100_000)
    parser.add_argument("--image", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    parser.add_argument("--quick", action="store_true", help="training 10,000 + image 2,500 samples, one round")
    parser.add_argument("--json", metavar="PATH", help="also write result rows (tools/bench/_common.py format) to PATH")
    parser.add_argument("--venv", type=Path, default=Path(tempfile.gettempdir()) / "atdata-read-peers-venv")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        inside(args)
        return
    if args.quick:
        args.training, args.image, args.repeat = 10_000, 2_500, 1
    python = ensure_venv(args.venv)
    forwarded = [
        "--training",
        str(args.training),
        "--image",
        str(args.image),
        "--repeat",
        str(args.repeat),
        "--clock",
        args.clock,
    ]
    if args.json:
        forwarded += ["--json", str(Path(args.json).resolve())]
    os.execv(str(python), [str(python), __file__, "--inside", *forwarded])


if __name__ == "__main__":
    main()
