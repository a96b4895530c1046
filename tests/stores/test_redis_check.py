"""check_redis against real redis-server processes started with the configurations it judges.

Before it, nothing said that an ``allkeys-lru`` Redis (measured: it forgot 300 of 300 used
codes), a Redis without persistence or a replica silently loses replay marks and lock-outs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from isoms_otp.stores import StoreFinding
from isoms_otp.stores._redis_check import check_redis

pytestmark = pytest.mark.redis

NO_RETRY = Retry(NoBackoff(), 0)


@pytest.fixture
def server(redis_servers: Callable[..., Any]) -> Iterator[Callable[..., redis.Redis]]:
    """Start a redis-server with extra arguments and return a client of it."""
    clients: list[redis.Redis] = []

    def start(*extra: str, **options: Any) -> redis.Redis:
        running = redis_servers(*extra)
        options.setdefault("port", running.port)
        clients.append(redis.Redis(socket_timeout=5, retry=NO_RETRY, **options))
        return clients[-1]

    yield start
    for client in clients:
        client.close()


def rules(findings: list[StoreFinding]) -> dict[str, str]:
    """Map each finding's rule to its severity."""
    return {finding.rule: finding.severity for finding in findings}


def test_a_well_configured_server_has_no_findings(server: Callable[..., redis.Redis]) -> None:
    """noeviction, AOF with everysec or always, a primary: nothing to say."""
    assert [] == check_redis(server("--appendonly", "yes"))
    assert [] == check_redis(server("--appendonly", "yes", "--appendfsync", "always"))


def test_an_evicting_server_is_serious(server: Callable[..., redis.Redis]) -> None:
    """allkeys-lru forgot 300 of 300 used codes; with maxmemory 0 it is one CONFIG SET away."""
    lru = check_redis(server("--appendonly", "yes", "--maxmemory-policy", "allkeys-lru"))
    assert {"maxmemory-policy": "serious"} == rules(lru)
    assert "'allkeys-lru' (maxmemory is 0 today" in lru[0].message
    assert "noeviction" in lru[0].message
    limited = server(
        "--appendonly", "yes", "--maxmemory-policy", "volatile-ttl", "--maxmemory", "64mb"
    )  # fmt: skip
    (finding,) = check_redis(limited)
    assert "maxmemory-policy is 'volatile-ttl': when memory is full" in finding.message


def test_persistence(server: Callable[..., redis.Redis]) -> None:
    """No persistence at all is serious; RDB only and appendfsync no are warnings."""
    none = check_redis(server())  # the suite's default: --save "" --appendonly no
    assert {"no-persistence": "serious"} == rules(none)
    assert "appendonly yes" in none[0].message
    rdb = check_redis(server("--save", "60 1"))
    assert {"no-aof": "warning"} == rules(rdb)
    lazy = check_redis(server("--appendonly", "yes", "--appendfsync", "no"))
    assert {"appendfsync": "warning"} == rules(lazy)
    assert "appendfsync everysec" in lazy[0].message


def test_a_replica_is_serious(
    server: Callable[..., redis.Redis], redis_servers: Callable[..., Any]
) -> None:
    """A replica's writes fail (READONLY) or never reach the primary."""
    primary = redis_servers("--appendonly", "yes")
    replica = server("--appendonly", "yes", "--replicaof", "127.0.0.1", str(primary.port))
    findings = check_redis(replica)
    assert {"replica": "serious"} == rules(findings)
    assert f"a replica of 127.0.0.1:{primary.port}" in findings[0].message


def test_what_the_server_refuses_is_said(server: Callable[..., redis.Redis]) -> None:
    """Managed Redis often refuses CONFIG (here by ACL); the check says what it did not read."""
    password = "pw"  # noqa: S105 - a throwaway user of a private server
    admin = server("--appendonly", "no")
    admin.acl_setuser(
        "no-config",
        enabled=True,
        passwords=["+" + password],
        keys=["*"],
        commands=["+@all", "-config"],
    )
    admin.acl_setuser(
        "no-info", enabled=True, passwords=["+" + password], keys=["*"],
        commands=["+@all", "-config", "-info"],
    )  # fmt: skip
    port = admin.connection_pool.connection_kwargs["port"]
    limited = server(username="no-config", password=password, port=port)
    findings = check_redis(limited)
    assert {"config-unreadable": "info"} == rules(findings)
    assert "maxmemory-policy (must be noeviction)" in findings[0].message
    blind = check_redis(server(username="no-info", password=password, port=port))
    assert {"config-unreadable": "info", "role-unreadable": "info"} == rules(blind)


class PartialConfig(redis.Redis):
    """A client whose CONFIG GET leaves out appendonly, as some managed services do."""

    def config_get(self, pattern: Any = "*", *args: Any, **kwargs: Any) -> Any:
        """Answer like Redis, without appendonly."""
        if pattern == "appendonly":
            return {}
        return super().config_get(pattern, *args, **kwargs)


def test_a_parameter_left_out_is_said(redis_servers: Callable[..., Any]) -> None:
    """What CONFIG GET leaves out is named, and judged by nothing."""
    running = redis_servers()
    with PartialConfig(port=running.port, socket_timeout=5, retry=NO_RETRY) as client:
        findings = check_redis(client)
    assert {"config-unreadable": "info"} == rules(findings)
    assert "no value for appendonly" in findings[0].message


def test_an_unreachable_server_is_serious(server: Callable[..., redis.Redis]) -> None:
    """Nothing read is one serious finding, not an empty (clean-looking) list."""
    findings = check_redis(server(port=1))
    assert {"unreachable": "serious"} == rules(findings)
    assert "nothing was checked" in findings[0].message


def test_a_cluster_is_checked_node_by_node(redis_cluster: Any) -> None:
    """Each primary is checked and named; the cluster's own replicas are no finding."""
    client = RedisCluster(
        host="127.0.0.1", port=redis_cluster.port, socket_timeout=5, retry=NO_RETRY
    )
    try:
        findings = check_redis(client)
    finally:
        client.close()
    assert {"no-persistence": "serious"} == rules(findings)
    assert findings[0].message.startswith(f"node 127.0.0.1:{redis_cluster.port}: ")
