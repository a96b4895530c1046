"""The one validator family in ``_limits``: integers in a range and finite seconds."""

from __future__ import annotations

import math

import pytest

from isoms_otp import ConfigurationError
from isoms_otp._limits import (
    MAX_CLOCK,
    MAX_STORE_TIMEOUT,
    MAX_T0,
    MAX_UNIX_SECONDS,
    check_counter,
    check_digits,
    check_look_ahead,
    check_period,
    check_store_timeout,
    check_t0,
    check_window,
    finite_seconds,
    integer_in,
    seconds_in,
    whole_number,
)


def test_one_unix_time_bound() -> None:
    """MAX_T0 and MAX_CLOCK are one bound (2**53), defined once, not two copies."""
    assert MAX_T0 is MAX_UNIX_SECONDS
    assert MAX_CLOCK is MAX_UNIX_SECONDS
    assert 2**53 == MAX_UNIX_SECONDS


def test_integer_in_accepts_the_bounds() -> None:
    """Both ends are included, and the value itself is returned."""
    assert 1 == integer_in(1, "n", 1, 3)
    assert 3 == integer_in(3, "n", 1, 3)


@pytest.mark.parametrize("value", [True, 1.0, "1", None, type("Int", (int,), {})(1)])
def test_integer_in_refuses_other_types(value: object) -> None:
    """Only a plain int: bool, float, str and int subclasses are a TypeError naming the type."""
    with pytest.raises(TypeError) as info:
        integer_in(value, "n", 0, 3)
    assert f"n must be an int, not {type(value).__name__}" == str(info.value)


def test_integer_in_messages() -> None:
    """Out of range: the default bounds text, a custom one with a hint, and a huge int named."""
    with pytest.raises(ConfigurationError) as info:
        integer_in(4, "n", 1, 3)
    assert "n must be from 1 to 3 (got 4)" == str(info.value)
    with pytest.raises(ConfigurationError) as info:
        integer_in(0, "n", 1, 3, bounds="be 1, 2 or 3", hint="; 2 is usual")
    assert "n must be 1, 2 or 3 (got 0); 2 is usual" == str(info.value)
    with pytest.raises(ConfigurationError) as info:
        integer_in(10**5000, "n", 1, 3)
    assert "n must be from 1 to 3 (got an int beyond 2**64)" == str(info.value)


@pytest.mark.parametrize(
    ("check", "bad", "message"),
    [
        (check_digits, 9, "digits must be 6, 7 or 8 (got 9)"),
        (check_counter, -1, "counter must be from 0 to 2**64-1 (got -1)"),
        (lambda v: check_window(v, "past"), 11, "past must be from 0 to 10 steps (got 11)"),
        (check_look_ahead, 101, "look_ahead must be from 0 to 100 (got 101)"),
        (
            check_period,
            0,
            "period must be from 1 to 604800 seconds (got 0); 30 is the value every app supports",
        ),
        (check_t0, -1, "t0 must be from 0 to 2**53 Unix seconds (got -1)"),
    ],
    ids=["digits", "counter", "window", "look_ahead", "period", "t0"],
)
def test_named_checks_keep_their_messages(check: object, bad: int, message: str) -> None:
    """The named checks are the family with their documented wording (unchanged from before)."""
    assert callable(check)
    with pytest.raises(ConfigurationError) as info:
        check(bad)
    assert message == str(info.value)


def test_seconds_in() -> None:
    """Finite seconds in a range: ints and floats, an open or closed low end, clear messages."""
    assert 0.0 == seconds_in(0, "t")
    assert 2.5 == seconds_in(2.5, "t", 0, 600)
    with pytest.raises(ConfigurationError) as info:
        seconds_in(0, "timeout", 0, 600, above_low=True)
    assert "timeout must be from 0 to 600 seconds (got 0)" == str(info.value)
    with pytest.raises(ConfigurationError) as info:
        seconds_in(-1.5, "the time", bounds="not be negative")
    assert "the time must not be negative (got -1.5)" == str(info.value)
    with pytest.raises(ConfigurationError, match="finite number of seconds"):
        seconds_in(math.nan, "t")
    with pytest.raises(TypeError, match="t must be a number of seconds, not bool"):
        seconds_in(True, "t")


def test_finite_seconds_refuses_ints_beyond_floats() -> None:
    """An int no float can hold is named, not printed."""
    with pytest.raises(ConfigurationError) as info:
        finite_seconds(10**400, "t")
    assert "t must be a finite number of seconds (got an int beyond any float)" == str(info.value)


def test_every_bound_is_defined_once() -> None:
    """The bounds that verifier.py and throttle.py used to define are _limits' own objects."""
    from isoms_otp import _limits, throttle, verifier  # noqa: PLC0415

    for name in ("MAX_USER_LENGTH", "MAX_CLOCK", "MAX_RESYNC_WINDOW", "MAX_CREDENTIALS"):
        assert getattr(_limits, name) is getattr(verifier, name), name
    for name in ("MAX_FAILURES_CEILING", "MAX_SOURCE_FAILURES"):
        assert getattr(_limits, name) is getattr(throttle, name), name
    assert (256, 10_000, 16, 100, 10) == (
        _limits.MAX_USER_LENGTH,
        _limits.MAX_RESYNC_WINDOW,
        _limits.MAX_CREDENTIALS,
        _limits.MAX_FAILURES_CEILING,
        _limits.MAX_SOURCE_FAILURES,
    )
    # The hand-written copies are gone (verifier._check_range, throttle._MAX_SECONDS).
    assert not hasattr(verifier, "_check_range")
    assert not hasattr(throttle, "_MAX_SECONDS")


@pytest.mark.parametrize("text", ["0", "101", "+6", " 6", "6 ", "\u0666", "", "1" * 21])
def test_whole_number_refuses(text: str) -> None:
    """Command-line counts are plain ASCII decimals in range; int() alone took "+6" and " 6"."""
    with pytest.raises(ConfigurationError) as info:
        whole_number(text, 1, 100)
    assert "must be a whole number from 1 to 100" == str(info.value)


def test_whole_number_accepts() -> None:
    """In range, leading zeros included, gives the int."""
    assert (1, 100, 7) == (
        whole_number("1", 1, 100),
        whole_number("100", 1, 100),
        whole_number("007", 1, 100),
    )


def test_store_timeout() -> None:
    """One deadline ceiling (600 s) for SQLiteStore and Redis clients, with one message."""
    assert 600.0 == MAX_STORE_TIMEOUT
    assert 0.5 == check_store_timeout(0.5)
    assert 600.0 == check_store_timeout(600)
    for bad in (0, -1, 600.5):
        with pytest.raises(ConfigurationError) as info:
            check_store_timeout(bad)
        assert f"timeout must be more than 0 and at most 600 seconds (got {bad!r})" == str(
            info.value
        )
    with pytest.raises(TypeError, match="timeout must be a number of seconds, not str"):
        check_store_timeout("5")


def test_users_of_the_family_keep_their_messages() -> None:
    """ThrottlePolicy, SQLiteStore and Verifier now call the family; their messages still say
    what is wrong and how to fix it."""
    from isoms_otp import MemoryStore, SQLiteStore, ThrottlePolicy, Verifier  # noqa: PLC0415

    with pytest.raises(ConfigurationError) as info:
        ThrottlePolicy(max_failures=101)
    assert "max_failures must be from 1 to 100 (got 101); NIST SP 800-63B's ceiling" == str(
        info.value
    )
    with pytest.raises(ConfigurationError) as info:
        ThrottlePolicy(lock_duration=0)
    assert (
        "lock_duration must be greater than 0 and at most ten years, 315360000 seconds (got 0)"
        == str(info.value)
    )
    with pytest.raises(ConfigurationError, match="base_delay must be 0 or more and at most"):
        ThrottlePolicy(base_delay=-1)
    with pytest.raises(ConfigurationError, match=r"timeout must be more than 0 and at most 600"):
        SQLiteStore(":memory:", timeout=0)
    with pytest.raises(ConfigurationError) as info:
        Verifier(MemoryStore(), resync_window=0)
    assert "resync_window must be from 1 to 10000 (got 0)" == str(info.value)
    with pytest.raises(ConfigurationError) as info:
        Verifier(MemoryStore(), look_ahead=101)
    assert "look_ahead must be from 0 to 100 (got 101)" == str(info.value)
