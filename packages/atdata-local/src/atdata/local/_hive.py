"""Where a Repo keeps its data: ``hive_path`` parsed into a data store and a key prefix.

``hive_path`` names an S3 bucket and prefix (``"bucket/prefix"`` or
``"s3://bucket/prefix"``) or a local directory. A local directory must look like one:
``file:///data/hive``, an absolute path (``/data/hive``), or a path starting with
``./``, ``../`` or ``~``. Anything else is read as ``bucket/prefix``, so the spec's
``hive_path="my-bucket/datasets"`` means S3 whatever directories happen to exist in the
working directory: the meaning of a string never depends on the machine it runs on.

An S3 hive with no ``s3_credentials`` and no S3 setting in the environment
(``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT``/``AWS_ENDPOINT_URL``, ``AWS_PROFILE``) uses the
server ``atdata local up`` recorded, on its port and with its keys, as ``LocalIndex()``
uses the recorded Redis; with none recorded, boto3's chain decides.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from atdata import server_record
from atdata.disk_store import DiskDataStore
from atdata.errors import InvalidArgument
from atdata.names import check_hive_path_chars
from atdata.openers import local_path
from atdata.protocols import AbstractDataStore
from atdata.store_s3 import S3DataStore

__all__ = ["Hive", "embedded_s3_credentials", "parse_hive_path"]

_LOCAL_STARTS = ("/", "./", "../", "~")


@dataclass(frozen=True)
class Hive:
    """A data store and the key prefix (no leading or trailing ``/``) under which a Repo writes."""

    store: AbstractDataStore
    prefix: str

    def key(self, name: str) -> str:
        """The store key of ``name`` under the prefix."""
        return f"{self.prefix}/{name}" if self.prefix else name

    @property
    def root_key(self) -> str:
        """The listing prefix of everything under the hive (``"prefix/"``, or ``""``)."""
        return f"{self.prefix}/" if self.prefix else ""


def is_local_path(hive_path: str) -> bool:
    """True when ``hive_path`` names a local directory rather than ``bucket/prefix``."""
    return hive_path.startswith("file://") or hive_path in (".", "..") or hive_path.startswith(_LOCAL_STARTS)


def parse_hive_path(
    hive_path: str | os.PathLike[str],
    s3_credentials: str | os.PathLike[str] | Mapping[str, str] | None,
) -> Hive:
    """The store and prefix that ``hive_path`` names (see the module docstring for the rules).

    Raises
    ------
    InvalidArgument
        An empty or non-string ``hive_path``, an unknown URL scheme, a missing bucket,
        characters that would change the meaning of its shard URLs (braces, ``?``, ``#``,
        glob patterns, control characters), or ``s3_credentials`` given together with a
        local directory.
    CredentialsError
        Bad ``s3_credentials`` (from ``S3DataStore``).
    """
    if isinstance(hive_path, os.PathLike):
        hive_path = os.fspath(hive_path)
        if not hive_path.startswith(_LOCAL_STARTS):
            hive_path = "./" + hive_path  # a Path object always means a directory
    if not isinstance(hive_path, str) or not hive_path.strip():
        raise InvalidArgument(
            f"hive_path={hive_path!r} is invalid: pass 'bucket/prefix' for S3, or a directory "
            "such as './hive', '/data/hive' or 'file:///data/hive'"
        )
    check_hive_path_chars(hive_path)
    if is_local_path(hive_path):
        if s3_credentials is not None:
            raise InvalidArgument(
                f"hive_path={hive_path!r} is a local directory but s3_credentials were given: drop "
                "s3_credentials, or pass 'bucket/prefix' to store in S3"
            )
        return Hive(DiskDataStore(local_path(hive_path) or hive_path), "")
    rest = hive_path.removeprefix("s3://")
    if "://" in rest:
        raise InvalidArgument(
            f"hive_path={hive_path!r} has an unsupported scheme: use 'bucket/prefix', 's3://bucket/prefix' "
            "or a local directory ('file:///data/hive', '/data/hive', './hive')"
        )
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise InvalidArgument(f"hive_path={hive_path!r} names no bucket: pass 'bucket/prefix'")
    if s3_credentials is None and not any(os.environ.get(name) for name in _AWS_SETTINGS):
        s3_credentials = embedded_s3_credentials()  # nothing configured: the server `atdata local up` recorded
    return Hive(S3DataStore(s3_credentials, bucket), prefix.strip("/"))


#: Environment variables that configure S3 access: with any of them set, ``Repo`` leaves
#: the choice to boto3's chain instead of the embedded server's record.
_AWS_SETTINGS = ("AWS_ACCESS_KEY_ID", "AWS_ENDPOINT", "AWS_ENDPOINT_URL", "AWS_PROFILE")


def embedded_s3_credentials() -> dict[str, str] | None:
    """The S3 server ``atdata local up`` recorded (endpoint and keys) as ``s3_credentials``;
    None when none is recorded, or its keys are not (a server it did not start)."""
    recorded = server_record.recorded_s3()
    if recorded is None or not (recorded.access_key and recorded.secret_key):
        return None
    return {
        "AWS_ENDPOINT": recorded.endpoint_url,
        "AWS_ACCESS_KEY_ID": recorded.access_key,
        "AWS_SECRET_ACCESS_KEY": recorded.secret_key,
    }
