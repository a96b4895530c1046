"""ThrottlePolicy: defaults, the back-off schedule and validation."""

from __future__ import annotations

import dataclasses
import math

import pytest

from isoms_otp import ConfigurationError, ThrottlePolicy


def test_defaults() -> None:
    """Defaults: 10 failures, back-off 1 s doubling to 300 s, then a one-day lock."""
    policy = ThrottlePolicy()
    assert (10, 1.0, 300.0, 86400.0) == (
        policy.max_failures, policy.base_delay, policy.max_delay, policy.lock_duration
    )  # fmt: skip
    assert (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 86400.0) == policy.schedule
    assert (10, 3600.0) == (policy.source_max_failures, policy.source_lock_duration)
    assert (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 3600.0) == policy.source_schedule
    assert 86400.0 == policy.longest_wait


def test_source_budget() -> None:
    """The per-source budget has its own limit (at most 10) and lock, and the same back-off."""
    policy = ThrottlePolicy(base_delay=2, max_delay=5, source_max_failures=3,
                            source_lock_duration=90_000)  # fmt: skip
    assert (2.0, 4.0, 90_000.0) == policy.source_schedule
    assert 90_000.0 == policy.longest_wait


def test_cap_and_lock() -> None:
    """The back-off is capped at max_delay, and the last failure locks."""
    policy = ThrottlePolicy(max_failures=5, base_delay=3, max_delay=7, lock_duration=60)
    assert (3.0, 6.0, 7.0, 7.0, 60.0) == policy.schedule


def test_backoff_off() -> None:
    """base_delay=0 turns back-off off; the lock stays."""
    assert (0.0, 0.0, 5.0) == ThrottlePolicy(max_failures=3, base_delay=0, lock_duration=5).schedule


def test_hundred_failures_do_not_overflow() -> None:
    """NIST's ceiling of 100 failures with huge delays stays finite."""
    policy = ThrottlePolicy(max_failures=100, base_delay=1e6, max_delay=1e8)
    assert all(math.isfinite(delay) for delay in policy.schedule)
    assert 100 == len(policy.schedule)


def test_frozen() -> None:
    """A policy cannot be changed after construction."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        ThrottlePolicy().max_failures = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"max_failures": 0}, ConfigurationError, "max_failures"),
        ({"max_failures": 101}, ConfigurationError, "NIST"),
        ({"max_failures": 3.0}, TypeError, "max_failures"),
        ({"base_delay": -1}, ConfigurationError, "base_delay"),
        ({"base_delay": math.nan}, ConfigurationError, "base_delay"),
        ({"base_delay": True}, TypeError, "base_delay"),
        ({"max_delay": math.inf}, ConfigurationError, "max_delay"),
        ({"base_delay": 5, "max_delay": 2}, ConfigurationError, "less than base_delay"),
        ({"lock_duration": 0}, ConfigurationError, "lock_duration"),
        ({"lock_duration": "1h"}, TypeError, "lock_duration"),
        ({"lock_duration": 1e12}, ConfigurationError, "lock_duration"),
        ({"base_delay": 10**400}, ConfigurationError, "base_delay .* beyond any float"),
        ({"max_delay": 10**400}, ConfigurationError, "max_delay .* beyond any float"),
        ({"lock_duration": -(10**400)}, ConfigurationError, "lock_duration .* beyond any float"),
        ({"max_failures": 10**5000}, ConfigurationError, "got an int beyond 2\\*\\*64"),
        ({"source_max_failures": 11}, ConfigurationError, "source_max_failures .* 1 to 10"),
        ({"source_max_failures": 0}, ConfigurationError, "source_max_failures"),
        ({"source_max_failures": True}, TypeError, "source_max_failures"),
        ({"source_lock_duration": 0}, ConfigurationError, "source_lock_duration"),
    ],
    ids=[
        "zero-failures", "over-nist", "float-failures", "negative-delay", "nan-delay",
        "bool-delay", "infinite-max", "max-below-base", "zero-lock", "text-lock", "huge-lock",
        "int-beyond-float-delay", "int-beyond-float-max", "int-beyond-float-lock",
        "int-beyond-repr-failures", "source-over-ten", "source-zero", "source-bool",
        "source-lock-zero",
    ],
)  # fmt: skip
def test_validation(options: dict[str, object], error: type[Exception], message: str) -> None:
    """Out-of-range or mistyped settings are refused with a message naming the setting.

    Regression: an int beyond any float (10**400) used to raise OverflowError, and one past
    4300 digits a bare ValueError from printing it.
    """
    with pytest.raises(error, match=message):
        ThrottlePolicy(**options)  # type: ignore[arg-type]
