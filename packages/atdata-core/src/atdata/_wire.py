"""How a :class:`~atdata.batch.SampleBatch` crosses processes: one copy through shared memory.

A PyTorch ``DataLoader`` worker hands every batch to the main process through a
``multiprocessing`` queue, pickled by ``multiprocessing.reduction.ForkingPickler``. Pickled
plainly, a batch's arrays are copied into the pickle, written through a pipe (64 KiB at a
time, a context switch each), read back and copied again: for a ``uint8[32, 3, 64, 64]``
batch that costs more than reading it from the shard. torch's own route (tensors in shared
memory) makes a shared-memory file per tensor and sends its descriptor, slower still for
batches of this size.

So this module registers a reducer for ``SampleBatch`` with ``ForkingPickler`` only (plain
``pickle.dumps`` is untouched). A worker process (a multiprocessing child: DataLoader and
Pool workers) keeps a *ring*: a file in ``/dev/shm``
mapped once, cut into :data:`SLOTS` slots. A batch's stacked arrays are copied into a free
slot, and the message carries only the ring's name, the slot, a sequence number and the
small things (keys, list columns, dtypes, shapes). The receiving process maps the ring on
its first message (and unlinks its name, so nothing is left in ``/dev/shm`` even if the
sender is killed), copies the slot into memory of its own (the batch it returns owns its
arrays, writable, as the reader's batches are) and marks the slot free.

Each slot's header holds the sequence number written and the one freed; a slot is reused
only once freed. When no slot is free (the receiver holds many unread messages), the batch
is too big for a ring (over :data:`MAX_RING` bytes), there is no ``/dev/shm``, or the
sender is not a worker (a main process may send one ring's messages to several readers,
as ``Pool.map`` over batches does, and only the first could map it), the batch
is pickled plainly: slower, never wrong. A message is loaded once: loading it again after
its slot was reused raises :class:`~atdata.errors.AtdataError` instead of returning other
data.
"""

from __future__ import annotations

import math
import mmap
import multiprocessing
import os
import secrets
import threading
from multiprocessing import reduction, util
from typing import Any

import numpy as np

from .errors import AtdataError

__all__ = ["register"]

SLOTS = 32  # in flight per DataLoader worker: prefetch_factor (2) messages, of up to 8 batches (TorchLoader)
MIN_BYTES = 1024  # arrays smaller than this travel in the pickle (a slot costs more)
MAX_RING = 1 << 30  # slots * slot size above this: plain pickles
_ALIGN = 64
_HEADER = 2 * SLOTS * 8  # per slot: uint64 written seq, uint64 freed seq
_SHM = "/dev/shm"
_HAVE_SHM = os.path.isdir(_SHM)

ColumnMeta = tuple[str, Any]  # (name, list column) or (name, (dtype str, shape, offset))


class _Ring:
    """The sending side: ``SLOTS`` slots of ``slot`` bytes in a ``/dev/shm`` file of this process."""

    def __init__(self, slot: int) -> None:
        self.pid = os.getpid()
        self.slot = slot
        self.name = f"atdata-batches-{self.pid}-{secrets.token_hex(6)}"
        path = os.path.join(_SHM, self.name)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, _HEADER + SLOTS * slot)
            self.map = mmap.mmap(fd, _HEADER + SLOTS * slot)
        finally:
            os.close(fd)
        self.seqs = np.frombuffer(self.map, np.uint64, 2 * SLOTS).reshape(SLOTS, 2)
        self.next_seq = 1
        # The receiver unlinks the name when it maps the ring; if none ever does, this does.
        util.Finalize(self, _unlink, (path,), exitpriority=10)

    def take(self) -> int | None:
        """A free slot (the lowest, so only as many slots are touched as are in flight)."""
        for i in range(SLOTS):
            if self.seqs[i, 0] == self.seqs[i, 1]:
                return i
        return None


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


_lock = threading.Lock()  # a process may pickle in several queue feeder threads
_ring: _Ring | None = None
_outgrown: list[_Ring] = []  # this process's smaller rings, kept while it runs
_attached: dict[str, tuple[mmap.mmap, np.ndarray, int]] = {}  # receiving side: name -> map, seqs, owner pid


def _layout(columns: dict[str, Any]) -> tuple[list[ColumnMeta], list[tuple[np.ndarray, int]], int]:
    """Which columns go to a slot (C-contiguous arrays without objects), at which offsets."""
    meta: list[ColumnMeta] = []
    arrays: list[tuple[np.ndarray, int]] = []
    offset = 0
    for name, column in columns.items():
        if isinstance(column, np.ndarray) and not column.dtype.hasobject and column.flags.c_contiguous:
            meta.append((name, (column.dtype.str, column.shape, offset)))
            arrays.append((column, offset))
            offset += -(-column.nbytes // _ALIGN) * _ALIGN
        else:
            meta.append((name, column))
    return meta, arrays, offset


def _reduce(batch: Any) -> tuple[Any, ...]:
    """``ForkingPickler``'s reduction of a batch: a slot of this process's ring, or a plain pickle."""
    meta, arrays, nbytes = _layout(batch.columns)
    use_ring = sends_to_parent() and sum(a.nbytes for a, _ in arrays) >= MIN_BYTES
    placed = _place(arrays, nbytes) if use_ring else None
    if placed is None:
        return type(batch), (batch.sample_type, batch.columns, batch.keys)
    name, slot, seq = placed
    return _from_ring, (name, slot, seq, nbytes, batch.sample_type, meta, batch.keys)


def sends_to_parent() -> bool:
    """Whether this process is a multiprocessing child (a DataLoader or Pool worker).

    A ring has one reader: the first process to map it unlinks its name. A worker's
    messages go to its parent, the one reader; the parent's may go to several workers
    (``Pool.map`` over batches), so the parent pickles plainly.
    """
    return multiprocessing.parent_process() is not None


def _place(arrays: list[tuple[np.ndarray, int]], nbytes: int) -> tuple[str, int, int] | None:
    """Copy ``arrays`` into a free slot; its ring name, slot and sequence number (None: no room)."""
    global _ring
    if not _HAVE_SHM:
        return None
    with _lock:
        ring = _ring
        if ring is None or ring.pid != os.getpid() or ring.slot < nbytes:  # none yet, forked, or too small
            size = 1 << max(16, (nbytes - 1).bit_length())
            if SLOTS * size > MAX_RING:
                return None
            if ring is not None and ring.pid == os.getpid():
                _outgrown.append(ring)  # messages in flight may still name it
            ring = _ring = _Ring(size)
        slot = ring.take()
        if slot is None:
            return None
        seq = ring.next_seq
        ring.next_seq += 1
        base = _HEADER + slot * ring.slot
        view = np.frombuffer(ring.map, np.uint8, nbytes, base)
        for array, offset in arrays:
            view[offset : offset + array.nbytes] = array.reshape(-1).view(np.uint8)
        ring.seqs[slot, 0] = seq  # the payload is in place before the message can be sent
        return ring.name, slot, seq


def _from_ring(
    name: str, slot: int, seq: int, nbytes: int, sample_type: type, meta: list[ColumnMeta], keys: list[str]
) -> Any:
    """Rebuild a batch from its slot: copy the arrays out, free the slot."""
    from .batch import SampleBatch

    mapping, seqs, _ = _attach(name)
    slot_size = (len(mapping) - _HEADER) // SLOTS
    if seqs[slot, 0] != seq:
        raise AtdataError(
            f"this SampleBatch message (ring {name}, slot {slot}, number {seq}) was already loaded and its shared "
            "memory reused: a batch pickled by multiprocessing's ForkingPickler loads once; pickle.dumps() a batch "
            "to keep or send it more than once"
        )
    data = np.frombuffer(mapping, np.uint8, nbytes, _HEADER + slot * slot_size).copy()
    seqs[slot, 1] = seq
    columns: dict[str, Any] = {}
    for column, how in meta:
        if isinstance(how, list):
            columns[column] = how
            continue
        dtype, shape, offset = how
        dt = np.dtype(dtype)
        end = offset + dt.itemsize * math.prod(shape)
        columns[column] = data[offset:end].view(dt).reshape(shape)
    return SampleBatch(sample_type, columns, keys)


def _attach(name: str) -> tuple[mmap.mmap, np.ndarray, int]:
    """The receiving side's map of ring ``name``, mapped (and its name unlinked) on first use."""
    with _lock:
        found = _attached.get(name)
        if found is not None:
            return found
        _forget_dead_rings()
        path = os.path.join(_SHM, name)
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            raise AtdataError(
                f"the shared memory of a SampleBatch message ({path}) is gone: its sending process exited, or the "
                "message was loaded in another process already"
            ) from None
        try:
            mapping = mmap.mmap(fd, os.fstat(fd).st_size)
        finally:
            os.close(fd)
        _unlink(path)  # mapped here and in the sender: the memory lives until both unmap it
        seqs = np.frombuffer(mapping, np.uint64, 2 * SLOTS).reshape(SLOTS, 2)
        found = _attached[name] = (mapping, seqs, int(name.split("-")[2]))
        return found


def _forget_dead_rings() -> None:
    """Unmap the rings of senders that exited (fresh DataLoader workers make new ones each epoch)."""
    for name, (_, _, pid) in list(_attached.items()):
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            del _attached[name]  # the map closes once no array view of it is left
        except PermissionError:
            pass


def _after_fork() -> None:
    global _lock
    _lock = threading.Lock()  # another thread may have held it while the process forked


os.register_at_fork(after_in_child=_after_fork)


def register(batch_type: type) -> None:
    """Use the ring for ``batch_type`` whenever multiprocessing pickles one (queues, pipes)."""
    reduction.ForkingPickler.register(batch_type, _reduce)
