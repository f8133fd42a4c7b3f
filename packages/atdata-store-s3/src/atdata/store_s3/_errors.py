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
    ObjectNotFound,
    StoreError,
    StoreUnavailable,
)

__all__ = ["error_code", "translate", "translated"]

_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "403"}
_NO_BUCKET_FIX = "create it, or construct S3DataStore(..., create_bucket=True) to create it on first write"
# A new process reading entry URLs written by another one meets this first: name every way out.
_NO_CREDENTIALS_FIX = (
    "set AWS_ENDPOINT, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment "
    "(for the local server, the values `atdata local up` prints), or call "
    "atdata.store_s3.configure('path/to/.env') (or a dict with those keys) before reading, "
    "or pass credentials= to S3DataStore/Repo"
)


def error_code(exc: ClientError) -> str:
    """The S3 error code (``NoSuchKey``, ...), or the HTTP status for bodiless HEAD errors."""
    error = exc.response.get("Error", {})
    return str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))


def translate(exc: Exception, action: str, url: str, *, missing: str = "object") -> StoreError | CredentialsError:
    """The atdata error for ``exc`` raised while doing ``action`` on ``url``.

    ``missing`` says what a bare 404 means for this call: ``"object"`` or ``"bucket"``.
    """
    where = f"{action} {url}"
    if isinstance(exc, ClientError):
        code = error_code(exc)
        message = exc.response.get("Error", {}).get("Message") or ""
        detail = f"{code}: {message}" if message else code
        if code == "NoSuchBucket" or (code in ("404", "NotFound") and missing == "bucket"):
            return BucketNotFound(f"{where}: the bucket does not exist ({detail}); {_NO_BUCKET_FIX}")
        if code in ("NoSuchKey", "404", "NotFound"):
            return ObjectNotFound(f"{where}: no such object ({detail})")
        if code in _DENIED:
            return AccessDenied(f"{where}: access denied ({detail}); check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY")
        return StoreError(f"{where} failed: {detail}")
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return CredentialsError(f"{where}: no S3 credentials found; {_NO_CREDENTIALS_FIX}")
    if isinstance(exc, (BotoConnectionError, HTTPClientError)):
        host = urlsplit(str(getattr(exc, "kwargs", {}).get("endpoint_url") or "")).hostname or ""
        if host.endswith(".amazonaws.com"):
            # Usually keys set for a local server with AWS_ENDPOINT forgotten, so the read went to AWS.
            return StoreUnavailable(
                f"{where}: AWS S3 cannot be reached ({exc}); no AWS_ENDPOINT is set, so atdata used AWS. "
                "For another server set AWS_ENDPOINT (for `atdata local up`: AWS_ENDPOINT=http://localhost:9000) "
                "or call atdata.store_s3.configure(...) with it"
            )
        return StoreUnavailable(f"{where}: the S3 endpoint cannot be reached ({exc}); is the server running?")
    return StoreError(f"{where} failed: {type(exc).__name__}: {exc}")


@contextmanager
def translated(action: str, url: str, *, missing: str = "object") -> Iterator[None]:
    """Re-raise botocore errors from the block as atdata errors (``raise ... from``)."""
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise translate(exc, action, url, missing=missing) from exc
