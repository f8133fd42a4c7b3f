"""S3 credentials from a ``.env`` file, a dict, or the standard AWS chain.

The keys are those of the spec's credentials file::

    AWS_ENDPOINT=http://localhost:9000     # optional: omitted means AWS S3
    AWS_ACCESS_KEY_ID=...
    AWS_SECRET_ACCESS_KEY=...
    AWS_REGION=...                         # optional
    AWS_SESSION_TOKEN=...                  # optional

boto3's ``AWS_ENDPOINT_URL`` and the AWS CLI's ``AWS_DEFAULT_REGION`` are accepted as
aliases; any other key warns (it is usually a typo). Errors name the file and the key, never a value: a malformed line is reported by its
line number only, because the line may hold a secret.
"""

from __future__ import annotations

import difflib
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from atdata.errors import CredentialsError

from ._envfile import read_env_file

__all__ = ["S3Credentials", "load_credentials"]

REQUIRED = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
OPTIONAL = ("AWS_ENDPOINT", "AWS_REGION", "AWS_SESSION_TOKEN")
#: Other spellings accepted for the same setting (boto3's and the AWS CLI's names).
ALIASES = {"AWS_ENDPOINT_URL": "AWS_ENDPOINT", "AWS_DEFAULT_REGION": "AWS_REGION"}
KNOWN = frozenset((*REQUIRED, *OPTIONAL, *ALIASES))
# Used when an endpoint is given without a region: SigV4 needs some region, and every
# S3-compatible server (rclone, MinIO, moto) accepts this one.
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class S3Credentials:
    """Resolved connection settings. ``None`` fields are left to boto3's own chain.

    ``source`` says where they came from (``"file /path/.env"``, ``"dict"``,
    ``"environment"``) for error messages; secrets are excluded from the repr.
    """

    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    endpoint_url: str | None = None
    region: str | None = None
    session_token: str | None = field(default=None, repr=False)
    source: str = "environment"

    def __reduce__(self) -> Any:
        # Secrets never travel: stores and shard URLs pickle where a bucket is, and each
        # process resolves keys itself (atdata.store_s3._resolve).
        raise CredentialsError(
            "S3Credentials are not picklable (they hold secrets): pickle the S3DataStore or the dataset, "
            "whose processes find keys themselves (environment, AWS profile, credentials file path)"
        )

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``boto3.session.Session(...).client("s3", ...)``."""
        region = self.region or (DEFAULT_REGION if self.endpoint_url else None)
        return {
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
            "aws_session_token": self.session_token,
            "region_name": region,
            "endpoint_url": self.endpoint_url,
        }


def load_credentials(credentials: str | os.PathLike[str] | Mapping[str, str] | None) -> S3Credentials:
    """Resolve ``credentials`` (path to a .env file, dict, or None for the AWS chain).

    With None, endpoint, region and keys come from the chain ``_resolve`` describes:
    the environment (``AWS_ENDPOINT`` or boto3's ``AWS_ENDPOINT_URL`` select a non-AWS
    endpoint), the AWS shared files (profiles, ``endpoint_url``), then boto3's own
    sources.

    Raises
    ------
    CredentialsError
        Missing or unreadable file, malformed line, missing or empty required key.
    """
    if credentials is None:
        from ._resolve import resolve  # the chain is built on this module: imported late

        return resolve(None)
    if isinstance(credentials, Mapping):
        return _from_mapping(credentials, "credentials dict")
    if isinstance(credentials, (str, os.PathLike)):
        path = Path(credentials).expanduser().resolve()
        return _from_mapping(read_env_file(path), f"credentials file {str(path)!r}", source=f"file {path}")
    raise CredentialsError(
        f"credentials of type {type(credentials).__name__} are not supported: pass a path to a .env "
        "file, a dict with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or None for the AWS environment"
    )


def _from_mapping(values: Mapping[str, Any], where: str, source: str = "dict") -> S3Credentials:
    _warn_unknown(values, where)
    for key in REQUIRED:
        if key not in values:
            present = ", ".join(sorted(k for k in values if isinstance(k, str))) or "none"
            raise CredentialsError(f"{where} has no {key} (keys present: {present})")
    for key in (*REQUIRED, *OPTIONAL, *ALIASES):
        value = values.get(key)
        if value is not None and not isinstance(value, str):
            raise CredentialsError(f"{where}: {key} must be a string, not {type(value).__name__}")
        if key in REQUIRED and not value:
            raise CredentialsError(f"{where}: {key} is empty")
    return S3Credentials(
        access_key_id=values["AWS_ACCESS_KEY_ID"],
        secret_access_key=values["AWS_SECRET_ACCESS_KEY"],
        endpoint_url=checked_endpoint(aliased(values, "AWS_ENDPOINT", "AWS_ENDPOINT_URL", where), where),
        region=aliased(values, "AWS_REGION", "AWS_DEFAULT_REGION", where) or None,
        session_token=values.get("AWS_SESSION_TOKEN") or None,
        source=source,
    )


def aliased(values: Mapping[str, Any], key: str, alias: str, where: str) -> Any:
    """``values[key]``, else ``values[alias]``; both set to different values is an error."""
    value, other = values.get(key) or None, values.get(alias) or None
    if value is not None and other is not None and value != other:
        raise CredentialsError(
            f"{where}: {key}={value!r} and {alias}={other!r} disagree; they name the same setting, keep one"
        )
    return value if value is not None else other


def _warn_unknown(values: Mapping[str, Any], where: str) -> None:
    """Warn about keys atdata does not read: usually a typo (``AWS_SECRET_KEY``) that
    would otherwise surface later as a missing key or a request to the wrong endpoint."""
    unknown = sorted(k for k in values if isinstance(k, str) and k not in KNOWN)
    for key in unknown:
        close = difflib.get_close_matches(key, sorted(KNOWN), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        warnings.warn(
            f"{where}: ignoring unknown key {key} (atdata reads {', '.join(sorted(KNOWN))}){hint}",
            UserWarning,
            stacklevel=4,
        )


def checked_endpoint(value: str | None, where: str) -> str | None:
    """``value`` if it is an http(s) URL with a host, None if unset.

    botocore would only refuse it at the first request, as a bare ValueError
    (``localhost:9000`` without its scheme is the usual slip).
    """
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CredentialsError(
            f"{where}: AWS_ENDPOINT={value!r} is not an http(s) URL; "
            "use e.g. AWS_ENDPOINT=http://localhost:9000 (omit it for AWS S3)"
        )
    return value
