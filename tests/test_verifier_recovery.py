"""Verifier.verify_recovery, recovery_remaining, step_up, activate and regenerate.

They run on the memory and SQLite stores here; what every store must do with recovery codes
(thread races included) is in the contract suite (``isoms_otp.testing.StoreContract``), and the
process races are in ``tests/stores/test_recovery_processes.py``.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isoms_otp import (
    TOTP,
    ConfigurationError,
    IssuedCodes,
    MemoryStore,
    RecoveryCodes,
    SQLiteStore,
    Store,
    ThrottlePolicy,
    Verdict,
    Verifier,
)
from isoms_otp.testing import FakeClock

SECRET = bytes(range(20))
NEW_SECRET = bytes(range(40, 60))
PERIOD = 30
START = PERIOD * 56_666_667 + 10
LENIENT = ThrottlePolicy(max_failures=100, base_delay=0)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    made: Store = MemoryStore() if request.param == "memory" else SQLiteStore(tmp_path / "s.db")
    yield made
    made.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def verifier(store: Store, clock: FakeClock) -> Verifier:
    return Verifier(store, clock=clock, policy=LENIENT)


@pytest.fixture
def issued() -> tuple[tuple[str, ...], RecoveryCodes]:
    return RecoveryCodes.generate()


def strict(store: Store, clock: FakeClock, limit: int = 3) -> Verifier:
    return Verifier(store, clock=clock, policy=ThrottlePolicy(max_failures=limit, base_delay=0))


# --------------------------------------------------------------------------- verify_recovery


def test_a_code_is_accepted_once(
    verifier: Verifier, issued: tuple[tuple[str, ...], RecoveryCodes]
) -> None:
    """The first use is accepted with the code's index; the second is "replayed"."""
    codes, recovery = issued
    first = verifier.verify_recovery("alice", recovery, codes[4])
    assert ("accepted", 4, 0) == (first.reason, first.match and first.match.step, first.failures)
    again = verifier.verify_recovery("alice", recovery, codes[4].lower())
    assert ("replayed", 4, 1) == (again.reason, again.match and again.match.step, again.failures)
    assert not again


def test_every_code_works_once(
    verifier: Verifier, issued: tuple[tuple[str, ...], RecoveryCodes]
) -> None:
    """All ten codes are accepted in any order, each once; then none is left."""
    codes, recovery = issued
    for index in (9, 0, 5, 1, 2, 3, 4, 6, 8, 7):
        assert verifier.verify_recovery("alice", recovery, codes[index]).ok
        assert verifier.verify_recovery("alice", recovery, codes[index]).reason == "replayed"
    assert 0 == verifier.recovery_remaining("alice", recovery)


def test_wrong_and_malformed(
    verifier: Verifier, issued: tuple[tuple[str, ...], RecoveryCodes]
) -> None:
    """A well-formed unknown code is "invalid"; text that is no code is "malformed"."""
    _, recovery = issued
    wrong = verifier.verify_recovery("alice", recovery, "0000-0000-0000-0000")
    assert ("invalid", None, 1) == (wrong.reason, wrong.match, wrong.failures)
    junk = verifier.verify_recovery("alice", recovery, "123456")
    assert ("malformed", None, 2) == (junk.reason, junk.match, junk.failures)


def test_codes_are_per_user(
    verifier: Verifier, issued: tuple[tuple[str, ...], RecoveryCodes]
) -> None:
    """The same set stored for two users is tracked per user (used bits are per user)."""
    codes, recovery = issued
    assert verifier.verify_recovery("alice", recovery, codes[0]).ok
    assert verifier.verify_recovery("bob", recovery, codes[0]).ok


def test_failures_share_the_totp_budget(
    store: Store, clock: FakeClock, issued: tuple[tuple[str, ...], RecoveryCodes]
) -> None:
    """Wrong recovery codes and wrong TOTP codes, from any source, spend one budget."""
    codes, recovery = issued
    verifier = strict(store, clock, limit=3)
    otp = TOTP(SECRET)
    assert "invalid" == verifier.verify_recovery("alice", recovery, "0" * 16, source="a").reason
    assert "invalid" == verifier.verify("alice", otp, "000000", source="b").reason
    third = verifier.verify_recovery("alice", recovery, "1" * 16, source="c")
    assert ("invalid", 3, True) == (third.reason, third.failures, third.locked)
    refused = verifier.verify_recovery("alice", recovery, codes[0], source="d")
    assert "throttled" == refused.reason
    assert refused.retry_after is not None
    assert refused.retry_after > 0
    assert verifier.recovery_remaining("alice", recovery) == 10  # nothing was examined


def test_acceptance_clears_the_failures(
    store: Store, clock: FakeClock, issued: tuple[tuple[str, ...], RecoveryCodes]
) -> None:
    """A right recovery code clears the user's failures like a right TOTP code."""
    codes, recovery = issued
    verifier = strict(store, clock, limit=3)
    verifier.verify_recovery("alice", recovery, "0" * 16)
    verifier.verify_recovery("alice", recovery, "0" * 16)
    assert verifier.verify_recovery("alice", recovery, codes[0]).ok
    assert 1 == verifier.verify_recovery("alice", recovery, "0" * 16).failures


def test_a_regenerated_set_is_a_new_set(
    verifier: Verifier, issued: tuple[tuple[str, ...], RecoveryCodes]
) -> None:
    """Old codes never match the new set; the new set's first use forgets the old state."""
    codes, recovery = issued
    assert verifier.verify_recovery("alice", recovery, codes[0]).ok
    new_codes, renewed = RecoveryCodes.generate()
    assert 10 == verifier.recovery_remaining("alice", renewed)
    assert "invalid" == verifier.verify_recovery("alice", renewed, codes[1]).reason
    assert verifier.verify_recovery("alice", renewed, new_codes[0]).ok
    assert 9 == verifier.recovery_remaining("alice", renewed)
    # The store now holds the new set's record, so the old one reads as unused: it must be
    # discarded by the application, which is why activation stores the new set in its place.
    assert 10 == verifier.recovery_remaining("alice", recovery)


def test_remaining(verifier: Verifier, issued: tuple[tuple[str, ...], RecoveryCodes]) -> None:
    """Counts down from the set size as codes are used; replays do not count twice."""
    codes, recovery = issued
    assert 10 == verifier.recovery_remaining("alice", recovery)
    verifier.verify_recovery("alice", recovery, codes[2])
    verifier.verify_recovery("alice", recovery, codes[2])
    verifier.verify_recovery("alice", recovery, codes[7])
    assert 8 == verifier.recovery_remaining("alice", recovery)
    assert 10 == verifier.recovery_remaining("bob", recovery)


def test_reset_keeps_used_codes(
    store: Store, clock: FakeClock, issued: tuple[tuple[str, ...], RecoveryCodes]
) -> None:
    """An admin reset clears the lock but no used recovery code (nor TOTP mark) opens again."""
    codes, recovery = issued
    verifier = strict(store, clock, limit=2)
    otp = TOTP(SECRET)
    assert verifier.verify_recovery("alice", recovery, codes[0]).ok
    assert verifier.verify("alice", otp, otp.generate(START)).ok
    verifier.verify_recovery("alice", recovery, "0" * 16)
    assert verifier.verify_recovery("alice", recovery, "0" * 16).locked
    verifier.reset("alice")
    assert "replayed" == verifier.verify_recovery("alice", recovery, codes[0]).reason
    assert "replayed" == verifier.verify("alice", otp, otp.generate(START)).reason
    assert 9 == verifier.recovery_remaining("alice", recovery)


def test_argument_checks(verifier: Verifier, issued: tuple[tuple[str, ...], RecoveryCodes]) -> None:
    """Bad users are ConfigurationError; wrong types are TypeError; nothing is counted."""
    codes, recovery = issued
    with pytest.raises(ConfigurationError):
        verifier.verify_recovery("", recovery, codes[0])
    with pytest.raises(ConfigurationError):
        verifier.verify_recovery("alice", recovery, codes[0], source="\x00")
    with pytest.raises(TypeError, match="codes must be RecoveryCodes"):
        verifier.verify_recovery("alice", recovery.to_string(), codes[0])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="recovery code must be a str"):
        verifier.verify_recovery("alice", recovery, codes[0].encode())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="codes must be RecoveryCodes"):
        verifier.recovery_remaining("alice", None)  # type: ignore[arg-type]
    assert verifier.verify_recovery("alice", recovery, codes[0]).ok


def test_uniform_work_per_attempt(
    verifier: Verifier,
    count_copies: Callable[[Any], Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every well-formed attempt costs one HMAC and a comparison with each code of the set."""
    codes, recovery = RecoveryCodes.generate(7)
    hashes = count_copies(recovery)
    compared: list[int] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append(1)
        return real(a, b)

    monkeypatch.setattr("isoms_otp.recovery.compare_digest", counting)
    for code in (codes[0], codes[6], codes[6], "Z" * 16):
        compared.clear()
        hashes.copies = 0
        verifier.verify_recovery("alice", recovery, code)
        assert (1, 7) == (hashes.copies, len(compared))


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)
@given(st.text(max_size=80))
def test_junk_gives_a_verdict(
    verifier: Verifier, issued: tuple[tuple[str, ...], RecoveryCodes], text: str
) -> None:
    """Any text as a recovery code ends in a verdict, never an exception."""
    _, recovery = issued
    verdict = verifier.verify_recovery("junk", recovery, text)
    assert verdict.reason in {"invalid", "malformed", "throttled"}


# --------------------------------------------------------------------------- step_up


def test_step_up_with_a_fresh_totp_code(verifier: Verifier, clock: FakeClock) -> None:
    """A current TOTP code authorises; the code used to sign in does not (wait for the next)."""
    otp = TOTP(SECRET)
    assert verifier.verify("alice", otp, otp.generate(START)).ok
    assert "replayed" == verifier.step_up("alice", otp, otp.generate(START)).reason
    clock.advance(PERIOD)
    assert verifier.step_up("alice", otp, otp.generate(clock())).ok


def test_step_up_with_a_recovery_code(
    verifier: Verifier, issued: tuple[tuple[str, ...], RecoveryCodes]
) -> None:
    """A recovery code authorises when codes are given, and is used up by it."""
    codes, recovery = issued
    otp = TOTP(SECRET)
    proof = verifier.step_up("alice", otp, codes[1], codes=recovery)
    assert ("accepted", 1) == (proof.reason, proof.match and proof.match.step)
    assert "replayed" == verifier.step_up("alice", otp, codes[1], codes=recovery).reason
    assert "replayed" == verifier.verify_recovery("alice", recovery, codes[1]).reason


def test_step_up_without_codes_refuses_a_recovery_code(
    verifier: Verifier, issued: tuple[tuple[str, ...], RecoveryCodes]
) -> None:
    """Without ``codes`` a recovery code is no OTP code: "malformed", and counted."""
    codes, _ = issued
    refused = verifier.step_up("alice", TOTP(SECRET), codes[1])
    assert ("malformed", 1) == (refused.reason, refused.failures)


def test_step_up_with_codes_still_takes_totp(
    verifier: Verifier, issued: tuple[tuple[str, ...], RecoveryCodes]
) -> None:
    """With ``codes`` given, a 6-digit code is still checked as a TOTP code."""
    _, recovery = issued
    otp = TOTP(SECRET)
    assert verifier.step_up("alice", otp, otp.generate(START), codes=recovery).ok
    wrong = verifier.step_up("alice", otp, "not a code", codes=recovery)
    assert "malformed" == wrong.reason


def test_step_up_throttled(
    store: Store, clock: FakeClock, issued: tuple[tuple[str, ...], RecoveryCodes]
) -> None:
    """A locked user cannot step up with either kind of code."""
    codes, recovery = issued
    verifier = strict(store, clock, limit=1)
    otp = TOTP(SECRET)
    assert verifier.step_up("alice", otp, "000000", codes=recovery).locked
    assert "throttled" == verifier.step_up("alice", otp, otp.generate(START)).reason
    assert "throttled" == verifier.step_up("alice", otp, codes[0], codes=recovery).reason


def test_step_up_checks_arguments(verifier: Verifier) -> None:
    """Wrong types are TypeError before anything is counted."""
    with pytest.raises(TypeError, match="codes must be RecoveryCodes"):
        verifier.step_up("alice", TOTP(SECRET), "123456", codes="x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="otp must be"):
        verifier.step_up("alice", "secret", "123456")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        verifier.step_up("alice", TOTP(SECRET), "123456", source="")


# --------------------------------------------------------------------------- lifecycle


def test_activate_issues_codes_with_the_confirmation(verifier: Verifier) -> None:
    """A confirmed pending secret comes with a new set; the confirming code is then used."""
    pending = TOTP(SECRET)
    result = verifier.activate("alice", pending, pending.generate(START))
    assert isinstance(result, IssuedCodes)
    assert result
    assert result.verdict.ok
    assert 10 == len(result.codes)
    assert result.recovery is not None
    assert 10 == verifier.recovery_remaining("alice", result.recovery)
    assert verifier.verify_recovery("alice", result.recovery, result.codes[0]).ok
    assert "replayed" == verifier.verify("alice", pending, pending.generate(START)).reason


def test_activate_with_a_wrong_code_issues_nothing(verifier: Verifier) -> None:
    """No confirmation, no codes; the failure counts."""
    result = verifier.activate("alice", TOTP(SECRET), "000000", count=5)
    assert not result
    assert ((), None, 1) == (result.codes, result.recovery, result.verdict.failures)


def test_activate_count(verifier: Verifier) -> None:
    """``count`` sets the size; a bad count is refused before the code is looked at."""
    pending = TOTP(SECRET)
    with pytest.raises(ConfigurationError, match="from 1 to 100"):
        verifier.activate("alice", pending, pending.generate(START), count=0)
    result = verifier.activate("alice", pending, pending.generate(START), count=16)
    assert 16 == len(result.codes)


def test_issued_codes_repr_hides_the_codes(verifier: Verifier) -> None:
    """The codes are shown once, never in a repr or a log line."""
    pending = TOTP(SECRET)
    result = verifier.activate("alice", pending, pending.generate(START))
    text = repr(result)
    assert all(code not in text for code in result.codes)
    assert "IssuedCodes(verdict=Verdict(reason='accepted'" in text


def test_replace_the_phone(verifier: Verifier, clock: FakeClock) -> None:
    """Step up with the old phone, confirm the new secret in the same step; old codes stop."""
    old, new = TOTP(SECRET), TOTP(NEW_SECRET)
    first = verifier.activate("alice", old, old.generate(START))
    assert first.recovery is not None
    clock.advance(PERIOD)
    assert verifier.step_up("alice", old, old.generate(clock())).ok
    second = verifier.activate("alice", new, new.generate(clock()))  # same step: a new key
    assert second
    assert second.recovery is not None
    # The application now stores `new` and `second.recovery` only: the old secret's codes and
    # the old set's codes no longer verify.
    clock.advance(PERIOD)
    assert "invalid" == verifier.verify("alice", new, old.generate(clock())).reason
    assert "invalid" == verifier.verify_recovery("alice", second.recovery, first.codes[0]).reason
    assert verifier.verify("alice", new, new.generate(clock())).ok


def test_lost_phone(verifier: Verifier, clock: FakeClock) -> None:
    """Sign in with a recovery code, step up with another, activate a new phone."""
    old, new = TOTP(SECRET), TOTP(NEW_SECRET)
    first = verifier.activate("alice", old, old.generate(START))
    assert first.recovery is not None
    assert verifier.verify_recovery("alice", first.recovery, first.codes[0]).ok
    assert verifier.step_up("alice", old, first.codes[1], codes=first.recovery).ok
    second = verifier.activate("alice", new, new.generate(clock()))
    assert second
    assert 8 == verifier.recovery_remaining("alice", first.recovery)


def test_regenerate_needs_a_fresh_code(
    verifier: Verifier, clock: FakeClock, issued: tuple[tuple[str, ...], RecoveryCodes]
) -> None:
    """A new set only with a fresh TOTP or recovery code; the old set's codes then fail."""
    codes, recovery = issued
    otp = TOTP(SECRET)
    refused = verifier.regenerate("alice", otp, "000000", codes=recovery)
    assert (False, (), None) == (bool(refused), refused.codes, refused.recovery)
    renewed = verifier.regenerate("alice", otp, codes[0], codes=recovery, count=4)
    assert renewed
    assert renewed.recovery is not None
    assert 4 == len(renewed.codes) == verifier.recovery_remaining("alice", renewed.recovery)
    assert "invalid" == verifier.verify_recovery("alice", renewed.recovery, codes[1]).reason
    by_totp = verifier.regenerate("alice", otp, otp.generate(START))
    assert by_totp
    assert renewed.recovery != by_totp.recovery


def test_issued_codes_is_falsy_on_refusal() -> None:
    """IssuedCodes is truthy exactly when its verdict is ok."""
    refused = IssuedCodes(verdict=Verdict(reason="throttled", retry_after=math.inf))
    assert (False, False) == (bool(refused), refused.ok)
    accepted = IssuedCodes(verdict=Verdict(reason="accepted"))
    assert (True, True) == (bool(accepted), accepted.ok)
