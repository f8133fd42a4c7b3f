"""Dataset URLs: one pattern or a list of them, expanded into the list of shard URLs.

A dataset names its shards the way WebDataset does: a single URL, brace notation
(``data-{000000..000009}.tar``, ``{train,val}.tar``), or a list of such URLs. Local
paths and ``file://`` URLs are read directly; any other scheme goes through the opener
registry in :mod:`atdata.openers`. Expansion happens once, when the dataset is built,
so a malformed pattern fails there rather than in a DataLoader worker.
"""

from __future__ import annotations

from collections.abc import Sequence

import braceexpand

from .errors import InvalidArgument, UnsupportedURL

__all__ = ["expand_urls"]


def expand_urls(url: str | Sequence[str]) -> list[str]:
    """Every shard URL ``url`` names, in order.

    Parameters
    ----------
    url
        A URL or path, possibly with brace patterns, or a sequence of them (each
        element is expanded in turn, so ``entry.data_urls`` can be passed as is).

    Raises
    ------
    UnsupportedURL
        A brace pattern with unbalanced braces.
    InvalidArgument
        ``url`` is empty, not a string, or a sequence holding something else.
    """
    patterns = [url] if isinstance(url, str) else _as_list(url)
    shards: list[str] = []
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern:
            raise InvalidArgument(f"dataset URL {pattern!r} must be a non-empty string (a path or URL)")
        try:
            shards.extend(braceexpand.braceexpand(pattern))
        except braceexpand.UnbalancedBracesError as exc:  # type: ignore[attr-defined]  # not in its stub
            raise UnsupportedURL(
                f"malformed brace pattern in dataset URL {pattern!r}: {exc}. "
                f"Use e.g. 'data-{{000000..000009}}.tar'."
            ) from exc
    return shards


def _as_list(url: object) -> list[str]:
    if isinstance(url, bytes) or not isinstance(url, Sequence):
        raise InvalidArgument(
            f"dataset URL must be a string or a list of strings, got {type(url).__name__} {url!r:.200}"
        )
    if len(url) == 0:
        raise InvalidArgument("dataset URL list is empty: pass at least one shard URL or pattern")
    return list(url)
