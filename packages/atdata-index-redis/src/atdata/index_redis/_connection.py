"""How a LocalIndex reaches Redis: building clients, describing them, and translating errors.

A ``LocalIndex`` must survive ``pickle`` (it travels into DataLoader worker processes),
and a redis-py client holds sockets and locks. So the index keeps a picklable
:class:`ConnectionSpec` (the URL or redis-py keyword arguments, exactly as the user
gave them) and builds the client lazily in each process. Errors from redis-py are
turned into :class:`atdata.errors.IndexConnectionError` naming ``host:port``; the
password is kept in the spec only, never in a message or a repr.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.exceptions
from redis.cluster import ClusterNode, RedisCluster

from atdata.errors import IndexConnectionError, InvalidArgument

__all__ = ["ENV_URL", "ConnectionSpec", "translate_errors"]

ENV_URL = "ATDATA_REDIS_URL"

_START_HINT = f"start a local server with `atdata local up`, or point {ENV_URL} at a running Redis"

# Keyword arguments redis.Redis accepts: the only ones a spec captured from a client keeps.
_REDIS_KWARGS = frozenset(inspect.signature(redis.Redis.__init__).parameters) - {"self", "connection_pool"}
_SIMPLE = (str, int, float, bool, type(None))


@dataclass(frozen=True, repr=False)
class ConnectionSpec:
    """Everything needed to rebuild a client in another process, and nothing live.

    Exactly one of ``url`` and ``kwargs`` describes a plain Redis connection; ``cluster``
    marks a Redis Cluster (``kwargs`` then also carries ``host``/``port`` of a startup node).
    """

    url: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    cluster: bool = False

    def __repr__(self) -> str:  # the URL and kwargs may hold a password
        return f"ConnectionSpec({self.endpoint}{', cluster' if self.cluster else ''})"

    @classmethod
    def from_client(cls, client: Any) -> ConnectionSpec:
        """Capture the connection parameters of a ready redis-py client."""
        if isinstance(client, RedisCluster):
            node = client.get_default_node() or next(iter(client.get_nodes()), None)
            base = dict(client.nodes_manager.connection_kwargs)
            kwargs = _simple_kwargs(base)
            if node is not None:
                kwargs.update(host=node.host, port=node.port)
            return cls(kwargs=kwargs, cluster=True)
        if inspect.iscoroutinefunction(getattr(client, "execute_command", None)):
            raise InvalidArgument(
                f"redis= needs a synchronous client, got {type(client).__module__}.{type(client).__name__} "
                "(use redis.Redis, not redis.asyncio.Redis)"
            )
        pool = getattr(client, "connection_pool", None)
        if pool is None:
            raise InvalidArgument(
                f"redis= expects a redis.Redis or redis.cluster.RedisCluster client, got {type(client).__name__}"
            )
        raw = dict(pool.connection_kwargs)
        kwargs = _simple_kwargs(raw)
        if "path" in raw:  # unix socket connection
            kwargs["unix_socket_path"] = raw["path"]
        if issubclass(pool.connection_class, redis.SSLConnection):
            kwargs["ssl"] = True
        return cls(kwargs=kwargs)

    @classmethod
    def from_environment(cls, kwargs: dict[str, Any]) -> ConnectionSpec:
        """redis-py kwargs if any were given, else ``ATDATA_REDIS_URL``, else localhost:6379."""
        if kwargs:
            _check_port(kwargs.get("port", 6379))
            return cls(kwargs=dict(kwargs))
        url = os.environ.get(ENV_URL)
        if url:
            return cls(url=url)
        return cls()

    def connect(self) -> Any:
        """A new client for this process (redis-py connects lazily, on the first command)."""
        if self.cluster:
            kwargs = dict(self.kwargs)
            host, port = kwargs.pop("host", "localhost"), kwargs.pop("port", 6379)
            return RedisCluster(startup_nodes=[ClusterNode(host, port)], **kwargs)
        if self.url is not None:
            try:
                return redis.Redis.from_url(self.url, **self.kwargs)
            except ValueError as exc:
                # redis-py names the bad part (scheme, query argument); the URL may hold a password.
                raise InvalidArgument(f"bad Redis URL for {self.endpoint}: {exc}") from exc
        try:
            return redis.Redis(**self.kwargs)
        except TypeError as exc:  # an unknown keyword; redis-py's message names it, never a value
            raise InvalidArgument(
                f"LocalIndex got a connection argument redis.Redis does not take ({exc}); "
                "pass redis.Redis keywords such as host=, port=, db=, password="
            ) from exc

    @property
    def endpoint(self) -> str:
        """``host:port`` (or the socket path), never credentials."""
        if self.url is not None:
            parts = urlsplit(self.url)
            if parts.scheme == "unix":
                return parts.path
            port: int | str
            try:
                port = parts.port or 6379
            except ValueError:
                port = "?"
            return f"{parts.hostname or 'localhost'}:{port}"
        if "unix_socket_path" in self.kwargs:
            return str(self.kwargs["unix_socket_path"])
        return f"{self.kwargs.get('host', 'localhost')}:{self.kwargs.get('port', 6379)}"

    @property
    def db(self) -> int | None:
        """The database number, where the parameters say it (for reprs)."""
        if self.url is not None:
            path = urlsplit(self.url).path.strip("/")
            return int(path) if path.isdigit() else 0
        return None if self.cluster else int(self.kwargs.get("db", 0))


def _simple_kwargs(raw: dict[str, Any]) -> dict[str, Any]:
    """The plain-valued redis-py keyword arguments of ``raw`` (no retry objects, callbacks...)."""
    return {k: v for k, v in raw.items() if k in _REDIS_KWARGS and isinstance(v, _SIMPLE)}


@contextlib.contextmanager
def translate_errors(spec: ConnectionSpec) -> Iterator[None]:
    """Turn redis-py's connection and authentication failures into ``IndexConnectionError``.

    redis-py's ``ConnectionError`` is not the builtin one, so callers' ``except
    ConnectionError`` would miss it; ours subclasses the builtin. The message names the
    endpoint and how to start a server, never the password.
    """
    try:
        yield
    except redis.exceptions.AuthenticationError as exc:
        raise IndexConnectionError(
            f"Redis at {spec.endpoint} refused the credentials ({type(exc).__name__}); "
            "check the username/password given to LocalIndex"
        ) from exc
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        raise IndexConnectionError(f"cannot reach Redis at {spec.endpoint} ({_reason(exc)}); {_START_HINT}") from exc
    except (redis.exceptions.RedisClusterException, redis.exceptions.ClusterError) as exc:
        # Startup nodes unreachable, slots not covered, cluster down: nothing the index can fix.
        raise IndexConnectionError(
            f"Redis Cluster at {spec.endpoint} is unavailable ({_reason(exc)}); check the cluster is up"
        ) from exc
    except redis.exceptions.NoPermissionError as exc:
        raise IndexConnectionError(
            f"Redis at {spec.endpoint} refused a command for this user (NOPERM: {_reason(exc)}); "
            "the index needs GET/SET/HASH/ZSET/SET commands, SCAN and EVALSHA on its keys"
        ) from exc


def _reason(exc: Exception) -> str:
    """redis-py's own explanation ("Connection refused", "Timeout connecting ..."): no secrets."""
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _check_port(port: Any) -> None:
    """Refuse a port redis-py would only reject on the first command, with a bare ValueError."""
    number = port if isinstance(port, int) and not isinstance(port, bool) else None
    if isinstance(port, str) and port.isdigit():
        number = int(port)
    if number is None or not 0 < number < 65536:
        raise InvalidArgument(f"port={port!r} is invalid: pass the Redis server's TCP port, e.g. port=6379")
