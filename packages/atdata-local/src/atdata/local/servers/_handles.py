"""Handles of running servers: where they listen, their credentials, the process to stop."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from .._process import ServerProcess

__all__ = ["RedisServer", "S3Server"]


class _Stoppable:
    """Context-manager and ``stop()`` shared by both server handles."""

    process: ServerProcess | None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server if this handle started it; an adopted server is left running."""
        if self.process is not None:
            self.process.stop(timeout)

    def __enter__(self) -> _Stoppable:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass
class RedisServer(_Stoppable):
    """A Redis-protocol server on 127.0.0.1 (``valkey-server`` unless adopted).

    Attributes
    ----------
    host, port
        Where it listens.
    data_dir
        Its working directory (AOF files, cluster config); None for an adopted server.
    cluster
        Whether it runs with ``cluster-enabled yes`` (all slots on this one node).
    process
        The process this handle started, or None for a server found already running.
    """

    host: str
    port: int
    data_dir: Path | None = None
    cluster: bool = False
    process: ServerProcess | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """``redis://host:port/0``, for ``redis.Redis.from_url``."""
        return f"redis://{self.host}:{self.port}/0"

    def __enter__(self) -> RedisServer:
        return self


@dataclass
class S3Server(_Stoppable):
    """An S3-compatible server on 127.0.0.1 (``rclone serve s3`` unless adopted).

    The secret key never appears in the repr.

    Attributes
    ----------
    host, port
        Where it listens.
    access_key, secret_key
        Credentials the server accepts (rclone enforces them with SigV4).
    data_dir
        The directory it serves: each bucket is a subdirectory, each object a file.
    process
        The process this handle started, or None for a server found already running.
    """

    host: str
    port: int
    access_key: str
    secret_key: str = field(repr=False)
    data_dir: Path | None = None
    process: ServerProcess | None = field(default=None, repr=False)

    @property
    def endpoint_url(self) -> str:
        """``http://host:port``, for boto3's ``endpoint_url``."""
        return f"http://{self.host}:{self.port}"

    @property
    def credentials(self) -> dict[str, str]:
        """The server as an atdata credentials dict (the spec's ``s3_credentials`` form)."""
        return {
            "AWS_ENDPOINT": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }

    def __enter__(self) -> S3Server:
        return self
