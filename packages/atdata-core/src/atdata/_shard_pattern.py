"""The shard path pattern of :func:`atdata.writing.write_samples`: placeholders, ``file://``, checks.

A pattern holds one placeholder for the shard index (``data-%06d.tar``,
``data-{:06d}.tar``); a ``file://`` URL means its path; every other scheme is refused.
All of it is checked before a sample is written, so a bad pattern never leaves a shard
behind or fails only at the rename after the last sample.
"""

from __future__ import annotations

import os
from typing import Any

from .errors import InvalidArgument, UnsupportedURL

__all__ = ["check_pattern", "shard_path"]


def shard_path(pattern: str, index: int) -> str:
    """Shard ``index``'s path: ``pattern`` with its placeholder filled (as it is without one)."""
    if "%" in pattern:
        return pattern % index
    if "{" in pattern:
        return pattern.format(index, i=index)
    return pattern


def check_pattern(pattern: Any, *, limited: bool) -> str:
    """The filesystem pattern of ``pattern``, checked before a sample is written: one that
    numbers shards when ``limited`` (shard limits may give several), not a directory."""
    if not isinstance(pattern, str) or not pattern:
        raise InvalidArgument(f"pattern={pattern!r} is invalid: pass a path such as 'data-%06d.tar'")
    try:
        numbered = shard_path(pattern, 0) != shard_path(pattern, 1)
    except (TypeError, ValueError, IndexError, KeyError) as exc:
        raise InvalidArgument(
            f"pattern={pattern!r} is invalid ({exc}): use one placeholder for the shard index, "
            "e.g. 'data-%06d.tar' or 'data-{:06d}.tar'"
        ) from exc
    if not numbered and limited:
        raise InvalidArgument(
            f"pattern={pattern!r} has no shard-index placeholder but maxcount/maxsize may split the "
            "samples into several shards: use e.g. 'data-%06d.tar'"
        )
    path_pattern = _local_pattern(pattern)
    first = shard_path(path_pattern, 0)
    if first.endswith(("/", os.sep)) or os.path.isdir(first):
        # Found up front: the rename into place would only fail after every sample was written.
        raise InvalidArgument(
            f"pattern={pattern!r} names a directory, not a shard file: use e.g. "
            f"{os.path.join(first, 'data-%06d.tar')!r}"
        )
    return path_pattern


def _local_pattern(pattern: str) -> str:
    """The filesystem pattern behind ``pattern``: a plain path, or a ``file://`` URL's path.

    Any other scheme is refused before a sample is written: ``open()`` would otherwise
    create a local folder named after the scheme (``./s3:/bucket/...``) and the caller
    would get back a URL nothing was stored under. The path is not percent-decoded, so
    the ``%06d`` placeholder survives.
    """
    scheme, sep, rest = pattern.partition("://")
    if not sep or "/" in scheme or len(scheme) == 1:
        return pattern
    if scheme.lower() == "file":
        host, slash, path = rest.partition("/")
        if host in ("", "localhost"):
            return slash + path
    raise UnsupportedURL(
        f"write_samples writes local files only, not {pattern!r}: pass a path or a file:// URL "
        "(e.g. 'data-%06d.tar'); to write shards into object storage use "
        "atdata.store_s3.S3DataStore(...).write_shards(samples, prefix) or Repo.insert"
    )
