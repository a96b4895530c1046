"""RedisStore beyond one server: Redis Cluster, Sentinel, durable=True, and failover."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel

from isoms_otp import (
    TOTP,
    ConfigurationError,
    RedisStore,
    Store,
    StoreError,
    ThrottlePolicy,
    Verifier,
)
from isoms_otp.testing import FakeClock, StoreContract
from servers import REPLICATION_USER, RedisClusterNodes, RedisNode, SentinelGroup

pytestmark = [pytest.mark.redis, pytest.mark.servers]

SECRET = bytes(range(20))
START = 30 * 56_666_667 + 10
POLICY = ThrottlePolicy(max_failures=100, base_delay=0)
#: How long a failover (1 s down-after, election, promotion) may take before the test fails.
FAILOVER_SECONDS = 45.0


def no_retry() -> Retry:
    """redis-py must never resend a script on its own: it could count a failure twice."""
    return Retry(NoBackoff(), 0)


def cluster_client(cluster: RedisClusterNodes) -> RedisCluster:
    nodes = [ClusterNode(host, port) for host, port in cluster.startup_nodes]
    return RedisCluster(startup_nodes=nodes, retry=no_retry(), socket_timeout=2)


def sentinel_master(group: SentinelGroup) -> redis.Redis:
    sentinel = Sentinel(group.sentinel_addresses, socket_timeout=1)
    client: redis.Redis = sentinel.master_for(
        group.name, socket_timeout=1, socket_connect_timeout=1, retry=no_retry()
    )
    return client


@pytest.fixture
def cluster(redis_cluster_session: RedisClusterNodes) -> Iterator[RedisCluster]:
    """A cluster client on emptied masters."""
    client = cluster_client(redis_cluster_session)
    client.flushall(target_nodes=RedisCluster.PRIMARIES)
    yield client
    client.close()


@pytest.fixture
def sentinel_client(sentinel_session: SentinelGroup) -> Iterator[redis.Redis]:
    """A Sentinel-discovered client of the session primary, emptied."""
    client = sentinel_master(sentinel_session)
    client.flushall()
    yield client
    client.close()


class RedisContract(StoreContract):
    """The contract, with Redis's own expiry in place of ``prune``."""

    prunes = False  # Redis expires keys on its own clock

    def test_failures_are_forgotten_a_lock_period_after_the_wait(
        self, store: Store, clock: FakeClock, totp: TOTP
    ) -> None:
        """As for one Redis server: the script sets the TTL a lock period after the wait."""
        policy = ThrottlePolicy(max_failures=2, base_delay=5, max_delay=5, lock_duration=100)
        verifier = Verifier(store, clock=clock, policy=policy)
        self.fail_twice(verifier, clock, totp)  # locked until START + 105, kept until + 205
        client = store._client  # type: ignore[attr-defined]  # the TTL is the point
        assert 140_000 < client.pttl("isoms-otp:v2:5{early}:u") <= 200_000


class TestRedisClusterDurableStore(RedisContract):
    """The contract on a 3-master Redis Cluster, waiting for each master's replica."""

    @pytest.fixture
    def store(self, cluster: RedisCluster) -> Store:
        return RedisStore(cluster, legacy_prefix=None, durable=True)


class TestRedisSentinelDurableStore(RedisContract):
    """The contract through Sentinel's client of the primary, waiting for its replica."""

    @pytest.fixture
    def store(self, sentinel_client: redis.Redis) -> Store:
        return RedisStore(sentinel_client, durable=True)


def make(store: RedisStore) -> Verifier:
    return Verifier(store, clock=FakeClock(START), policy=POLICY)


def test_cluster_without_durable(cluster: RedisCluster) -> None:
    """Without durable the cluster client routes the script itself; users spread over slots."""
    store, totp = RedisStore(cluster, legacy_prefix=None), TOTP(SECRET)
    verifier = make(store)
    users = [f"user{n}" for n in range(12)]
    code = totp.generate(START)
    assert ["accepted"] * 12 == [verifier.verify(user, totp, code).reason for user in users]
    assert ["replayed"] * 12 == [verifier.verify(user, totp, code).reason for user in users]
    assert 3 == len({cluster.get_node_from_key(f"isoms-otp:v2:5{{{u}}}:u").name for u in users})


def test_cluster_with_the_defaults(cluster: RedisCluster) -> None:
    """RedisStore(cluster) works as it is: version 1 ran on no cluster, so the default reads no
    version-1 marks there (they would lie in other slots); another legacy prefix is refused."""
    store, totp = RedisStore(cluster), TOTP(SECRET)
    assert store._legacy is None
    assert "accepted" == make(store).verify("alice", totp, totp.generate(START)).reason
    with pytest.raises(ConfigurationError, match="leave legacy_prefix out"):
        RedisStore(cluster, legacy_prefix="my-app:user:")


def test_cluster_stale_slot_map_is_refreshed(cluster: RedisCluster) -> None:
    """A MOVED reply (the script did not run) refreshes the slot map and resends once."""
    store, totp = RedisStore(cluster, legacy_prefix=None, durable=True), TOTP(SECRET)
    slot = cluster.keyslot("isoms-otp:v2:5{alice}:u")
    right = cluster.get_node_from_key("isoms-otp:v2:5{alice}:u")
    wrong = next(node for node in cluster.get_primaries() if node.name != right.name)
    cluster.nodes_manager.slots_cache[slot] = [wrong]
    verifier = make(store)
    assert "accepted" == verifier.verify("alice", totp, totp.generate(START)).reason
    assert right.name == cluster.get_node_from_key("isoms-otp:v2:5{alice}:u").name


def test_durable_without_a_replica_refuses_and_spends_the_code(redis_url: str) -> None:
    """No replica acknowledges: StoreError, and the code is spent (the script ran)."""
    totp = TOTP(SECRET)
    durable = RedisStore.from_url(redis_url, durable=True, timeout=0.2)
    with pytest.raises(StoreError, match="no Redis replica acknowledged"):
        make(durable).verify("alice", totp, totp.generate(START))
    plain = RedisStore.from_url(redis_url)
    assert "replayed" == make(plain).verify("alice", totp, totp.generate(START)).reason
    durable.close()
    plain.close()


def test_durable_resends_after_script_flush(sentinel_client: redis.Redis) -> None:
    """NOSCRIPT (a restart or failover emptied the script cache) loads the script and resends."""
    store, totp = RedisStore(sentinel_client, durable=True), TOTP(SECRET)
    verifier = make(store)
    assert "accepted" == verifier.verify("alice", totp, totp.generate(START)).reason
    sentinel_client.script_flush()
    assert "replayed" == verifier.verify("alice", totp, totp.generate(START)).reason


def test_durable_gives_up_when_the_script_never_sticks(
    sentinel_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that keeps answering NOSCRIPT is a StoreError after a bounded number of tries."""
    store, totp = RedisStore(sentinel_client, durable=True), TOTP(SECRET)
    sentinel_client.script_flush()
    monkeypatch.setattr(redis.Redis, "script_load", lambda *_: "")
    with pytest.raises(StoreError, match="kept refusing"):
        make(store).verify("alice", totp, totp.generate(START))


def test_durable_uses_waitaof_where_the_server_has_it(sentinel_client: redis.Redis) -> None:
    """Redis 7.0 has no WAITAOF (found out once); told otherwise, its error is a StoreError."""
    store, totp = RedisStore(sentinel_client, durable=True), TOTP(SECRET)
    verifier = make(store)
    assert "accepted" == verifier.verify("alice", totp, totp.generate(START)).reason
    assert False is store._waitaof
    object.__setattr__(store, "_waitaof", True)
    with pytest.raises(StoreError, match="ResponseError"):
        verifier.verify("bob", totp, totp.generate(START))


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"durable": 1}, TypeError),
        ({"durable_timeout": 0}, ConfigurationError),
        ({"durable_timeout": "1"}, TypeError),
    ],
    ids=["durable-int", "timeout-zero", "timeout-str"],
)
def test_durable_options_validated(
    redis_url: str, options: dict[str, Any], error: type[Exception]
) -> None:
    """Nonsense durable options are refused when the store is made."""
    with pytest.raises(error):
        RedisStore(redis.Redis.from_url(redis_url), **options)


def test_durable_repr(redis_url: str) -> None:
    """The repr says when a store waits for replicas."""
    assert "RedisStore(prefix='isoms-otp:v2:', durable=True)" == repr(
        RedisStore.from_url(redis_url, durable=True)
    )


# -- failover ---------------------------------------------------------------------------------


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + FAILOVER_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"{what} did not happen within {FAILOVER_SECONDS:.0f} s")


def fail_over(group: SentinelGroup) -> None:
    """Crash the primary and wait until the sentinels have promoted the replica."""
    group.primary.kill()
    wait_for(lambda: group.master_port() == group.replica.port, "the failover")
    with redis.Redis(port=group.replica.port, socket_timeout=1) as client:
        wait_for(lambda: client.info("replication")["role"] == "master", "the promotion")


def settle_after_failover(verifier: Verifier, user: str, totp: TOTP) -> str:
    """Verify once the new primary answers: StoreErrors until then, a verdict after."""
    found: list[str] = []

    def answered() -> bool:
        try:
            found.append(verifier.verify(user, totp, totp.generate(START)).reason)
        except StoreError:
            return False
        return True

    wait_for(answered, "an answer from the new primary")
    return found[0]


def cut_replication(primary: RedisNode, replica: RedisNode) -> None:
    """Lock the replica out of the primary (its login is changed), so nothing more reaches it."""
    with redis.Redis(port=primary.port, socket_timeout=1) as client:
        client.acl_setuser(REPLICATION_USER, enabled=True, reset_passwords=True, passwords=["+x"])
        client.client_kill_filter(_type="replica")
    with redis.Redis(port=replica.port, socket_timeout=1) as client:
        wait_for(
            lambda: client.info("replication")["master_link_status"] == "down",
            "the replica losing its link",
        )


@pytest.mark.slow
@pytest.mark.timeout(300)  # a failover that never ends must not hang the suite
def test_failover_loses_an_unreplicated_mark_unless_durable(
    own_sentinel_group: SentinelGroup,
) -> None:
    """durable=False: an accepted code whose mark never reached the replica is accepted again
    after the failover. durable=True refused the same situation instead of acknowledging it."""
    group, totp = own_sentinel_group, TOTP(SECRET)
    client = sentinel_master(group)
    fast, durable = RedisStore(client), RedisStore(client, durable=True, durable_timeout=0.2)
    cut_replication(group.primary, group.replica)
    assert "accepted" == make(fast).verify("alice", totp, totp.generate(START)).reason
    with pytest.raises(StoreError, match="no Redis replica acknowledged"):
        make(durable).verify("bob", totp, totp.generate(START))
    fail_over(group)
    # The acknowledged mark is gone: the same code is accepted a second time.
    assert "accepted" == settle_after_failover(make(fast), "alice", totp)
    # Bob was never told "accepted", so nothing acknowledged was lost for him.
    assert "accepted" == settle_after_failover(make(fast), "bob", totp)
    client.close()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_failover_keeps_every_acknowledged_durable_mark(
    own_sentinel_group: SentinelGroup,
) -> None:
    """durable=True under load: the primary is crashed mid-stream; every code that was
    acknowledged as accepted is "replayed" on the promoted replica, and every other call was a
    StoreError, never a verdict (the promoted replica has no replica of its own, so durable
    calls keep failing closed there)."""
    group, totp = own_sentinel_group, TOTP(SECRET)
    client = sentinel_master(group)
    verifier = make(RedisStore(client, durable=True, durable_timeout=0.5))
    code = totp.generate(START)
    acknowledged: list[str] = []
    errors = 0
    stop = threading.Event()

    def load() -> None:
        nonlocal errors
        for n in range(100_000):
            if stop.is_set():
                return
            try:
                reason = verifier.verify(f"user{n}", totp, code).reason
            except StoreError:
                errors += 1
                time.sleep(0.01)
                continue
            assert "accepted" == reason
            acknowledged.append(f"user{n}")

    worker = threading.Thread(target=load)
    worker.start()
    try:
        wait_for(lambda: len(acknowledged) >= 50, "50 acknowledged verifications")
        fail_over(group)
    finally:
        stop.set()
        worker.join(timeout=30)
    assert errors > 0  # the crash was seen
    check = make(RedisStore(sentinel_master(group)))
    replayed = [check.verify(user, totp, code).reason for user in acknowledged]
    assert ["replayed"] * len(acknowledged) == replayed
    client.close()
