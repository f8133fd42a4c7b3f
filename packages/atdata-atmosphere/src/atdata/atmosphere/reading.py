"""Verified reads of ``http(s)://`` shards: PDS blobs (``com.atproto.sync.getBlob``) and storageHttp.

Importing ``atdata.atmosphere`` registers this opener for ``http`` and ``https``, so
``atdata.Dataset[T](entry.data_urls[0])`` reads blob shards with the same reader as
any other shard. Each shard is downloaded whole (a blob is 50 MiB at most; larger
bodies spill to a temporary file) and its sha256 checked before the reader sees a
byte: for a blob the digest is in its CID (a raw-codec sha2-256 CID *is* the hash of
the bytes), for an entry's other shards it is the checksum the record lists, which
``AtmosphereIndex`` remembers for the URLs it hands out. A mismatch is a ``ShardError``.
S3 shards go through atdata-store-s3's opener; :func:`verify_shards` checks those.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
from collections.abc import Iterable
from typing import IO, Any, BinaryIO, cast
from urllib.parse import parse_qs, urlsplit

import httpx
from multiformats import CID

from atdata.errors import ObjectNotFound, ShardError, StoreUnavailable
from atdata.openers import open_url

__all__ = ["expect_sha256", "read_http", "verify_shards"]

_SPOOL = 64 << 20
_CHUNK = 1 << 20
_lock = threading.Lock()
_expected: dict[str, str] = {}


def expect_sha256(url: str, digest: str) -> None:
    """Make reads of ``url`` in this process check that its bytes hash to ``digest`` (hex)."""
    with _lock:
        _expected[url] = digest


def _expected_digest(url: str) -> str | None:
    with _lock:
        known = _expected.get(url)
    if known is not None:
        return known
    parts = urlsplit(url)
    if parts.path.endswith("/com.atproto.sync.getBlob"):
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
    ShardError
        The bytes do not hash to the recorded sha256.
    """
    expected = _expected_digest(url)
    body = tempfile.SpooledTemporaryFile(max_size=_SPOOL)  # noqa: SIM115 - returned to the caller
    digest = hashlib.sha256()
    try:
        with httpx.stream("GET", url, timeout=60.0, follow_redirects=True) as response:
            if response.status_code in (400, 404):
                raise ObjectNotFound(f"no shard at {url} (HTTP {response.status_code}: {response.read()[:200]!r})")
            if response.status_code >= 300:
                raise StoreUnavailable(f"reading {url} failed: HTTP {response.status_code}")
            for chunk in response.iter_bytes(_CHUNK):
                digest.update(chunk)
                body.write(chunk)
    except httpx.HTTPError as exc:
        body.close()
        raise StoreUnavailable(f"cannot read {url}: {type(exc).__name__}: {exc}") from exc
    except BaseException:
        body.close()
        raise
    if expected is not None and digest.hexdigest() != expected:
        body.close()
        raise ShardError(
            f"shard {url} has sha256 {digest.hexdigest()}, the record says {expected}: refusing to read it"
        )
    body.seek(0)
    return cast(BinaryIO, body)


def verify_shards(shards: Iterable[Any]) -> None:
    """Read every shard (``.url``, ``.sha256``) through the registered openers and check its sha256.

    For S3 or any scheme whose opener does not check by itself; shards without a
    recorded checksum are skipped. Raises ``ShardError`` naming the first mismatch.
    """
    for shard in shards:
        if not shard.sha256:
            continue
        digest = hashlib.sha256()
        with cast(IO[bytes], open_url(shard.url)) as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
        if digest.hexdigest() != shard.sha256:
            raise ShardError(f"shard {shard.url} has sha256 {digest.hexdigest()}, the record says {shard.sha256}")
