"""The real-server fixtures start, answer, and are what the store tests think they are."""

from __future__ import annotations

import pytest
import redis
import sqlalchemy as sa
from redis.cluster import RedisCluster
from redis.sentinel import Sentinel

from servers import MariaDBServer, PostgresServer, RedisClusterNodes, SentinelGroup

pytestmark = pytest.mark.servers


def test_postgres_answers(postgres_session: PostgresServer) -> None:
    """PostgreSQL answers on loopback as the unprivileged test account."""
    engine = sa.create_engine(postgres_session.url)
    with engine.connect() as conn:
        assert ("isoms", False) == tuple(
            conn.execute(
                sa.text("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
            ).one()
        )
        assert conn.execute(sa.text("SHOW server_version")).scalar_one().startswith("15")
    engine.dispose()


def test_mariadb_answers(mariadb_session: MariaDBServer) -> None:
    """MariaDB answers on loopback as the test account, which has only its own database."""
    engine = sa.create_engine(mariadb_session.url)
    with engine.connect() as conn:
        assert "MariaDB" in conn.execute(sa.text("SELECT VERSION()")).scalar_one()
        grants = " ".join(row[0] for row in conn.execute(sa.text("SHOW GRANTS")))
        assert "ON `isoms`.*" in grants
        assert "ON *.*" not in grants.replace("USAGE ON *.*", "")
    engine.dispose()


def test_cluster_answers(redis_cluster_session: RedisClusterNodes) -> None:
    """Three masters share the slots, each with a replica; keys land on different nodes."""
    nodes = [redis.cluster.ClusterNode(h, p) for h, p in redis_cluster_session.startup_nodes]
    client = RedisCluster(startup_nodes=nodes)
    try:
        primaries = client.get_primaries()
        assert 3 == len(primaries)
        for primary in primaries:  # each with its replica, which WAIT (durable=True) needs
            assert 1 == client.get_redis_connection(primary).info("replication")["connected_slaves"]
        owners = {client.get_node_from_key(f"key{n}").name for n in range(50)}
        assert 3 == len(owners)
        client.set("smoke", "1")
        assert b"1" == client.get("smoke")
    finally:
        client.close()


def test_sentinel_answers(sentinel_session: SentinelGroup) -> None:
    """The sentinels agree on the primary and see its replica."""
    sentinel = Sentinel(sentinel_session.sentinel_addresses, socket_timeout=2)
    assert ("127.0.0.1", sentinel_session.primary.port) == sentinel.discover_master("isoms")
    assert [("127.0.0.1", sentinel_session.replica.port)] == sentinel.discover_slaves("isoms")
    master = sentinel.master_for("isoms", socket_timeout=2)
    master.set("smoke", "1")
    assert 1 == master.wait(1, 2000)
    master.close()
