"""Reads of an atmosphere entry's shards: the ``http(s)://`` opener, and :func:`verify_shards`.

Importing ``atdata.atmosphere`` registers :func:`read_http` for ``http`` and ``https``, so
``atdata.Dataset[T](entry.data_urls[0])`` reads blob and storageHttp shards with the same
reader as any other shard. Checking is core's: every URL ``AtmosphereIndex`` hands out
is an :class:`atdata.ShardURL` carrying the shard's recorded sha256 (and size, for a
blob), and core's reader hashes the whole shard before it yields a sample of it
(:mod:`atdata._read.verify`; s3:// shards alike). Such URLs this opener streams as the
bytes arrive; a plain-string getBlob URL, which carries no fact, it downloads whole (a
blob is 50 MiB at most; larger bodies spill to a temporary file) and checks against its
CID (a raw-codec sha2-256 CID *is* the hash of the bytes) before returning it.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from collections.abc import Iterable
from typing import Any, BinaryIO, cast
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
    """The bytes of ``url``: streamed as they arrive, or (a plain getBlob URL) checked first.

    A URL carrying a recorded sha256 (every URL ``AtmosphereIndex`` hands out) is streamed:
    core's reader checks it whole before walking it, so a copy here would only cost time
    and memory. A plain getBlob URL is downloaded into a spool (memory up to 64 MiB, then
    a temporary file) and checked against its CID before it is returned.

    Raises
    ------
    ObjectNotFound
        The server answers 404 (or a PDS says the blob is not there).
    StoreUnavailable
        The server cannot be reached or fails (5xx), also mid-transfer.
    ShardDigestMismatch
        A plain getBlob URL whose bytes do not hash to its CID.
    """
    expected = _blob_digest(url)
    body = _HttpBody.open(url)
    if expected is None:
        return cast(BinaryIO, body)
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL)  # noqa: SIM115 - returned to the caller
    digest = hashlib.sha256()
    try:
        with body:
            while chunk := body.read(_CHUNK):
                digest.update(chunk)
                spool.write(chunk)
    except BaseException:
        spool.close()
        raise
    if digest.hexdigest() != expected:
        spool.close()
        raise ShardDigestMismatch(
            f"shard {url!r} has sha256 {digest.hexdigest()}, but its blob CID says {expected}: the PDS served "
            "other bytes; no sample of it was read"
        )
    spool.seek(0)
    return cast(BinaryIO, spool)


class _HttpBody(io.RawIOBase):
    """A response body streamed into the reader's buffers; closing ends the request."""

    def __init__(self, url: str, client: httpx.Client, response: httpx.Response) -> None:
        super().__init__()
        self._url, self._client, self._response = url, client, response
        self._chunks = response.iter_bytes(_CHUNK)
        self._pending = memoryview(b"")

    @classmethod
    def open(cls, url: str) -> _HttpBody:
        """GET ``url``; the errors of :func:`read_http` for a refused or failed request."""
        client = httpx.Client(timeout=60.0, follow_redirects=True)
        try:
            response = client.send(client.build_request("GET", url), stream=True)
            if response.status_code in (400, 404):
                raise ObjectNotFound(f"no shard at {url} (HTTP {response.status_code}: {response.read()[:200]!r})")
            if response.status_code >= 300:
                raise StoreUnavailable(f"reading {url} failed: HTTP {response.status_code}")
        except httpx.HTTPError as exc:
            client.close()
            raise StoreUnavailable(f"cannot read {url}: {type(exc).__name__}: {exc}") from exc
        except BaseException:
            client.close()
            raise
        return cls(url, client, response)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            try:
                self._pending = memoryview(next(self._chunks))
            except StopIteration:
                return 0
            except httpx.HTTPError as exc:
                raise StoreUnavailable(f"reading {self._url} failed mid-transfer: {type(exc).__name__}: {exc}") from exc
        with memoryview(buffer) as view, view.cast("B") as out:
            n = min(len(out), len(self._pending))
            out[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            self._response.close()
            self._client.close()
        super().close()


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
