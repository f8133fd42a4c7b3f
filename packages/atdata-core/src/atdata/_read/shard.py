"""The samples of one shard, chunk by chunk: read the shard, walk each chunk.

:func:`iter_chunks` is the read path's entry to one shard: it opens the shard (see
:func:`atdata._read.prefetch.open_shard`), reads it in chunks of
:data:`~atdata._read.buffers.CHUNK` bytes, and has a :class:`~atdata._read.tarwalk.ShardWalker`
find the samples of each chunk. How the chunks are read depends on the source:

- a local file: one ``read`` per chunk into a fresh ``bytes`` (no copy in Python); the
  unfinished member at the end of a chunk is read again at the start of the next one
  (a seek back, served by the page cache);
- a prefetching stream: the chunks its thread read, each after the unfinished member of
  the chunk before, copied into the buffer's headroom (:mod:`atdata._read.buffers`);
- any other stream: buffers that start with that unfinished member.

A URL carrying a manifest (:mod:`atdata.manifest`) is verified on the way: each buffer
is checked by a :class:`~atdata._read.verify.ChunkVerifier`, and only its verified part
is walked. A URL carrying only a whole-shard sha256 is read and checked whole before its
first byte is walked (see :mod:`atdata._read.verify`).
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from ..errors import ShardDigestMismatch, ShardError
from ..manifest import shard_record
from .buffers import CHUNK, FIRST_CHUNK, HEADROOM, SpareBuffers, read_into
from .index import IndexRecorder
from .prefetch import Prefetcher, PrefetchStream, open_shard
from .tarformat import Buffer
from .tarwalk import ShardWalker
from .verify import ChunkVerifier, whole_shard_checked, whole_shard_digest

__all__ = ["ChunkSamples", "iter_chunks"]


@dataclass(slots=True)
class ChunkSamples:
    """Samples found in one chunk of a shard.

    Attributes
    ----------
    url
        The shard the chunk came from.
    keys
        Each sample's key, in shard order.
    views
        Each sample's msgpack member: a zero-copy slice of the chunk read.
    rows
        When the samples are all of one size at one stride in the chunk (fixed-shape
        samples written by WebDataset): the same bytes as one ``(samples, size)`` view,
        so they can be checked and cut column by column. Else None.
    """

    url: str
    keys: list[str]
    views: Sequence[memoryview]
    rows: np.ndarray | None = None


def iter_chunks(
    url: str,
    chunk: int = CHUNK,
    stream: BinaryIO | PrefetchStream | None = None,
    *,
    prefetcher: Prefetcher | None = None,
    recorder: IndexRecorder | None = None,
) -> Iterator[ChunkSamples]:
    """The samples of shard ``url``, one :class:`ChunkSamples` per chunk read.

    ``stream`` replaces opening ``url`` (else :func:`~atdata._read.prefetch.open_shard`
    opens it, through ``prefetcher`` when given); it is closed at the end. ``recorder``
    notes where the samples lie, and keeps that once the shard was walked whole
    (:mod:`atdata._read.index`).

    Raises
    ------
    ShardError
        After yielding every sample before the problem: a corrupt or truncated shard,
        naming the URL, byte offset and member; or a shard with members but no
        ``.msgpack`` one (it holds no sample).
    ShardDigestMismatch
        ``url`` carries a manifest and a chunk does not match it (or the size differs),
        after yielding the samples of the chunks before it; or ``url`` carries only a
        sha256 (and size) and the shard does not match it, before yielding any sample.
    """
    walker = ShardWalker(url)
    record = shard_record(url)
    verifier = ChunkVerifier(url, record) if record is not None else None
    with contextlib.ExitStack() as closing:
        reads = _open_reads(url, chunk, stream, prefetcher, verifier, closing)
        used: int | None = None
        base = 0  # shard offset of the buffer read
        found = False  # a msgpack member was seen
        while True:
            buf, final = reads.send(used)
            base += used or 0
            damage = None
            if verifier is not None:
                buf, final, damage = _verified(verifier, buf, base, final)
            walked = walker.walk(buf, final)
            used = walked.consumed
            if recorder is not None:
                recorder.chunk(buf, base, walked)
            if walked.keys:
                found = True
                yield ChunkSamples(url, walked.keys, walked.views, walked.rows)
            if damage is not None:
                raise damage
            if walked.error is not None:
                raise walked.error
            if walker.ended or final:
                if verifier is not None and not final:
                    _check_rest(verifier, reads, used, base)
                if not found and walker.last_member is not None:
                    raise _no_samples(url, walker.last_member)
                if recorder is not None:
                    recorder.finish()
                return


def _open_reads(
    url: str,
    chunk: int,
    stream: BinaryIO | PrefetchStream | None,
    prefetcher: Prefetcher | None,
    verifier: ChunkVerifier | None,
    closing: contextlib.ExitStack,
) -> Generator[tuple[Buffer, bool], int | None, None]:
    """The primed chunk reads of ``url``'s source, which ``closing`` closes: each kind of
    source is read its own way (local file, prefetching stream, any other stream)."""
    source = stream if stream is not None else open_shard(url, prefetcher)
    closing.callback(source.close)
    if verifier is None and whole_shard_digest(url) is not None and not isinstance(source, PrefetchStream):
        source = whole_shard_checked(url, source)  # (a prefetch thread checks a shard itself)
        closing.callback(source.close)
    reads: Generator[tuple[Buffer, bool], int | None, None]
    if isinstance(source, io.FileIO):
        spares = prefetcher.spares if prefetcher is not None else None
        align = verifier.record.chunk_size if verifier is not None else None
        reads = _file_reads(source, chunk, align, spares)
    elif isinstance(source, PrefetchStream):
        reads = _prefetched_reads(source)
    else:
        reads = _stream_reads(source, chunk)
    next(reads)
    return reads


def _no_samples(url: str, last_member: str) -> ShardError:
    """A shard with members but no sample: say so, rather than read it as an empty shard."""
    return ShardError(
        f"shard {url!r} holds no '.msgpack' member (its last member is {last_member!r}), so no atdata "
        "sample: atdata stores each sample as '<key>.msgpack'; write the shard with atdata.write_samples "
        "(or S3DataStore.write_shards), or convert the files into samples first"
    )


def _verified(verifier: ChunkVerifier, buf: Buffer, base: int, final: bool) -> tuple[Buffer, bool, ShardError | None]:
    """The verified part of ``buf`` (a zero-copy view), whether it ends the shard, and the
    error found in the rest, if any: the walker sees only bytes whose chunk matched."""
    try:
        usable = verifier.check(buf, base, final)
    except ShardDigestMismatch as exc:
        usable, damage = max(0, min(verifier.verified - base, len(buf))), exc
        return memoryview(buf)[:usable], False, damage
    if usable == len(buf):
        return buf, final, None
    return memoryview(buf)[:usable], False, None


def _check_rest(
    verifier: ChunkVerifier, reads: Generator[tuple[Buffer, bool], int | None, None], used: int, base: int
) -> None:
    """After the end-of-archive marker: read the shard to its end, so bytes past the
    recorded size (or a damaged padding chunk) are caught too."""
    while True:
        buf, final = reads.send(used)
        base += used
        verifier.check(buf, base, final)
        used = len(buf)
        if final:
            return


def _file_reads(
    source: io.FileIO, chunk: int, align: int | None = None, spares: SpareBuffers | None = None
) -> Generator[tuple[Buffer, bool], int | None, None]:
    """Chunks of a local file; each ``send`` says how much of the last chunk was used.

    With ``align`` (a verified read's digest chunk size), each read ends at a multiple of
    it, so the verifier checks the whole read at once and nothing is read twice for it.
    With ``spares`` (a reader's), chunks are read into its recycled buffers: a fresh
    multi-MiB ``bytes`` per read costs a page fault per 4 KiB, which a process that just
    started (a DataLoader worker) pays on every chunk. A read of less than half a spare
    (the first one, the rest of a small shard) gets a ``bytes`` of its own size instead:
    a spare's first use would fault in all of its pages for a few of them.
    """
    size = os.fstat(source.fileno()).st_size
    # A shard smaller than a chunk is read whole (one read, one walk); a larger one starts
    # with a short read, so its first batch comes sooner.
    offset, want = 0, size + 1 if size < chunk else min(FIRST_CHUNK, chunk)
    buf: bytearray | None = None
    used = yield b"", False  # priming
    while True:
        if used is not None:  # after the first chunk
            offset += used
            # No complete member in the chunk: one member is larger; read enough for it.
            want = chunk if used else want * 2
        if align is not None:
            want = max((offset + want) // align, offset // align + 1) * align - offset
        source.seek(offset)
        if spares is None or want > spares.size or min(want, size - offset) < spares.size // 2:
            data = _read_exactly(source, want)
            used = yield data, len(data) < want
            continue
        if buf is not None:
            spares.give(buf)  # handed out again only once no sample view of it is left
        buf = spares.take()
        with memoryview(buf) as whole:
            got = read_into(source, whole[:want])  # type: ignore[arg-type]  # FileIO reads into it
        used = yield memoryview(buf)[:got], got < want


def _prefetched_reads(source: PrefetchStream) -> Generator[tuple[memoryview | bytes, bool], int | None, None]:
    """Chunks as a prefetching thread read them, each after the unused end of the last.

    That unused end (one unfinished sample, usually) is copied into the free room the
    thread left in front of the chunk; only a larger one is joined with the chunk.
    """
    view: memoryview | bytes = b""
    buf: bytearray | None = None
    used = yield view, False  # priming
    while True:
        carry = bytes(view[used:]) if used is not None else b""
        view = b""  # our own view must not keep the buffer from reuse
        if buf is not None:
            source.recycle(buf)
        buf, got, last = source.next_chunk()
        start = HEADROOM - len(carry)
        if start >= 0:
            buf[start:HEADROOM] = carry
            view = memoryview(buf)[start : HEADROOM + got]
        else:
            view = carry + bytes(memoryview(buf)[HEADROOM : HEADROOM + got])
        used = yield view, last


def _stream_reads(source: BinaryIO, chunk: int) -> Generator[tuple[bytearray, bool], int | None, None]:
    """Chunks of a stream, each starting with the unused end of the last one."""
    buf = bytearray()
    used = yield buf, False  # priming
    while True:
        carry = bytes(memoryview(buf)[used:]) if used is not None else b""
        want = max(chunk, len(carry))
        buf = bytearray(len(carry) + want)
        buf[: len(carry)] = carry
        got = read_into(source, memoryview(buf)[len(carry) :])
        if got < want:
            del buf[len(carry) + got :]
        used = yield buf, got < want


def _read_exactly(source: io.FileIO, n: int) -> bytes:
    """``n`` bytes of a file, fewer only at its end."""
    data = source.read(n) or b""
    while len(data) < n:
        more = source.read(n - len(data))
        if not more:
            break
        data += more
    return data
