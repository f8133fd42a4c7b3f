"""How staged shards reach a store: background commits, an optional local copy, progress.

:class:`ShardUploads` opens one sink per shard for ``StagedInsert.write_shards``. The
commit of shard *i* runs on a background thread while shard *i+1* fills, never more:
opening shard *i+2* waits for commit *i*, which bounds both memory and the work lost if
a commit fails. ``cache_local=True`` fills a local temporary file per shard and copies
it to the store on commit. ``progress=True`` drives a tqdm bar (tqdm is core's optional
``progress`` extra), or pass a callable ``progress(bytes_delta, shards_delta)``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .errors import InvalidArgument
from .writing import ShardSink

if TYPE_CHECKING:
    from .protocols import AbstractDataStore

__all__ = ["ShardUploads"]

Progress = Callable[[int, int], None]


class ShardUploads:
    """The sinks of one ``write_shards`` call and the thread that commits them.

    Use as a context manager around the writing: leaving it waits for every commit and
    closes the progress bar.
    """

    def __init__(self, store: AbstractDataStore, *, cache_local: bool, progress: bool | Progress | None = None) -> None:
        self.report, self._close_bar = _progress_callback(progress)
        self._store, self._cache_local = store, cache_local
        self._commits: list[Future[None]] = []
        self._committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="atdata-commit")

    def open(self, key: str) -> ShardSink:
        """A sink for ``key`` whose ``commit`` runs in the background."""
        for done in self._commits[:-1]:
            done.result()
        sink = _LocalCopySink(self._store, key) if self._cache_local else self._store.open_write(key)
        return _BackgroundCommit(sink, self._committer, self._commits)

    def wait(self) -> None:
        """Wait for every commit; raises the first failure."""
        for done in self._commits:
            done.result()

    def settle(self) -> None:
        """Wait for every commit, ignoring failures (after an error, before cleaning up)."""
        for done in self._commits:
            try:
                done.result()
            except BaseException:  # noqa: BLE001, S110 - its error is the one being raised or a consequence
                pass

    def __enter__(self) -> ShardUploads:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._committer.shutdown(wait=True)
        self._close_bar()


class _BackgroundCommit:
    """Runs a sink's ``commit`` on the committer thread so the next shard can fill meanwhile."""

    def __init__(self, sink: ShardSink, committer: ThreadPoolExecutor, commits: list[Future[None]]) -> None:
        self._sink, self._committer, self._commits = sink, committer, commits

    def write(self, data: bytes, /) -> Any:
        return self._sink.write(data)

    def commit(self) -> None:
        self._commits.append(self._committer.submit(self._sink.commit))

    def abort(self) -> None:
        self._sink.abort()


class _LocalCopySink:
    """``cache_local=True``: fill a local temporary file, then copy it to the store on commit."""

    _CHUNK = 8 << 20

    def __init__(self, store: AbstractDataStore, key: str) -> None:
        self._store, self._key = store, key
        self._file = tempfile.TemporaryFile(prefix="atdata-shard-")  # noqa: SIM115 - closed in commit/abort

    def write(self, data: bytes, /) -> int:
        return self._file.write(data)

    def commit(self) -> None:
        try:
            self._file.seek(0)
            writer = self._store.open_write(self._key)
            try:
                while chunk := self._file.read(self._CHUNK):
                    writer.write(chunk)
                writer.commit()
            except BaseException:
                writer.abort()
                raise
        finally:
            self._file.close()

    def abort(self) -> None:
        self._file.close()


def _progress_callback(progress: bool | Progress | None) -> tuple[Progress | None, Callable[[], None]]:
    if progress is None or progress is False:
        return None, lambda: None
    if callable(progress):
        return progress, lambda: None
    if progress is not True:
        raise InvalidArgument(f"progress={progress!r} is invalid: pass True, a callable, or None")
    try:
        from tqdm.auto import tqdm
    except ImportError as exc:
        raise InvalidArgument(
            "progress=True needs tqdm: `pip install tqdm` (or atdata-core[progress]), or pass a callable"
        ) from exc
    bar = tqdm(unit="B", unit_scale=True, unit_divisor=1024, desc="writing shards")
    shards = 0

    def report(nbytes: int, nshards: int) -> None:
        nonlocal shards
        if nshards:
            shards += nshards
            bar.set_postfix(shards=shards, refresh=False)
        bar.update(nbytes)

    return report, bar.close
