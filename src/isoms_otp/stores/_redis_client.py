"""Refuse Redis clients that would break the store's promises (used by ``RedisStore``).

A client must be synchronous (an asyncio client returns coroutines that nobody awaits), must
have a socket time-out (a frozen Redis would hold a sign-in for as long as it is frozen), and
must never re-send a command on its own (a script that timed out or lost its connection may
have run: sending it again counts one wrong guess twice, and a lost reply of an accepted code
is retried into "replayed"). These rules are read from redis-py's own configuration objects,
so they hold for every redis-py from 4.5 on, whose defaults differ (redis-py 6 and later retry
3 to 10 times by default).
"""

from __future__ import annotations

import inspect
from typing import Any, Final

import redis
import redis.asyncio
from redis.client import Pipeline
from redis.cluster import ClusterPipeline, RedisCluster
from redis.connection import BlockingConnectionPool

from isoms_otp._limits import MAX_STORE_TIMEOUT, seconds_in
from isoms_otp.exceptions import ConfigurationError

__all__ = ["check_client"]

_GOOD: Final = (
    "build one with RedisStore.from_url(url), or redis.Redis(host=..., socket_timeout=2, "
    "socket_connect_timeout=2, retry=Retry(NoBackoff(), 0)) (Retry from redis.retry, "
    "NoBackoff from redis.backoff)"
)
_GOOD_CLUSTER: Final = (
    "build it with redis.cluster.RedisCluster(host=..., socket_timeout=2, "
    "socket_connect_timeout=2, retry=Retry(NoBackoff(), 0))"
)


def check_client(client: object) -> None:
    """Raise unless ``client`` is a synchronous redis-py client that cannot run a script twice.

    ``TypeError`` for anything but a ``redis.Redis`` or ``redis.cluster.RedisCluster`` (a
    pipeline included); :class:`ConfigurationError` for an asyncio client, a client without a
    socket time-out of more than 0 and at most 600 seconds, a client whose automatic retries
    could send a timed-out or dropped script again, and a Sentinel client of a replica. Nothing
    is sent to the server.
    """
    if isinstance(client, (redis.asyncio.Redis, redis.asyncio.RedisCluster)) or (
        inspect.iscoroutinefunction(getattr(client, "execute_command", None))
    ):
        raise ConfigurationError(
            f"client is an asyncio Redis client ({type(client).__name__}): RedisStore calls "
            f"it synchronously and would never await its replies; {_GOOD}"
        )
    if isinstance(client, (Pipeline, ClusterPipeline)):
        raise TypeError(f"client is a pipeline, which only queues commands; {_GOOD}")
    if isinstance(client, RedisCluster):
        _check_cluster(client)
    elif isinstance(client, redis.Redis):
        _check_redis(client)
    else:
        raise TypeError(
            f"client must be a redis.Redis or redis.cluster.RedisCluster, "
            f"not {type(client).__name__}; {_GOOD}"
        )


def _check_redis(client: redis.Redis) -> None:
    pool = client.connection_pool
    kwargs: dict[str, Any] = pool.connection_kwargs
    if getattr(pool, "is_master", True) is False:
        raise ConfigurationError(
            "client is a Sentinel client of a replica (slave_for), which cannot write; "
            "use sentinel.master_for(name, socket_timeout=2, retry=Retry(NoBackoff(), 0))"
        )
    _check_timeout(kwargs, pool.connection_class, _GOOD)
    if isinstance(pool, BlockingConnectionPool) and pool.timeout is None:
        raise ConfigurationError(
            "client's BlockingConnectionPool has timeout=None: a sign-in would wait for a free "
            f"connection for ever; give the pool a timeout (2 s, say), or {_GOOD}"
        )
    retries = _retries(kwargs)
    connection = client.connection  # a single_connection_client keeps its own
    if connection is not None:
        retries = max(retries, _count(connection.retry.get_retries()))
    if retries:
        raise ConfigurationError(_retry_message(kwargs, retries, _GOOD))


def _check_cluster(client: RedisCluster) -> None:
    kwargs: dict[str, Any] = client.nodes_manager.connection_kwargs
    connection_class = kwargs.get("connection_class", redis.connection.Connection)
    _check_timeout(kwargs, connection_class, _GOOD_CLUSTER)
    # RedisCluster gives every node client a Retry of 0 and retries a whole command itself,
    # on ConnectionError and TimeoutError too, as often as its own ``retry`` says.
    retries = _count(client.retry.get_retries())
    if retries:
        raise ConfigurationError(
            f"client re-sends a command that timed out or lost its connection "
            f"{_shown_retries(retries)} (RedisCluster's retry, 10 by default): a verification "
            f"could be counted twice; {_GOOD_CLUSTER}"
        )


def _check_timeout(kwargs: dict[str, Any], connection_class: type, good: str) -> None:
    if "socket_timeout" in kwargs:
        timeout = kwargs["socket_timeout"]
    else:
        timeout = _default_timeout(connection_class)
    if timeout is None:
        raise ConfigurationError(
            "client has no socket_timeout: a frozen Redis would hold a sign-in for as long "
            f"as it is frozen; {good}"
        )
    try:
        seconds_in(timeout, "socket_timeout", 0.0, MAX_STORE_TIMEOUT, above_low=True)
    except (TypeError, ConfigurationError) as exc:
        raise ConfigurationError(
            f"client's socket_timeout must be more than 0 and at most {MAX_STORE_TIMEOUT:g} "
            f"seconds ({exc}); {good}"
        ) from None


def _default_timeout(connection_class: type) -> object:
    """Return the socket time-out a connection class uses when given none.

    redis-py 4.5 and 5 default to none at all, 6 and later to 5 s; ``None`` if no class in the
    MRO names one.
    """
    for cls in connection_class.__mro__:
        init = vars(cls).get("__init__")
        if init is None:
            continue
        parameter = inspect.signature(init).parameters.get("socket_timeout")
        if parameter is not None:
            return parameter.default
    return None


def _retries(kwargs: dict[str, Any]) -> int:
    """Return how often a connection built from ``kwargs`` re-sends a command after an error.

    This is redis-py's own rule (``Connection.__init__``): a ``retry`` object is used as given;
    without one, ``retry_on_timeout`` or ``retry_on_error`` mean one retry, else none.
    """
    retry = kwargs.get("retry")
    if retry is not None:
        return _count(retry.get_retries())
    if kwargs.get("retry_on_timeout") or kwargs.get("retry_on_error"):
        return 1
    return 0


def _count(retries: int) -> int:
    """Return retries as a count; redis-py's -1 ("for ever") becomes a huge one."""
    return retries if retries >= 0 else 2**31


def _shown_retries(retries: int) -> str:
    if retries >= 2**31:
        return "for ever"
    return "once" if retries == 1 else f"{retries} times"


def _retry_message(kwargs: dict[str, Any], retries: int, good: str) -> str:
    if kwargs.get("retry") is None:
        cause = "retry_on_timeout=True or retry_on_error"
    else:
        cause = "its retry: redis.Redis retries by default since redis-py 6"
    return (
        f"client re-sends a command that timed out or lost its connection "
        f"{_shown_retries(retries)} ({cause}): the script may already have run, so one wrong "
        f"guess could be counted twice; {good}"
    )
