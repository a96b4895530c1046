"""isoms_otp.testing.FakeClock."""

from __future__ import annotations

import math

import pytest

from isoms_otp import ConfigurationError
from isoms_otp.testing import FakeClock


def test_stands_still_until_moved() -> None:
    """The clock returns the same time until advanced or set."""
    clock = FakeClock(1000)
    assert (1000.0, 1000.0) == (clock(), clock())
    assert 1030.5 == clock.advance(30.5)
    assert 1010.5 == clock.advance(-20)
    assert 5.0 == clock.set(5)
    assert "FakeClock(5.0)" == repr(clock)


def test_default_start() -> None:
    """The default start is a fixed, recent Unix time."""
    assert 1_700_000_000.0 == FakeClock()()


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c: c.advance(math.nan), ConfigurationError),
        (lambda c: c.advance("1"), TypeError),
        (lambda c: c.set(-1), ConfigurationError),
        (lambda c: c.advance(-2000), ConfigurationError),
        (lambda c: c.set(True), TypeError),
        (lambda c: c.set(10**400), ConfigurationError),
        (lambda c: c.advance(-(10**5000)), ConfigurationError),
    ],
    ids=["nan", "text", "negative-time", "before-epoch", "bool", "int-beyond-float",
         "int-beyond-repr-limit"],
)  # fmt: skip
def test_refuses_nonsense(call: object, error: type[Exception]) -> None:
    """Times must be finite, non-negative numbers; a refused move leaves the clock alone."""
    clock = FakeClock(1000)
    with pytest.raises(error):
        call(clock)  # type: ignore[operator]
    assert 1000.0 == clock()


def test_start_beyond_any_float() -> None:
    """Regression: FakeClock(10**400) used to raise OverflowError, not ConfigurationError."""
    with pytest.raises(ConfigurationError, match="beyond any float"):
        FakeClock(10**400)
