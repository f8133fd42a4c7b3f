"""Prefetched chunks: buffers are reused only once no sample view of them is alive."""

import io
from pathlib import Path

import numpy as np
import webdataset as wds

from atdata import register_opener
from atdata._read.buffers import HEADROOM, SpareBuffers
from atdata._read.prefetch import PrefetchStream
from atdata._read.shard import iter_chunks

_SHARDS: dict[str, bytes] = {}
register_opener("prefetchtest", lambda url: io.BytesIO(_SHARDS[url]))


def test_a_buffer_with_a_live_view_is_not_handed_out_again() -> None:
    spares = SpareBuffers(1024)
    first = spares.take()
    spares.give(first)
    assert spares.take() is first
    view = memoryview(first)[10:20]
    spares.give(first)
    second = spares.take()
    assert second is not first and len(second) == 1024
    array = np.frombuffer(view, np.uint8)
    del view
    assert spares.take() is not first  # the array still reads it
    del array
    assert spares.take() is first and len(first) == 1024


def test_views_of_every_block_stay_intact_while_later_blocks_are_read(tmp_path: Path) -> None:
    path = tmp_path / "shard.tar"
    with wds.TarWriter(str(path), encoder=False) as sink:
        for i in range(200):
            sink.write({"__key__": f"{i:04d}", "msgpack": bytes([i % 251]) * (300 + 37 * (i % 9))})
    url = "prefetchtest://shard.tar"
    _SHARDS[url] = path.read_bytes()
    spares = SpareBuffers(HEADROOM + 8192)
    kept = [(k, v) for chunk in iter_chunks(url, stream=PrefetchStream(url, chunk=8192, spares=spares))
            for k, v in zip(chunk.keys, chunk.views)]  # fmt: skip
    assert [(k, bytes(v)) for k, v in kept] == [
        (f"{i:04d}", bytes([i % 251]) * (300 + 37 * (i % 9))) for i in range(200)
    ]
    reused = [
        (k, bytes(v))
        for chunk in iter_chunks(url, stream=PrefetchStream(url, chunk=8192, spares=spares))
        for k, v in zip(chunk.keys, chunk.views)
    ]  # fmt: skip  (views dropped chunk by chunk: buffers reused)
    assert reused == [(k, bytes(v)) for k, v in kept]


def test_a_member_larger_than_the_headroom_is_joined_with_the_next_chunk(tmp_path: Path) -> None:
    path = tmp_path / "big.tar"
    big = bytes(range(256)) * ((HEADROOM + 5000) // 256)
    with wds.TarWriter(str(path), encoder=False) as sink:
        sink.write({"__key__": "small", "msgpack": b"s" * 700})
        sink.write({"__key__": "big", "msgpack": big})
        sink.write({"__key__": "after", "msgpack": b"a"})
    url = "prefetchtest://big.tar"
    _SHARDS[url] = path.read_bytes()
    got = [(k, bytes(v)) for chunk in iter_chunks(url, stream=PrefetchStream(url, chunk=4096))
           for k, v in zip(chunk.keys, chunk.views)]  # fmt: skip
    assert got == [("small", b"s" * 700), ("big", big), ("after", b"a")]
