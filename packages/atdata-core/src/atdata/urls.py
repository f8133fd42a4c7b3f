"""Dataset URLs: one pattern or a list of them, expanded into the list of shard URLs.

A dataset names its shards the way WebDataset does: a single URL, brace notation
(``data-{000000..000009}.tar``, ``{train,val}.tar``), or a list of such URLs. Local
paths and ``file://`` URLs are read directly; any other scheme goes through the opener
registry in :mod:`atdata.openers`. Expansion happens once, when the dataset is built,
so a malformed pattern fails there rather than in a DataLoader worker. A
:class:`~atdata.shard_url.ShardURL` (an index entry's ``data_urls`` items) passes its
facts to the shards it expands to: where its bucket lives, and each shard's own record
of its manifest (what verified reads check).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import braceexpand

from .errors import InvalidArgument, UnsupportedURL
from .shard_url import ShardURL

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
        A brace pattern with unbalanced braces, or a ``{...}`` holding ``..`` that is
        not a range (``{000..}``, ``{1...3}``), which braceexpand would keep as literal text.
    InvalidArgument
        ``url`` is empty, not a string, or a sequence holding something else.
    """
    patterns = [url] if isinstance(url, str) else _as_list(url)
    shards: list[str] = []
    for pattern in patterns:
        if not isinstance(pattern, str) or not pattern:
            raise InvalidArgument(f"dataset URL {pattern!r} must be a non-empty string (a path or URL)")
        if "{" in pattern:
            _check_ranges(pattern)
        try:
            expanded = list(braceexpand.braceexpand(pattern))
        except braceexpand.UnbalancedBracesError as exc:  # type: ignore[attr-defined]  # not in its stub
            raise UnsupportedURL(
                f"malformed brace pattern in dataset URL {pattern!r}: {exc}. Use e.g. 'data-{{000000..000009}}.tar'."
            ) from exc
        shards.extend(pattern.expanded(expanded) if isinstance(pattern, ShardURL) else expanded)
    return shards


def _as_list(url: object) -> list[str]:
    if isinstance(url, bytes) or not isinstance(url, Sequence):
        raise InvalidArgument(
            f"dataset URL must be a string or a list of strings, got {type(url).__name__} {url!r:.200}"
        )
    if len(url) == 0:
        raise InvalidArgument("dataset URL list is empty: pass at least one shard URL or pattern")
    return list(url)


# What braceexpand accepts as a range: two integers or two letters, and an optional step.
_RANGE = re.compile(r"(-?\d+\.\.-?\d+|[A-Za-z]\.\.[A-Za-z])(\.\.-?\d+)?")
_INNERMOST_GROUP = re.compile(r"\{([^{}]*)\}")
_ESCAPED = re.compile(r"\\.")


def _check_ranges(pattern: str) -> None:
    """Refuse a ``{...}`` group that holds ``..`` but is no range braceexpand knows.

    braceexpand keeps such a group as literal text, so ``data-{000..}.tar`` would name one
    file that does not exist instead of failing here. Groups without ``..`` (``{x}``) and
    escaped braces (``\\{``) stay literal, so file names with braces keep working.
    """
    for group in _INNERMOST_GROUP.findall(_ESCAPED.sub("_", pattern)):
        if ".." in group and "," not in group and not _RANGE.fullmatch(group):
            raise UnsupportedURL(
                f"malformed brace range {{{group}}} in dataset URL {pattern!r}. Brace forms: "
                f"{{first..last}} with two integers or two letters, e.g. 'data-{{000000..000009}}.tar' "
                f"(zero padding kept; optional step: {{0..10..2}}), or a list such as '{{train,val}}.tar'; "
                f"write a literal brace as '\\{{'."
            )
