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
import difflib
import inspect
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.exceptions
from redis.cluster import ClusterNode, RedisCluster

from atdata import server_record
from atdata.errors import IndexConnectionError, IndexServerError, InvalidArgument

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
        """redis-py kwargs if any were given, else ``ATDATA_REDIS_URL``, else the Redis that
        ``atdata local up`` recorded (:mod:`atdata.server_record`), else localhost:6379."""
        if kwargs:
            _check_kwargs(kwargs)
            _check_port(kwargs.get("port", 6379))
            return cls(kwargs=dict(kwargs))
        url = os.environ.get(ENV_URL)
        if url:
            return cls.from_url(url, {}, source=f"${ENV_URL}")
        recorded = server_record.recorded_redis_url()
        if recorded:
            return cls.from_url(recorded, {}, source="the record of `atdata local up`")
        return cls()

    @classmethod
    def from_url(cls, url: Any, kwargs: dict[str, Any], *, source: str = "redis") -> ConnectionSpec:
        """A spec for ``url``, checked now: a bad URL or keyword fails here, naming what was given.

        ``source`` says where the URL came from (``redis``, ``$ATDATA_REDIS_URL``) for the message.
        """
        if not isinstance(url, str) or not url:
            raise InvalidArgument(f"{source}={url!r} is not a Redis URL: {_URL_FORMS}")
        shown = _masked(url)
        parts = urlsplit(url)
        if parts.scheme not in _URL_SCHEMES or (parts.scheme != "unix" and not parts.hostname):
            raise InvalidArgument(f"{source}={shown!r} is not a Redis URL: {_URL_FORMS}")
        try:
            parts.port  # noqa: B018 - parsing the port is the check
        except ValueError:
            raise InvalidArgument(f"{source}={shown!r} has an invalid port: {_URL_FORMS}") from None
        _check_kwargs(kwargs)
        return cls(url=url, kwargs=dict(kwargs))

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
                # redis-py names the bad part (a query argument, say); the URL may hold a password.
                raise InvalidArgument(f"bad Redis URL {_masked(self.url)!r}: {exc}") from exc
        return redis.Redis(**self.kwargs)  # keywords were checked when the spec was made

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


_URL_SCHEMES = ("redis", "rediss", "unix")
_URL_FORMS = "expected redis://[:password@]host:port/db, rediss://... (TLS) or unix:///path/to/redis.sock"


def _masked(url: str) -> str:
    """``url`` with its password replaced by ``***``, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def _check_kwargs(kwargs: dict[str, Any]) -> None:
    """Refuse, at construction, a keyword redis.Redis does not take (naming it and the closest ones)."""
    unknown = sorted(set(kwargs) - _REDIS_KWARGS)
    if unknown:
        close = sorted({m for k in unknown for m in difflib.get_close_matches(k, _REDIS_KWARGS, n=3)})
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise InvalidArgument(
            f"LocalIndex got {', '.join(f'{k}=' for k in unknown)}, which redis.Redis does not take{hint}; "
            "pass redis.Redis keywords such as host=, port=, db=, password=, or redis='redis://host:port/db'"
        )


def _simple_kwargs(raw: dict[str, Any]) -> dict[str, Any]:
    """The plain-valued redis-py keyword arguments of ``raw`` (no retry objects, callbacks...)."""
    return {k: v for k, v in raw.items() if k in _REDIS_KWARGS and isinstance(v, _SIMPLE)}


@contextlib.contextmanager
def translate_errors(spec: ConnectionSpec) -> Iterator[None]:
    """Turn redis-py's errors into ``IndexConnectionError`` (reaching the server) or ``IndexServerError``.

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
    except redis.exceptions.ResponseError as exc:
        # The server refused a command (redis-py reloads a script on NOSCRIPT itself). A
        # script that fails runs no further writes, and READONLY/OOM refuse it before any.
        raise IndexServerError(f"Redis at {spec.endpoint} refused the command: {_reason(exc)}{_fix(exc)}") from exc


def _fix(exc: Exception) -> str:
    """What to do about a server-side refusal: by redis-py's class, else by the error code."""
    if isinstance(exc, redis.exceptions.ReadOnlyError):
        code = "READONLY"  # redis-py strips the code of the errors it has a class for
    elif isinstance(exc, redis.exceptions.OutOfMemoryError):
        code = "OOM"
    else:
        code = str(exc).split(" ", 1)[0].upper()
    return _FIXES.get(code, "")


_FIXES = {
    "READONLY": " (READONLY); this server is a read-only replica: point the index at the primary. Nothing was written",
    "OOM": " (OOM); it is at its maxmemory limit: raise maxmemory, free memory, or use another server. Nothing was written",
    "MISCONF": "; it cannot persist its data (see its log): fix its dir/disk, or its stop-writes-on-bgsave-error",
    "BUSY": "; a long script is running on it: retry later, or SCRIPT KILL it",
    "WRONGTYPE": "; a key under this index's prefix was written by something else: use another key_prefix",
}


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
