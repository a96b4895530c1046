"""The throttle policy: exponential back-off after failures, then a lock, for two budgets."""

from __future__ import annotations

from dataclasses import dataclass, field

from ._limits import (
    MAX_FAILURES_CEILING,
    MAX_SOURCE_FAILURES,
    MAX_WAIT_SECONDS,
    integer_in,
    seconds_in,
)
from .exceptions import ConfigurationError

__all__ = ["MAX_FAILURES_CEILING", "MAX_SOURCE_FAILURES", "ThrottlePolicy"]

# MAX_FAILURES_CEILING and MAX_SOURCE_FAILURES live in _limits with every other bound; they
# stay importable from here, where they were first documented.


def _seconds(value: object, name: str, *, positive: bool) -> float:
    floor = "greater than 0" if positive else "0 or more"
    return seconds_in(
        value,
        name,
        0.0,
        MAX_WAIT_SECONDS,
        above_low=positive,
        bounds=f"be {floor} and at most ten years, {MAX_WAIT_SECONDS:.0f} seconds",
    )


def _count(value: object, name: str, ceiling: int, why: str) -> int:
    return integer_in(value, name, 1, ceiling, hint=f"; {why}")


def _backoff(base: float, ceiling: float, limit: int, lock: float) -> tuple[float, ...]:
    # min() before the power would overflow for 100 failures; 2.0**99 is still finite.
    return (*(min(base * 2.0**n, ceiling) for n in range(limit - 1)), lock)


@dataclass(frozen=True, slots=True, kw_only=True)
class ThrottlePolicy:
    """How a :class:`Verifier` slows down and then stops guessing: every number in one place.

    Two budgets, both with exponential back-off and then a lock:

    - **Codes, per user.** After the n-th consecutive failed code (wrong, malformed or replayed
      TOTP/HOTP code or recovery code), from any source and for any of the user's
      credentials, the user waits ``min(base_delay * 2**(n-1), max_delay)`` seconds before the
      next attempt is even looked at; the ``max_failures``-th locks the user for
      ``lock_duration`` seconds, and while the count stays at or above ``max_failures`` every
      further failure locks again (one guess per ``lock_duration``). At 100 consecutive failures
      (NIST SP 800-63B's ceiling) the user stays locked until ``Verifier.reset``. Only someone
      past the password can spend this budget.
    - **First-factor failures, per (user, source).** Wrong passwords recorded with
      ``Verifier.record_failure`` back off the same way and lock that pair after
      ``source_max_failures`` (1-10) failures for ``source_lock_duration`` seconds. They never
      lock the person: the same user from another source is unaffected.

    ``base_delay=0`` turns back-off off. Only a success or ``Verifier.reset(user)`` clears a
    count. ``max_failures`` is an int from 1 to 100; delays are finite seconds with
    ``max_delay >= base_delay``, at most ten years. Raises :class:`ConfigurationError`
    (``TypeError`` for wrong types). ``schedule`` and ``source_schedule`` hold the precomputed
    waits after 1..n failures; ``longest_wait`` the longest wait either budget can impose (a
    stored wait longer than that from now, left by a clock that ran ahead, is clamped to it).
    """

    max_failures: int = 10
    base_delay: float = 1.0
    max_delay: float = 300.0
    lock_duration: float = 24 * 3600.0
    source_max_failures: int = MAX_SOURCE_FAILURES
    source_lock_duration: float = 3600.0
    schedule: tuple[float, ...] = field(init=False, repr=False, compare=False)
    source_schedule: tuple[float, ...] = field(init=False, repr=False, compare=False)
    longest_wait: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _count(self.max_failures, "max_failures", MAX_FAILURES_CEILING, "NIST SP 800-63B's ceiling")
        _count(
            self.source_max_failures,
            "source_max_failures",
            MAX_SOURCE_FAILURES,
            "a pair locks after at most 10 wrong passwords",
        )
        base = _seconds(self.base_delay, "base_delay", positive=False)
        ceiling = _seconds(self.max_delay, "max_delay", positive=False)
        lock = _seconds(self.lock_duration, "lock_duration", positive=True)
        source_lock = _seconds(self.source_lock_duration, "source_lock_duration", positive=True)
        if ceiling < base:
            raise ConfigurationError(
                f"max_delay ({ceiling}) must not be less than base_delay ({base})"
            )
        setter = object.__setattr__
        setter(self, "base_delay", base)
        setter(self, "max_delay", ceiling)
        setter(self, "lock_duration", lock)
        setter(self, "source_lock_duration", source_lock)
        setter(self, "schedule", _backoff(base, ceiling, self.max_failures, lock))
        setter(
            self,
            "source_schedule",
            _backoff(base, ceiling, self.source_max_failures, source_lock),
        )
        setter(self, "longest_wait", max(lock, source_lock, ceiling))
