"""Open the shards of a reader: local files directly, remote ones read ahead in threads.

Whether a shard is local is decided here, once for the read path (by
:func:`atdata.openers.local_path`, the one rule for URLs): a local file is opened
unbuffered and read synchronously (the page cache already reads ahead); any other URL
goes through :func:`atdata.open_url`, and, when a :class:`Prefetcher` opens it, is read
by a background thread.

A remote shard is read by a thread per shard, up to ``depth`` chunks ahead of the
walker, and the next ``ahead`` shards of the reader's sequence start downloading while
the current one is decoded. Network waits then overlap with decoding (the GIL is
released while a socket read waits), so the reader keeps close to the raw transfer
rate. Memory is bounded: at most ``(ahead + 1) * (depth + 1)`` chunks of
:data:`~atdata._read.buffers.CHUNK` bytes are in flight, and :class:`SpareBuffers`
keeps at most one more than that for reuse (buffer layout: see
:mod:`atdata._read.buffers`). A shard checked whole (its URL carries only a sha256)
holds up to :data:`~atdata._read.verify.SPOOL` bytes of read buffers instead of
``depth`` chunks, and spills the rest to a temporary file.
"""

from __future__ import annotations

import queue
import tempfile
import threading
from collections.abc import Sequence
from typing import BinaryIO

from ..manifest import shard_record
from ..openers import local_path, open_url
from .buffers import CHUNK, FIRST_CHUNK, HEADROOM, SpareBuffers, read_into
from .verify import SPOOL, WholeShardCheck, whole_shard_digest

__all__ = ["PrefetchStream", "Prefetcher", "is_local", "open_shard"]

_DEPTH = 2  # chunks a stream reads ahead of the reader


def is_local(url: str) -> bool:
    """Whether the read path reads ``url`` as a local file (a path or ``file://``)."""
    return local_path(url) is not None


def open_shard(url: str, prefetcher: Prefetcher | None = None) -> BinaryIO | PrefetchStream:
    """A readable source for shard ``url``: the local file, else a stream of the opener.

    ``prefetcher`` opens it instead when given (remote shards then stream through its
    threads). A local file is opened unbuffered (the walker reads large chunks itself).
    """
    if prefetcher is not None:
        return prefetcher.open(url)
    source = _local_file(url)
    return source if source is not None else open_url(url)


def _local_file(url: str) -> BinaryIO | None:
    """The local file ``url`` names, opened unbuffered; None when ``url`` is remote."""
    path = local_path(url)
    if path is None:
        return None
    try:
        return open(path, "rb", buffering=0)
    except (FileNotFoundError, IsADirectoryError):
        return open_url(url)  # raises the documented error


class PrefetchStream:
    """The chunks of ``url``, read by a background thread (a context manager: closing stops it).

    The first chunk is short (:data:`~atdata._read.buffers.FIRST_CHUNK` bytes), so
    decoding starts as soon as possible; the others are ``chunk`` bytes. Errors raised by
    the opener or the transfer (``ObjectNotFound``, ``StoreError``...) are raised by the
    :meth:`next_chunk` call that reaches them, in the reading thread.

    A shard whose URL carries only a whole-shard sha256 (:attr:`whole`) is read to its end
    and checked on the thread first (:class:`~atdata._read.verify.WholeShardCheck`): its
    buffers are held (up to :data:`~atdata._read.verify.SPOOL` bytes; the rest spills to
    a temporary file) and handed out only once the shard matched, else the first
    :meth:`next_chunk` raises the mismatch. The reader sees the same chunks either way.
    """

    def __init__(self, url: str, chunk: int = CHUNK, depth: int = _DEPTH, spares: SpareBuffers | None = None) -> None:
        self.url = url
        self.chunk = chunk
        fits = spares is not None and spares.size == HEADROOM + chunk
        self._spares = spares if spares is not None and fits else SpareBuffers(HEADROOM + chunk)
        self.whole = shard_record(url) is None and whole_shard_digest(url) is not None
        self._queue: queue.Queue[tuple[bytearray, int, bool] | BaseException] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._eof = False
        target = self._download_whole if self.whole else self._download
        self._thread = threading.Thread(target=target, name="atdata-prefetch", daemon=True)
        self._thread.start()

    def __enter__(self) -> PrefetchStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _download(self) -> None:
        want = min(FIRST_CHUNK, self.chunk)
        try:
            with open_url(self.url) as stream:
                while not self._stop.is_set():
                    buf = self._spares.take()
                    with memoryview(buf) as view:
                        got = read_into(stream, view[HEADROOM : HEADROOM + want])
                    last = got < want
                    if not self._put((buf, got, last)) or last:
                        return
                    want = self.chunk
        except BaseException as exc:  # handed to the reading thread, which raises it
            self._put(exc)

    def _download_whole(self) -> None:
        """Whole-shard mode: read and hash every chunk, holding them; hand them out once matched."""
        check, spill = WholeShardCheck(self.url), None
        held: list[tuple[bytearray, int, bool]] = []
        try:
            with open_url(self.url) as stream:
                got = self.chunk
                while got == self.chunk and not self._stop.is_set():
                    buf = self._spares.take()
                    with memoryview(buf) as view, view[HEADROOM : HEADROOM + self.chunk] as room:
                        got = read_into(stream, room)
                        check.update(room[:got])
                        if len(held) * self.chunk < SPOOL:
                            held.append((buf, got, False))
                            continue
                        spill = spill or tempfile.TemporaryFile()  # noqa: SIM115 - closed below
                        spill.write(room[:got])
                    self._spares.give(buf)
            check.finish()
            if spill is not None:
                spill.seek(0)
            if all(self._put(item) for item in held) and self._put_spilled(spill):
                self._put((self._spares.take(), 0, True))
        except BaseException as exc:  # handed to the reading thread, which raises it
            self._put(exc)
        finally:
            if spill is not None:
                spill.close()

    def _put_spilled(self, spill: BinaryIO | None) -> bool:
        """The chunks past the held ones, read back from the spill file."""
        while spill is not None:
            buf = self._spares.take()
            with memoryview(buf) as view:
                got = read_into(spill, view[HEADROOM : HEADROOM + self.chunk])
            if not got:
                return True
            if not self._put((buf, got, False)):
                return False
        return True

    def _put(self, item: tuple[bytearray, int, bool] | BaseException) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def next_chunk(self) -> tuple[bytearray, int, bool]:
        """The next chunk the thread read: its buffer, its length at ``buf[HEADROOM:]``,
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
        self._spares.give(buf)

    def close(self) -> None:
        self._stop.set()


class Prefetcher:
    """Opens the shards of one reader's sequence, starting the next remote ones early.

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
        self._spares = SpareBuffers(HEADROOM + CHUNK, keep=(ahead + 1) * (_DEPTH + 1) + 1)

    @property
    def spares(self) -> SpareBuffers:
        """The reader's recycled read buffers (local files are read into them too)."""
        return self._spares

    def open(self, url: str) -> BinaryIO | PrefetchStream:
        """The source of ``url``: a local file as is, a remote one as a prefetching stream."""
        index = self._next if self._next < len(self._urls) and self._urls[self._next] == url else None
        if index is None:  # not the expected shard (e.g. a replay): read it on its own
            return self._open_now(url)
        self._next = index + 1
        for i in range(index + 1, min(index + 1 + self._ahead, len(self._urls))):
            if i not in self._started and not is_local(self._urls[i]):
                self._started[i] = PrefetchStream(self._urls[i], spares=self._spares)
        stream = self._started.pop(index, None)
        return stream if stream is not None else self._open_now(url)

    def _open_now(self, url: str) -> BinaryIO | PrefetchStream:
        source = _local_file(url)
        return source if source is not None else PrefetchStream(url, spares=self._spares)

    def close(self) -> None:
        """Stop every download still running (the reader stopped early)."""
        for stream in self._started.values():
            stream.close()
        self._started.clear()
