"""botocore errors -> ``atdata.errors``, each naming the URL (never a credential).

Modelled on httpx's ``map_exceptions``: every call into boto3 runs inside
:func:`translated`, so callers only ever see the specific ``StoreError`` subclass.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from atdata.errors import (
    AccessDenied,
    BucketNotFound,
    CredentialsError,
    CredentialsRefused,
    ObjectNotFound,
    StoreError,
    StoreUnavailable,
)

from ._credentials import S3Credentials

__all__ = ["error_code", "translate", "translated"]

_DENIED = {"AccessDenied", "ExpiredToken", "InvalidToken", "403"}
_REFUSED_KEYS = {"InvalidAccessKeyId", "SignatureDoesNotMatch"}  # the keys themselves are wrong
_NO_BUCKET_FIX = (
    "check the bucket name and the endpoint; to write, create it or construct "
    "S3DataStore(..., create_bucket=True) to create it on first write"
)
# A new process reading entry URLs written by another one meets this first: name every way out.
_KEYS_FIX = (
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment, or an AWS profile "
    "(~/.aws/credentials, AWS_PROFILE), or call atdata.store_s3.configure('path/to/.env') "
    "(or a dict with those keys) before reading, or pass credentials= to S3DataStore/Repo; "
    "for the server of `atdata local up`, its record in ~/.atdata (or $ATDATA_HOME) is read"
)


def error_code(exc: ClientError) -> str:
    """The S3 error code (``NoSuchKey``, ...), or the HTTP status for bodiless HEAD errors."""
    error = exc.response.get("Error", {})
    return str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))


def translate(
    exc: Exception, action: str, url: str, *, missing: str = "object", credentials: S3Credentials | None = None
) -> StoreError | CredentialsError:
    """The atdata error for ``exc`` raised while doing ``action`` on ``url``.

    ``missing`` says what a bare 404 means for this call: ``"object"`` or ``"bucket"``.
    ``credentials`` (those used) let the message name the endpoint and where keys came from.
    """
    at = _endpoint_of(credentials)
    where = f"{action} {url}" + (f" at {at}" if at else "")
    if isinstance(exc, ClientError):
        code = error_code(exc)
        message = exc.response.get("Error", {}).get("Message") or ""
        detail = f"{code}: {message}" if message else code
        if code == "NoSuchBucket" or (code in ("404", "NotFound") and missing == "bucket"):
            return BucketNotFound(f"{where}: the bucket does not exist ({detail}); {_NO_BUCKET_FIX}")
        if code in ("NoSuchKey", "404", "NotFound"):
            return ObjectNotFound(f"{where}: no such object ({detail})")
        if code in _REFUSED_KEYS:
            source = f" (the keys came from {_source_of(credentials)})" if credentials is not None else ""
            return CredentialsRefused(f"{where}: the server refused the keys ({detail}){source}; {_KEYS_FIX}")
        if code in _DENIED:
            return AccessDenied(f"{where}: access denied ({detail}); check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
        return StoreError(f"{where} failed: {detail}")
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        aws = (
            ""
            if at
            else " (no endpoint is recorded or set, so this went to AWS S3: for another server set AWS_ENDPOINT)"
        )
        return CredentialsError(f"{where}: no S3 keys found{aws}; {_KEYS_FIX}")
    if isinstance(exc, (BotoConnectionError, HTTPClientError)):
        host = urlsplit(str(getattr(exc, "kwargs", {}).get("endpoint_url") or "")).hostname or ""
        if host.endswith(".amazonaws.com"):
            # Usually keys set for a local server with AWS_ENDPOINT forgotten, so the read went to AWS.
            return StoreUnavailable(
                f"{where}: AWS S3 cannot be reached ({exc}); no AWS_ENDPOINT is set, so atdata used AWS. "
                "For another server set AWS_ENDPOINT (for `atdata local up`: AWS_ENDPOINT=http://localhost:9000) "
                "or call atdata.store_s3.configure(...) with it"
            )
        return StoreUnavailable(
            f"{where}: the S3 endpoint cannot be reached ({exc}); is the server running? (for the local "
            "servers: `atdata local up`). If it moved, give its endpoint with atdata.store_s3.configure(...)"
        )
    return StoreError(f"{where} failed: {type(exc).__name__}: {exc}")


@contextmanager
def translated(
    action: str, url: str, *, missing: str = "object", credentials: S3Credentials | None = None
) -> Iterator[None]:
    """Re-raise botocore errors from the block as atdata errors (``raise ... from``)."""
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise translate(exc, action, url, missing=missing, credentials=credentials) from exc


def _source_of(credentials: S3Credentials) -> str:
    return "the credentials dict" if credentials.source == "dict" else credentials.source


def _endpoint_of(credentials: S3Credentials | None) -> str | None:
    """The endpoint named in messages: a custom server's URL; None for AWS or unknown."""
    return credentials.endpoint_url if credentials is not None else None
