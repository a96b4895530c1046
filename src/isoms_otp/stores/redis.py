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


class RedisStore:
    """A store in Redis, shared by every backend server that uses the same Redis.

    Each verification is one Lua script: one round trip, atomic on the server. A user is one
    hash under ``prefix + user``. Keys without an HOTP counter expire by themselves once their
    TOTP mark and failures no longer matter; keys with an HOTP counter persist (``prune`` has
    nothing to do and returns 0). Use a Redis with persistence (AOF) if a restart
    must not reopen replay of codes used in the last minute and forget failure counts.

    ``client`` is a ``redis.Redis`` (either ``decode_responses`` setting works); prefer
    :meth:`from_url`, which sets time-outs and turns off redis-py's automatic retries (a retried
    script could count one failure twice). Every Redis error or time-out raises
    :class:`StoreError`; a reply that was lost after the script ran means the code is spent and
    the user types the next one (fail closed).
    """

    __slots__ = ("_client", "_prefix", "_reset", "_settle")

    def __init__(self, client: redis.Redis, *, prefix: str = "isoms-otp:user:") -> None:
        if not isinstance(prefix, str) or not prefix:
            raise ConfigurationError("prefix must be a non-empty str, such as 'isoms-otp:user:'")
        self._client = client
        self._prefix = prefix
        try:
            self._settle = client.register_script(_SETTLE)
            self._reset = client.register_script(_RESET)
        except AttributeError:
            raise TypeError(
                f"client must be a redis.Redis client, not {type(client).__name__}"
            ) from None

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str = "isoms-otp:user:", timeout: float = 2.0, **options: Any
    ) -> RedisStore:
        """Connect to ``url`` (``redis://``, ``rediss://`` or ``unix://``) with ``timeout`` seconds.

        ``options`` go to ``redis.Redis.from_url``. No connection is made until first use, so a
        wrong URL or a down server surfaces as :class:`StoreError` from the first verification.
        """
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError(f"timeout must be a number of seconds, not {type(timeout).__name__}")
        if not 0 < timeout <= 600:
            raise ConfigurationError(f"timeout must be from 0 to 600 seconds (got {timeout!r})")
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
        return cls(client, prefix=prefix)

    def __repr__(self) -> str:
        return f"RedisStore(prefix={self._prefix!r})"

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
            reason, retry = self._settle(keys=[self._prefix + user], args=args)
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
            self._reset(keys=[self._prefix + user], args=[_text(now)])
        except (redis.RedisError, ValueError, TypeError) as exc:  # as settle: unencodable keys
            raise self._fail(exc) from exc

    def prune(self, now: float) -> int:
        """Return 0: Redis expires keys that no longer matter by itself."""
        del now  # the contract's argument; Redis measures expiry with its own clock
        return 0

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()
