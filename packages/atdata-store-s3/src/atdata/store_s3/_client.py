"""boto3 clients: one per process per (credentials, config), created lazily.

A boto3 client cannot be pickled or shared across ``fork``; stores and the ``s3://``
opener keep only parameters and ask here for a client, which is rebuilt in each
process (as redis-py's ``ConnectionPool._checkpid`` does).
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

from atdata.errors import InvalidArgument

from ._credentials import S3Credentials

__all__ = ["client_for", "default_config", "make_config", "parse_s3_url"]

_lock = threading.Lock()
# Keyed by the Config object (its identity): a client lives as long as the store or
# reading setting that holds its Config, so stores made and dropped in a loop do not
# pile up clients and their connection pools.
_clients: weakref.WeakKeyDictionary[Config, dict[S3Credentials, Any]] = weakref.WeakKeyDictionary()
_pid = os.getpid()


def make_config(endpoint_url: str | None, max_pool_connections: int, user: Config | None) -> Config:
    """atdata's defaults (:func:`default_config`) with the caller's ``Config`` over them.

    ``retries`` merges key by key, so ``Config(retries={"max_attempts": 10})`` keeps the
    ``standard`` retry mode; every other option the caller sets replaces ours.
    """
    config = default_config(endpoint_url, max_pool_connections)
    if user is None:
        return config
    options = {**config._user_provided_options, **user._user_provided_options}
    if "retries" in user._user_provided_options:
        options["retries"] = {**config._user_provided_options["retries"], **user._user_provided_options["retries"]}
    return Config(**options)


def default_config(endpoint_url: str | None, max_pool_connections: int) -> Config:
    """What atdata sets unless the caller's ``config`` says otherwise.

    - retries: botocore's ``standard`` mode (exponential backoff with jitter on
      throttling, 5xx and connection errors), 5 retries (6 attempts in all);
    - checksums only when S3 requires them: S3-compatible servers (rclone, older
      MinIO) reject the newer flexible-checksum trailers, and atdata computes a
      sha256 of every shard itself;
    - path-style addressing for custom endpoints, which rarely have wildcard DNS.
    """
    options: dict[str, Any] = {
        "retries": {"mode": "standard", "max_attempts": 5},
        "max_pool_connections": max_pool_connections,
        "request_checksum_calculation": "when_required",
        "response_checksum_validation": "when_required",
    }
    if endpoint_url:
        options["s3"] = {"addressing_style": "path"}
    return Config(**options)


def client_for(credentials: S3Credentials, config: Config) -> Any:
    """The S3 client for these settings in this process (thread-safe, cached).

    Cached by the identity of ``config`` (botocore updates a Config's options while
    building a client, so its contents make no stable key), weakly: once nothing holds
    ``config``, its client goes too.
    """
    global _pid
    with _lock:
        if os.getpid() != _pid:  # forked: the parent's connections are not ours
            _clients.clear()
            _pid = os.getpid()
        by_credentials = _clients.setdefault(config, {})
        client = by_credentials.get(credentials)
        if client is None:
            session = boto3.session.Session()
            client = by_credentials[credentials] = session.client("s3", config=config, **credentials.client_kwargs())
        return client


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> ``(bucket, key)``; raises ``InvalidArgument`` otherwise."""
    parts = urlsplit(url)
    key = parts.path.lstrip("/")
    if parts.scheme != "s3" or not parts.netloc or not key:
        raise InvalidArgument(f"{url!r} is not an S3 object URL: expected s3://bucket/key")
    return parts.netloc, key
