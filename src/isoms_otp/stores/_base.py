"""The store contract: one atomic ``settle`` per attempt, plus the reads it needs.

The decision rules live here once, as the pure :func:`decide`; the memory and SQLite stores run it
inside their lock or transaction, and the Redis store runs the same rules as one Lua script.

What a store keeps, all keyed by the ``user`` string the application chose:

- one OTP :class:`Budget` per user: failures of codes (TOTP, HOTP, recovery codes), which only
  someone past the password can make; shared by every source and every credential (the guess
  bound);
- one first-factor :class:`Budget` per ``(user, source)`` pair: wrong passwords and other
  failures the application records with ``Verifier.record_failure``; a stranger who guesses
  passwords locks only their own pair, never the person;
- one :class:`Mark` per ``(user, credential)``: the replay high-water marks of one secret (the
  credential id is derived one-way from the secret, so a new key starts clean and the same key
  re-enrolled keeps its marks);
- one :class:`RecoverySet` per user: which codes of the current recovery-code set were used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from isoms_otp.throttle import MAX_FAILURES_CEILING, ThrottlePolicy

__all__ = [
    "EMPTY_BUDGET",
    "EMPTY_MARK",
    "EMPTY_RECOVERY",
    "Attempt",
    "Budget",
    "Decision",
    "Failure",
    "Kind",
    "Mark",
    "Reason",
    "RecoverySet",
    "Settlement",
    "Snapshot",
    "Store",
    "blocked_until",
    "budget_removable",
    "decide",
    "mark_removable",
]

#: What an attempt claims. ``"totp"``/``"hotp"``/``"recovery"`` spend the user's OTP budget;
#: ``"first_factor"`` (a wrong password) spends the ``(user, source)`` pair's budget.
Kind = Literal["totp", "hotp", "recovery", "first_factor"]
#: Every verdict an attempt can end in.
Reason = Literal["accepted", "invalid", "malformed", "replayed", "throttled"]
#: What a store records when nothing was matched.
Failure = Literal["invalid", "malformed"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Budget:
    """One failure budget: consecutive ``failures``, the wait, and how long it matters.

    ``blocked_until`` is the Unix time before which attempts are refused; ``keep_until`` the time
    after which the record changes no decision (its wait ended a full lock period ago).
    """

    failures: int = 0
    blocked_until: float = 0.0
    keep_until: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Mark:
    """The replay high-water marks of one credential (one secret) of one user.

    ``totp_start`` is the Unix time at which the last accepted TOTP step starts (a time, not a
    step number, so that a period or ``t0`` change neither locks out nor reopens codes);
    ``hotp_counter`` the last accepted HOTP counter; ``keep_until`` the time after which the
    TOTP mark lies below every verifier's window. HOTP counters are kept for ever.
    """

    totp_start: int | None = None
    hotp_counter: int | None = None
    keep_until: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoverySet:
    """Which codes of a user's current recovery-code set were used.

    ``set_id`` names the set (derived from its salted hashes; ``""``: none used yet); ``used``
    has bit ``i`` set when code ``i`` was used. A code of another set id starts a new record:
    the old set's state is forgotten when the first code of the new set is used.
    """

    set_id: str = ""
    used: int = 0


EMPTY_BUDGET = Budget()
EMPTY_MARK = Mark()
EMPTY_RECOVERY = RecoverySet()


@dataclass(frozen=True, slots=True, kw_only=True)
class Snapshot:
    """What a store read for one attempt: the user's budget, the pair's, one mark, recovery."""

    budget: Budget = EMPTY_BUDGET
    pair: Budget = EMPTY_BUDGET
    mark: Mark = EMPTY_MARK
    recovery: RecoverySet = EMPTY_RECOVERY


@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    """One attempt, as the Verifier hands it to :meth:`Store.settle`.

    ``source`` is where it came from (``""``: the application gave none); ``now`` the Verifier's
    clock, read once. ``kind`` says what is claimed: for ``"totp"`` ``claim`` is the Unix time at
    which the matched step starts, for ``"hotp"`` the matched counter, for ``"recovery"`` the
    index of the matched code in the set named ``credential``; ``None`` means nothing matched and
    ``failure`` says how. ``credential`` is the credential id of the matched secret (``""`` when
    nothing matched or for ``"first_factor"``). ``keep_until`` is how long an accepted TOTP mark
    matters.
    """

    user: str
    source: str = ""
    now: float
    kind: Kind
    credential: str = ""
    claim: int | None = None
    failure: Failure = "invalid"
    keep_until: float = 0.0
    policy: ThrottlePolicy


@dataclass(frozen=True, slots=True, kw_only=True)
class Settlement:
    """What a store decided for one attempt.

    ``reason`` is the verdict; ``retry_after`` the seconds left to wait for ``"throttled"``
    (``math.inf`` for a user locked until an admin reset); ``failures`` the count of the budget
    the attempt spends after the decision (the pair's for ``"first_factor"``, else the user's;
    0 after an acceptance); ``locked`` is true exactly when this decision started a lock.
    """

    reason: Reason
    retry_after: float | None = None
    failures: int = 0
    locked: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """The result of :func:`decide`: the settlement and what to write (``None``: unchanged).

    A ``Budget`` equal to :data:`EMPTY_BUDGET` means "delete the record".
    """

    settlement: Settlement
    budget: Budget | None = None
    pair: Budget | None = None
    mark: Mark | None = None
    recovery: RecoverySet | None = None


def _blocked(budget: Budget, now: float, longest: float, ceiling: bool) -> float:
    """Return when ``budget``'s wait ends, never later than ``longest`` seconds from now.

    A clock that ran ahead and was corrected must not leave a wait of years: a stored wait is
    clamped when read. ``ceiling`` budgets (the user's OTP budget) at NIST's 100 consecutive
    failures stay locked until an admin reset, whatever the clock.
    """
    if ceiling and budget.failures >= MAX_FAILURES_CEILING:
        return math.inf
    return min(budget.blocked_until, now + longest)


def _clamped(budget: Budget, now: float, longest: float) -> Budget | None:
    """Return ``budget`` with a wait beyond ``longest`` from now cut to it (``None``: fine).

    Reads clamp such a wait already; writing the clamp back (with the refusal it caused)
    makes the shortened wait end, instead of sliding along with ``now``.
    """
    if budget.blocked_until <= now + longest:
        return None
    return Budget(
        failures=budget.failures,
        blocked_until=now + longest,
        keep_until=min(budget.keep_until, now + longest + longest),
    )


def _fail(
    budget: Budget, now: float, schedule: tuple[float, ...], limit: int, lock: float
) -> tuple[Budget, bool]:
    failures = budget.failures + 1
    delay = schedule[min(failures, limit) - 1]
    # Forget the count a full lock period after its wait ends: guesses come back no faster than
    # a lock gives them. A keep time far ahead (a clock that ran ahead) is clamped like a wait.
    keep = min(budget.keep_until, now + lock + lock)
    new = Budget(
        failures=failures,
        blocked_until=now + delay if delay > 0 else 0.0,
        keep_until=max(keep, now + delay + lock),
    )
    return new, failures >= limit


def blocked_until(state: Snapshot, now: float, policy: ThrottlePolicy) -> float:
    """Return when attempts for ``state``'s user and pair are looked at again (``inf``: reset).

    The later of the user's and the pair's wait, each clamped to ``policy.longest_wait`` from
    ``now``; a time not after ``now`` means "not blocked".
    """
    longest = policy.longest_wait
    return max(
        _blocked(state.budget, now, longest, ceiling=True),
        _blocked(state.pair, now, longest, ceiling=False),
    )


def decide(attempt: Attempt, state: Snapshot) -> Decision:
    """Apply one attempt to what the store read; return what to write and why.

    1. Refuse (``"throttled"``) while the user's OTP budget or the ``(user, source)`` pair is
       waiting or locked: nothing is examined or counted, a right code included.
    2. ``"first_factor"``: count a failure on the pair (back-off, then a lock of the pair).
    3. Accept a claim strictly above the credential's mark (a recovery code not used yet): raise
       the mark and clear both the user's and the pair's failures.
    4. Otherwise count a failure on the user's budget: ``"replayed"`` when something matched but
       was used already, else ``attempt.failure``. At 100 consecutive failures (NIST SP 800-63B)
       the user stays locked until ``reset``, whatever the policy.
    """
    policy = attempt.policy
    now = attempt.now
    until = blocked_until(state, now, policy)
    kind = attempt.kind
    if until > now:
        spent = state.pair if kind == "first_factor" else state.budget
        return Decision(
            settlement=Settlement(
                reason="throttled", retry_after=until - now, failures=spent.failures
            ),
            budget=_clamped(state.budget, now, policy.longest_wait),
            pair=_clamped(state.pair, now, policy.longest_wait),
        )
    if kind == "first_factor":
        pair, locked = _fail(
            state.pair,
            now,
            policy.source_schedule,
            policy.source_max_failures,
            policy.source_lock_duration,
        )
        return Decision(
            settlement=Settlement(reason="invalid", failures=pair.failures, locked=locked),
            pair=pair,
        )
    claim = attempt.claim
    if claim is not None:
        accepted = _accept(attempt, claim, state)
        if accepted is not None:
            return accepted
    budget, locked = _fail(
        state.budget, now, policy.schedule, policy.max_failures, policy.lock_duration
    )
    reason: Reason = "replayed" if claim is not None else attempt.failure
    return Decision(
        settlement=Settlement(reason=reason, failures=budget.failures, locked=locked),
        budget=budget,
    )


_ACCEPTED = Settlement(reason="accepted")


def _accept(attempt: Attempt, claim: int, state: Snapshot) -> Decision | None:
    """Return the acceptance of ``claim``, or ``None`` when it was used already."""
    budget = None if state.budget == EMPTY_BUDGET else EMPTY_BUDGET
    pair = None if state.pair == EMPTY_BUDGET else EMPTY_BUDGET
    if attempt.kind == "recovery":
        recovery = state.recovery
        used = recovery.used if recovery.set_id == attempt.credential else 0
        if used >> claim & 1:
            return None
        new = RecoverySet(set_id=attempt.credential, used=used | 1 << claim)
        return Decision(settlement=_ACCEPTED, budget=budget, pair=pair, recovery=new)
    mark = state.mark
    if attempt.kind == "totp":
        if mark.totp_start is not None and claim <= mark.totp_start:
            return None
        updated = Mark(
            totp_start=claim,
            hotp_counter=mark.hotp_counter,
            keep_until=max(mark.keep_until, attempt.keep_until),
        )
    else:
        if mark.hotp_counter is not None and claim <= mark.hotp_counter:
            return None
        updated = Mark(totp_start=mark.totp_start, hotp_counter=claim, keep_until=mark.keep_until)
    return Decision(settlement=_ACCEPTED, budget=budget, pair=pair, mark=updated)


def budget_removable(budget: Budget, now: float) -> bool:
    """Say whether forgetting ``budget`` at ``now`` changes no future decision.

    Not while waiting, not before ``keep_until``, and never at the 100-failure ceiling (that
    lock ends only with a reset).
    """
    return (
        budget.failures < MAX_FAILURES_CEILING
        and budget.keep_until <= now
        and budget.blocked_until <= now
    )


def mark_removable(mark: Mark, now: float) -> bool:
    """Say whether forgetting ``mark`` at ``now`` changes no future decision.

    HOTP counters are kept for ever (a forgotten counter reopens every used code); a TOTP mark
    until ``keep_until``, when its step lies below every verifier's window.
    """
    return mark.hotp_counter is None and mark.keep_until <= now


@runtime_checkable
class Store(Protocol):
    """Where the Verifier keeps replay marks and failure budgets; every method is atomic.

    A store never computes codes and never decides anything but :func:`decide`'s rules. Every
    backend error, time-out or unreadable record raises :class:`StoreError` and leaves the stored
    state as it was (fail closed): no error ever turns into an accepted verdict. Users' own
    stores can be checked with :class:`isoms_otp.testing.StoreContract`.
    """

    def settle(self, attempt: Attempt) -> Settlement:
        """Decide one attempt atomically, as :func:`decide` describes, and store the result."""
        ...

    def snapshot(self, user: str, *, source: str = "", credential: str = "") -> Snapshot:
        """Read (without changing anything) what :func:`decide` would see for these keys."""
        ...

    def marks(self, user: str) -> dict[str, Mark]:
        """Return every credential mark kept for ``user``, by credential id (for admin tools)."""
        ...

    def reset(self, user: str, *, now: float) -> None:
        """Clear ``user``'s OTP budget and every pair budget of ``user``; marks stay."""
        ...

    def prune(self, now: float) -> int:
        """Forget every record that changes no decision at ``now``; return how many."""
        ...

    def close(self) -> None:
        """Release connections; the store must not be used afterwards."""
        ...
