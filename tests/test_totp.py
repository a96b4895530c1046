"""TOTP (RFC 6238): construction, time handling, verification windows, replay and uniform work."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from enum import IntEnum
from fractions import Fraction
from typing import Any

import pytest

from isoms_otp import TOTP, ConfigurationError, Match
from isoms_otp._limits import MAX_COUNTER, MAX_PERIOD, MAX_TOTP_WINDOW

KEY = b"12345678901234567890"
# RFC 4226 codes of the same key: TOTP step n uses HOTP counter n.
RFC_CODES = ["755224", "287082", "359152", "969429", "338314"]
RFC_CODES += ["254676", "287922", "162583", "399871", "520489"]
# Two steps of KEY whose 6-digit codes coincide (found by a search; checked in test_hotp.py).
COLLISION = (153567, 153569, "468457")


# --- construction -------------------------------------------------------------------------------


def test_defaults_are_readable() -> None:
    """The configuration is readable: .secret, .digits, .algorithm, .period, .t0."""
    totp = TOTP(KEY)
    assert (KEY, 6, "SHA1", 30, 0) == (
        totp.secret,
        totp.digits,
        totp.algorithm,
        totp.period,
        totp.t0,
    )


def test_all_options_are_readable() -> None:
    """Every option given is readable back, the algorithm normalised."""
    totp = TOTP(KEY, digits=8, algorithm="sha512", period=60, t0=100)
    assert (8, "SHA512", 60, 100) == (totp.digits, totp.algorithm, totp.period, totp.t0)


@pytest.mark.parametrize("period", [1, 30, 60, MAX_PERIOD])
def test_period_accepted(period: int) -> None:
    """Periods from 1 s to one week are accepted."""
    assert period == TOTP(KEY, period=period).period


@pytest.mark.parametrize("period", [0, -1, -30, MAX_PERIOD + 1, 2**64])
def test_period_out_of_range(period: int) -> None:
    """0, negative and over a week are a ConfigurationError."""
    with pytest.raises(ConfigurationError, match="period must be from 1 to 604800"):
        TOTP(KEY, period=period)


@pytest.mark.parametrize("period", [1.5, 30.0, True, "30", None], ids=repr)
def test_period_of_wrong_type(period: object) -> None:
    """A non-int period (bool and whole floats included) is a TypeError."""
    with pytest.raises(TypeError, match="period must be an int"):
        TOTP(KEY, period=period)  # type: ignore[arg-type]


@pytest.mark.parametrize("t0", [-1, -(2**40)])
def test_negative_t0(t0: int) -> None:
    """t0 before the epoch is a ConfigurationError."""
    with pytest.raises(ConfigurationError, match="t0 must be from 0 to 2"):
        TOTP(KEY, t0=t0)


@pytest.mark.parametrize("t0", [0.0, 1.5, False, "0", None], ids=repr)
def test_t0_of_wrong_type(t0: object) -> None:
    """A non-int t0 is a TypeError."""
    with pytest.raises(TypeError, match="t0 must be an int"):
        TOTP(KEY, t0=t0)  # type: ignore[arg-type]


def test_options_are_keyword_only() -> None:
    """Only the secret is positional."""
    with pytest.raises(TypeError):
        TOTP(KEY, 8)  # type: ignore[call-arg]


# --- time: at -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("at", "step"), [(0, 0), (29, 0), (29.999, 0), (30, 1), (59.999, 1)])
def test_floor_division(at: float, step: int) -> None:
    """Steps are floor((at - t0) / period): 59.999 s is still step 1."""
    assert step == TOTP(KEY).step(at)


def test_t0_shifts_steps() -> None:
    """Steps count from t0."""
    totp = TOTP(KEY, period=10, t0=1000)
    assert (0, 0, 1, 100) == (totp.step(1000), totp.step(1009.5), totp.step(1010), totp.step(2000))
    assert RFC_CODES[1] == totp.generate(1010)


@pytest.mark.parametrize("at", [-1, -0.5, -(2**70), -math.inf, math.inf, math.nan])
def test_bad_numbers(at: float) -> None:
    """Negative, infinite and NaN times are a ConfigurationError."""
    with pytest.raises(ConfigurationError, match="time must"):
        TOTP(KEY).generate(at)


@pytest.mark.parametrize("at", [999, 999.99])
def test_time_before_t0(at: float) -> None:
    """A time before t0 has no step: ConfigurationError."""
    with pytest.raises(ConfigurationError, match="before t0"):
        TOTP(KEY, t0=1000).step(at)


@pytest.mark.parametrize(
    "at",
    [True, False, "59", b"59", Decimal(59), Fraction(59), complex(59), [59], object()],
    ids=lambda value: type(value).__name__,
)
def test_wrong_types_of_time(at: object) -> None:
    """bool, str, Decimal, Fraction and other types are a TypeError (not silently coerced)."""
    with pytest.raises(TypeError, match="time must be Unix seconds"):
        TOTP(KEY).generate(at)  # type: ignore[arg-type]


def test_naive_datetime_refused() -> None:
    """A naive datetime has no instant: ConfigurationError with a fix."""
    with pytest.raises(ConfigurationError, match="aware datetime"):
        TOTP(KEY).generate(datetime(2009, 2, 13, 23, 31, 30))  # noqa: DTZ001


class NoOffset(tzinfo):
    """A tzinfo that does not know its offset: the datetime is effectively naive."""

    def utcoffset(self, _dt: datetime | None) -> timedelta | None:
        """No offset known."""
        return None

    def dst(self, _dt: datetime | None) -> timedelta | None:
        """No daylight-saving information either."""
        return None

    def tzname(self, _dt: datetime | None) -> str | None:
        """No name."""
        return None


def test_datetime_without_offset_refused() -> None:
    """A tzinfo whose utcoffset() is None counts as naive."""
    with pytest.raises(ConfigurationError, match="naive"):
        TOTP(KEY).step(datetime(2009, 2, 13, tzinfo=NoOffset()))


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2009, 2, 13, 23, 31, 30, tzinfo=timezone.utc),
        datetime(2009, 2, 14, 1, 31, 30, tzinfo=timezone(timedelta(hours=2))),
        datetime(2009, 2, 13, 18, 1, 30, tzinfo=timezone(-timedelta(hours=5, minutes=30))),
    ],
    ids=["utc", "plus-2h", "minus-5h30"],
)
def test_aware_datetime(moment: datetime) -> None:
    """An aware datetime is its timestamp, whatever its zone (RFC 6238: 1234567890)."""
    totp = TOTP(KEY, digits=8)
    assert 1234567890 == moment.timestamp()
    assert totp.generate(1234567890) == totp.generate(moment)
    assert "89005924" == totp.generate(moment)
    assert totp.step(1234567890) == totp.step(moment)
    assert totp.remaining(1234567890) == totp.remaining(moment)
    assert Match(step=totp.step(moment), drift=0) == totp.verify("89005924", at=moment)


def test_aware_datetime_before_the_epoch() -> None:
    """An aware datetime before 1970 is a negative time: ConfigurationError."""
    with pytest.raises(ConfigurationError, match="non-negative"):
        TOTP(KEY).step(datetime(1969, 12, 31, 23, 59, tzinfo=timezone.utc))


class Seconds(IntEnum):
    """An int subclass, as an enum or a numpy-less wrapper might pass."""

    RFC = 59


class Stamp(float):
    """A float subclass."""

    __slots__ = ()


def test_int_and_float_subclasses() -> None:
    """int/float subclasses (not bool) are taken by their value."""
    totp = TOTP(KEY)
    assert RFC_CODES[1] == totp.generate(Seconds.RFC)
    assert RFC_CODES[1] == totp.generate(Stamp(59.5))
    with pytest.raises(ConfigurationError):
        totp.generate(Stamp(-1.0))
    with pytest.raises(ConfigurationError):
        totp.generate(Stamp(math.nan))


def test_times_beyond_2038() -> None:
    """Times after 2038 and far beyond (year 2603, 2**40 s) work: steps are 64-bit."""
    totp = TOTP(KEY, digits=8)
    assert "65353130" == totp.generate(20000000000)
    assert 2**40 // 30 == totp.step(2**40)
    assert 8 == len(totp.generate(2**40))
    assert 8 == len(totp.generate(float(2**50)))


def test_last_representable_step() -> None:
    """The step 2**64-1 is accepted; one second later it no longer fits and is refused."""
    totp = TOTP(KEY, period=1)
    assert MAX_COUNTER == totp.step(MAX_COUNTER)
    assert 6 == len(totp.generate(MAX_COUNTER))
    with pytest.raises(ConfigurationError, match="too far in the future"):
        totp.step(MAX_COUNTER + 1)
    with pytest.raises(ConfigurationError, match="too far in the future"):
        TOTP(KEY).generate(1e300)


def test_none_means_now() -> None:
    """at=None reads the clock once per call (the step lies between two readings)."""
    totp = TOTP(KEY)
    before = totp.step(time.time())
    now = totp.step()
    after = totp.step(time.time())
    assert before <= now <= after
    assert 6 == len(totp.generate())
    assert 0 < totp.remaining() <= 30


# --- remaining ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "left"), [(0, 30), (1, 29), (29, 1), (29.5, 0.5), (30, 30), (59.75, 0.25)]
)
def test_remaining(at: float, left: float) -> None:
    """remaining() counts down to the next step, in (0, period]."""
    assert left == TOTP(KEY).remaining(at)


def test_remaining_with_t0() -> None:
    """remaining() counts from t0."""
    totp = TOTP(KEY, period=10, t0=5)
    assert (10, 9, 1) == (totp.remaining(5), totp.remaining(6), totp.remaining(14))


def test_remaining_validates_time() -> None:
    """remaining() refuses what step() refuses."""
    with pytest.raises(ConfigurationError):
        TOTP(KEY, t0=100).remaining(50)
    with pytest.raises(TypeError):
        TOTP(KEY).remaining(True)  # bool is an int to mypy; refused at run time


# --- verify -------------------------------------------------------------------------------------


def test_verify_default_window_is_one_step_each_way() -> None:
    """By default the previous, current and next steps match; two away do not."""
    totp = TOTP(KEY)
    at = 4 * 30 + 7
    assert Match(step=3, drift=-1) == totp.verify(RFC_CODES[3], at=at)
    assert Match(step=4, drift=0) == totp.verify(RFC_CODES[4], at=at)
    assert Match(step=5, drift=1) == totp.verify(RFC_CODES[5], at=at)
    assert totp.verify(RFC_CODES[2], at=at) is None
    assert totp.verify(RFC_CODES[6], at=at) is None


def test_verify_window_bounds() -> None:
    """past and future set exactly which steps are tried."""
    totp = TOTP(KEY)
    at = 5 * 30
    assert Match(step=1, drift=-4) == totp.verify(RFC_CODES[1], at=at, past=4, future=0)
    assert totp.verify(RFC_CODES[1], at=at, past=3, future=9) is None
    assert Match(step=9, drift=4) == totp.verify(RFC_CODES[9], at=at, past=0, future=4)
    assert totp.verify(RFC_CODES[9], at=at, past=9, future=3) is None
    assert Match(step=5, drift=0) == totp.verify(RFC_CODES[5], at=at, past=0, future=0)


def test_verify_window_clamps_at_step_zero(count_copies: Callable[[TOTP], Any]) -> None:
    """At the epoch a past window has nothing before step 0 to try."""
    totp = TOTP(KEY)
    assert Match(step=0, drift=0) == totp.verify(RFC_CODES[0], at=0, past=MAX_TOTP_WINDOW)
    double = count_copies(totp)
    totp.verify("000000", at=0, past=MAX_TOTP_WINDOW, future=0)
    assert 1 == double.copies


def test_verify_window_clamps_at_the_last_step(count_copies: Callable[[TOTP], Any]) -> None:
    """At the last step a future window stops there instead of wrapping to step 0."""
    totp = TOTP(KEY, period=1)
    top = totp.generate(MAX_COUNTER)
    assert Match(step=MAX_COUNTER, drift=0) == totp.verify(top, at=MAX_COUNTER, future=10)
    assert Match(step=MAX_COUNTER, drift=1) == totp.verify(top, at=MAX_COUNTER - 1, future=10)
    assert totp.verify(RFC_CODES[0], at=MAX_COUNTER, past=0, future=10) is None
    double = count_copies(totp)
    totp.verify("000000", at=MAX_COUNTER, past=2, future=MAX_TOTP_WINDOW)
    assert 3 == double.copies


def test_match_at_step_zero_is_truthy() -> None:
    """A match at step 0 with drift 0 is still truthy (a bare int 0 would not be)."""
    match = TOTP(KEY).verify(RFC_CODES[0], at=0)
    assert Match(step=0, drift=0) == match
    assert match


def test_verify_wrong_code_is_none() -> None:
    """A wrong code is None."""
    assert TOTP(KEY).verify("000000", at=59) is None


@pytest.mark.parametrize("name", ["past", "future"])
@pytest.mark.parametrize("value", [-1, MAX_TOTP_WINDOW + 1, 2**64])
def test_window_out_of_range(name: str, value: int) -> None:
    """Windows outside 0..10 are a ConfigurationError naming the argument."""
    with pytest.raises(ConfigurationError, match=f"{name} must be from 0 to 10"):
        TOTP(KEY).verify(RFC_CODES[1], at=59, **{name: value})


@pytest.mark.parametrize("name", ["past", "future"])
@pytest.mark.parametrize("value", [1.0, True, "1", None], ids=repr)
def test_window_of_wrong_type(name: str, value: object) -> None:
    """Non-int windows are a TypeError."""
    with pytest.raises(TypeError, match=f"{name} must be an int"):
        TOTP(KEY).verify(RFC_CODES[1], at=59, **{name: value})  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [0, MAX_TOTP_WINDOW])
def test_window_limits_accepted(value: int) -> None:
    """0 and 10 are accepted."""
    assert TOTP(KEY).verify("000000", at=600, past=value, future=value) is None


def test_verify_bad_time() -> None:
    """verify refuses bad times like step()."""
    with pytest.raises(ConfigurationError):
        TOTP(KEY).verify(RFC_CODES[0], at=-1)
    with pytest.raises(ConfigurationError):
        TOTP(KEY).verify(RFC_CODES[0], at=datetime(2020, 1, 1))  # noqa: DTZ001
    with pytest.raises(TypeError):
        TOTP(KEY).verify(RFC_CODES[0], at="0")  # type: ignore[arg-type]


def test_verify_checks_arguments_even_for_malformed_codes() -> None:
    """Errors in the other arguments do not depend on whether the code looks like a code."""
    with pytest.raises(ConfigurationError):
        TOTP(KEY).verify("not a code", at=0, past=-1)
    with pytest.raises(ConfigurationError):
        TOTP(KEY).verify("not a code", at=-1)
    with pytest.raises(TypeError):
        TOTP(KEY).verify("not a code", at=0, after_step=1.0)  # type: ignore[arg-type]


# --- after_step (replay high-water mark) --------------------------------------------------------


def test_after_step_accepts_only_later_steps() -> None:
    """Only steps strictly greater than after_step match."""
    totp = TOTP(KEY)
    at = 5 * 30
    assert Match(step=5, drift=0) == totp.verify(RFC_CODES[5], at=at, after_step=4)
    assert totp.verify(RFC_CODES[5], at=at, after_step=5) is None
    assert totp.verify(RFC_CODES[5], at=at, after_step=6) is None


def test_after_step_refuses_a_replay_in_the_window() -> None:
    """A code from the window at or below after_step is no match, even though it is in time."""
    totp = TOTP(KEY)
    at = 5 * 30
    assert totp.verify(RFC_CODES[4], at=at, after_step=4) is None
    assert totp.verify(RFC_CODES[4], at=at, after_step=5) is None
    assert Match(step=6, drift=1) == totp.verify(RFC_CODES[6], at=at, after_step=5)


def test_after_step_none_and_negative() -> None:
    """None means no high-water mark; a negative mark excludes nothing."""
    totp = TOTP(KEY)
    assert Match(step=0, drift=0) == totp.verify(RFC_CODES[0], at=0, after_step=None)
    assert Match(step=0, drift=0) == totp.verify(RFC_CODES[0], at=0, after_step=-1)
    assert totp.verify(RFC_CODES[0], at=0, after_step=0) is None


@pytest.mark.parametrize("value", [1.0, True, "4", b"4"], ids=repr)
def test_after_step_of_wrong_type(value: object) -> None:
    """A non-int after_step is a TypeError."""
    with pytest.raises(TypeError, match="after_step must be an int or None"):
        TOTP(KEY).verify(RFC_CODES[5], at=150, after_step=value)  # type: ignore[arg-type]


def test_highest_matching_step_wins() -> None:
    """Two steps in the window share a code: the higher one is returned."""
    first, second, code = COLLISION
    totp = TOTP(KEY)
    assert (code, code) == (totp.generate(first * 30), totp.generate(second * 30))
    at = (first + 1) * 30
    assert Match(step=second, drift=1) == totp.verify(code, at=at)
    assert Match(step=second, drift=2) == totp.verify(code, at=first * 30, future=2)


def test_after_step_between_colliding_steps() -> None:
    """With the lower of two colliding steps used, the higher still matches; then neither."""
    first, second, code = COLLISION
    totp = TOTP(KEY)
    at = (first + 1) * 30
    assert Match(step=second, drift=1) == totp.verify(code, at=at, after_step=first)
    assert Match(step=second, drift=1) == totp.verify(code, at=at, after_step=first - 1)
    assert totp.verify(code, at=at, after_step=second) is None


# --- uniform work -------------------------------------------------------------------------------


@pytest.mark.parametrize(("past", "future"), [(0, 0), (1, 1), (2, 0), (0, 3), (10, 10)])
def test_uniform_work(past: int, future: int, count_copies: Callable[[TOTP], Any]) -> None:
    """Every candidate is computed: first candidate matching, last matching, or none."""
    current = 50
    at = current * 30
    cases = {
        "first": TOTP(KEY).generate((current - past) * 30),
        "last": TOTP(KEY).generate((current + future) * 30),
        "none": "000000",
        "replayed": TOTP(KEY).generate(at),
    }
    counts = {}
    for name, code in cases.items():
        totp = TOTP(KEY)
        double = count_copies(totp)
        totp.verify(code, at=at, past=past, future=future, after_step=current)
        counts[name] = double.copies
    assert dict.fromkeys(cases, past + future + 1) == counts


def test_generate_costs_one_copy(count_copies: Callable[[TOTP], Any]) -> None:
    """generate computes one HMAC from the precomputed states."""
    totp = TOTP(KEY)
    double = count_copies(totp)
    totp.generate(59)
    assert 1 == double.copies


def test_the_defaults_fast_path_and_the_checks_agree() -> None:
    """TOTP(secret) takes a fast path when its options are the defaults themselves; equal values
    of other types (True for 1, 30.0, a str subclass) still take the full checks."""

    class Name(str):
        __slots__ = ()

    assert TOTP(KEY) == TOTP(KEY, digits=6, algorithm="SHA1", period=30, t0=0)
    assert TOTP(KEY, algorithm="".join(["SH", "A1"])) == TOTP(KEY)  # an equal, other str object
    assert "SHA1" == TOTP(KEY, algorithm=Name("SHA1")).algorithm
    options: list[dict[str, Any]] = [
        {"digits": 6.0},
        {"period": 30.0},
        {"t0": False},
        {"digits": True},
    ]
    for option in options:
        with pytest.raises(TypeError):
            TOTP(KEY, **option)
    with pytest.raises(TypeError):
        TOTP(KEY, allow_short_secret=0)  # type: ignore[arg-type]
