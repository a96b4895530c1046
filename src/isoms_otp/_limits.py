"""Documented bounds shared by the core, the URI parser and the verifier.

They live in one module so the limits in the docs, the checks and the tests cannot drift apart.
"""

from __future__ import annotations

import math
from typing import Final

from .exceptions import ConfigurationError

#: RFC 4226 section 4, R6: "The length of the shared secret MUST be at least 128 bits."
MIN_SECRET_BYTES: Final = 16
#: The floor for ``allow_short_secret=True``: Google's Key Uri Format example key is 80 bits.
LEGACY_MIN_SECRET_BYTES: Final = 10
#: Longer keys add nothing (HMAC hashes keys longer than a block) and only cost memory and time.
MAX_SECRET_BYTES: Final = 256
#: Longest base32 text ``decode_secret`` will look at (410 symbols for 256 bytes, plus separators).
MAX_SECRET_TEXT: Final = 1024

#: Codes of 6 to 8 digits: RFC 4226 requires at least 6; 9+ digits exceed the 31-bit truncation.
MIN_DIGITS: Final = 6
MAX_DIGITS: Final = 8

#: The longest period accepted: one week. Longer periods make a code a long-lived password.
MAX_PERIOD: Final = 7 * 24 * 3600

#: The latest TOTP t0 accepted: 2**53 seconds, where floats stop counting whole seconds.
MAX_T0: Final = 2**53

#: RFC 4226's moving factor is an 8-byte counter.
MAX_COUNTER: Final = 2**64 - 1

#: Largest TOTP window on either side, in steps. Each extra step is one more code an attacker's
#: guess can hit (odds per guess: (past + future + 1) / 10**digits) and one more HMAC per
#: verification.
MAX_TOTP_WINDOW: Final = 10
#: Largest HOTP look-ahead, in counter values (the same trade-off as the TOTP window).
MAX_LOOK_AHEAD: Final = 100


def shown(number: int | float) -> str:
    """Return ``number`` for an error message: a huge int is named, not printed.

    ``str()`` of an int over 4300 digits raises a bare ``ValueError`` (CPython's
    int_max_str_digits), which would replace our own error with an unhelpful one.
    """
    if type(number) is int and number.bit_length() > 64:
        return "an int beyond 2**64"
    return repr(number)


def finite_seconds(value: object, name: str) -> float:
    """Return ``value`` (an int or float, not a bool) as finite float seconds.

    ``TypeError`` for other types; :class:`ConfigurationError` for NaN, infinities and ints
    beyond any float (named, not printed: their repr could be thousands of digits).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        raise ConfigurationError(
            f"{name} must be a finite number of seconds (got an int beyond any float)"
        ) from None
    if not math.isfinite(number):
        raise ConfigurationError(f"{name} must be a finite number of seconds (got {value!r})")
    return number
