"""The Verifier: configuration, verdicts, the clock, and what it hands the store."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import pytest

from isoms_otp import (
    HOTP,
    TOTP,
    ConfigurationError,
    Match,
    MemoryStore,
    StoreError,
    ThrottlePolicy,
    Verdict,
    Verifier,
)
from isoms_otp.stores import Attempt, Settlement
from isoms_otp.testing import FakeClock
from isoms_otp.verifier import MAX_CLOCK, MAX_CREDENTIALS, credential_id

SECRET = bytes(range(20))
START = 30 * 56_666_667 + 10


class Recording(MemoryStore):
    """A MemoryStore that remembers what settle was asked."""

    __slots__ = ("calls",)

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Attempt] = []

    def settle(self, attempt: Attempt) -> Settlement:
        self.calls.append(attempt)
        return super().settle(attempt)


class Broken(MemoryStore):
    """A store whose backend is down."""

    def settle(self, attempt: Attempt) -> Settlement:  # noqa: ARG002
        raise StoreError("the test store is down")


class CountingClock(FakeClock):
    """A fake clock that counts how often it is read."""

    __slots__ = ("reads",)

    def __init__(self, start: float) -> None:
        super().__init__(start)
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return super().__call__()


def test_defaults() -> None:
    """Defaults: window one step each way, HOTP look-ahead 5, resync 1000, the default policy."""
    verifier = Verifier(MemoryStore())
    assert (1, 1, 5, 1000, ThrottlePolicy()) == (
        verifier.past, verifier.future, verifier.look_ahead, verifier.resync_window,
        verifier.policy,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"store": object()}, TypeError, "Store protocol"),
        ({"policy": {"max_failures": 3}}, TypeError, "ThrottlePolicy"),
        ({"clock": 1_700_000_000}, TypeError, "callable"),
        ({"past": 11}, ConfigurationError, "past"),
        ({"future": -1}, ConfigurationError, "future"),
        ({"look_ahead": 101}, ConfigurationError, "look_ahead"),
        ({"look_ahead": 2.0}, TypeError, "look_ahead"),
        ({"resync_window": 0}, ConfigurationError, "resync_window"),
        ({"resync_window": 10_001}, ConfigurationError, "resync_window"),
    ],
    ids=[
        "store", "policy", "clock", "past", "future", "look-ahead", "look-ahead-float",
        "resync-zero", "resync-huge",
    ],
)  # fmt: skip
def test_configuration_validated(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Bad settings fail at construction, not on the first login."""
    store = options.pop("store", MemoryStore())
    with pytest.raises(error, match=message):
        Verifier(store, **options)


def test_verdict_truthiness() -> None:
    """A Verdict is truthy exactly when ok, so `if verifier.verify(...)` is safe."""
    accepted = Verdict(reason="accepted", match=Match(step=0, drift=0))
    refused = [Verdict(reason=r) for r in ("invalid", "malformed", "replayed", "throttled")]
    assert (True, True) == (accepted.ok, bool(accepted))
    assert [False] * 4 == [v.ok for v in refused] == [bool(v) for v in refused]


def test_verdict_validated_and_frozen() -> None:
    """Unknown reasons are refused; verdicts cannot be edited."""
    with pytest.raises(ConfigurationError, match="reason"):
        Verdict(reason="maybe")  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Verdict(reason="invalid").ok = True  # type: ignore[misc]


def test_clock_read_once() -> None:
    """Each verification reads the clock exactly once and hands that time down."""
    clock, store, totp, hotp = CountingClock(START), Recording(), TOTP(SECRET), HOTP(SECRET)
    verifier = Verifier(store, clock=clock)
    verifier.verify("alice", totp, totp.generate(START))
    verifier.verify("alice", hotp, hotp.generate(0))
    verifier.resync("alice", hotp, hotp.generate(3), hotp.generate(4))
    assert 3 == clock.reads
    assert [START, START, START] == [call.now for call in store.calls]


def test_totp_settle_arguments() -> None:
    """The TOTP mark is the matched step's start time; it is kept 11 periods past that."""
    store = Recording()
    totp = TOTP(SECRET, period=60, t0=100)
    verifier = Verifier(store, clock=FakeClock(START))
    verdict = verifier.verify("alice", totp, totp.generate(START - 60))
    start = 100 + verdict.match.step * 60  # type: ignore[union-attr]
    assert (-1, start, start + 11 * 60) == (
        verdict.match.drift,  # type: ignore[union-attr]
        store.calls[0].claim,
        store.calls[0].keep_until,
    )
    assert ("totp", credential_id(totp), "") == (
        store.calls[0].kind, store.calls[0].credential, store.calls[0].source
    )  # fmt: skip
    verifier.verify("alice", totp, "12-34-56", source="10.0.0.1")
    assert (None, "malformed", "", "10.0.0.1") == (
        store.calls[1].claim, store.calls[1].failure, store.calls[1].credential,
        store.calls[1].source,
    )  # fmt: skip


def test_window_settings_used() -> None:
    """past=0 refuses the previous step's code; future=2 accepts two steps ahead."""
    totp = TOTP(SECRET)
    lenient = ThrottlePolicy(base_delay=0)
    verifier = Verifier(MemoryStore(), clock=FakeClock(START), past=0, future=2, policy=lenient)
    assert "invalid" == verifier.verify("alice", totp, totp.generate(START - 30)).reason
    assert "accepted" == verifier.verify("alice", totp, totp.generate(START + 60)).reason


def test_normalised_input_accepted() -> None:
    """A code typed as apps show it ("123 456") is accepted."""
    totp = TOTP(SECRET)
    code = totp.generate(START)
    verdict = Verifier(MemoryStore(), clock=FakeClock(START)).verify(
        "alice", totp, f" {code[:3]} {code[3:]}\n"
    )
    assert verdict.ok


def test_store_error_propagates() -> None:
    """A failing store raises StoreError: there is no verdict, so nothing is accepted."""
    totp = TOTP(SECRET)
    verifier = Verifier(Broken(), clock=FakeClock(START))
    with pytest.raises(StoreError, match="down"):
        verifier.verify("alice", totp, totp.generate(START))


@pytest.mark.parametrize(
    ("user", "error"),
    [(b"alice", TypeError), ("", ConfigurationError), ("x" * 257, ConfigurationError)],
    ids=["bytes", "empty", "too-long"],
)
def test_user_validated(user: object, error: type[Exception]) -> None:
    """The user key is a non-empty str of at most 256 characters, for every method."""
    totp, hotp = TOTP(SECRET), HOTP(SECRET)
    verifier = Verifier(MemoryStore(), clock=FakeClock(START))
    calls: list[Callable[[], object]] = [
        lambda: verifier.verify(user, totp, "123456"),  # type: ignore[arg-type]
        lambda: verifier.resync(user, hotp, "123456", "123456"),  # type: ignore[arg-type]
        lambda: verifier.next_counter(user, hotp),  # type: ignore[arg-type]
        lambda: verifier.reset(user),  # type: ignore[arg-type]
        lambda: verifier.record_failure(user),  # type: ignore[arg-type]
        lambda: verifier.retry_after(user),  # type: ignore[arg-type]
    ]
    for call in calls:
        with pytest.raises(error, match="user"):
            call()


@pytest.mark.parametrize(
    ("user", "fragment"),
    [
        ("alice\ud800", "a lone surrogate at position 5"),
        ("\udfffalice", "a lone surrogate at position 0"),
        ("\ud83d\ude00", "a lone surrogate at position 0"),
        ("alice\nbob", "a control character at position 5"),
        ("alice\x00", "a control character at position 5"),
        ("alice\x7f", "a control character at position 5"),
        ("alice\x85", "a control character at position 5"),
        ("al\x9fice", "a control character at position 2"),
    ],
    ids=["surrogate", "trailing-surrogate-first", "surrogate-pair", "newline", "nul", "del",
         "nel-c1", "c1-last"],
)  # fmt: skip
def test_user_with_unencodable_or_control_characters(user: str, fragment: str) -> None:
    """Regression: a lone surrogate in the user id used to reach the store.

    SQLite and Redis could not encode it: a StoreError that looked like an outage (and from
    RedisStore.mark/reset a bare UnicodeEncodeError). Control characters would reach logs.
    Both are now a ConfigurationError from every method, before the store is asked.
    """
    totp, hotp = TOTP(SECRET), HOTP(SECRET)
    verifier = Verifier(MemoryStore(), clock=FakeClock(START))
    calls: list[Callable[[], object]] = [
        lambda: verifier.verify(user, totp, totp.generate(START)),
        lambda: verifier.confirm(user, totp, totp.generate(START)),
        lambda: verifier.resync(user, hotp, "123456", "123456"),
        lambda: verifier.next_counter(user, hotp),
        lambda: verifier.reset(user),
        lambda: verifier.record_failure(user),
        lambda: verifier.record_failure("alice", source=user),
    ]
    for call in calls:
        with pytest.raises(ConfigurationError, match=fragment):
            call()
    assert "MemoryStore(users=0, marks=0)" == repr(verifier.store)


def test_printable_unicode_user_accepted() -> None:
    """Non-ASCII printable ids (accents, CJK, emoji as one code point) are fine."""
    totp = TOTP(SECRET)
    verifier = Verifier(MemoryStore(), clock=FakeClock(START))
    for user in ["zoë@example.org", "\u7530\u4e2d", "\U0001f600", "a b"]:
        assert "accepted" == verifier.verify(user, totp, totp.generate(START)).reason


@pytest.mark.parametrize(
    ("now", "error"),
    [(None, TypeError), ("1700000000", TypeError), (math.nan, ConfigurationError),
     (-1.0, ConfigurationError), (math.inf, ConfigurationError)],
    ids=["none", "text", "nan", "negative", "infinite"],
)  # fmt: skip
def test_clock_values_validated(now: object, error: type[Exception]) -> None:
    """A clock returning nonsense raises instead of verifying against a made-up time."""
    totp = TOTP(SECRET)
    verifier = Verifier(MemoryStore(), clock=lambda: now)  # type: ignore[arg-type,return-value]
    with pytest.raises(error, match="clock"):
        verifier.verify("alice", totp, totp.generate(START))


@pytest.mark.parametrize(
    "now",
    [10**400, -(10**5000), 2**53 + 1, 1e300, float(2**60)],
    ids=["int-beyond-float", "int-beyond-repr-limit", "just-past-2**53", "float-1e300",
         "float-2**60"],
)  # fmt: skip
def test_clock_beyond_max_clock(now: float) -> None:
    """Regression: a clock returning 10**400 used to raise OverflowError from the store.

    Times are now bounded to MAX_CLOCK (2**53 s, where floats still hold whole seconds);
    beyond it every method raises ConfigurationError, whatever the code or OTP kind.
    """
    totp, hotp = TOTP(SECRET), HOTP(SECRET)
    verifier = Verifier(MemoryStore(), clock=lambda: now)
    calls: list[Callable[[], object]] = [
        lambda: verifier.verify("alice", totp, "123456"),
        lambda: verifier.verify("alice", totp, "not a code"),
        lambda: verifier.verify("alice", hotp, "123456"),
        lambda: verifier.resync("alice", hotp, "123456", "123456"),
        lambda: verifier.reset("alice"),
        verifier.prune,
    ]
    for call in calls:
        with pytest.raises(ConfigurationError, match=r"clock returned .*0 to 2\*\*53"):
            call()


def test_clock_at_max_clock() -> None:
    """MAX_CLOCK itself is a valid time."""
    hotp = HOTP(SECRET)
    verifier = Verifier(MemoryStore(), clock=lambda: MAX_CLOCK)
    assert "accepted" == verifier.verify("alice", hotp, hotp.generate(0)).reason


@pytest.mark.parametrize(
    ("option", "value"),
    [("look_ahead", 10**5000), ("resync_window", -(10**5000))],
    ids=["look-ahead", "resync-window"],
)
def test_huge_int_setting_named_not_printed(option: str, value: int) -> None:
    """Regression: an int past 4300 digits used to raise a bare ValueError from its str()."""
    options: dict[str, Any] = {option: value}
    expected = f"{option} must be .* \\(got an int beyond 2\\*\\*64"
    with pytest.raises(ConfigurationError, match=expected):
        Verifier(MemoryStore(), **options)


def test_integer_clock() -> None:
    """A clock may return int seconds."""
    totp = TOTP(SECRET)
    assert Verifier(MemoryStore(), clock=lambda: START).verify("a", totp, totp.generate(START))


def test_wrong_types() -> None:
    """A non-OTP object, a TOTP for resync, or a non-str code are TypeErrors."""
    totp, hotp = TOTP(SECRET), HOTP(SECRET)
    verifier = Verifier(MemoryStore(), clock=FakeClock(START))
    with pytest.raises(TypeError, match="TOTP or HOTP"):
        verifier.verify("alice", "JBSWY3DPEHPK3PXP", "123456")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="resync needs an HOTP"):
        verifier.resync("alice", totp, "123456", "654321")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="leading zeros"):
        verifier.verify("alice", hotp, 123456)  # type: ignore[arg-type]


def test_throttled_verdict_reveals_nothing() -> None:
    """While throttled, right and wrong codes get equal verdicts without a match."""
    clock, totp = FakeClock(START), TOTP(SECRET)
    verifier = Verifier(MemoryStore(), clock=clock)
    assert "invalid" == verifier.verify("alice", totp, "000000").reason
    right = verifier.verify("alice", totp, totp.generate(START))
    wrong = verifier.verify("alice", totp, "999999")
    assert right == wrong == Verdict(reason="throttled", retry_after=1.0, failures=1)


def test_prune_uses_the_clock() -> None:
    """Verifier.prune passes the clock's time to the store."""
    clock, totp = FakeClock(START), TOTP(SECRET)
    verifier = Verifier(MemoryStore(), clock=clock)
    assert verifier.verify("alice", totp, totp.generate(START))
    assert 0 == verifier.prune()
    clock.advance(12 * 30)
    assert 1 == verifier.prune()
    assert "MemoryStore(users=0, marks=0)" == repr(verifier.store)


@pytest.mark.parametrize(
    ("otp", "error", "message"),
    [
        ([], ConfigurationError, "empty sequence"),
        ("abc", TypeError, "sequence of them"),
        (b"abc", TypeError, "sequence of them"),
        (42, TypeError, "sequence of them"),
        ([TOTP(SECRET), "x"], TypeError, "must hold TOTP or HOTP"),
        ([TOTP(SECRET)] * (MAX_CREDENTIALS + 1), ConfigurationError, "at most 16"),
    ],
    ids=["empty", "str", "bytes", "int", "mixed", "too-many"],
)
def test_credentials_validated(otp: object, error: type[Exception], message: str) -> None:
    """``otp`` is one TOTP/HOTP or a non-empty sequence of at most 16 of them."""
    verifier = Verifier(MemoryStore(), clock=FakeClock(START))
    with pytest.raises(error, match=message):
        verifier.verify("alice", otp, "123456")  # type: ignore[arg-type]


def test_source_validated() -> None:
    """A source is None or a non-empty printable str of at most 256 characters."""
    verifier = Verifier(MemoryStore(), clock=FakeClock(START))
    totp = TOTP(SECRET)
    for source, error in [
        (b"x", TypeError),
        ("", ConfigurationError),
        ("x" * 257, ConfigurationError),
    ]:
        with pytest.raises(error, match="source"):
            verifier.verify("alice", totp, "123456", source=source)  # type: ignore[arg-type]
        with pytest.raises(error, match="source"):
            verifier.retry_after("alice", source=source)  # type: ignore[arg-type]


def test_methods_taking_one_hotp_refuse_others() -> None:
    """confirm takes one TOTP/HOTP; next_counter and resync an HOTP."""
    verifier = Verifier(MemoryStore(), clock=FakeClock(START))
    totp = TOTP(SECRET)
    with pytest.raises(TypeError, match="otp must be a TOTP or HOTP"):
        verifier.confirm("alice", [totp], "123456")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="next_counter needs an HOTP"):
        verifier.next_counter("alice", totp)  # type: ignore[arg-type]


def test_record_failure_verdict() -> None:
    """record_failure answers "invalid" with the pair's count, then "throttled"."""
    verifier = Verifier(MemoryStore(), clock=FakeClock(START))
    first = verifier.record_failure("alice", source="10.0.0.1")
    assert Verdict(reason="invalid", failures=1) == first
    assert Verdict(reason="throttled", retry_after=1.0, failures=1) == verifier.record_failure(
        "alice", source="10.0.0.1"
    )


def test_credential_id_is_one_way_and_stable() -> None:
    """The id is 32 hex digits, the same for the same key (TOTP or HOTP), never the key."""
    ident = credential_id(TOTP(SECRET))
    assert ident == credential_id(HOTP(SECRET)) == credential_id(TOTP(SECRET, period=60))
    assert 32 == len(ident)
    assert int(ident, 16) >= 0
    assert SECRET.hex() not in ident
