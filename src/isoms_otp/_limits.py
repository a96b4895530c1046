"""Documented bounds shared by the core, the URI parser and the verifier, and their validators.

They live in one module so the limits in the docs, the checks and the tests cannot drift apart:
every bound is defined here once, and every module checks its arguments with the validators
below (:func:`integer_in`, :func:`finite_seconds`, :func:`seconds_in` and the named checks built
on them) rather than with its own copy. A validator returns the value it accepted, raises
``TypeError`` for a wrong type and :class:`ConfigurationError` for a value out of range, and
never prints a number too large to print (see :func:`shown`).
"""

from __future__ import annotations

import math
import re
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

#: The shortest TOTP period accepted, in seconds.
MIN_PERIOD: Final = 1
#: The longest period accepted: one week. Longer periods make a code a long-lived password.
MAX_PERIOD: Final = 7 * 24 * 3600

#: The latest Unix time anything accepts: 2**53 seconds, where floats stop counting whole seconds.
MAX_UNIX_SECONDS: Final = 2**53
#: The latest TOTP t0 accepted.
MAX_T0: Final = MAX_UNIX_SECONDS
#: The latest time a Verifier's clock may return (Unix seconds, about 285 million years from
#: 1970): every second up to it is exact as a float, and stores can add lock durations to it.
MAX_CLOCK: Final = MAX_UNIX_SECONDS

#: RFC 4226's moving factor is an 8-byte counter.
MAX_COUNTER: Final = 2**64 - 1

#: Largest TOTP window on either side, in steps. Each extra step is one more code an attacker's
#: guess can hit (odds per guess: (past + future + 1) / 10**digits) and one more HMAC per
#: verification.
MAX_TOTP_WINDOW: Final = 10
#: Largest HOTP look-ahead, in counter values (the same trade-off as the TOTP window).
MAX_LOOK_AHEAD: Final = 100

#: The longest deadline a store accepts per call, in seconds (``SQLiteStore(timeout=...)``,
#: ``RedisStore.from_url(timeout=...)``, a Redis client's socket time-out): past ten minutes a
#: stuck store holds a sign-in longer than anyone waits for it.
MAX_STORE_TIMEOUT: Final = 600.0

#: The longest user (or source) key a store will track, in characters. Usernames and e-mail
#: addresses fit.
MAX_USER_LENGTH: Final = 256
#: The widest HOTP resynchronisation search (RFC 4226 section 7.4 asks for a bound).
MAX_RESYNC_WINDOW: Final = 10_000
#: The most credentials one ``verify`` checks (each one adds to the odds of a guess).
MAX_CREDENTIALS: Final = 16

#: NIST SP 800-63B section 5.2.2: at most 100 consecutive failed attempts on one account.
MAX_FAILURES_CEILING: Final = 100
#: The most first-factor failures a ``(user, source)`` pair may make before it is locked.
MAX_SOURCE_FAILURES: Final = 10
#: The longest wait a throttle policy may set: ten years. Longer waits are a configuration
#: mistake (``Verifier.reset`` unlocks early).
MAX_WAIT_SECONDS: Final = 10 * 365 * 24 * 3600.0

#: Largest PNG scale of a QR code (pixels per module); a 2048-character URI then makes a
#: 5920-pixel image.
MAX_QR_SCALE: Final = 32

#: Java's ``Integer.MAX_VALUE``: Google Authenticator (Android) keeps the HOTP counter in a Java
#: ``int`` and adds 1 to it, so this counter already wraps (see ``isoms_otp.compat``).
JAVA_INT_MAX: Final = 2**31 - 1
#: privacyIDEA shortens labels so that the URI stays within 180 characters, to keep the QR code
#: scannable (``create_google_authenticator_url``). At error correction level M that is a
#: version 9 code (53 x 53 modules); longer URIs make denser codes that phones read badly.
DENSE_URI_LENGTH: Final = 180


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


def integer_in(
    value: object, name: str, low: int, high: int, *, bounds: str = "", hint: str = ""
) -> int:
    """Return ``value`` if it is an ``int`` (not a bool or subclass) from ``low`` to ``high``.

    ``TypeError`` names the type; :class:`ConfigurationError` says "``name`` must ``bounds``
    (got ...)``hint``", where ``bounds`` defaults to "be from ``low`` to ``high``".
    """
    if type(value) is not int:
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise ConfigurationError(
            f"{name} must {bounds or f'be from {low} to {high}'} (got {shown(value)}){hint}"
        )
    return value


def seconds_in(
    value: object,
    name: str,
    low: float = 0.0,
    high: float = math.inf,
    *,
    above_low: bool = False,
    bounds: str = "",
) -> float:
    """Return ``value`` as float seconds from ``low`` (excluded if ``above_low``) to ``high``.

    Types and non-finite values are refused as :func:`finite_seconds` refuses them; a value out
    of range is a :class:`ConfigurationError` saying "``name`` must ``bounds`` (got ...)", where
    ``bounds`` defaults to "be from ``low`` to ``high`` seconds".
    """
    number = finite_seconds(value, name)
    if number < low or (above_low and number == low) or number > high:
        got = shown(value if isinstance(value, (int, float)) else number)
        raise ConfigurationError(
            f"{name} must {bounds or f'be from {low:g} to {high:g} seconds'} (got {got})"
        )
    return number


_DECIMAL: Final = re.compile(r"[0-9]{1,20}")


def whole_number(text: str, low: int, high: int) -> int:
    """Return ``text``, a plain ASCII decimal from ``low`` to ``high``, as an int.

    For command-line input: ``int()`` alone would take "+6", " 6" and non-ASCII digits.
    :class:`ConfigurationError` says "must be a whole number from ``low`` to ``high``"; the
    caller adds the name (argparse does).
    """
    if _DECIMAL.fullmatch(text) is None or not low <= int(text) <= high:
        raise ConfigurationError(f"must be a whole number from {low} to {high}")
    return int(text)


def check_store_timeout(timeout: object) -> float:
    """Validate a store's deadline per call: more than 0 and at most 600 seconds."""
    return seconds_in(
        timeout,
        "timeout",
        0.0,
        MAX_STORE_TIMEOUT,
        above_low=True,
        bounds=f"be more than 0 and at most {MAX_STORE_TIMEOUT:g} seconds",
    )


def check_digits(digits: object) -> int:
    """Validate the code length (6, 7 or 8)."""
    return integer_in(digits, "digits", MIN_DIGITS, MAX_DIGITS, bounds="be 6, 7 or 8")


def check_counter(counter: object, name: str = "counter") -> int:
    """Validate an RFC 4226 moving factor: an int from 0 to 2**64-1."""
    return integer_in(counter, name, 0, MAX_COUNTER, bounds="be from 0 to 2**64-1")


def check_window(value: object, name: str) -> int:
    """Validate a TOTP window size (``past`` or ``future``): an int from 0 to 10."""
    return integer_in(
        value, name, 0, MAX_TOTP_WINDOW, bounds=f"be from 0 to {MAX_TOTP_WINDOW} steps"
    )


def check_look_ahead(look_ahead: object) -> int:
    """Validate an HOTP look-ahead: an int from 0 to 100."""
    return integer_in(look_ahead, "look_ahead", 0, MAX_LOOK_AHEAD)


def check_period(period: object) -> int:
    """Validate a TOTP period: an int from 1 to 604800 seconds."""
    return integer_in(
        period,
        "period",
        MIN_PERIOD,
        MAX_PERIOD,
        bounds=f"be from {MIN_PERIOD} to {MAX_PERIOD} seconds",
        hint="; 30 is the value every app supports",
    )


def check_nbytes(nbytes: object) -> int:
    """Validate the size of a new key: an int from 16 to 256 bytes."""
    return integer_in(
        nbytes, "nbytes", MIN_SECRET_BYTES, MAX_SECRET_BYTES, hint="; 20 is the recommended size"
    )


def check_qr_scale(scale: object) -> int:
    """Validate a PNG QR code scale: an int from 1 to 32 pixels per module."""
    return integer_in(
        scale, "scale", 1, MAX_QR_SCALE, bounds=f"be from 1 to {MAX_QR_SCALE} pixels per module"
    )


def check_t0(t0: object) -> int:
    """Validate a TOTP t0: an int from 0 to 2**53 Unix seconds."""
    return integer_in(t0, "t0", 0, MAX_T0, bounds="be from 0 to 2**53 Unix seconds")
