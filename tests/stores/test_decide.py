"""The pure decision, table-driven: one row per rule of ``stores.decide``."""

from __future__ import annotations

import math

import pytest

from isoms_otp import ThrottlePolicy
from isoms_otp.stores import (
    Attempt,
    Budget,
    Decision,
    Mark,
    RecoverySet,
    Settlement,
    Snapshot,
    blocked_until,
    budget_removable,
    decide,
    mark_removable,
)

NOW = 1_000.0
POLICY = ThrottlePolicy(
    max_failures=3, base_delay=2, max_delay=4, lock_duration=100, source_max_failures=2,
    source_lock_duration=50,
)  # fmt: skip
EMPTY = Budget()


def attempt(kind: str = "totp", claim: int | None = None, **options: object) -> Attempt:
    return Attempt(
        user="alice", source="s", now=NOW, kind=kind, credential="c", claim=claim,  # type: ignore[arg-type]
        keep_until=options.pop("keep_until", 0.0), policy=POLICY, **options,  # type: ignore[arg-type]
    )  # fmt: skip


CASES: list[tuple[str, Attempt, Snapshot, Decision]] = [
    (
        "totp accepted on a fresh credential",
        attempt(claim=990, keep_until=1_320.0),
        Snapshot(),
        Decision(settlement=Settlement(reason="accepted"),
                 mark=Mark(totp_start=990, keep_until=1_320.0)),
    ),
    (
        "totp at the mark is replayed and counts on the user",
        attempt(claim=990),
        Snapshot(mark=Mark(totp_start=990, keep_until=1_320.0)),
        Decision(
            settlement=Settlement(reason="replayed", failures=1),
            budget=Budget(failures=1, blocked_until=NOW + 2, keep_until=NOW + 2 + 100),
        ),
    ),
    (
        "acceptance clears the user's and the pair's failures",
        attempt(claim=1020),
        Snapshot(budget=Budget(failures=2, keep_until=NOW + 50), pair=Budget(failures=1),
                 mark=Mark(totp_start=990, hotp_counter=4, keep_until=1_320.0)),
        Decision(settlement=Settlement(reason="accepted"), budget=EMPTY, pair=EMPTY,
                 mark=Mark(totp_start=1020, hotp_counter=4, keep_until=1_320.0)),
    ),
    (
        "hotp above the counter is accepted, keeping the totp mark",
        attempt("hotp", claim=5),
        Snapshot(mark=Mark(totp_start=990, hotp_counter=4, keep_until=1_320.0)),
        Decision(settlement=Settlement(reason="accepted"),
                 mark=Mark(totp_start=990, hotp_counter=5, keep_until=1_320.0)),
    ),
    (
        "malformed counts like invalid",
        attempt(failure="malformed"),
        Snapshot(),
        Decision(settlement=Settlement(reason="malformed", failures=1),
                 budget=Budget(failures=1, blocked_until=NOW + 2, keep_until=NOW + 102)),
    ),
    (
        "the max_failures-th failure locks and says so",
        attempt(),
        Snapshot(budget=Budget(failures=2, keep_until=NOW + 104)),
        Decision(settlement=Settlement(reason="invalid", failures=3, locked=True),
                 budget=Budget(failures=3, blocked_until=NOW + 100, keep_until=NOW + 200)),
    ),
    (
        "a user waiting refuses a right code, unchanged",
        attempt(claim=1020),
        Snapshot(budget=Budget(failures=1, blocked_until=NOW + 1.5, keep_until=NOW + 101)),
        Decision(settlement=Settlement(reason="throttled", retry_after=1.5, failures=1)),
    ),
    (
        "a pair waiting refuses a right code from it",
        attempt(claim=1020),
        Snapshot(pair=Budget(failures=2, blocked_until=NOW + 50, keep_until=NOW + 100)),
        Decision(settlement=Settlement(reason="throttled", retry_after=50.0)),
    ),
    (
        "a wrong password counts on the pair only",
        attempt("first_factor"),
        Snapshot(budget=Budget(failures=1, keep_until=NOW + 10)),
        Decision(settlement=Settlement(reason="invalid", failures=1),
                 pair=Budget(failures=1, blocked_until=NOW + 2, keep_until=NOW + 52)),
    ),
    (
        "the source_max_failures-th wrong password locks the pair",
        attempt("first_factor"),
        Snapshot(pair=Budget(failures=1, keep_until=NOW + 40)),
        Decision(settlement=Settlement(reason="invalid", failures=2, locked=True),
                 pair=Budget(failures=2, blocked_until=NOW + 50, keep_until=NOW + 100)),
    ),
    (
        "a wrong password while the user is locked is throttled with the pair's count",
        attempt("first_factor"),
        Snapshot(budget=Budget(failures=3, blocked_until=NOW + 80, keep_until=NOW + 180),
                 pair=Budget(failures=1, keep_until=NOW + 30)),
        Decision(settlement=Settlement(reason="throttled", retry_after=80.0, failures=1)),
    ),
    (
        "100 consecutive failures: locked until a reset",
        attempt(claim=1020),
        Snapshot(budget=Budget(failures=100, blocked_until=NOW - 1, keep_until=NOW - 1)),
        Decision(settlement=Settlement(reason="throttled", retry_after=math.inf, failures=100)),
    ),
    (
        "a wait beyond the policy is clamped and the clamp written back",
        attempt(),
        Snapshot(budget=Budget(failures=3, blocked_until=NOW + 1e9, keep_until=NOW + 2e9),
                 pair=Budget(failures=1, blocked_until=NOW + 1e9, keep_until=NOW + 2e9)),
        Decision(settlement=Settlement(reason="throttled", retry_after=100.0, failures=3),
                 budget=Budget(failures=3, blocked_until=NOW + 100, keep_until=NOW + 200),
                 pair=Budget(failures=1, blocked_until=NOW + 100, keep_until=NOW + 200)),
    ),
    (
        "a keep time far ahead is clamped when the next failure is counted",
        attempt(),
        Snapshot(budget=Budget(failures=1, keep_until=NOW + 1e9)),
        Decision(settlement=Settlement(reason="invalid", failures=2),
                 budget=Budget(failures=2, blocked_until=NOW + 4, keep_until=NOW + 200)),
    ),
    (
        "a recovery code not used yet is accepted",
        attempt("recovery", claim=3),
        Snapshot(recovery=RecoverySet(set_id="c", used=0b1)),
        Decision(settlement=Settlement(reason="accepted"),
                 recovery=RecoverySet(set_id="c", used=0b1001)),
    ),
    (
        "a used recovery code is replayed",
        attempt("recovery", claim=0),
        Snapshot(recovery=RecoverySet(set_id="c", used=0b1)),
        Decision(settlement=Settlement(reason="replayed", failures=1),
                 budget=Budget(failures=1, blocked_until=NOW + 2, keep_until=NOW + 102)),
    ),
    (
        "a code of a new set starts afresh: the old set's state goes",
        attempt("recovery", claim=0),
        Snapshot(recovery=RecoverySet(set_id="old", used=0b1111)),
        Decision(settlement=Settlement(reason="accepted"),
                 recovery=RecoverySet(set_id="c", used=1)),
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("attempt_", "state", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_decide(attempt_: Attempt, state: Snapshot, expected: Decision) -> None:
    """Each rule of the decision, as a row: attempt, what was read, what to write and why."""
    assert expected == decide(attempt_, state)


def test_blocked_until_is_the_later_wait() -> None:
    """The later of the user's and the pair's wait; inf at the ceiling; clamped otherwise."""
    state = Snapshot(budget=Budget(blocked_until=NOW + 5), pair=Budget(blocked_until=NOW + 9))
    assert NOW + 9 == blocked_until(state, NOW, POLICY)
    assert math.inf == blocked_until(Snapshot(budget=Budget(failures=100)), NOW, POLICY)
    far = Snapshot(pair=Budget(blocked_until=NOW + 1e9))
    assert NOW + POLICY.longest_wait == blocked_until(far, NOW, POLICY)


def test_removable() -> None:
    """Budgets go after keep_until (never at the ceiling); marks only without an HOTP counter."""
    assert budget_removable(Budget(failures=3, keep_until=NOW), NOW)
    assert not budget_removable(Budget(failures=3, keep_until=NOW + 1), NOW)
    assert not budget_removable(Budget(failures=100), NOW)
    assert mark_removable(Mark(totp_start=1, keep_until=NOW), NOW)
    assert not mark_removable(Mark(hotp_counter=1), NOW)
