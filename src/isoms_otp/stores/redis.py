"""The fleet store: Redis, one Lua script per verification (optional extra ``isoms-otp[redis]``)."""

from __future__ import annotations

import functools
import math
from typing import Any, Final

from isoms_otp.exceptions import ConfigurationError, MissingExtraError, StoreError
from isoms_otp.throttle import ThrottlePolicy

from ._base import ACCEPTED, INVALID, MALFORMED, REPLAYED, Failure, Kind, Settlement

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.cluster import RedisCluster
    from redis.commands.core import Script
    from redis.exceptions import MovedError, NoScriptError
    from redis.retry import Retry
except ImportError as exc:  # pragma: no cover - exercised in a subprocess without redis
    raise MissingExtraError(
        "RedisStore needs the redis client library: pip install 'isoms-otp[redis]'"
    ) from exc

__all__ = ["RedisStore"]

#: The hash fields of one user: TOTP mark, HOTP mark, failures, blocked-until, keep-until.
_FIELDS: Final = {"totp": "t", "hotp": "h"}

# The rules of stores._base.decide, as one script: Redis runs a script atomically, so the read
# and the writes of a verification cannot interleave with another client's. Everything is read
# and checked before the first write, so a script error never leaves a half-written user. Marks
# stay decimal strings because Lua numbers are doubles and HOTP counters reach 2**64-1.
_SETTLE: Final = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local field, step, failure, keep = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local state = redis.call('HMGET', key, 'b', field, 'f', 'h', 'k')
local function number(text)
  if not text then return 0 end
  local value = tonumber(text)
  if not value then error('isoms-otp: a stored number is corrupt') end
  return value
end
-- a > b for decimal strings without leading zeros, exact beyond 2**53 and free of the locale
-- collation that Lua's string `>` would use: by length, then 15 digits at a time.
local function above(a, b)
  if #a ~= #b then return #a > #b end
  for i = 1, #a, 15 do
    local x, y = tonumber(string.sub(a, i, i + 14)), tonumber(string.sub(b, i, i + 14))
    if x ~= y then return x > y end
  end
  return false
end
-- Expire `key` `seconds` from now; beyond ~31,000 years (or absurd clocks) just keep it, so that
-- PEXPIRE can never fail after a write.
local function expire(key, seconds)
  local ms = math.ceil(seconds * 1000)
  if ms > 1e15 then
    redis.call('PERSIST', key)
  else
    redis.call('PEXPIRE', key, math.max(1, ms))
  end
end
local blocked, mark, failures = number(state[1]), state[2], number(state[3])
local kept = number(state[5])
if mark and not (mark == '0' or string.match(mark, '^[1-9]%d*$')) then
  error('isoms-otp: a stored mark is corrupt')
end
if blocked > now then
  return {'throttled', string.format('%.17g', blocked - now)}
end
if step ~= '' and (not mark or above(step, mark)) then
  redis.call('HSET', key, field, step, 'f', '0', 'b', '0')
  if field == 't' then
    redis.call('HSET', key, 'k', keep)
  end
  if field == 'h' or state[4] then
    redis.call('PERSIST', key)
  else
    expire(key, tonumber(keep) - now)
  end
  return {'accepted', ''}
end
failures = failures + 1
local delay = tonumber(ARGV[5 + math.min(failures, #ARGV - 5)])
local until_ = 0
if delay > 0 then until_ = now + delay end
-- As decide(): the count is forgotten lock_duration (the schedule's last entry) after the wait.
kept = math.max(kept, now + delay + tonumber(ARGV[#ARGV]))
redis.call('HSET', key, 'f', string.format('%d', failures), 'b', string.format('%.17g', until_),
           'k', string.format('%.17g', kept))
if state[4] then
  redis.call('PERSIST', key)
else
  expire(key, kept - now)
end
if step ~= '' then return {'replayed', ''} end
return {failure, ''}
"""

# Clear failures and lock; keep the marks and give the key back the expiry it would have had.
_RESET: Final = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local state = redis.call('HMGET', key, 'h', 'k', 't')
if not (state[1] or state[2] or state[3]) then
  redis.call('DEL', key)
  return 0
end
local keep = tonumber(state[2] or '0')
if not keep then error('isoms-otp: a stored number is corrupt') end
redis.call('HSET', key, 'f', '0', 'b', '0')
if state[1] then
  redis.call('PERSIST', key)
elseif keep > now then
  local ms = math.ceil((keep - now) * 1000)
  if ms > 1e15 then redis.call('PERSIST', key) else redis.call('PEXPIRE', key, ms) end
else
  redis.call('DEL', key)
end
return 1
"""

_OUTCOMES: Final = {
    name: outcome
    for outcome in (ACCEPTED, INVALID, MALFORMED, REPLAYED)
    for name in (outcome.reason, outcome.reason.encode())
}


def _wait(text: object) -> float | None:
    """Parse the seconds a throttled user must wait; ``None`` if the reply is not one."""
    try:
        wait = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return wait if 0 < wait < math.inf else None


def _check_seconds(name: str, value: object) -> None:
    """Refuse a time-out that is not a number of seconds from 0 (excluded) to 600."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not 0 < value <= 600:
        raise ConfigurationError(f"{name} must be from 0 to 600 seconds (got {value!r})")


def _text(value: float) -> str:
    """Format a time so the script reads back exactly the same double."""
    return repr(float(value))


@functools.lru_cache(maxsize=16)
def _schedule_args(policy: ThrottlePolicy) -> tuple[str, ...]:
    """Return ``policy.schedule`` as the script's arguments, formatted once per policy.

    Policies are frozen and hashable, and equal policies have equal schedules, so the
    cache is exact; an application has one or two policies, so it stays tiny.
    """
    return tuple(_text(delay) for delay in policy.schedule)


#: How many times a durable call resends a script the server says it did not run (NOSCRIPT
#: after a restart or failover; MOVED after a cluster's slots moved).
_RESENDS: Final = 3


class RedisStore:
    """A store in Redis, shared by every backend server that uses the same Redis.

    Each verification is one Lua script: one round trip, atomic on the server. A user is one
    hash under ``prefix + user``: one key per script, so a Redis Cluster works. Keys without an
    HOTP counter expire by themselves once their TOTP mark and failures no longer matter; keys
    with an HOTP counter persist (``prune`` has nothing to do and returns 0). Use a Redis with
    persistence (AOF) if a restart must not reopen replay of codes used in the last minute and
    forget failure counts.

    ``client`` is a ``redis.Redis`` (either ``decode_responses`` setting works), a Sentinel
    client (``redis.sentinel.Sentinel(...).master_for(name)``) or a
    ``redis.cluster.RedisCluster``. Prefer :meth:`from_url`, which sets time-outs and turns off
    redis-py's automatic retries (a retried script could count one failure twice); build your
    own clients with ``retry=Retry(NoBackoff(), 0)`` and socket time-outs. Every Redis error or
    time-out raises :class:`StoreError`; a reply that was lost after the script ran means the
    code is spent and the user types the next one (fail closed).

    Replication is asynchronous: a primary that dies right after a verification may take the
    new mark (and the failure count) with it when a replica is promoted. With ``durable=True``
    each script is followed, on the same connection and in the same round trip, by ``WAIT 1``
    (``WAITAOF 0 1`` on servers that have it, Redis 7.2 and newer: the replica's AOF must then
    be on): unless at least one replica acknowledged the write within ``durable_timeout``
    seconds the call raises :class:`StoreError`. The script has run by then, so an accepted
    code is spent on the primary; the user types the next code. This narrows the loss window to
    what Redis itself can lose after a replica acknowledged (see the ``WAIT`` documentation); it
    costs the replica's latency on every verification and refuses every sign-in while no
    replica answers.
    """

    __slots__ = ("_client", "_durable", "_prefix", "_reset", "_settle", "_wait_ms", "_waitaof")

    def __init__(
        self,
        client: redis.Redis | RedisCluster,
        *,
        prefix: str = "isoms-otp:user:",
        durable: bool = False,
        durable_timeout: float = 0.5,
    ) -> None:
        if not isinstance(prefix, str) or not prefix:
            raise ConfigurationError("prefix must be a non-empty str, such as 'isoms-otp:user:'")
        if not isinstance(durable, bool):
            raise TypeError(f"durable must be True or False, not {type(durable).__name__}")
        _check_seconds("durable_timeout", durable_timeout)
        self._client = client
        self._prefix = prefix
        self._durable = durable
        self._wait_ms = max(1, math.ceil(durable_timeout * 1000))  # WAIT 0 would wait for ever
        self._waitaof: bool | None = None  # found out on the first durable call
        try:
            self._settle = client.register_script(_SETTLE)
            self._reset = client.register_script(_RESET)
        except AttributeError:
            raise TypeError(
                f"client must be a redis.Redis client, not {type(client).__name__}"
            ) from None

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "isoms-otp:user:",
        timeout: float = 2.0,
        durable: bool = False,
        **options: Any,
    ) -> RedisStore:
        """Connect to ``url`` (``redis://``, ``rediss://`` or ``unix://``) with ``timeout`` seconds.

        ``options`` go to ``redis.Redis.from_url``. No connection is made until first use, so a
        wrong URL or a down server surfaces as :class:`StoreError` from the first verification.
        With ``durable=True`` the replica gets half of ``timeout`` to acknowledge each write.
        """
        _check_seconds("timeout", timeout)
        options.setdefault("socket_timeout", timeout)
        options.setdefault("socket_connect_timeout", timeout)
        options.setdefault("retry", Retry(NoBackoff(), 0))
        try:
            client = redis.Redis.from_url(url, **options)
        except ValueError as exc:
            # redis-py's message quotes the URL, which may hold a password.
            raise ConfigurationError(
                "url must be redis://[user:password@]host[:port][/db], rediss://... or unix://..."
            ) from exc
        return cls(client, prefix=prefix, durable=durable, durable_timeout=timeout / 2)

    def __repr__(self) -> str:
        durable = ", durable=True" if self._durable else ""
        return f"RedisStore(prefix={self._prefix!r}{durable})"

    def _run(self, script: Script, key: str, args: list[str]) -> Any:
        """Run ``script`` on ``key``; when durable, wait for a replica in the same round trip."""
        if not self._durable:
            return script(keys=[key], args=args)
        # WAIT counts the writes of its own connection, so it must follow the script on the
        # connection that ran it: a pipeline of two commands on the key's node guarantees that.
        for _attempt in range(_RESENDS):
            node = self._node(key)
            pipe = node.pipeline(transaction=False)
            pipe.evalsha(script.sha, 1, key, *args)
            if self._has_waitaof(node):
                # redis-py < 5 has no waitaof(); the raw command works with every version.
                pipe.execute_command("WAITAOF", 0, 1, self._wait_ms)  # type: ignore[no-untyped-call]
            else:
                pipe.wait(1, self._wait_ms)
            reply, acknowledged = pipe.execute(raise_on_error=False)
            if isinstance(reply, NoScriptError):  # not run: load it and send it again
                node.script_load(script.script)
                continue
            if isinstance(reply, MovedError) and isinstance(self._client, RedisCluster):
                self._client.nodes_manager.initialize()  # not run: the slot moved
                continue
            for result in (reply, acknowledged):
                if isinstance(result, Exception):
                    raise result
            replicas = acknowledged[1] if isinstance(acknowledged, list) else acknowledged
            if not isinstance(replicas, int) or replicas < 1:
                raise StoreError(
                    "no Redis replica acknowledged the write in time (durable=True); the "
                    "verification was refused and a code it used is spent"
                )
            return reply
        raise StoreError("the Redis server kept refusing the script; the verification was refused")

    def _node(self, key: str) -> redis.Redis:
        """Return the plain client of the server that holds ``key``."""
        if isinstance(self._client, RedisCluster):
            node = self._client.get_node_from_key(key)
            found: redis.Redis = self._client.get_redis_connection(node)
            return found
        return self._client

    def _has_waitaof(self, node: redis.Redis) -> bool:
        """Whether the server knows WAITAOF (Redis 7.2+); asked once per store."""
        if self._waitaof is None:
            known = node.execute_command("COMMAND", "INFO", "WAITAOF")  # type: ignore[no-untyped-call]
            self._waitaof = known not in ([None], [], {}, None)
        return self._waitaof

    def _fail(self, exc: Exception) -> StoreError:
        return StoreError(
            f"the Redis store failed ({type(exc).__name__}); the verification was refused"
        )

    def settle(
        self,
        user: str,
        *,
        now: float,
        kind: Kind,
        step: int | None,
        failure: Failure,
        keep_until: float,
        policy: ThrottlePolicy,
    ) -> Settlement:
        """Decide one verification with one Lua script (one round trip)."""
        args = [_text(now), _FIELDS[kind], "" if step is None else str(step), failure]
        args.append(_text(keep_until))
        args.extend(_schedule_args(policy))
        try:
            reason, retry = self._run(self._settle, self._prefix + user, args)
        except (redis.RedisError, ValueError, TypeError) as exc:
            raise self._fail(exc) from exc
        outcome = _OUTCOMES.get(reason)
        if outcome is not None:
            return outcome
        wait = _wait(retry) if reason in ("throttled", b"throttled") else None
        if wait is None:
            raise StoreError(
                "the Redis store gave an unexpected reply; the verification was refused"
            )
        return Settlement(reason="throttled", retry_after=wait)

    def mark(self, user: str, kind: Kind) -> int | None:
        """Return the highest accepted step/counter of ``kind`` for ``user`` (``None``: none)."""
        try:
            value = self._client.hget(self._prefix + user, _FIELDS[kind])
        except (redis.RedisError, ValueError, TypeError) as exc:  # as settle: unencodable keys
            raise self._fail(exc) from exc
        if value is None:
            return None
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
        if not (text.isascii() and text.isdigit()):
            raise StoreError("the Redis store holds a corrupt replay mark; refusing to guess")
        return int(text)

    def blocked_until(self, user: str) -> float:
        """Return the Unix time before which ``user``'s attempts are refused (0: never blocked)."""
        try:
            value = self._client.hget(self._prefix + user, "b")
        except (redis.RedisError, ValueError, TypeError) as exc:  # as settle: unencodable keys
            raise self._fail(exc) from exc
        if value is None:
            return 0.0
        blocked = _wait(value)
        if blocked is None and value not in ("0", b"0"):
            raise StoreError("the Redis store holds a corrupt blocked-until time; refusing it")
        return blocked or 0.0

    def reset(self, user: str, *, now: float) -> None:
        """Clear ``user``'s failures and lock; the replay marks stay."""
        try:
            self._run(self._reset, self._prefix + user, [_text(now)])
        except (redis.RedisError, ValueError, TypeError) as exc:  # as settle: unencodable keys
            raise self._fail(exc) from exc

    def prune(self, now: float) -> int:
        """Return 0: Redis expires keys that no longer matter by itself."""
        del now  # the contract's argument; Redis measures expiry with its own clock
        return 0

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()
