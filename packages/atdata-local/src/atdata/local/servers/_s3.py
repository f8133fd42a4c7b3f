"""Starting ``rclone serve s3`` over a directory, with SigV4 credentials."""

from __future__ import annotations

import os
from pathlib import Path

from atdata.errors import InvalidArgument

from .._process import LOCALHOST, http_ready, spawn
from ._binaries import rclone_path
from ._handles import S3Server

__all__ = ["DEFAULT_S3_ACCESS_KEY", "DEFAULT_S3_PORT", "DEFAULT_S3_SECRET_KEY", "start_s3"]

DEFAULT_S3_PORT = 9000
#: The spec's credentials for the local S3 server (MinIO's well-known defaults).
DEFAULT_S3_ACCESS_KEY = "minioadmin"
DEFAULT_S3_SECRET_KEY = "minioadmin"


def start_s3(
    data_dir: str | os.PathLike[str],
    *,
    port: int | None = None,
    access_key: str = DEFAULT_S3_ACCESS_KEY,
    secret_key: str = DEFAULT_S3_SECRET_KEY,
    log_path: str | os.PathLike[str] | None = None,
    detached: bool = False,
    timeout: float = 15.0,
) -> S3Server:
    """Start ``rclone serve s3`` over ``data_dir`` on 127.0.0.1 and wait until it answers.

    Objects are plain files under ``data_dir/<bucket>/<key>``, so they persist across
    restarts; persistence needs no option here.

    Parameters
    ----------
    data_dir
        The directory served; each subdirectory is a bucket.
    port
        Port to listen on; None picks a free one.
    access_key, secret_key
        Credentials the server enforces (SigV4). rclone refuses access keys shorter than
        3 characters (measured: 1 and 2 fail with InvalidAccessKeyId) and a pair holding a comma.
    log_path
        Where rclone logs; default ``<data_dir>-rclone.log`` beside the served tree
        (never inside it, where it would look like a bucket).
    detached
        Keep running after this Python process exits (``atdata local up``).
    timeout
        Seconds to wait for readiness.

    Raises
    ------
    InvalidArgument
        The credentials are ones rclone refuses.
    LocalServerError
        The server did not start; the message has the tail of its log.
    """
    if len(access_key) < 3 or "," in access_key or "," in secret_key or not secret_key:
        raise InvalidArgument(
            f"access_key={access_key!r} cannot be served by rclone: use an access key of "
            "3+ characters and a non-empty secret key, neither containing a comma"
        )
    binary = rclone_path()
    root = Path(data_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    logfile = Path(log_path) if log_path else root.parent / f"{root.name}-rclone.log"

    def argv(chosen: int) -> list[str]:
        # --config "": never read the user's rclone.conf. Keys go through the
        # environment (CSV-quoted: one pair), so the secret stays out of `ps`.
        return [str(binary), "serve", "s3", "--config", "", "--addr", f"{LOCALHOST}:{chosen}", str(root)]

    process = spawn(
        "rclone serve s3",
        argv,
        port=port,
        log_path=logfile,
        ready=http_ready,
        timeout=timeout,
        detached=detached,
        env={"RCLONE_AUTH_KEY": f'"{access_key},{secret_key}"'},
    )
    return S3Server(LOCALHOST, process.port, access_key, secret_key, root, process)
