"""TOTP (RFC 6238): time-based one-time codes."""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime
from hmac import compare_digest
from typing import Final

from ._code import normalize_code
from ._hmac import _HASHES, _IPAD, _OPAD, hmac_states
from ._hotp import (
    _FORMATS,
    _MODULI,
    _NEW,
    PACK_CODE,
    PACK_COUNTER,
    UNPACK_31,
    check_options,
    finish,
    restore,
)
from ._limits import (
    MAX_COUNTER,
    MAX_DIGITS,
    MAX_PERIOD,
    MAX_SECRET_BYTES,
    MAX_T0,
    MAX_TOTP_WINDOW,
    MIN_DIGITS,
    MIN_PERIOD,
    MIN_SECRET_BYTES,
    check_period,
    check_t0,
    check_window,
    shown,
)
from ._match import Match, new_match
from .exceptions import ConfigurationError

__all__ = ["TOTP", "check_window", "seconds"]

Instant = int | float | datetime | None

#: One past the last step a 64-bit counter can hold: the exclusive end of a verify window.
_STEP_LIMIT: Final = MAX_COUNTER + 1
# TOTP()'s defaults, as objects: the constructor's fast path tests its arguments for identity
# with them (the signature below uses these very objects).
_DIGITS: Final[int] = 6
_ALGORITHM: Final[str] = "SHA1"
_PERIOD: Final[int] = 30
_T0: Final[int] = 0
_DEFAULT_HASHING: Final = _HASHES[_ALGORITHM]


def seconds(at: object) -> int | float:
    """Turn ``at`` into Unix seconds: an int/float (``None`` means now) or an aware datetime.

    Refused with :class:`ConfigurationError`: negative, NaN or infinite numbers and naive
    datetimes (a naive datetime has no defined instant; pyotp's ``mktime`` bug came from
    guessing). Other types, ``bool`` included, are a ``TypeError``.
    """
    kind = type(at)
    if kind is int and isinstance(at, int):  # isinstance() only narrows the type for mypy
        if at < 0:
            raise ConfigurationError(f"time must not be negative (got {shown(at)})")
        return at
    if kind is float:
        if not 0.0 <= at < math.inf:  # type: ignore[operator]
            raise ConfigurationError(f"time must be a finite, non-negative number (got {at})")
        return at  # type: ignore[return-value]
    if at is None:
        return time.time()
    if isinstance(at, datetime):
        if at.tzinfo is None or at.utcoffset() is None:
            raise ConfigurationError(
                "a naive datetime has no defined instant; pass an aware datetime "
                "(for example datetime.now(timezone.utc)) or Unix seconds"
            )
        return seconds(at.timestamp())
    if isinstance(at, bool) or not isinstance(at, (int, float)):
        raise TypeError(
            f"time must be Unix seconds (int or float) or an aware datetime, not {kind.__name__}"
        )
    return seconds(int(at) if isinstance(at, int) else float(at))  # int/float subclasses


class _TOTPSlots:
    """The slots of a :class:`TOTP`, in a plain class so that ``TOTP()`` can fill them fast."""

    __slots__ = (
        "_inner",
        "_outer",
        "algorithm",
        "allow_short_secret",
        "digits",
        "period",
        "secret",
        "t0",
    )
    secret: bytes
    digits: int
    algorithm: str
    period: int
    t0: int
    allow_short_secret: bool
    _inner: hashlib._Hash
    _outer: hashlib._Hash


@dataclass(frozen=True, init=False)
class TOTP(_TOTPSlots):
    """A TOTP generator/verifier for one key (RFC 6238).

    ``secret``, ``digits``, ``algorithm`` and ``allow_short_secret`` are as for :class:`HOTP`.
    ``period`` is the time step X in seconds (an int from 1 to 604800, default 30); ``t0`` the
    Unix time steps count from (an int >= 0, default 0). Raises :class:`InvalidSecretError` or
    :class:`ConfigurationError` (``TypeError`` for wrong types). The secret never appears in
    ``repr``.
    """

    # As for HOTP: fields without class-level defaults (those of __new__ apply), slots in
    # _TOTPSlots, filled there and then frozen by finish().
    __slots__ = ()
    secret: bytes = field(repr=False)
    _: KW_ONLY
    digits: int
    algorithm: str
    period: int
    t0: int
    allow_short_secret: bool = field(repr=False, compare=False)

    def __new__(
        cls,
        secret: bytes,
        *,
        digits: int = _DIGITS,
        algorithm: str = _ALGORITHM,
        period: int = _PERIOD,
        t0: int = _T0,
        allow_short_secret: bool = False,
    ) -> TOTP:
        # Written out for the cold path: a login builds a TOTP from its stored secret every time
        # (see finish() for why the slots are filled on a plain instance). The usual arguments
        # pass the inlined checks; anything else takes the full checks, which raise in the
        # documented order: secret, digits, algorithm, period, t0.
        if (
            type(secret) is bytes
            and MIN_SECRET_BYTES <= len(secret) <= MAX_SECRET_BYTES
            and digits is _DIGITS
            and algorithm is _ALGORITHM
            and period is _PERIOD
            and t0 is _T0
            and allow_short_secret is False
        ):
            # The defaults themselves (identity: these very objects, so exactly these values and
            # types): a login's TOTP(secret). Any other argument takes the checks below.
            key, name, hashing = secret, algorithm, _DEFAULT_HASHING
        else:
            if (
                type(secret) is bytes
                and type(allow_short_secret) is bool
                and MIN_SECRET_BYTES <= len(secret) <= MAX_SECRET_BYTES
                and type(digits) is int
                and MIN_DIGITS <= digits <= MAX_DIGITS
                and type(algorithm) is str
                and (found := _HASHES.get(algorithm)) is not None
            ):
                key, name, hashing = secret, algorithm, found
            else:
                key, name = check_options(secret, digits, algorithm, allow_short_secret)
                hashing = _HASHES[name]
            if type(period) is not int or not MIN_PERIOD <= period <= MAX_PERIOD:
                check_period(period)
            if type(t0) is not int or not 0 <= t0 <= MAX_T0:
                check_t0(t0)
        state = _NEW(_TOTPSlots)
        state.secret = key
        state.digits = digits
        state.algorithm = name
        state.period = period
        state.t0 = t0
        state.allow_short_secret = allow_short_secret
        # hmac_states() inlined for keys that fit a block (every usual key); longer keys, which
        # RFC 2104 hashes first, take the function.
        empty, block = hashing
        if len(key) <= block:
            padded = key.ljust(block, b"\0")
            inner = state._inner = empty.copy()
            inner.update(padded.translate(_IPAD))
            outer = state._outer = empty.copy()
            outer.update(padded.translate(_OPAD))
        else:
            state._inner, state._outer = hmac_states(key, name)
        if cls is TOTP:  # finish() inlined for the common case
            state.__class__ = TOTP
            return state  # type: ignore[return-value]  # its class is TOTP now
        return finish(state, cls)

    def __reduce__(self) -> tuple[object, ...]:
        options = {
            "digits": self.digits,
            "algorithm": self.algorithm,
            "period": self.period,
            "t0": self.t0,
        }
        return (restore, (TOTP, self.secret, options, self.allow_short_secret))

    def step(self, at: Instant = None) -> int:
        """Return the RFC 6238 time step ``T = floor((at - t0) / period)`` (``None`` = now).

        Raises :class:`ConfigurationError` for a time before ``t0`` or so far ahead that the step
        no longer fits in 64 bits, and as :func:`seconds` describes.
        """
        now = seconds(at)
        if now < self.t0:
            raise ConfigurationError(f"time {shown(now)} is before t0 ({shown(self.t0)})")
        step = int((now - self.t0) // self.period)
        if step > MAX_COUNTER:
            raise ConfigurationError("time is too far in the future: the step exceeds 2**64-1")
        return step

    def remaining(self, at: Instant = None) -> float:
        """Return the seconds left until the code changes (in ``(0, period]``), for countdowns."""
        now = seconds(at)
        self.step(now)
        return self.period - (now - self.t0) % self.period

    def generate(self, at: Instant = None) -> str:
        """Return the code at ``at`` (Unix seconds or an aware datetime; ``None`` = now)."""
        inner = self._inner.copy()
        inner.update(PACK_COUNTER(self.step(at)))
        outer = self._outer.copy()
        outer.update(inner.digest())
        mac = outer.digest()
        value: int = UNPACK_31(mac, mac[-1] & 15)[0] & 0x7FFFFFFF
        digits = self.digits
        code: str = _FORMATS[digits] % (value % _MODULI[digits])
        return code

    def verify(
        self,
        code: str,
        *,
        at: Instant = None,
        past: int = 1,
        future: int = 1,
        after_step: int | None = None,
    ) -> Match | None:
        """Check ``code`` against the steps ``step(at) - past .. step(at) + future``.

        Returns a :class:`Match` (the matched ``step`` and its ``drift`` from ``step(at)``) or
        ``None``. ``past`` and ``future`` are 0 to 10 steps; the default of one step each way
        absorbs clock skew and typing time. ``after_step`` is the replay high-water mark: only
        steps strictly greater can match, so pass the last accepted step (the :class:`Verifier`
        keeps it for you). Every candidate is computed and compared in constant time; if several
        match, the highest step wins, so that storing it can never let the same code match again.
        A code that is not ``digits`` ASCII digits after the documented normalisation is no
        match; a non-``str`` code is a ``TypeError``.
        """
        # The checks below are the fast paths of normalize_code(), check_window() and step(),
        # inlined because a login pays for every Python call; anything unusual takes the full
        # function, which raises the same errors in the same order as before.
        digits = self.digits
        if type(code) is str and len(code) == digits and code.isascii() and code.isdigit():
            wanted: str | None = code
        else:
            wanted = normalize_code(code, digits)
        if type(past) is not int or not 0 <= past <= MAX_TOTP_WINDOW:
            check_window(past, "past")
        if type(future) is not int or not 0 <= future <= MAX_TOTP_WINDOW:
            check_window(future, "future")
        if after_step is None:
            lowest = 0
        elif type(after_step) is int:
            lowest = after_step + 1 if after_step >= 0 else 0  # "no match" (-1) must stay below
        else:
            raise TypeError(f"after_step must be an int or None, not {type(after_step).__name__}")
        t0 = self.t0
        if type(at) is int and at >= t0:
            current = (at - t0) // self.period
        elif type(at) is float and t0 <= at < math.inf:
            current = int((at - t0) // self.period)
        else:
            current = self.step(at)
        if current > MAX_COUNTER:
            current = self.step(at)  # raises: the step no longer fits in 64 bits
        if wanted is None:
            return None
        # Compare 4-byte big-endian integers rather than formatted strings: compare_digest on
        # fixed-width bytes is as constant-time as on the text and skips a "%0Nd" per candidate.
        expected = PACK_CODE(int(wanted))
        first = current - past if current > past else 0
        last = current + future + 1
        if last > _STEP_LIMIT:  # noqa: PLR1730 - min() costs a call on the hot path
            last = _STEP_LIMIT
        found = -1
        inner_copy = self._inner.copy
        outer_copy = self._outer.copy
        modulus = _MODULI[digits]
        for candidate in range(first, last):
            inner = inner_copy()
            inner.update(PACK_COUNTER(candidate))
            outer = outer_copy()
            outer.update(inner.digest())
            mac = outer.digest()
            if compare_digest(
                PACK_CODE((UNPACK_31(mac, mac[-1] & 15)[0] & 0x7FFFFFFF) % modulus), expected
            ):
                found = candidate
        # The highest match wins, so when it is not above the high-water mark no other can be:
        # testing ``after_step`` once here is the same as testing every candidate.
        if found < lowest:
            return None
        return new_match(found, found - current)
