"""Helpers for tests of code that uses isoms-otp: a fake clock, and the store contract suite.

``FakeClock`` is a clock to pass as ``clock``. ``StoreContract`` is a pytest base class with
the whole store contract: subclass it, give it a ``store`` fixture, and every rule of the
:class:`~isoms_otp.Store` protocol is tested against that store (it needs ``pytest``, and is
imported only when first used).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from ._limits import finite_seconds
from .exceptions import ConfigurationError

__all__ = ["FakeClock", "StoreContract"]

if TYPE_CHECKING:
    from ._contract import StoreContract


class FakeClock:
    """A clock that stands still until a test moves it; call it like ``time.time``.

    ``FakeClock(start)`` starts at ``start`` Unix seconds (default: 2023-11-14 22:13:20 UTC).
    ``advance(seconds)`` moves it (a negative number moves it backwards, as a badly set server
    clock would), ``set(at)`` jumps to ``at``. Safe to share between threads.

    >>> clock = FakeClock(1_000)
    >>> clock.advance(30)
    1030.0
    >>> clock()
    1030.0
    """

    __slots__ = ("_lock", "_now")

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._lock = threading.Lock()
        self._now = self._check(start)

    @staticmethod
    def _check(at: object) -> float:
        now = finite_seconds(at, "the time")
        if now < 0:
            raise ConfigurationError(f"the time must not be negative (got {at!r})")
        return now

    def __call__(self) -> float:
        """Return the current fake time in Unix seconds."""
        return self._now

    def __repr__(self) -> str:
        return f"FakeClock({self._now!r})"

    def advance(self, seconds: float) -> float:
        """Move the clock by ``seconds`` (negative goes backwards) and return the new time."""
        step = finite_seconds(seconds, "seconds")
        with self._lock:
            self._now = self._check(self._now + step)
            return self._now

    def set(self, at: float) -> float:
        """Set the clock to ``at`` Unix seconds and return it."""
        with self._lock:
            self._now = self._check(at)
            return self._now


def __getattr__(name: str) -> object:
    # Lazy: the contract suite imports pytest, which applications do not need at run time.
    if name == "StoreContract":
        from ._contract import StoreContract  # noqa: PLC0415

        return StoreContract
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
