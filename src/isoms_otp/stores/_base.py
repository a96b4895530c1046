"""The store contract: one atomic ``settle`` per verification, plus the reads it needs.

The decision rules live here once, as the pure :func:`decide`; the memory and SQLite stores run it
inside their lock or transaction, and the Redis store runs the same rules as one Lua script.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from isoms_otp.throttle import ThrottlePolicy

__all__ = ["Failure", "Kind", "Reason", "Settlement", "Store", "UserState", "decide", "removable"]

#: Which high-water mark a verification claims: TOTP steps and HOTP counters never mix.
Kind = Literal["totp", "hotp"]
#: Every verdict a verification can end in.
Reason = Literal["accepted", "invalid", "malformed", "replayed", "throttled"]
#: What a store records when no step was matched.
Failure = Literal["invalid", "malformed"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Settlement:
    """What a store decided: the reason, and for ``"throttled"`` the seconds left to wait."""

    reason: Reason
    retry_after: float | None = None


ACCEPTED = Settlement(reason="accepted")
INVALID = Settlement(reason="invalid")
MALFORMED = Settlement(reason="malformed")
REPLAYED = Settlement(reason="replayed")


@dataclass(frozen=True, slots=True, kw_only=True)
class UserState:
    """One user's stored state; absent users are ``UserState()``.

    ``totp``/``hotp`` are the highest accepted step/counter (``None``: nothing accepted yet);
    ``failures`` the consecutive failures; ``blocked_until`` the Unix time before which attempts
    are refused; ``keep_until`` the time after which nothing but the HOTP mark matters (the TOTP
    mark's steps are out of every window, and failures are forgotten).
    """

    totp: int | None = None
    hotp: int | None = None
    failures: int = 0
    blocked_until: float = 0.0
    keep_until: float = 0.0


EMPTY = UserState()


def decide(
    state: UserState,
    *,
    now: float,
    kind: Kind,
    step: int | None,
    failure: Failure,
    keep_until: float,
    policy: ThrottlePolicy,
) -> tuple[UserState | None, Settlement]:
    """Apply one verification to ``state``; return the new state (``None``: unchanged) and why.

    Refuse while blocked; accept only a ``step`` strictly above the mark of ``kind`` (clearing
    the failures and raising the mark); otherwise count a failure (``"replayed"`` when a step
    matched but was used already), set the next back-off or lock from ``policy``, and keep the
    count until ``lock_duration`` after that wait ends.
    """
    if state.blocked_until > now:
        return None, Settlement(reason="throttled", retry_after=state.blocked_until - now)
    mark = state.totp if kind == "totp" else state.hotp
    # UserState(...) rather than dataclasses.replace: this is the hot path of two stores.
    if step is not None and (mark is None or step > mark):
        if kind == "totp":
            new = UserState(totp=step, hotp=state.hotp, keep_until=keep_until)
        else:
            new = UserState(totp=state.totp, hotp=step, keep_until=state.keep_until)
        return new, ACCEPTED
    failures = state.failures + 1
    delay = policy.schedule[min(failures, policy.max_failures) - 1]
    new = UserState(
        totp=state.totp,
        hotp=state.hotp,
        failures=failures,
        blocked_until=now + delay if delay > 0 else 0.0,
        # A failure-only record (a made-up username) must not stay for ever; forgetting the count
        # a full lock period after the wait ended gives back guesses no faster than a lock does.
        keep_until=max(state.keep_until, now + delay + policy.lock_duration),
    )
    if step is not None:
        return new, REPLAYED
    return new, (MALFORMED if failure == "malformed" else INVALID)


def removable(state: UserState, now: float) -> bool:
    """Say whether forgetting ``state`` at ``now`` changes no future decision.

    HOTP counters are kept for ever (a forgotten counter reopens every used code); a TOTP mark
    and failures until ``keep_until``: then the mark's steps lie below every verifier's window,
    and the failures' lock ended a full ``lock_duration`` ago. Never while blocked.
    """
    return state.hotp is None and state.keep_until <= now and state.blocked_until <= now


@runtime_checkable
class Store(Protocol):
    """Where the Verifier keeps replay marks and failure counts; every method is atomic.

    A store never computes codes and never decides anything but :func:`decide`'s rules. Every
    backend error, time-out or unreadable record raises :class:`StoreError` and leaves the stored
    state as it was (fail closed): no error ever turns into an accepted verdict.
    """

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
        """Decide one verification for ``user`` atomically, as :func:`decide` describes."""
        ...

    def mark(self, user: str, kind: Kind) -> int | None:
        """Return the highest accepted step/counter of ``kind`` for ``user`` (``None``: none)."""
        ...

    def blocked_until(self, user: str) -> float:
        """Return the Unix time before which ``user``'s attempts are refused (0: never blocked)."""
        ...

    def reset(self, user: str, *, now: float) -> None:
        """Clear ``user``'s failures and lock; the replay marks stay (so no code reopens)."""
        ...

    def prune(self, now: float) -> int:
        """Forget every user whose state no longer matters at ``now``; return how many."""
        ...

    def close(self) -> None:
        """Release connections; the store must not be used afterwards."""
        ...
