"""Reads of an atmosphere entry's shards: the ``http(s)://`` opener, and :func:`verify_shards`.

Importing ``atdata.atmosphere`` registers :func:`read_http` for ``http`` and ``https``, so
``atdata.Dataset[T](entry.data_urls[0])`` reads blob and storageHttp shards with the same
reader as any other shard. Checking is core's: every URL ``AtmosphereIndex`` hands out
is an :class:`atdata.ShardURL` carrying the shard's recorded sha256 (and size, for a
blob), and core's reader hashes the whole shard before it yields a sample of it
(:func:`atdata._read.verify.whole_shard_checked`; s3:// shards alike). This opener only
downloads a shard whole (a blob is 50 MiB at most; larger bodies spill to a temporary
file); it checks the bytes itself only for a plain-string getBlob URL, whose digest is its
CID (a raw-codec sha2-256 CID *is* the hash of the bytes), since no fact says it.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterable
from typing import BinaryIO, cast
from urllib.parse import parse_qs, urlsplit

import httpx
from multiformats import CID

from atdata.dataset import Dataset
from atdata.errors import ObjectNotFound, ShardDigestMismatch, StoreUnavailable

__all__ = ["read_http", "verify_shards"]

_SPOOL = 64 << 20
_CHUNK = 1 << 20


def _blob_digest(url: str) -> str | None:
    """The sha256 a getBlob URL's CID names, when the URL carries no recorded one."""
    if getattr(url, "sha256", None):
        return None  # core's reader checks the recorded digest: hashing here too would double the cost
    parts = urlsplit(url)
    if not parts.path.endswith("/com.atproto.sync.getBlob"):
        return None
    cid = (parse_qs(parts.query).get("cid") or [""])[0]
    try:
        parsed = CID.decode(cid)
    except Exception:  # noqa: BLE001 - a malformed cid is for the PDS to refuse
        return None
    if parsed.codec.name == "raw" and parsed.hashfun.name == "sha2-256":
        return bytes(parsed.raw_digest).hex()
    return None


def read_http(url: str) -> BinaryIO:
    """The verified bytes of ``url`` as a seekable stream.

    Raises
    ------
    ObjectNotFound
        The server answers 404 (or a PDS says the blob is not there).
    StoreUnavailable
        The server cannot be reached or fails (5xx).
    ShardDigestMismatch
        A plain getBlob URL whose bytes do not hash to its CID.
    """
    expected = _blob_digest(url)
    body = tempfile.SpooledTemporaryFile(max_size=_SPOOL)  # noqa: SIM115 - returned to the caller
    digest = hashlib.sha256() if expected is not None else None
    try:
        with httpx.stream("GET", url, timeout=60.0, follow_redirects=True) as response:
            if response.status_code in (400, 404):
                raise ObjectNotFound(f"no shard at {url} (HTTP {response.status_code}: {response.read()[:200]!r})")
            if response.status_code >= 300:
                raise StoreUnavailable(f"reading {url} failed: HTTP {response.status_code}")
            for chunk in response.iter_bytes(_CHUNK):
                if digest is not None:
                    digest.update(chunk)
                body.write(chunk)
    except httpx.HTTPError as exc:
        body.close()
        raise StoreUnavailable(f"cannot read {url}: {type(exc).__name__}: {exc}") from exc
    except BaseException:
        body.close()
        raise
    if digest is not None and digest.hexdigest() != expected:
        body.close()
        raise ShardDigestMismatch(
            f"shard {url!r} has sha256 {digest.hexdigest()}, but its blob CID says {expected}: the PDS served "
            "other bytes; no sample of it was read"
        )
    body.seek(0)
    return cast(BinaryIO, body)


def verify_shards(urls: Iterable[str]) -> None:
    """Read every shard of ``urls`` (an entry's ``data_urls``) to its end through core's
    verified reader, without decoding a sample: what iterating the dataset would check.

    URLs that carry no recorded digest (plain strings) are skipped.

    Raises
    ------
    ShardDigestMismatch
        The first shard whose bytes differ from what was recorded (``ShardSizeMismatch``
        for a size), naming the shard and both digests.
    """
    for url in urls:
        if getattr(url, "sha256", None) or getattr(url, "manifest", None):
            for _ in Dataset(url).raw_samples():
                pass
