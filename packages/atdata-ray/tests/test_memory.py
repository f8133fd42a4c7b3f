"""A Ray worker's memory stays flat over its tasks: the mmap threshold pin of ``atdata.ray._memory``."""

from __future__ import annotations

import ctypes
import subprocess
import sys
from typing import Any

import numpy as np
import ray
import ray.cloudpickle
from numpy.typing import NDArray

import atdata
from atdata.local import Repo
from atdata.ray import RepoDatasink
from atdata.ray._memory import pin_mmap_threshold

# Ray pickles this module's functions by value: its workers cannot import test modules.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

BIG = 8 << 20  # a write task's buffers are this order of size


def mmapped_bytes() -> int:
    """glibc's count of bytes in mmapped chunks (``mallinfo2().hblkhd``)."""

    class MallInfo2(ctypes.Structure):  # made here: Ray cannot pickle a ctypes class by value
        _fields_ = [
            (name, ctypes.c_size_t)
            for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks")
        ] + [("keepcost", ctypes.c_size_t)]

    mallinfo2 = ctypes.CDLL(None).mallinfo2
    mallinfo2.restype = MallInfo2
    return int(mallinfo2().hblkhd)


def big_buffers_are_mmapped() -> bool:
    """Whether a big buffer freed and allocated again is mmapped again (returned to the
    kernel on free) rather than carved from the heap, which only grows."""
    first = bytearray(BIG)
    del first  # unpinned, glibc now raises its threshold above BIG
    before = mmapped_bytes()
    second = bytearray(BIG)
    mmapped = mmapped_bytes() - before >= BIG
    del second
    return mmapped


def _fresh_process(pin: bool) -> bool:
    code = (
        "import sys; from atdata.ray._memory import pin_mmap_threshold; "
        "from test_memory import big_buffers_are_mmapped; "
        f"assert pin_mmap_threshold() if {pin} else True; print(big_buffers_are_mmapped())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=__file__.rsplit("/", 1)[0]
    )
    return out.stdout.strip() == "True"


def test_glibc_moves_big_buffers_to_the_heap_unless_pinned() -> None:
    """The cause of the growth (dynamic threshold: the second big buffer comes from the
    heap) and the fix (pinned: mmapped every time), each in a fresh process."""
    assert not _fresh_process(pin=False)
    assert _fresh_process(pin=True)


def test_pinning_twice_is_one_call() -> None:
    assert pin_mmap_threshold() is pin_mmap_threshold() is True


@atdata.packable
class Labelled:
    """The sample type of the Ray test."""

    features: NDArray
    label: int


def labelled(row: dict[str, Any]) -> dict[str, Any]:
    i = int(row["id"])
    return {"features": np.full(3, i, dtype=np.int64), "label": i}


class ProbingSink(RepoDatasink):
    """A RepoDatasink whose write tasks also report, from the Ray worker, whether big
    buffers are mmapped after the task's write."""

    probes: list[bool]

    def write(self, blocks: Any, ctx: Any) -> Any:
        return super().write(blocks, ctx), big_buffers_are_mmapped()

    def on_write_complete(self, write_result: Any) -> None:
        self.probes = [probe for _, probe in write_result.write_returns]
        write_result.write_returns[:] = [shards for shards, _ in write_result.write_returns]
        super().on_write_complete(write_result)


def test_every_ray_write_task_runs_with_the_threshold_pinned(s3_repo: Repo) -> None:
    sink = ProbingSink(s3_repo, name="pinned", sample_type=Labelled)
    ray.data.range(40, override_num_blocks=4).map(labelled).write_datasink(sink)
    assert sink.probes == [True] * 4
    assert [(s.features.tolist(), s.label) for s in sink.stored.ordered()] == [([i] * 3, i) for i in range(40)]
