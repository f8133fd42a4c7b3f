"""A data store in a local directory: ``Repo``'s ``hive_path`` without any S3.

Objects are plain files under ``root``; keys are ``/``-separated relative paths.
Writes go to a temporary file in the target directory and are renamed into place
on commit, so a crash never leaves a half shard under a final name, and URLs are
``file://`` URLs that ``atdata.Dataset`` reads directly.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import InvalidArgument, ObjectNotFound, StoreError
from .openers import local_path
from .protocols import AbstractDataStore, ObjectInfo
from .writing import AtomicFileSink

__all__ = ["DiskDataStore"]


class DiskDataStore(AbstractDataStore):
    """Shards and metadata as files under one directory.

    Parameters
    ----------
    root
        A directory path or a ``file://`` URL; created on first write.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        path = local_path(os.fspath(root)) if isinstance(root, (str, os.PathLike)) else None
        if path is None or not path:
            raise InvalidArgument(f"root={root!r} is not a local directory: pass a path or a file:// URL")
        self.root = Path(path).expanduser().resolve()

    def __repr__(self) -> str:
        return f"DiskDataStore({str(self.root)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DiskDataStore) and other.root == self.root

    def __hash__(self) -> int:
        return hash((DiskDataStore, self.root))

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or key.startswith("/") or any(part in ("", ".", "..") for part in parts):
            raise InvalidArgument(
                f"key {key!r} is invalid: use a relative '/'-separated path without empty, '.' or '..' parts"
            )
        return self.root.joinpath(*parts)

    def open_write(self, key: str) -> AtomicFileSink:
        try:
            return AtomicFileSink(self._path(key))
        except OSError as exc:
            raise StoreError(f"cannot write {self.url_for(key)!r}: {exc}") from exc

    def open_read(self, url: str) -> BinaryIO:
        path = local_path(url)
        if path is None:
            raise InvalidArgument(f"{url!r} is not a file:// URL of {self!r}")
        try:
            return open(path, "rb")
        except FileNotFoundError as exc:
            raise ObjectNotFound(f"no object at {url!r}") from exc

    def object_size(self, url: str) -> int | None:
        path = local_path(url)
        if path is None:
            raise InvalidArgument(f"{url!r} is not a file:// URL of {self!r}")
        try:
            info = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise StoreError(f"cannot stat {url!r}: {exc}") from exc
        return info.st_size if stat.S_ISREG(info.st_mode) else None  # a directory is no object

    def delete(self, keys: Iterable[str]) -> None:
        for key in keys:
            try:
                self._path(key).unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise StoreError(f"cannot delete {self.url_for(key)!r}: {exc}") from exc

    def list_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        # Walk only the directory the prefix names, not the whole tree.
        start = self.root.joinpath(*prefix.split("/")[:-1]) if "/" in prefix else self.root
        for directory, _dirs, files in os.walk(start):
            for name in files:
                if name.startswith(".") and name.endswith(".tmp"):
                    continue  # a write in progress (AtomicFileSink), not an object yet
                path = Path(directory, name)
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    try:
                        stat = path.stat()
                    except FileNotFoundError:
                        continue  # deleted while listing
                    yield ObjectInfo(key, path.as_uri(), stat.st_size, stat.st_mtime)

    def url_for(self, key: str) -> str:
        # A trailing "/" names a prefix (a directory), as in "datasets/v1/".
        if not key or key == "/":
            return self.root.as_uri()
        uri = self._path(key.rstrip("/")).as_uri()
        return uri + "/" if key.endswith("/") else uri
