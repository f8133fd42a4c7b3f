"""Which endpoint and keys reach a bucket: the one resolution every store and reader runs.

It runs wherever a shard is opened (the process that wrote it, a fresh process, a
spawned DataLoader worker, another rank), so nothing secret has to travel with a
dataset or a store: a shard URL carries only where its bucket lives
(``ShardURL.location``: endpoint and region), and each process finds keys itself.

Explicit credentials (a ``.env`` file or dict given to ``S3DataStore`` or
``configure``) are used as they are; the recorded location only fills in an endpoint
they leave out. Otherwise, in order:

- endpoint: ``AWS_ENDPOINT`` / ``AWS_ENDPOINT_URL``, the profile's ``endpoint_url``
  (or its ``services`` section's ``s3 = endpoint_url = ...``), the recorded location,
  else AWS S3;
- region: ``AWS_REGION`` / ``AWS_DEFAULT_REGION``, the profile's ``region``, the
  recorded location's;
- keys: ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (/ ``AWS_SESSION_TOKEN``);
  the AWS shared files (``~/.aws/credentials`` and ``~/.aws/config``, or
  ``AWS_SHARED_CREDENTIALS_FILE`` / ``AWS_CONFIG_FILE``; profile ``AWS_PROFILE``, else
  ``default``); for the embedded server, the record ``atdata local up`` keeps
  (:mod:`atdata.server_record`); else boto3's remaining sources (SSO, instance roles).

One exception to that order: a profile's keys are not sent to the embedded server unless
the profile names that server as its ``endpoint_url`` (keys in ``[default]`` are
usually AWS keys, and the embedded server's own keys are known exactly).
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import botocore.exceptions
import botocore.session

from atdata import server_record
from atdata.errors import CredentialsError
from atdata.shard_url import StorageLocation

from ._credentials import S3Credentials, aliased, checked_endpoint

__all__ = ["fill_endpoint", "resolve", "same_endpoint"]

_lock = threading.Lock()
_chains: dict[tuple[Any, ...], _Chain] = {}
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


@dataclasses.dataclass(frozen=True)
class _Keys:
    access_key_id: str
    secret_access_key: str = dataclasses.field(repr=False)
    session_token: str | None = dataclasses.field(repr=False)
    source: str


@dataclasses.dataclass(frozen=True)
class _Chain:
    """What the environment, the AWS shared files and the embedded record say, read once."""

    endpoint: str | None
    region: str | None
    environment_keys: _Keys | None
    profile_keys: _Keys | None
    profile_endpoint: str | None
    embedded: server_record.RecordedS3 | None

    def keys_for(self, endpoint: str | None) -> _Keys | None:
        if self.environment_keys is not None:
            return self.environment_keys
        embedded_here = self.embedded is not None and same_endpoint(self.embedded.endpoint_url, endpoint)
        if self.profile_keys is not None and (not embedded_here or same_endpoint(self.profile_endpoint, endpoint)):
            return self.profile_keys
        if embedded_here and self.embedded is not None and self.embedded.access_key and self.embedded.secret_key:
            source = f"the record of `atdata local up` ({self.embedded.record})"
            return _Keys(self.embedded.access_key, self.embedded.secret_key, None, source)
        return None


def resolve(location: StorageLocation | None, explicit: S3Credentials | None = None) -> S3Credentials:
    """The settings that reach a bucket recorded at ``location`` (None: not recorded).

    Raises
    ------
    CredentialsError
        ``AWS_PROFILE`` names no profile, an AWS shared file cannot be parsed, or an
        endpoint in the environment or a profile is not an http(s) URL (each named).
    """
    if explicit is not None and explicit.access_key_id:
        return fill_endpoint(explicit, location)
    chain = _chain()
    endpoint = chain.endpoint or (location.endpoint_url if location is not None else None)
    region = chain.region
    if region is None and location is not None and same_endpoint(location.endpoint_url, endpoint):
        region = location.region
    keys = chain.keys_for(endpoint)
    if keys is None:  # boto3 looks further (SSO, container and instance roles) or raises
        return S3Credentials(endpoint_url=endpoint, region=region, source="boto3's default chain")
    return S3Credentials(
        access_key_id=keys.access_key_id,
        secret_access_key=keys.secret_access_key,
        session_token=keys.session_token,
        endpoint_url=endpoint,
        region=region,
        source=keys.source,
    )


def fill_endpoint(credentials: S3Credentials, location: StorageLocation | None) -> S3Credentials:
    """``credentials`` with the recorded endpoint (and region) when they name none themselves."""
    if credentials.endpoint_url is not None or location is None or location.endpoint_url is None:
        return credentials
    return dataclasses.replace(
        credentials, endpoint_url=location.endpoint_url, region=credentials.region or location.region
    )


def same_endpoint(a: str | None, b: str | None) -> bool:
    """Whether two endpoint URLs name one server (``localhost`` and ``127.0.0.1`` alike)."""
    if a is None or b is None:
        return a is b
    pa, pb = urlsplit(a), urlsplit(b)
    default = {"http": 80, "https": 443}
    host_a, host_b = (p.hostname or "" for p in (pa, pb))
    if host_a in _LOOPBACK and host_b in _LOOPBACK:
        host_a = host_b
    return (pa.scheme, host_a, pa.port or default.get(pa.scheme)) == (
        pb.scheme,
        host_b,
        pb.port or default.get(pb.scheme),
    )


def _chain() -> _Chain:
    """The chain for the current environment and files (cached until either changes)."""
    key = _cache_key()
    with _lock:
        found = _chains.get(key)
    if found is None:
        found = _read_chain(os.environ)
        with _lock:
            if len(_chains) > 64:
                _chains.clear()
            _chains[key] = found
    return found


def _cache_key() -> tuple[Any, ...]:
    environment = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(("AWS_", "ATDATA_"))))
    files = (
        _config_file("AWS_CONFIG_FILE", "config"),
        _config_file("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
        server_record.data_dir() / server_record.RECORD_FILE,
    )
    return (environment, os.environ.get("HOME"), *(_mtime(path) for path in files))


def _config_file(variable: str, name: str) -> Path:
    return Path(os.environ.get(variable) or Path.home() / ".aws" / name).expanduser()


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def _read_chain(environ: Mapping[str, str]) -> _Chain:
    session = botocore.session.Session()
    profile, name = _profile(session)
    profile_endpoint = _profile_endpoint(session, profile, name)
    environment_endpoint = checked_endpoint(
        aliased(environ, "AWS_ENDPOINT", "AWS_ENDPOINT_URL", "the environment"), "the environment"
    )
    region = aliased(environ, "AWS_REGION", "AWS_DEFAULT_REGION", "the environment") or profile.get("region")
    return _Chain(
        endpoint=environment_endpoint or profile_endpoint,
        region=region or None,
        environment_keys=_keys(
            environ, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "environment"
        ),
        profile_keys=_keys(
            profile, "aws_access_key_id", "aws_secret_access_key", "aws_session_token", f"AWS profile {name!r}"
        ),
        profile_endpoint=profile_endpoint,
        embedded=server_record.recorded_s3(),
    )


def _profile(session: Any) -> tuple[dict[str, Any], str]:
    """The AWS profile boto3 would use (``AWS_PROFILE``, else ``default``) and its name."""
    name = session.profile or "default"
    files = (
        f"{_config_file('AWS_CONFIG_FILE', 'config')} / {_config_file('AWS_SHARED_CREDENTIALS_FILE', 'credentials')}"
    )
    try:
        return dict(session.get_scoped_config()), name
    except botocore.exceptions.ProfileNotFound:
        raise CredentialsError(
            f"AWS_PROFILE={name!r} names no profile in {files}: add a [{name}] section, or unset AWS_PROFILE"
        ) from None
    except botocore.exceptions.ConfigParseError as exc:
        raise CredentialsError(f"cannot parse the AWS shared files ({files}): {exc}") from None


def _profile_endpoint(session: Any, profile: Mapping[str, Any], name: str) -> str | None:
    """The profile's ``endpoint_url``, or its ``services`` section's for s3 (boto3's conventions)."""
    endpoint = profile.get("endpoint_url")
    services = profile.get("services")
    if not endpoint and isinstance(services, str):
        section = session.full_config.get("services", {}).get(services, {})
        endpoint = section.get("s3", {}).get("endpoint_url") if isinstance(section.get("s3"), dict) else None
    return checked_endpoint(endpoint, f"AWS profile {name!r}") if endpoint else None


def _keys(values: Mapping[str, Any], key_id: str, secret: str, token: str, source: str) -> _Keys | None:
    if values.get(key_id) and values.get(secret):
        return _Keys(str(values[key_id]), str(values[secret]), values.get(token) or None, source)
    return None
