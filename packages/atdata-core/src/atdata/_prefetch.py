"""Read remote shards ahead of the reader, in background threads, with bounded memory.

A shard behind a network opener (``s3://``...) is read by a thread per shard, up to
``depth`` blocks ahead of the walker, and the next ``ahead`` shards of the reader's
sequence start downloading while the current one is decoded. Network waits then
overlap with decoding (the GIL is released while a socket read waits), so the reader
keeps close to the raw transfer rate. Memory is bounded: at most
``(ahead + 1) * (depth + 1)`` blocks of :data:`~atdata._tar.CHUNK` bytes are in flight,
and a pool keeps at most one more than that for reuse.
Local files are read synchronously: the page cache already reads ahead.

Blocks are read into buffers of a :class:`BufferPool`, reused once no sample view of
them is alive: a fresh buffer of many MiB costs a page fault per 4 KiB on first
write, which at local-network speed is a large share of the reader's CPU. Each buffer
leaves :data:`HEADROOM` bytes free in front of the block, where the reader puts the
unfinished member of the block before, so a block is never copied to join the two.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from typing import BinaryIO

from .openers import local_path, open_url

__all__ = ["HEADROOM", "BufferPool", "PrefetchStream", "Prefetcher", "read_into"]

_CHUNK = 8 << 20
_DEPTH = 2  # blocks a stream reads ahead of the reader
_FIRST = 1 << 20  # the first block of a stream: the reader waits for it
#: Free bytes in front of each block read (room for the unfinished member of the block before).
HEADROOM = 256 << 10


class BufferPool:
    """Read buffers of one size, reused once nothing references their contents.

    A buffer is given back as soon as the reader moves past its block, though sample
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


class PrefetchStream:
    """The blocks of ``url``, read by a background thread (a context manager: closing stops it).

    The first block is short (:data:`_FIRST` bytes), so decoding starts as soon as
    possible; the others are ``chunk`` bytes. Errors raised by the opener or the
    transfer (``ObjectNotFound``, ``StoreError``...) are raised by the
    :meth:`next_block` call that reaches them, in the reading thread.
    """

    def __init__(self, url: str, chunk: int = _CHUNK, depth: int = _DEPTH, pool: BufferPool | None = None) -> None:
        self.url = url
        self.chunk = chunk
        self._pool = pool if pool is not None and pool.size == HEADROOM + chunk else BufferPool(HEADROOM + chunk)
        self._queue: queue.Queue[tuple[bytearray, int, bool] | BaseException] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._eof = False
        self._thread = threading.Thread(target=self._run, name="atdata-prefetch", daemon=True)
        self._thread.start()

    def __enter__(self) -> PrefetchStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self) -> None:
        want = min(_FIRST, self.chunk)
        try:
            with open_url(self.url) as stream:
                while not self._stop.is_set():
                    buf = self._pool.take()
                    with memoryview(buf) as view:
                        got = read_into(stream, view[HEADROOM : HEADROOM + want])
                    last = got < want
                    if not self._put((buf, got, last)) or last:
                        return
                    want = self.chunk
        except BaseException as exc:  # handed to the reading thread, which raises it
            self._put(exc)

    def _put(self, item: tuple[bytearray, int, bool] | BaseException) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def next_block(self) -> tuple[bytearray, int, bool]:
        """The next block the thread read: its buffer, its length at ``buf[HEADROOM:]``,
        and whether it is the stream's last. Give the buffer back with :meth:`recycle`
        once past it."""
        if self._eof:
            return bytearray(HEADROOM), 0, True
        item = self._queue.get()
        if isinstance(item, BaseException):
            self._eof = True
            raise item
        self._eof = item[2]
        return item

    def recycle(self, buf: bytearray) -> None:
        """Let the thread reuse ``buf`` once no view of it is left."""
        self._pool.give(buf)

    def close(self) -> None:
        self._stop.set()


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


class Prefetcher:
    """Opens the shards of one reader's sequence, starting the next ones early.

    Parameters
    ----------
    urls
        The shards in the order they will be read.
    ahead
        How many shards after the current one download in advance.
    """

    def __init__(self, urls: Sequence[str], ahead: int = 2) -> None:
        self._urls = list(urls)
        self._ahead = ahead
        self._next = 0
        self._started: dict[int, PrefetchStream] = {}
        # Shared, so a shard's buffers serve the next ones; as many as can be in flight.
        self._pool = BufferPool(HEADROOM + _CHUNK, keep=(ahead + 1) * (_DEPTH + 1) + 1)

    def open(self, url: str) -> PrefetchStream | None:
        """A prefetching stream for ``url``, or None for a local file (read it directly)."""
        index = self._next if self._next < len(self._urls) and self._urls[self._next] == url else None
        if index is None:  # not the expected shard (e.g. a replay): read it on its own
            return None if _is_local(url) else PrefetchStream(url, pool=self._pool)
        self._next = index + 1
        for i in range(index + 1, min(index + 1 + self._ahead, len(self._urls))):
            if i not in self._started and not _is_local(self._urls[i]):
                self._started[i] = PrefetchStream(self._urls[i], pool=self._pool)
        stream = self._started.pop(index, None)
        if stream is None and not _is_local(url):
            stream = PrefetchStream(url, pool=self._pool)
        return stream

    def close(self) -> None:
        """Stop every download still running (the reader stopped early)."""
        for stream in self._started.values():
            stream.close()
        self._started.clear()


def _is_local(url: str) -> bool:
    return local_path(url) is not None
