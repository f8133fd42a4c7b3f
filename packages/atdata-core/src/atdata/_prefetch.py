"""Read remote shards ahead of the reader, in background threads, with bounded memory.

A shard behind a network opener (``s3://``...) is read by a thread per shard, up to
``depth`` blocks ahead of the walker, and the next ``ahead`` shards of the reader's
sequence start downloading while the current one is decoded. Network waits then
overlap with decoding (the GIL is released while a socket read waits), so the reader
keeps close to the raw transfer rate. Memory is bounded: at most
``(ahead + 1) * (depth + 1)`` blocks of :data:`~atdata._tar.CHUNK` bytes are held.
Local files are read synchronously: the page cache already reads ahead.
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Sequence

from .openers import local_path, open_url

__all__ = ["PrefetchStream", "Prefetcher"]

_CHUNK = 8 << 20


class PrefetchStream(io.RawIOBase):
    """A readable stream of ``url`` filled by a background thread.

    Errors raised by the opener or the transfer (``ObjectNotFound``, ``StoreError``...)
    are raised by the read that reaches them, in the reading thread.
    """

    def __init__(self, url: str, chunk: int = _CHUNK, depth: int = 2) -> None:
        super().__init__()
        self.url = url
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._pending = memoryview(b"")
        self._eof = False
        self._thread = threading.Thread(target=self._run, args=(chunk,), name="atdata-prefetch", daemon=True)
        self._thread.start()

    def _run(self, chunk: int) -> None:
        try:
            with open_url(self.url) as stream:
                while not self._stop.is_set():
                    data = stream.read(chunk)
                    if not self._put(data) or not data:
                        return
        except BaseException as exc:  # handed to the reading thread, which raises it
            self._put(exc)

    def _put(self, item: bytes | BaseException) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def readable(self) -> bool:
        return True

    def readinto(self, view: memoryview) -> int:  # type: ignore[override]
        if not self._pending:
            data = self.next_chunk()
            if not data:
                return 0
            self._pending = memoryview(data)
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def next_chunk(self) -> bytes:
        """The next block the thread read, as it read it (``b""`` at the end): no copy."""
        if self._pending:
            data, self._pending = bytes(self._pending), memoryview(b"")
            return data
        if self._eof:
            return b""
        item = self._queue.get()
        if isinstance(item, BaseException):
            self._eof = True
            raise item
        if not item:
            self._eof = True
        return item

    def close(self) -> None:
        self._stop.set()
        super().close()


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

    def open(self, url: str) -> PrefetchStream | None:
        """A prefetching stream for ``url``, or None for a local file (read it directly)."""
        index = self._next if self._next < len(self._urls) and self._urls[self._next] == url else None
        if index is None:  # not the expected shard (e.g. a replay): read it on its own
            return None if _is_local(url) else PrefetchStream(url)
        self._next = index + 1
        for i in range(index + 1, min(index + 1 + self._ahead, len(self._urls))):
            if i not in self._started and not _is_local(self._urls[i]):
                self._started[i] = PrefetchStream(self._urls[i])
        stream = self._started.pop(index, None)
        if stream is None and not _is_local(url):
            stream = PrefetchStream(url)
        return stream

    def close(self) -> None:
        """Stop every download still running (the reader stopped early)."""
        for stream in self._started.values():
            stream.close()
        self._started.clear()


def _is_local(url: str) -> bool:
    return local_path(url) is not None
