"""Registry of URL openers: how a shard URL becomes a readable byte stream.

Core reads local paths and ``file://`` URLs itself. Other schemes are added by the
packages that own them, so core never imports a cloud SDK and a third party can add its
own scheme the same way: either by calling :func:`register_opener` when imported, or,
so that a process that never imported the package can read its URLs, by declaring an
entry point in the ``atdata.openers`` group named after the scheme::

    [project.entry-points."atdata.openers"]
    s3 = "atdata.store_s3.reading:read_url"

The first URL of a scheme with no registered opener loads that entry point (importing
its package) and registers it; ``atdata-store-s3`` declares ``s3`` this way.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from .errors import InvalidArgument, ObjectNotFound, UnsupportedURL

ENTRY_POINT_GROUP = "atdata.openers"

__all__ = ["ENTRY_POINT_GROUP", "Opener", "local_path", "open_url", "register_opener", "registered_schemes"]

Opener = Callable[[str], BinaryIO]
"""Takes a full URL and returns a readable binary stream positioned at its start."""

_openers: dict[str, Opener] = {}


def register_opener(scheme: str, opener: Opener) -> None:
    """Make ``open_url`` (and so ``Dataset``) read URLs of ``scheme`` with ``opener``.

    Registering a scheme again replaces the earlier opener, so a package can be
    re-imported or reconfigured without error.
    """
    _openers[scheme.lower().rstrip(":/")] = opener


def registered_schemes() -> list[str]:
    """Schemes other than local files that can currently be opened."""
    return sorted(_openers)


def local_path(url: str) -> str | None:
    """The filesystem path a URL names, or None when it is not a local file.

    Plain paths and ``file://`` URLs are local; readers use this to take faster
    paths (one large read, mmap) than a generic stream allows.
    """
    parts = urlsplit(url)
    if parts.scheme == "file":
        return unquote(parts.path)
    # A single letter scheme is a Windows drive, not a URL scheme.
    if parts.scheme == "" or len(parts.scheme) == 1:
        return url
    return None


def _from_entry_point(scheme: str) -> Opener | None:
    """The opener an installed package declares for ``scheme`` (registered once loaded), or None."""
    if not scheme:
        return None
    for point in entry_points(group=ENTRY_POINT_GROUP, name=scheme):
        try:
            opener = point.load()
        except Exception as exc:  # noqa: BLE001 - any import failure of the plugin, named
            raise UnsupportedURL(
                f"the opener for {scheme}:// URLs ({point.value}, from entry point group {ENTRY_POINT_GROUP!r}) "
                f"failed to load: {type(exc).__name__}: {exc}"
            ) from exc
        register_opener(scheme, opener)
        return _openers[scheme]
    return None


def open_url(url: str) -> BinaryIO:
    """Open ``url`` for reading: a local path, ``file://``, or a registered scheme.

    Raises
    ------
    ObjectNotFound
        A local file that does not exist.
    InvalidArgument
        A local directory (a dataset URL names shard files, not their folder).
    UnsupportedURL
        A scheme with no registered opener; the message says which package adds it.
    """
    path = local_path(url)
    if path is not None:
        try:
            return open(path, "rb")
        except FileNotFoundError as exc:
            raise ObjectNotFound(f"no such file: {url!r} (resolved to {os.path.abspath(path)!r})") from exc
        except IsADirectoryError as exc:
            raise InvalidArgument(
                f"{url!r} is a directory, not a shard: pass its tar files as a list or a brace pattern "
                f"such as {os.path.join(path, 'data-{000000..000009}.tar')!r}"
            ) from exc
    scheme = urlsplit(url).scheme.lower()
    opener = _openers.get(scheme) or _from_entry_point(scheme)
    if opener is None:
        hint = " Install atdata-store-s3 and `import atdata.store_s3`." if scheme == "s3" else ""
        known = ", ".join(["file", *registered_schemes()])
        raise UnsupportedURL(f"cannot open {url!r}: no opener for scheme {scheme!r} (known: {known}).{hint}")
    return opener(url)
