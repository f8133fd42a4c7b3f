"""Reading ``s3://`` URLs: the opener core's ``Dataset`` uses, ``configure`` and ``read_url``.

Objects are streamed (``GetObject`` read in chunks as the reader consumes them), never
downloaded whole. Credentials for a bucket come from, in order: ``configure(...,
bucket=that_bucket)``, the ``S3DataStore`` of that bucket created in this process
(the one that wrote the shards), ``configure(...)`` without a bucket, then the
environment (boto3's chain, plus ``AWS_ENDPOINT``).
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Mapping
from typing import Any, BinaryIO

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from atdata.errors import InvalidArgument, StoreUnavailable

from ._client import client_for, make_config, parse_s3_url
from ._credentials import S3Credentials, load_credentials
from ._errors import translate, translated

__all__ = ["configure", "open_object", "read_url", "remember_store"]

_READ_BUFFER = 1 << 20
_POOL = 16

_lock = threading.Lock()
_configured: dict[str | None, tuple[S3Credentials, Config]] = {}
_stores: dict[str, tuple[S3Credentials, Config]] = {}
_environment: dict[S3Credentials, Config] = {}


def configure(
    credentials: str | os.PathLike[str] | Mapping[str, str] | None = None,
    *,
    bucket: str | None = None,
    config: Config | None = None,
) -> None:
    """Set the credentials that ``s3://`` reads use (for one bucket, or by default).

    Use this in a process that reads shards another process wrote, e.g.
    ``atdata.store_s3.configure("path/to/.env")`` before ``atdata.Dataset[T]("s3://...")``.
    ``credentials`` takes the same forms as ``S3DataStore``.
    """
    if bucket is not None and (not isinstance(bucket, str) or not bucket or "/" in bucket):
        raise InvalidArgument(f"bucket={bucket!r} is invalid: pass a bucket name or None for all buckets")
    resolved = load_credentials(credentials)
    with _lock:
        _configured[bucket] = (resolved, make_config(resolved.endpoint_url, _POOL, config))


def remember_store(bucket: str, credentials: S3Credentials, config: Config) -> None:
    """Called by ``S3DataStore``: reads of this bucket use the store's settings."""
    with _lock:
        _stores[bucket] = (credentials, config)


def _settings_for(bucket: str) -> tuple[S3Credentials, Config]:
    with _lock:
        found = _configured.get(bucket) or _stores.get(bucket) or _configured.get(None)
    if found is not None:
        return found
    environment = load_credentials(None)
    with _lock:  # one Config (so one cached client) per distinct environment
        config = _environment.setdefault(environment, make_config(environment.endpoint_url, _POOL, None))
    return environment, config


class _ObjectStream(io.RawIOBase):
    """A ``GetObject`` body as a raw stream; errors mid-read name the URL."""

    def __init__(self, body: Any, url: str) -> None:
        self._body = body
        self._url = url

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            # StreamingBody checks Content-Length at the end: a cut-off body raises.
            return int(self._body.readinto(buffer))
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, "reading", self._url) from exc
        except OSError as exc:  # resets below urllib3's own error types
            raise StoreUnavailable(f"reading {self._url}: the connection failed ({exc})") from exc

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


def open_object(url: str, client: Any) -> BinaryIO:
    """Stream the object at ``url`` with ``client``; raises ``ObjectNotFound``/``BucketNotFound``."""
    bucket, key = parse_s3_url(url)
    with translated("reading", url):
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
    return io.BufferedReader(_ObjectStream(body, url), buffer_size=_READ_BUFFER)  # type: ignore[return-value]


def read_url(url: str) -> BinaryIO:
    """A readable stream of ``s3://bucket/key`` with the credentials for that bucket.

    This is the opener ``atdata.store_s3`` registers with core for the ``s3`` scheme.
    """
    bucket, _ = parse_s3_url(url)
    credentials, config = _settings_for(bucket)
    return open_object(url, client_for(credentials, config))
