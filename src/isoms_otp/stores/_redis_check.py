"""The deployment check of a Redis store: what can silently lose replay marks or lock-outs.

``check_redis(client)`` reads (never changes) the server's configuration and role and returns
:class:`StoreFinding` values, as ``SQLiteStore.check()`` does:

- ``maxmemory-policy`` (serious) other than ``noeviction``: Redis evicts keys to make room
  (``volatile-*`` policies pick ours first: every mark and budget has an expiry); measured, an
  ``allkeys-lru`` Redis forgot 300 of 300 used codes. It stays serious with ``maxmemory 0``:
  a limit can be set at run time (managed services set one), and the policy then applies.
- ``no-persistence`` (serious): neither AOF nor RDB snapshots, so a restart forgets every
  mark, HOTP counter and lock-out: codes typed in the last minutes are accepted again, and a
  locked-out guesser gets a fresh budget.
- ``no-aof`` (warning): RDB snapshots only, so a restart forgets what changed since the last
  snapshot (minutes): recent codes can be replayed and recent failures are forgotten.
- ``appendfsync`` (warning): AOF with ``appendfsync no`` leaves flushing to the OS (about 30 s
  lost in a power cut); ``everysec`` (at most one second) and ``always`` are fine.
- ``replica`` (serious): the server replicates another one; its writes fail (``READONLY``)
  or, with ``replica-read-only no``, stay local and are overwritten by the primary.
- ``config-unreadable`` / ``role-unreadable`` (info): the server refused ``CONFIG GET`` or
  ``INFO replication`` (managed Redis often disables ``CONFIG``); what they would have checked
  is named, so the operator can check it in the provider's console.
- ``unreachable`` (serious): nothing could be read at all.

A Redis Cluster client is checked node by node (every primary), each finding naming its node.
"""

from __future__ import annotations

from typing import Any, Final

import redis
from redis.cluster import RedisCluster

from ._base import StoreFinding

__all__ = ["check_redis"]

_CONFIG: Final = ("maxmemory-policy", "maxmemory", "appendonly", "appendfsync", "save")


def check_redis(client: redis.Redis | RedisCluster) -> list[StoreFinding]:
    """Return what about the Redis behind ``client`` can lose marks or lock-outs.

    Nothing is changed; what could not be read is an ``"info"`` finding, and a server that
    cannot be reached at all is one ``"serious"`` finding (``unreachable``).
    """
    if isinstance(client, RedisCluster):
        primaries = client.get_primaries()  # type: ignore[no-untyped-call, unused-ignore]
        nodes = [(node.name, node.redis_connection) for node in primaries]
        findings: list[StoreFinding] = []
        for name, node in nodes:
            findings += _check_node(node, f"node {name}: ", cluster=True)
        return findings
    return _check_node(client, "", cluster=False)


def _unreachable(exc: Exception, where: str) -> StoreFinding:
    return StoreFinding(
        rule="unreachable",
        severity="serious",
        message=f"{where}could not reach Redis ({type(exc).__name__}); nothing was checked: "
        "check the URL, the network and the credentials",
    )


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _check_node(client: Any, where: str, *, cluster: bool) -> list[StoreFinding]:
    findings: list[StoreFinding] = []
    try:
        client.ping()
        config = _read_config(client, where, findings)
        if not cluster:  # a cluster's replicas are never the node a client writes to
            findings += _role_findings(client, where)
    except redis.RedisError as exc:  # a ResponseError is handled where it is a refusal
        return [_unreachable(exc, where)]
    findings += _policy_findings(config, where)
    findings += _persistence_findings(config, where)
    return findings


def _read_config(client: Any, where: str, findings: list[StoreFinding]) -> dict[str, str]:
    config: dict[str, str] = {}
    try:
        for name in _CONFIG:
            config |= {_text(k): _text(v) for k, v in client.config_get(name).items()}
    except redis.ResponseError as exc:  # ACLs (NoPermissionError) or a renamed CONFIG
        findings.append(
            StoreFinding(
                rule="config-unreadable",
                severity="info",
                message=f"{where}the server refused CONFIG GET ({type(exc).__name__}), so "
                "maxmemory-policy (must be noeviction) and persistence (appendonly yes, "
                "appendfsync everysec) were not checked: check them with your provider",
            )
        )
        return {}
    missing = [name for name in _CONFIG if name not in config]
    if missing:
        findings.append(
            StoreFinding(
                rule="config-unreadable",
                severity="info",
                message=f"{where}CONFIG GET gave no value for {', '.join(missing)}, so what "
                "they decide was not checked: check them with your provider",
            )
        )
    return config


def _policy_findings(config: dict[str, str], where: str) -> list[StoreFinding]:
    policy = config.get("maxmemory-policy")
    if policy is None or policy == "noeviction":
        return []
    limit = config.get("maxmemory", "")
    now = " (maxmemory is 0 today: it applies once a limit is set)" if limit == "0" else ""
    return [
        StoreFinding(
            rule="maxmemory-policy",
            severity="serious",
            message=f"{where}maxmemory-policy is {policy!r}{now}: when memory is full Redis "
            "evicts keys (volatile-* policies pick ours first: marks and budgets expire), "
            "and an evicted mark lets its code be accepted again; set maxmemory-policy "
            "noeviction, or give isoms-otp a Redis of its own",
        )
    ]


def _persistence_findings(config: dict[str, str], where: str) -> list[StoreFinding]:
    aof = config.get("appendonly")
    if aof is None:
        return []
    if aof == "yes":
        fsync = config.get("appendfsync")
        if fsync is None or fsync in ("everysec", "always"):
            return []
        return [
            StoreFinding(
                rule="appendfsync",
                severity="warning",
                message=f"{where}appendfsync is {fsync!r}: the OS decides when the AOF "
                "reaches the disk, and a power cut can forget about 30 s of used codes and "
                "failures; set appendfsync everysec",
            )
        ]
    if config.get("save", ""):
        return [
            StoreFinding(
                rule="no-aof",
                severity="warning",
                message=f"{where}appendonly is no (RDB snapshots only): a restart forgets the "
                "codes used and failures counted since the last snapshot, and those codes "
                "are accepted again; set appendonly yes",
            )
        ]
    return [
        StoreFinding(
            rule="no-persistence",
            severity="serious",
            message=f"{where}neither AOF nor RDB snapshots are on: a restart forgets every "
            "replay mark, HOTP counter and lock-out; set appendonly yes "
            "(appendfsync everysec)",
        )
    ]


def _role_findings(client: Any, where: str) -> list[StoreFinding]:
    try:
        info = client.info("replication")
    except redis.ResponseError as exc:
        return [
            StoreFinding(
                rule="role-unreadable",
                severity="info",
                message=f"{where}the server refused INFO replication ({type(exc).__name__}), "
                "so whether it is a primary was not checked",
            )
        ]
    role = _text(info.get("role", ""))
    if role not in ("slave", "replica"):
        return []
    primary = f"{_text(info.get('master_host', '?'))}:{_text(info.get('master_port', '?'))}"
    return [
        StoreFinding(
            rule="replica",
            severity="serious",
            message=f"{where}this server is a replica of {primary}: its writes fail (READONLY) "
            "or, with replica-read-only no, are never seen by the primary; point the store "
            "at the primary (or use Sentinel's master_for)",
        )
    ]
