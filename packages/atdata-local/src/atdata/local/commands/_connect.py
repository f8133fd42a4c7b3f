"""How the data commands (``ls``, ``show``, ``insert``, ``gc``, ``schemas``) find Redis and S3.

With nothing configured they use the embedded servers of ``atdata local up``: on the
ports (and with the keys) it recorded (:mod:`atdata.server_record`), else Redis on
localhost:6379 and S3 on http://localhost:9000 with the spec's minioadmin keys. Each
default can be replaced by an option or an environment variable (option first):

- ``--redis-url`` / ``$ATDATA_REDIS_URL``: default the recorded Redis, else ``redis://localhost:6379/0``;
- ``--key-prefix`` / ``$ATDATA_KEY_PREFIX``: default ``atdata:`` (LocalIndex's);
- ``--hive-path`` / ``$ATDATA_HIVE_PATH``: default ``atdata/datasets`` (bucket/prefix);
- ``--s3-credentials`` / ``$ATDATA_S3_CREDENTIALS``: default the AWS environment when
  ``AWS_ACCESS_KEY_ID`` is set, else the embedded server's endpoint and keys.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import atdata.store_s3
from atdata.index_redis import LocalIndex

from .. import servers
from .._hive import embedded_s3_credentials, is_local_path
from ..repo import Repo

__all__ = [
    "DEFAULT_HIVE_PATH",
    "add_index_options",
    "add_store_options",
    "configure_reads",
    "make_index",
    "make_repo",
    "s3_credentials",
]

DEFAULT_HIVE_PATH = "atdata/datasets"


def add_index_options(parser: argparse.ArgumentParser) -> None:
    """``--redis-url`` and ``--key-prefix``."""
    group = parser.add_argument_group("index (Redis)")
    group.add_argument(
        "--redis-url",
        default=os.environ.get("ATDATA_REDIS_URL"),
        help="Redis URL (default: $ATDATA_REDIS_URL, else the server `atdata local up` recorded, else localhost:6379)",
    )
    group.add_argument(
        "--key-prefix",
        default=os.environ.get("ATDATA_KEY_PREFIX", "atdata:"),
        help="key prefix of the index in Redis (default: $ATDATA_KEY_PREFIX or %(default)s)",
    )


def add_store_options(parser: argparse.ArgumentParser) -> None:
    """``--hive-path`` and ``--s3-credentials``."""
    group = parser.add_argument_group("data store (S3 or a directory)")
    group.add_argument(
        "--hive-path",
        default=os.environ.get("ATDATA_HIVE_PATH", DEFAULT_HIVE_PATH),
        help="where shards go: 'bucket/prefix' for S3, or a directory ('./hive', '/data/hive', "
        "'file:///data/hive') (default: $ATDATA_HIVE_PATH or %(default)s)",
    )
    group.add_argument(
        "--s3-credentials",
        metavar="PATH",
        default=os.environ.get("ATDATA_S3_CREDENTIALS"),
        help=".env file with AWS_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (default: "
        "$ATDATA_S3_CREDENTIALS; else the AWS environment if AWS_ACCESS_KEY_ID is set; else the "
        "local server of `atdata local up`, on the port it recorded)",
    )


def s3_credentials(args: argparse.Namespace) -> str | dict[str, str] | None:
    """The credentials the options name: a file, the AWS environment (None), or the embedded
    server's: the one ``atdata local up`` recorded (its port and keys), else localhost:9000."""
    if getattr(args, "s3_credentials", None):
        return str(args.s3_credentials)
    if os.environ.get("AWS_ACCESS_KEY_ID"):
        return None
    credentials = embedded_s3_credentials() or {  # `atdata local up`'s record: its port and keys
        "AWS_ENDPOINT": f"http://localhost:{servers.DEFAULT_S3_PORT}",
        "AWS_ACCESS_KEY_ID": servers.DEFAULT_S3_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": servers.DEFAULT_S3_SECRET_KEY,
    }
    return {**credentials, "AWS_ENDPOINT": os.environ.get("AWS_ENDPOINT") or credentials["AWS_ENDPOINT"]}


def configure_reads(args: argparse.Namespace) -> Any:
    """Let ``s3://`` reads in this process use the command's credentials; returns them."""
    credentials = s3_credentials(args)
    atdata.store_s3.configure(credentials)
    return credentials


def make_index(args: argparse.Namespace) -> LocalIndex:
    """The index the options name."""
    if args.redis_url:
        return LocalIndex.from_url(args.redis_url, key_prefix=args.key_prefix)
    return LocalIndex(key_prefix=args.key_prefix)


def make_repo(args: argparse.Namespace) -> Repo:
    """The Repo the options name; ``s3://`` sources are read with the same credentials."""
    credentials = configure_reads(args)
    if is_local_path(args.hive_path):
        credentials = None  # a directory hive takes none
    return Repo(credentials, args.hive_path, args.redis_url, key_prefix=args.key_prefix)
