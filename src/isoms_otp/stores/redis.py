"""The fleet store: Redis, one Lua script per verification (optional extra ``isoms-otp[redis]``)."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any, Final

from isoms_otp._limits import MAX_STORE_TIMEOUT, seconds_in
from isoms_otp.exceptions import ConfigurationError, MissingExtraError, StoreError
from isoms_otp.throttle import ThrottlePolicy

from ._base import (
    EMPTY_BUDGET,
    EMPTY_MARK,
    EMPTY_RECOVERY,
    Attempt,
    Budget,
    Mark,
    RecoverySet,
    Settlement,
    Snapshot,
    StoreFinding,
)

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

from ._redis_check import check_redis
from ._redis_client import check_client

__all__ = ["KEY_VERSION", "LEGACY_PREFIX", "RedisStore"]

#: The version in every key this store writes (``isoms-otp:v2:...``); bumped with the layout.
KEY_VERSION: Final = 2
#: Where version-1 stores kept one hash per user; read (never written) as a floor for marks.
LEGACY_PREFIX: Final = "isoms-otp:user:"
_KINDS: Final = {"totp": "t", "hotp": "h", "recovery": "r", "first_factor": "f"}

# The rules of stores._base.decide, as one script: Redis runs a script atomically, so the read
# and the writes of an attempt cannot interleave with another client's. Everything is read and
# checked before the first write, so a script error never leaves a half-written user. Marks
# stay decimal strings because Lua numbers are doubles and HOTP counters reach 2**64-1.
# KEYS: the user's budget, the (user, source) pair, the credential's mark (or the recovery
# set), and optionally the version-1 hash of the user. ARGV: now, kind, claim ('' for none),
# failure, keep-until, recovery set id, longest wait, then the user schedule (its length
# first) and the pair schedule (its length first); each schedule's last entry is its lock.
_SETTLE: Final = """
local now = tonumber(ARGV[1])
local kind, claim, failure, keep, set_id = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local longest = tonumber(ARGV[7])
local n1 = tonumber(ARGV[8])
local n2 = tonumber(ARGV[9 + n1])
local function number(text)
  if not text then return 0 end
  local value = tonumber(text)
  if not value then error('isoms-otp: a stored number is corrupt') end
  return value
end
local function decimal(mark)
  if mark and not (mark == '0' or string.match(mark, '^[1-9]%d*$')) then
    error('isoms-otp: a stored mark is corrupt')
  end
  return mark
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
local function fmt(value) return string.format('%.17g', value) end
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
local user = redis.call('HMGET', KEYS[1], 'f', 'b', 'k')
local pair = redis.call('HMGET', KEYS[2], 'f', 'b', 'k')
local uf, ub, uk = number(user[1]), number(user[2]), number(user[3])
local pf, pb, pk = number(pair[1]), number(pair[2]), number(pair[3])
local ublock = math.min(ub, now + longest)
if uf >= 100 then ublock = math.huge end
local wait = math.max(ublock, math.min(pb, now + longest))
if wait > now then
  -- A wait beyond the policy's longest from now was set by a clock that ran ahead: write the
  -- clamp back, so that the shortened wait ends instead of sliding along with `now`.
  local function clamp(key, f, b, k)
    if b > now + longest then
      local kept = math.min(k, now + longest + longest)
      redis.call('HSET', key, 'b', fmt(now + longest), 'k', fmt(kept))
      if f < 100 or key ~= KEYS[1] then expire(key, kept - now) end
    end
  end
  clamp(KEYS[1], uf, ub, uk)
  clamp(KEYS[2], pf, pb, pk)
  local spent = uf
  if kind == 'f' then spent = pf end
  local left = 'inf'
  if wait < math.huge then left = fmt(wait - now) end
  return {'throttled', left, string.format('%d', spent), 0}
end
-- Count one failure on budget `key`; `at` is the index of its schedule's length in ARGV.
local function fail(key, failures, kept, at, ceiling)
  local limit = tonumber(ARGV[at])
  local lock = tonumber(ARGV[at + limit])
  failures = failures + 1
  local delay = tonumber(ARGV[at + math.min(failures, limit)])
  local until_ = 0
  if delay > 0 then until_ = now + delay end
  kept = math.max(math.min(kept, now + lock + lock), now + delay + lock)
  redis.call('HSET', key, 'f', string.format('%d', failures), 'b', fmt(until_), 'k', fmt(kept))
  if ceiling and failures >= 100 then
    redis.call('PERSIST', key)
  else
    expire(key, kept - now)
  end
  local locked = 0
  if failures >= limit then locked = 1 end
  return {string.format('%d', failures), locked}
end
if kind == 'f' then
  local spent = fail(KEYS[2], pf, pk, 9 + n1, false)
  return {'invalid', '', spent[1], spent[2]}
end
if claim ~= '' then
  local accepted = false
  if kind == 'r' then
    local stored = redis.call('HGET', KEYS[3], 'i')
    local fresh = stored ~= set_id
    if fresh or not redis.call('HGET', KEYS[3], 'u' .. claim) then
      if fresh then redis.call('DEL', KEYS[3]) end
      redis.call('HSET', KEYS[3], 'i', set_id, 'u' .. claim, '1')
      accepted = true
    end
  else
    local state = redis.call('HMGET', KEYS[3], 't', 'h', 'k')
    local t, h, k = decimal(state[1]), decimal(state[2]), number(state[3])
    local mark = t
    if kind == 'h' then mark = h end
    if KEYS[4] then
      local old = decimal(redis.call('HGET', KEYS[4], kind))
      if old and (not mark or above(old, mark)) then mark = old end
    end
    if not mark or above(claim, mark) then
      if kind == 't' then
        k = math.max(k, tonumber(keep))
        redis.call('HSET', KEYS[3], 't', claim, 'k', fmt(k))
      else
        redis.call('HSET', KEYS[3], 'h', claim)
      end
      if kind == 'h' or h then
        redis.call('PERSIST', KEYS[3])
      else
        expire(KEYS[3], k - now)
      end
      accepted = true
    end
  end
  if accepted then
    redis.call('DEL', KEYS[1], KEYS[2])
    return {'accepted', '', '0', 0}
  end
end
local spent = fail(KEYS[1], uf, uk, 8, true)
if claim ~= '' then return {'replayed', '', spent[1], spent[2]} end
return {failure, '', spent[1], spent[2]}
"""

_REASONS: Final = frozenset({"accepted", "invalid", "malformed", "replayed", "throttled"})


def _decoded(value: object) -> str | None:
    if value is None:
        return None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _time(value: object) -> float:
    text = _decoded(value)
    if text is None:
        return 0.0
    try:
        number = float(text)
    except ValueError:
        raise StoreError("the Redis store holds a corrupt time; refusing to guess") from None
    if not math.isfinite(number) or number < 0:
        raise StoreError("the Redis store holds a corrupt time; refusing to guess")
    return number


def _count(value: object) -> int:
    text = _decoded(value)
    if text is None:
        return 0
    if not (text.isascii() and text.isdigit()):
        raise StoreError("the Redis store holds a corrupt failure count; refusing to guess")
    return int(text)


def _decimal(value: object) -> int | None:
    text = _decoded(value)
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()) or (text[0] == "0" and text != "0"):
        raise StoreError("the Redis store holds a corrupt replay mark; refusing to guess")
    return int(text)


def _budget(values: Sequence[object]) -> Budget:
    failures, blocked, keep = values
    if failures is None and blocked is None and keep is None:
        return EMPTY_BUDGET
    return Budget(failures=_count(failures), blocked_until=_time(blocked), keep_until=_time(keep))


def _mark(values: Sequence[object]) -> Mark:
    totp, hotp, keep = values
    if totp is None and hotp is None:
        return EMPTY_MARK
    return Mark(totp_start=_decimal(totp), hotp_counter=_decimal(hotp), keep_until=_time(keep))


def _higher(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else max(a, b)


def _check_seconds(name: str, value: object) -> None:
    """Refuse a time-out that is not a number of seconds from 0 (excluded) to 600."""
    seconds_in(value, name, 0.0, MAX_STORE_TIMEOUT, above_low=True)


def _text(value: float) -> str:
    """Format a time so the script reads back exactly the same double."""
    return repr(float(value))


@functools.lru_cache(maxsize=16)
def _policy_args(policy: ThrottlePolicy) -> tuple[str, ...]:
    """Return the policy as the script's arguments, formatted once per policy.

    Policies are frozen and hashable, and equal policies have equal schedules, so the cache is
    exact; an application has one or two policies, so it stays tiny.
    """
    return (
        _text(policy.longest_wait),
        str(len(policy.schedule)),
        *(_text(delay) for delay in policy.schedule),
        str(len(policy.source_schedule)),
        *(_text(delay) for delay in policy.source_schedule),
    )


def _glob(text: str) -> str:
    """Escape ``text`` for a Redis MATCH pattern."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


#: How many times a durable call resends a script the server says it did not run (NOSCRIPT
#: after a restart or failover; MOVED after a cluster's slots moved).
_RESENDS: Final = 3


class RedisStore:
    """A store in Redis, shared by every backend server that uses the same Redis.

    Each attempt is one Lua script: one round trip, atomic on the server. The keys of one user
    share a hash slot (the user is the ``{...}`` hash tag), so Redis Cluster works: under
    ``prefix`` (default ``isoms-otp:v2:``) come the user's budget, one key per ``(user,
    source)`` pair, one per credential's marks and one for the recovery-code set. Keys without
    an HOTP counter or recovery state expire by themselves once they no longer matter; the
    others persist (``prune`` has nothing to do and returns 0). Use a Redis with persistence
    (AOF) if a restart must not reopen replay of codes used in the last minute and forget
    failure counts.

    ``legacy_prefix`` names where version-1 stores kept one hash per user (``isoms-otp:user:``):
    its marks are read, never written, as a floor for every credential, so that a rolling
    upgrade reopens no code; pass ``None`` once no version-1 key can be left. On Redis Cluster,
    which version 1 did not support, the default reads none (a version-1 key would lie in
    another slot, where one script cannot read it), and any other legacy prefix is a
    :class:`ConfigurationError`.

    ``client`` is a ``redis.Redis`` (either ``decode_responses`` setting works), a Sentinel
    client (``redis.sentinel.Sentinel(...).master_for(name)``) or a
    ``redis.cluster.RedisCluster``. Prefer :meth:`from_url`, which sets time-outs and turns off
    redis-py's automatic retries (a retried script could count one failure twice); build your
    own clients with ``retry=Retry(NoBackoff(), 0)`` and socket time-outs. Every Redis error or
    time-out raises :class:`StoreError`; a reply that was lost after the script ran means the
    code is spent and the user types the next one (fail closed).

    Replication is asynchronous: a primary that dies right after a verification may take the
    new mark (and the failure counts) with it when a replica is promoted. With ``durable=True``
    each settle's script is followed, on the same connection and in the same round trip, by
    ``WAIT 1`` (``WAITAOF 0 1`` on servers that have it, Redis 7.2 and newer: the replica's AOF
    must then be on): unless at least one replica acknowledged the write within
    ``durable_timeout`` seconds the call raises :class:`StoreError`. The script has run by then,
    so an accepted code is spent on the primary; the user types the next code. This narrows the
    loss window to what Redis itself can lose after a replica acknowledged (see the ``WAIT``
    documentation); it costs a replica's latency on every verification and refuses every
    sign-in while no replica answers. ``reset`` is not waited for (losing one leaves a user
    locked: the safe direction).
    """

    __slots__ = ("_client", "_durable", "_legacy", "_prefix", "_settle", "_wait_ms", "_waitaof")

    def __init__(
        self,
        client: redis.Redis | RedisCluster,
        *,
        prefix: str = "isoms-otp:v2:",
        legacy_prefix: str | None = LEGACY_PREFIX,
        durable: bool = False,
        durable_timeout: float = 0.5,
    ) -> None:
        check_client(client)  # asyncio clients, no socket timeout, retries that resend scripts
        if not isinstance(prefix, str) or not prefix or "{" in prefix or "}" in prefix:
            raise ConfigurationError(
                "prefix must be a non-empty str without braces, such as 'isoms-otp:v2:'"
            )
        if legacy_prefix is not None and (not isinstance(legacy_prefix, str) or not legacy_prefix):
            raise ConfigurationError("legacy_prefix must be a non-empty str or None")
        if legacy_prefix is not None and isinstance(client, RedisCluster):
            if legacy_prefix != LEGACY_PREFIX:
                raise ConfigurationError(
                    "on Redis Cluster leave legacy_prefix out (or None): version-1 keys lie in "
                    "other hash slots, so one script cannot read them (see docs/stores.md)"
                )
            legacy_prefix = None  # version 1 ran on no cluster: there is nothing to read
        if not isinstance(durable, bool):
            raise TypeError(f"durable must be True or False, not {type(durable).__name__}")
        _check_seconds("durable_timeout", durable_timeout)
        self._client = client
        self._prefix = prefix
        self._legacy = legacy_prefix
        self._durable = durable
        self._wait_ms = max(1, math.ceil(durable_timeout * 1000))  # WAIT 0 would wait for ever
        self._waitaof: bool | None = None  # found out on the first durable call
        try:
            self._settle = client.register_script(_SETTLE)
        except AttributeError:
            raise TypeError(
                f"client must be a redis.Redis client, not {type(client).__name__}"
            ) from None

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "isoms-otp:v2:",
        legacy_prefix: str | None = LEGACY_PREFIX,
        timeout: float = 2.0,
        durable: bool = False,
        **options: Any,
    ) -> RedisStore:
        """Connect to ``url`` (``redis://``, ``rediss://`` or ``unix://``) with ``timeout`` seconds.

        ``options`` go to ``redis.Redis.from_url``. No connection is made until first use, so a
        wrong URL or a down server surfaces as :class:`StoreError` from the first verification.
        With ``durable=True`` a replica gets half of ``timeout`` to acknowledge each settle.
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
        return cls(
            client,
            prefix=prefix,
            legacy_prefix=legacy_prefix,
            durable=durable,
            durable_timeout=timeout / 2,
        )

    def __repr__(self) -> str:
        durable = ", durable=True" if self._durable else ""
        return f"RedisStore(prefix={self._prefix!r}{durable})"

    def _run(self, script: Script, keys: list[str], args: list[str]) -> Any:
        """Run ``script``; when durable, wait for a replica in the same round trip."""
        if not self._durable:
            return script(keys=keys, args=args)
        # WAIT counts the writes of its own connection, so it must follow the script on the
        # connection that ran it: a pipeline of two commands on the keys' node makes sure.
        for _attempt in range(_RESENDS):
            node = self._node(keys[0])
            pipe = node.pipeline(transaction=False)
            pipe.evalsha(script.sha, len(keys), *keys, *args)
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
            version = str(node.info("server").get("redis_version", "0"))
            parts = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
            self._waitaof = parts >= (7, 2)
        return self._waitaof

    def _fail(self, exc: Exception) -> StoreError:
        return StoreError(
            f"the Redis store failed ({type(exc).__name__}); the verification was refused"
        )

    def _user(self, user: str) -> str:
        # The length makes the key unambiguous whatever the user contains; the braces make the
        # user the hash tag, so that every key of one user lies in one Cluster slot.
        return f"{self._prefix}{len(user)}{{{user}}}"

    def _keys(self, user: str, source: str, kind: str, credential: str) -> list[str]:
        base = self._user(user)
        third = f"{base}:r" if kind == "recovery" else f"{base}:c:{credential}"
        keys = [f"{base}:u", f"{base}:s:{source}", third]
        if self._legacy is not None and kind in ("totp", "hotp"):
            keys.append(self._legacy + user)
        return keys

    def settle(self, attempt: Attempt) -> Settlement:
        """Decide one attempt with one Lua script (one round trip)."""
        kind = attempt.kind
        claim = attempt.claim
        args = [
            _text(attempt.now),
            _KINDS[kind],
            "" if claim is None else str(claim),
            attempt.failure,
            _text(attempt.keep_until),
            attempt.credential if kind == "recovery" else "",
            *_policy_args(attempt.policy),
        ]
        keys = self._keys(attempt.user, attempt.source, kind, attempt.credential)
        try:
            reply = self._run(self._settle, keys, args)
        except (redis.RedisError, ValueError, TypeError) as exc:
            raise self._fail(exc) from exc
        return _settlement(reply)

    def snapshot(self, user: str, *, source: str = "", credential: str = "") -> Snapshot:
        """Read what ``decide`` would see for these keys (one pipelined round trip)."""
        base = self._user(user)
        try:
            with self._client.pipeline(transaction=False) as pipe:
                pipe.hmget(f"{base}:u", ["f", "b", "k"])
                pipe.hmget(f"{base}:s:{source}", ["f", "b", "k"])
                pipe.hmget(f"{base}:c:{credential}", ["t", "h", "k"])
                pipe.hgetall(f"{base}:r")
                if self._legacy is not None:  # in the same round trip
                    pipe.hmget(self._legacy + user, ["t", "h"])
                replies = pipe.execute()
            budget, pair, mark, recovery = replies[:4]
            legacy = replies[4] if self._legacy is not None else None
        except (redis.RedisError, ValueError, TypeError) as exc:
            raise self._fail(exc) from exc
        own = _mark(mark)
        if legacy is not None:
            own = Mark(
                totp_start=_higher(own.totp_start, _decimal(legacy[0])),
                hotp_counter=_higher(own.hotp_counter, _decimal(legacy[1])),
                keep_until=own.keep_until,
            )
        return Snapshot(
            budget=_budget(budget), pair=_budget(pair), mark=own, recovery=_recovery(recovery)
        )

    def marks(self, user: str) -> dict[str, Mark]:
        """Return every credential mark kept for ``user`` (an admin read: it scans the keys)."""
        base = self._user(user)
        start = len(base) + 3
        found: dict[str, Mark] = {}
        try:
            for key in self._client.scan_iter(match=_glob(base) + ":c:*", count=1000):
                name = _decoded(key) or ""
                found[name[start:]] = _mark(self._client.hmget(key, ["t", "h", "k"]))
        except (redis.RedisError, ValueError, TypeError) as exc:
            raise self._fail(exc) from exc
        return {name: mark for name, mark in found.items() if mark != EMPTY_MARK}

    def reset(self, user: str, *, now: float) -> None:
        """Clear ``user``'s OTP budget and every pair budget of ``user``; the marks stay."""
        del now  # cleared budgets are deleted outright
        base = self._user(user)
        try:
            keys = [f"{base}:u"]
            keys.extend(self._client.scan_iter(match=_glob(base) + ":s:*", count=1000))
            self._client.delete(*keys)
        except (redis.RedisError, ValueError, TypeError) as exc:  # as settle: unencodable keys
            raise self._fail(exc) from exc

    def check(self) -> list[StoreFinding]:
        """Return findings about the deployment that would lose replay marks or lock-outs.

        Reads what the server allows (``CONFIG GET``, ``INFO replication``; nothing changes):
        an evicting ``maxmemory-policy``, no persistence, a replica; says what it could not
        read. A Cluster is checked primary by primary. See docs/verification.md.
        """
        return check_redis(self._client)

    def prune(self, now: float) -> int:
        """Return 0: Redis expires keys that no longer matter by itself."""
        del now  # the contract's argument; Redis measures expiry with its own clock
        return 0

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()


def _recovery(fields: dict[object, object]) -> RecoverySet:
    if not fields:
        return EMPTY_RECOVERY
    used = 0
    set_id = ""
    for name, value in fields.items():
        key = _decoded(name) or ""
        if key == "i":
            set_id = _decoded(value) or ""
        elif key.startswith("u") and key[1:].isascii() and key[1:].isdigit():
            used |= 1 << int(key[1:])
        else:
            raise StoreError("the Redis store holds a corrupt recovery record; refusing it")
    return RecoverySet(set_id=set_id, used=used)


def _settlement(reply: object) -> Settlement:
    """Check the script's reply ``[reason, wait, failures, locked]`` and turn it into a value."""
    if not isinstance(reply, list) or len(reply) != 4:
        raise StoreError("the Redis store gave an unexpected reply; the verification was refused")
    reason, wait, failures, locked = (_decoded(part) for part in reply)
    if reason not in _REASONS or failures is None or not failures.isdigit():
        raise StoreError("the Redis store gave an unexpected reply; the verification was refused")
    retry: float | None = None
    if reason == "throttled":
        try:
            retry = float(wait or "")
        except ValueError:
            retry = None
        if retry is None or not retry > 0:
            raise StoreError(
                "the Redis store gave an unexpected reply; the verification was refused"
            )
    return Settlement(
        reason=reason,  # type: ignore[arg-type]
        retry_after=retry,
        failures=int(failures),
        locked=locked == "1",
    )
