# redis-py leaves Sentinel, BlockingConnectionPool and Connection.__init__ untyped.
# mypy: disable-error-code="no-untyped-call"
"""check_client: Redis clients that could hang a sign-in or run a script twice are refused.

These used to be accepted: an asyncio client failed at the first verification with a
never-awaited coroutine, a client without a socket time-out hung a sign-in for as long as
Redis was frozen, and redis-py's default retries (10 in redis-py 8) re-sent a script that had
timed out, counting one wrong guess twice.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis
import redis.asyncio
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.cluster import RedisCluster
from redis.connection import BlockingConnectionPool, Connection, ConnectionPool
from redis.retry import Retry
from redis.sentinel import Sentinel

from isoms_otp import TOTP, ConfigurationError, RedisStore, Verifier
from isoms_otp.stores._redis_client import check_client
from isoms_otp.testing import FakeClock

SECRET = bytes(range(20))
NO_RETRY = Retry(NoBackoff(), 0)


def good(**options: Any) -> redis.Redis:
    """A client built as the docs say: time-outs, no retries."""
    return redis.Redis(socket_timeout=2, socket_connect_timeout=2, retry=NO_RETRY, **options)


def refused(client: object, *words: str) -> str:
    """Return the ConfigurationError's message, checking that it says how to build a good one."""
    with pytest.raises(ConfigurationError) as info:
        check_client(client)
    message = str(info.value)
    assert "socket_timeout=2" in message
    for word in words:
        assert word in message
    return message


def test_from_url_clients_are_accepted() -> None:
    """What RedisStore.from_url builds passes, for TCP, TLS and unix socket URLs."""
    for url in ("redis://127.0.0.1:1/0", "rediss://127.0.0.1:1/0", "unix:///tmp/none.sock"):
        check_client(RedisStore.from_url(url)._client)


def test_a_well_built_client_is_accepted() -> None:
    """Time-outs and Retry(NoBackoff(), 0), as the message advises, pass."""
    check_client(good())
    check_client(good(connection_pool=None, decode_responses=True))


def test_a_default_client_is_refused_for_its_retries() -> None:
    """redis.Redis() retries by default (redis-py 6 and later): that used to count twice."""
    default = redis.Redis()
    if default.connection_pool.connection_kwargs.get("retry") is None:  # pragma: no cover
        pytest.skip("this redis-py does not retry by default")
    refused(default, "re-sends", "RedisStore.from_url(url)")


@pytest.mark.parametrize(
    ("retry", "words"),
    [
        pytest.param(Retry(NoBackoff(), 1), "once", id="once"),
        pytest.param(Retry(ExponentialBackoff(), 3), "3 times", id="three"),
        pytest.param(Retry(NoBackoff(), -1), "for ever", id="for-ever"),
    ],
)
def test_retries_are_refused(retry: Retry, words: str) -> None:
    """Any retry count but 0 could send a timed-out script again."""
    refused(redis.Redis(socket_timeout=2, retry=retry), words, "counted twice")


def test_retry_on_timeout_and_retry_on_error_are_refused() -> None:
    """Without a Retry object, retry_on_timeout or retry_on_error mean one retry."""
    on_timeout = redis.Redis.from_url("redis://127.0.0.1:1?retry_on_timeout=true&socket_timeout=2")
    refused(on_timeout, "retry_on_timeout", "once")
    pool = ConnectionPool(socket_timeout=2, retry_on_error=[redis.ConnectionError])
    refused(redis.Redis(connection_pool=pool), "retry_on_error")


def test_retry_on_timeout_with_a_zero_retry_is_accepted() -> None:
    """retry_on_timeout only widens the errors of a Retry; with 0 retries nothing is re-sent."""
    pool = ConnectionPool(socket_timeout=2, retry_on_timeout=True, retry=NO_RETRY)
    check_client(redis.Redis(connection_pool=pool))


def test_a_client_without_a_socket_timeout_is_refused() -> None:
    """A frozen Redis used to hold the sign-in for as long as it was frozen."""
    refused(redis.Redis(socket_timeout=None, retry=NO_RETRY), "no socket_timeout", "frozen")


@pytest.mark.parametrize("timeout", [0, -1, 601, float("inf"), "2"], ids=repr)
def test_a_socket_timeout_out_of_range_is_refused(timeout: object) -> None:
    """More than 0 and at most 600 s: the store deadline's ceiling."""
    pool = ConnectionPool(socket_timeout=timeout, retry=NO_RETRY)
    refused(redis.Redis(connection_pool=pool), "more than 0 and at most 600 seconds")


def test_a_pool_without_a_timeout_takes_the_connection_default() -> None:
    """A bare ConnectionPool gets its connection class's default time-out, and no retry."""
    check_client(redis.Redis(connection_pool=ConnectionPool()))

    class Plain(Connection):
        """A connection class that inherits its __init__."""

    check_client(redis.Redis(connection_pool=ConnectionPool(connection_class=Plain)))

    class Unknown:
        def __init__(self, **kwargs: Any) -> None:
            del kwargs

    pool = ConnectionPool(connection_class=Unknown)
    refused(redis.Redis(connection_pool=pool), "no socket_timeout")


def test_a_blocking_pool_must_not_wait_for_ever() -> None:
    """BlockingConnectionPool(timeout=None) would wait for a free connection without end."""
    pool = BlockingConnectionPool(timeout=None, socket_timeout=2, retry=NO_RETRY)
    refused(redis.Redis(connection_pool=pool), "timeout=None")
    check_client(
        redis.Redis(
            connection_pool=BlockingConnectionPool(timeout=2, socket_timeout=2, retry=NO_RETRY)
        )
    )


def test_asyncio_clients_are_refused() -> None:
    """They used to be accepted and fail at the first verification (a coroutine never awaited)."""
    refused(redis.asyncio.Redis(socket_timeout=2), "asyncio")
    refused(redis.asyncio.RedisCluster(host="127.0.0.1", port=1), "asyncio", "RedisCluster")


def test_things_that_are_not_clients_are_type_errors() -> None:
    """A pipeline only queues commands; other objects are no client at all."""
    with pytest.raises(TypeError, match="pipeline"):
        check_client(good().pipeline())
    with pytest.raises(
        TypeError, match=r"redis\.Redis or redis\.cluster\.RedisCluster, not object"
    ):
        check_client(object())


def test_sentinel_clients() -> None:
    """A Sentinel master with time-outs and no retries passes; a replica client never writes."""
    sentinel = Sentinel([("127.0.0.1", 1)], socket_timeout=1)
    check_client(sentinel.master_for("otp", socket_timeout=2, retry=NO_RETRY))
    check_client(sentinel.master_for("otp"))  # Sentinel's socket_timeout, no Retry: none
    refused(sentinel.master_for("otp", retry=Retry(NoBackoff(), 2)), "2 times")
    refused(Sentinel([("127.0.0.1", 1)]).master_for("otp", socket_timeout=None), "no socket")
    with pytest.raises(ConfigurationError, match="replica"):
        check_client(sentinel.slave_for("otp", socket_timeout=2))


@pytest.mark.redis
def test_a_single_connection_client_is_checked_too(redis_url: str) -> None:
    """single_connection_client keeps its own connection, whose Retry counts as well."""
    client = redis.Redis.from_url(
        redis_url, single_connection_client=True, socket_timeout=2, retry=NO_RETRY
    )
    try:
        check_client(client)
        assert client.connection is not None
        client.connection.retry = Retry(NoBackoff(), 2)
        refused(client, "2 times")
    finally:
        client.close()


@pytest.mark.redis
def test_a_well_built_client_verifies(redis_url: str) -> None:
    """The client the messages advise works end to end against a real server."""
    client = good(host="127.0.0.1", port=int(redis_url.rsplit(":", 1)[1].split("/", maxsplit=1)[0]))
    check_client(client)
    clock = FakeClock(30 * 56_666_667 + 10)
    verifier = Verifier(RedisStore(client), clock=clock)
    totp = TOTP(SECRET)
    try:
        assert verifier.verify("alice", totp, totp.generate(clock())).ok
        assert verifier.verify("alice", totp, totp.generate(clock())).reason == "replayed"
    finally:
        client.close()


@pytest.mark.redis
def test_cluster_clients(redis_cluster: Any) -> None:
    """RedisCluster retries at the cluster level (10 by default); with 0 and time-outs it works."""
    default = RedisCluster(host="127.0.0.1", port=redis_cluster.port)
    bare = RedisCluster(
        host="127.0.0.1", port=redis_cluster.port, socket_timeout=None, retry=NO_RETRY
    )
    client = RedisCluster(
        host="127.0.0.1", port=redis_cluster.port, socket_timeout=2, retry=NO_RETRY
    )
    try:
        with pytest.raises(ConfigurationError, match=r"10 times \(RedisCluster's retry"):
            check_client(default)
        with pytest.raises(ConfigurationError, match=r"no socket_timeout.*RedisCluster\("):
            check_client(bare)
        check_client(client)
        clock = FakeClock(30 * 56_666_667 + 10)
        verifier = Verifier(RedisStore(client, legacy_prefix=None), clock=clock)
        totp = TOTP(SECRET)
        assert verifier.verify("alice", totp, totp.generate(clock())).ok
        assert verifier.verify("alice", totp, totp.generate(clock())).reason == "replayed"
    finally:
        for each in (default, bare, client):
            each.close()
