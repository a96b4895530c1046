"""The throttle policy: exponential back-off after failures, then a lock."""

from __future__ import annotations

from dataclasses import dataclass, field

from ._limits import finite_seconds, shown
from .exceptions import ConfigurationError

__all__ = ["MAX_FAILURES_CEILING", "ThrottlePolicy"]

#: NIST SP 800-63B section 5.2.2: at most 100 consecutive failed attempts on one account.
MAX_FAILURES_CEILING = 100
#: Ten years: longer waits are a configuration mistake (use ``Verifier.reset`` to unlock early).
_MAX_SECONDS = 10 * 365 * 24 * 3600.0


def _seconds(value: object, name: str, *, positive: bool) -> float:
    number = finite_seconds(value, name)
    low_ok = number > 0 if positive else number >= 0
    if not (low_ok and number <= _MAX_SECONDS):
        floor = "greater than 0" if positive else "0 or more"
        raise ConfigurationError(
            f"{name} must be {floor} and at most {_MAX_SECONDS:.0f} seconds (got {value!r})"
        )
    return number


@dataclass(frozen=True, slots=True, kw_only=True)
class ThrottlePolicy:
    """How a :class:`Verifier` slows down and then stops guessing, per user.

    After the n-th consecutive failure (wrong, malformed or replayed code) the user must wait
    ``min(base_delay * 2**(n-1), max_delay)`` seconds before the next attempt is even looked at;
    ``base_delay=0`` turns this back-off off. The ``max_failures``-th consecutive failure locks
    the user for ``lock_duration`` seconds; while the count stays at or above ``max_failures``,
    every further failure locks again, so a locked account yields one guess per
    ``lock_duration``. Only a success or ``Verifier.reset(user)`` clears the count.

    ``max_failures`` is an int from 1 to 100 (NIST SP 800-63B's ceiling); delays are finite
    seconds with ``max_delay >= base_delay``. Raises :class:`ConfigurationError` (``TypeError``
    for wrong types). ``schedule`` holds the precomputed wait after 1..``max_failures`` failures;
    stores apply it inside their atomic operation.
    """

    max_failures: int = 10
    base_delay: float = 1.0
    max_delay: float = 300.0
    lock_duration: float = 24 * 3600.0
    schedule: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if type(self.max_failures) is not int:
            raise TypeError(f"max_failures must be an int, not {type(self.max_failures).__name__}")
        if not 1 <= self.max_failures <= MAX_FAILURES_CEILING:
            raise ConfigurationError(
                f"max_failures must be from 1 to {MAX_FAILURES_CEILING} "
                f"(NIST SP 800-63B's ceiling; got {shown(self.max_failures)})"
            )
        base = _seconds(self.base_delay, "base_delay", positive=False)
        ceiling = _seconds(self.max_delay, "max_delay", positive=False)
        lock = _seconds(self.lock_duration, "lock_duration", positive=True)
        if ceiling < base:
            raise ConfigurationError(
                f"max_delay ({ceiling}) must not be less than base_delay ({base})"
            )
        setter = object.__setattr__
        setter(self, "base_delay", base)
        setter(self, "max_delay", ceiling)
        setter(self, "lock_duration", lock)
        # min() before the power would overflow for 100 failures; 2.0**99 is still finite.
        backoff = tuple(min(base * 2.0**n, ceiling) for n in range(self.max_failures - 1))
        setter(self, "schedule", (*backoff, lock))

    def delay_after(self, failures: int) -> float:
        """Return the wait in seconds after ``failures`` (>= 1) consecutive failures."""
        return self.schedule[min(failures, self.max_failures) - 1]
