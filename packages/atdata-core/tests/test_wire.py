"""How batches cross processes (atdata._wire): multiprocessing's pickler moves a batch's
arrays through a shared-memory slot; plain pickle is untouched; a full ring or a reused
slot never gives wrong data."""

from __future__ import annotations

import multiprocessing
import os
import pickle
from multiprocessing.reduction import ForkingPickler

import numpy as np
import pytest

from atdata import _wire
from atdata.batch import SampleBatch
from atdata.errors import AtdataError
from atdata.sample import DictSample


@pytest.fixture(autouse=True)
def as_a_worker(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests pickle in the test process as a DataLoader worker would (its messages go to its parent)."""
    if "main_process" not in request.node.name:
        monkeypatch.setattr(_wire, "sends_to_parent", lambda: True)


def total(b: SampleBatch) -> int:
    return int(b.columns["image"].sum())


def batch(i: int = 0, n: int = 4) -> SampleBatch:
    columns = {
        "image": np.arange(n * 3 * 16 * 16, dtype=np.uint8).reshape(n, 3, 16, 16) + i,
        "label": list(range(i, i + n)),
        "ragged": [np.zeros(k) for k in range(n)],
        "wide": np.full((n, 5), i, dtype=">f8"),  # stored byte order kept
        "small": np.arange(n, dtype=np.int16),
    }
    return SampleBatch(DictSample, columns, [f"{k:04d}" for k in range(i, i + n)])


def same(a: SampleBatch, b: SampleBatch, byte_order: bool = True) -> bool:
    """Equal batches; ``byte_order=False``: numpy's own pickle may load '>f8' as native floats."""
    for name, column in a.columns.items():
        other = b.columns[name]
        if isinstance(column, np.ndarray):
            dtype_ok = other.dtype == column.dtype if byte_order else other.dtype.kind == column.dtype.kind
            if not (dtype_ok and np.array_equal(other, column)):
                return False
        elif len(column) != len(other) or any(not np.array_equal(x, y) for x, y in zip(column, other)):
            return False
    return a.keys == b.keys and a.sample_type is b.sample_type


def rings() -> set[str]:
    return {name for name in os.listdir("/dev/shm") if name.startswith("atdata-batches-")}


def test_forking_pickler_moves_arrays_through_a_slot_and_the_copy_is_the_receivers() -> None:
    original = batch(1)
    message = ForkingPickler.dumps(original)
    assert len(message) < original.columns["image"].nbytes  # the arrays are not in the pickle
    loaded = pickle.loads(message)
    assert same(original, loaded)
    image = loaded.columns["image"]
    assert image.flags.writeable and not np.shares_memory(image, original.columns["image"])
    assert all(c.flags.aligned for c in loaded.columns.values() if isinstance(c, np.ndarray))
    assert _wire._ring is not None and _wire._ring.name not in rings()  # mapped here, so its name is gone


def test_plain_pickle_carries_the_arrays() -> None:
    original = batch(2)
    data = pickle.dumps(original)
    assert b"atdata-batches" not in data and len(data) > original.columns["image"].nbytes
    assert same(original, pickle.loads(data), byte_order=False)


def test_a_full_ring_falls_back_to_a_plain_pickle() -> None:
    messages = [ForkingPickler.dumps(batch(i)) for i in range(_wire.SLOTS + 3)]  # none loaded yet
    assert sum(b"atdata-batches" in bytes(m) for m in messages) <= _wire.SLOTS
    assert any(b"atdata-batches" not in bytes(m) for m in messages)
    for i, message in enumerate(messages):
        assert same(batch(i), pickle.loads(message), byte_order=False), i


def test_a_message_loaded_after_its_slot_was_reused_raises() -> None:
    first = ForkingPickler.dumps(batch(3))
    pickle.loads(first)
    second = ForkingPickler.dumps(batch(4))  # the lowest free slot: the one just freed
    with pytest.raises(AtdataError, match="loads once"):
        pickle.loads(first)
    assert same(batch(4), pickle.loads(second))


def test_small_or_listed_columns_stay_in_the_pickle() -> None:
    tiny = SampleBatch(DictSample, {"x": np.arange(4, dtype=np.int8), "s": ["a", "b", "c", "d"]}, list("abcd"))
    data = ForkingPickler.dumps(tiny)
    assert b"atdata-batches" not in bytes(data)
    assert same(tiny, pickle.loads(data))


def test_a_batch_larger_than_the_ring_grows_it() -> None:
    big = SampleBatch(DictSample, {"x": np.ones((2, 1 << 17), np.uint8)}, ["a", "b"])  # 256 KiB
    small = ForkingPickler.dumps(batch(5))
    grown = ForkingPickler.dumps(big)
    assert same(big, pickle.loads(grown)) and same(batch(5), pickle.loads(small))
    assert _wire._ring is not None and _wire._ring.slot >= 1 << 18


def test_a_main_process_pickles_plainly_so_a_pool_of_readers_gets_every_batch() -> None:
    """Pool.map over batches: the main process's messages go to several workers, which could not share a ring."""
    assert not _wire.sends_to_parent()
    assert b"atdata-batches" not in bytes(ForkingPickler.dumps(batch(6)))
    batches = [batch(i) for i in range(12)]
    with multiprocessing.get_context("fork").Pool(2) as pool:
        assert pool.map(total, batches, chunksize=1) == [total(b) for b in batches]
    with multiprocessing.get_context("fork").Pool(2) as pool:  # and the workers' answers through their rings
        echoed = pool.map(_echo, batches, chunksize=1)
        assert all(same(a, b, byte_order=False) for a, b in zip(echoed, batches))  # sent plainly: see same()


def _echo(b: SampleBatch) -> SampleBatch:
    assert _wire.sends_to_parent()
    return b
