"""S3 credentials from a ``.env`` file, a dict, or the standard AWS chain.

The keys are those of the spec's credentials file::

    AWS_ENDPOINT=http://localhost:9000     # optional: omitted means AWS S3
    AWS_ACCESS_KEY_ID=...
    AWS_SECRET_ACCESS_KEY=...
    AWS_REGION=...                         # optional
    AWS_SESSION_TOKEN=...                  # optional

Errors name the file and the key, never a value: a malformed line is reported by its
line number only, because the line may hold a secret.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from atdata.errors import CredentialsError

__all__ = ["S3Credentials", "load_credentials"]

REQUIRED = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
OPTIONAL = ("AWS_ENDPOINT", "AWS_REGION", "AWS_SESSION_TOKEN")
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

    With None, access keys, region and profile come from boto3's standard chain
    (environment, ``~/.aws``); ``AWS_ENDPOINT`` (the spec's name) or boto3's own
    ``AWS_ENDPOINT_URL`` in the environment select a non-AWS endpoint.

    Raises
    ------
    CredentialsError
        Missing or unreadable file, malformed line, missing or empty required key.
    """
    if credentials is None:
        return S3Credentials(endpoint_url=_endpoint(os.environ.get("AWS_ENDPOINT"), "the environment"))
    if isinstance(credentials, Mapping):
        return _from_mapping(credentials, "credentials dict")
    if isinstance(credentials, (str, os.PathLike)):
        path = Path(credentials).expanduser().resolve()
        return _from_mapping(_read_env_file(path), f"credentials file {str(path)!r}", source=f"file {path}")
    raise CredentialsError(
        f"credentials of type {type(credentials).__name__} are not supported: pass a path to a .env "
        "file, a dict with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or None for the AWS environment"
    )


def _read_env_file(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CredentialsError(
            f"credentials file {str(path)!r} does not exist: create it with AWS_ENDPOINT, "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY lines, or pass a dict"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialsError(f"cannot read credentials file {str(path)!r}: {type(exc).__name__}") from None
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not name.strip():
            # Never quote the line: it may be a secret missing its "KEY=".
            raise CredentialsError(f"credentials file {str(path)!r}, line {number}: expected KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[name.strip()] = value
    return values


def _from_mapping(values: Mapping[str, Any], where: str, source: str = "dict") -> S3Credentials:
    for key in REQUIRED:
        if key not in values:
            present = ", ".join(sorted(k for k in values if isinstance(k, str))) or "none"
            raise CredentialsError(f"{where} has no {key} (keys present: {present})")
    for key in (*REQUIRED, *OPTIONAL):
        value = values.get(key)
        if value is not None and not isinstance(value, str):
            raise CredentialsError(f"{where}: {key} must be a string, not {type(value).__name__}")
        if key in REQUIRED and not value:
            raise CredentialsError(f"{where}: {key} is empty")
    return S3Credentials(
        access_key_id=values["AWS_ACCESS_KEY_ID"],
        secret_access_key=values["AWS_SECRET_ACCESS_KEY"],
        endpoint_url=_endpoint(values.get("AWS_ENDPOINT"), where),
        region=values.get("AWS_REGION") or None,
        session_token=values.get("AWS_SESSION_TOKEN") or None,
        source=source,
    )


def _endpoint(value: str | None, where: str) -> str | None:
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
