"""Argument checks of LocalIndex: everything is validated before a command is sent.

So a rejected call writes no key, and the error names the value given and the fix
instead of surfacing as redis-py's ``DataError`` or a bare ``KeyError``.
"""

from __future__ import annotations

import functools
import re
import time
from typing import Any

from atdata import schema as _schema
from atdata.cid import parse_cid
from atdata.errors import InvalidArgument
from atdata.names import check_entry_name
from atdata.protocols import DatasetLike

__all__ = [
    "check_cid_or_name",
    "check_name",
    "check_schema_ref",
    "check_version",
    "data_urls",
    "next_patch",
    "not_a_cid_hint",
    "now",
    "semver_key",
    "split_local_ref",
]

_PUBLISH_VERSION = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")


def check_name(name: Any) -> None:
    check_entry_name(name)


def check_cid_or_name(value: Any) -> None:
    """Refuse what the scripts cannot take (redis-py would raise its own DataError for None)."""
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"expected an entry, or its CID or name (a non-empty string), got {value!r}")


def data_urls(dataset: DatasetLike) -> list[str]:
    """The URLs an entry records: ``dataset.url`` as given, else its ``shard_list``."""
    url = getattr(dataset, "url", None)
    if url is None:
        url = getattr(dataset, "shard_list", None)
    urls = [url] if isinstance(url, str) else list(url) if isinstance(url, (list, tuple)) else None
    if not urls or not all(isinstance(u, str) and u for u in urls):
        raise InvalidArgument(
            f"cannot index {type(dataset).__name__}: it needs .url (a URL string or a list of them), got {url!r}"
        )
    return urls


@functools.lru_cache(maxsize=1024)
def _checked_ref(ref: str) -> tuple[str, str] | None:
    """Checked once per ref: bulk adds repeat the same few refs thousands of times."""
    parsed = _schema.check_schema_ref(ref)
    return None if parsed is None else (parsed.name, parsed.version)


def check_schema_ref(ref: Any) -> None:
    """A ref ``add_entry`` records: any local name@semver, or a published schema's at:// URI
    (:func:`atdata.schema.check_schema_ref`)."""
    split_local_ref(ref)


def split_local_ref(ref: Any) -> tuple[str, str] | None:
    """``(name, version)`` of a local ref; None for an ``at://`` URI.

    Raises
    ------
    InvalidSchemaRef
        ``ref`` is neither form.
    """
    if not isinstance(ref, str):
        _schema.check_schema_ref(ref)  # raises, naming the value
    return _checked_ref(ref)


def check_version(version: Any) -> None:
    if not isinstance(version, str) or not _PUBLISH_VERSION.match(version):
        raise InvalidArgument(f"schema version must be MAJOR.MINOR.PATCH such as '1.0.0', got {version!r}")


def semver_key(version: str) -> tuple[int, ...]:
    """Sort key of a published version (``MAJOR.MINOR.PATCH``, as ``check_version`` allows)."""
    return tuple(int(part) for part in version.split("."))


def next_patch(version: str | None) -> str:
    if version is None:
        return "1.0.0"
    major, minor, patch = semver_key(version)
    return f"{major}.{minor}.{patch + 1}"


_second: tuple[int, str] = (0, "")


def now() -> str:
    """UTC ISO-8601 with milliseconds; the formatted second is reused (bulk adds call this a lot)."""
    global _second
    stamp = time.time()
    whole = int(stamp)
    if _second[0] != whole:
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{_second[1]}.{int((stamp - whole) * 1000):03d}Z"


def not_a_cid_hint(cid: str) -> str:
    """Why a lookup missed when the caller passed something that is not a CID at all.

    The commonest cause is a dataset name passed to ``get_entry``; saying so beats a bare miss.
    """
    try:
        parse_cid(cid)
    except InvalidArgument:
        return f": {cid!r} is not a CID (CIDs look like 'bafyrei...'); to look up by name, use get_entry_by_name"
    return ""
