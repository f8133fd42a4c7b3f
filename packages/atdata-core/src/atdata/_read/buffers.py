"""The read buffers of the read path: their sizes, their layout and their reuse.

Defined once here, for the prefetcher that fills buffers and the shard reader that
walks them:

- :data:`CHUNK`: bytes read per call (local ``read`` or one prefetched buffer); a sample
  larger than this is read in as many calls as it needs.
- :data:`FIRST_CHUNK`: the first chunk of a shard (local or remote), short so decoding starts soon.
- :data:`HEADROOM`: free bytes a buffer keeps in front of its chunk, where the reader
  puts the unfinished member of the chunk before, so a chunk is never copied to join
  the two. A buffer is ``HEADROOM + chunk`` bytes and its chunk starts at ``HEADROOM``.

A fresh buffer of many MiB costs a page fault per 4 KiB on first write, which at
local-network speed is a large share of the reader's CPU, so buffers are reused through
:class:`SpareBuffers` once no sample view of them is alive.
"""

from __future__ import annotations

import threading
from typing import BinaryIO

__all__ = ["CHUNK", "FIRST_CHUNK", "HEADROOM", "SpareBuffers", "read_into"]

#: Bytes read per call; a sample larger than this is read in as many calls as it needs.
CHUNK = 8 << 20
#: The first chunk of a stream: the reader waits for it.
FIRST_CHUNK = 1 << 20
#: Free bytes in front of each chunk read (room for the unfinished member of the chunk before).
HEADROOM = 256 << 10


class SpareBuffers:
    """Read buffers of one size, reused once nothing references their contents.

    A buffer is given back as soon as the reader moves past its chunk, though sample
    views of it may still be alive (a shuffle buffer holds them for long): :meth:`take`
    only hands out a buffer that has no such view left, else a new one.
    """

    def __init__(self, size: int, keep: int = 4) -> None:
        self.size = size
        self._keep = keep
        self._free: list[bytearray] = []
        self._lock = threading.Lock()

    def take(self) -> bytearray:
        with self._lock:
            for i, buf in enumerate(self._free):
                if _unreferenced(buf):
                    return self._free.pop(i)
        return bytearray(self.size)

    def give(self, buf: bytearray) -> None:
        with self._lock:
            if len(self._free) < self._keep and len(buf) == self.size:
                self._free.append(buf)


def _unreferenced(buf: bytearray) -> bool:
    """True when no view of ``buf`` (memoryview, NumPy array) is alive.

    A bytearray with views cannot change its size, so try to: take the last byte off
    and put it back (neither reallocates).
    """
    try:
        last = buf.pop()
    except BufferError:
        return False
    buf.append(last)
    return True


def read_into(stream: BinaryIO, view: memoryview) -> int:
    """Fill ``view``; fewer bytes only at the end (network streams return short reads)."""
    readinto = getattr(stream, "readinto", None)
    got = 0
    while got < len(view):
        if readinto is not None:
            n = readinto(view[got:])
        else:
            data = stream.read(len(view) - got)
            n = len(data)
            view[got : got + n] = data
        if not n:
            break
        got += n
    return got
