"""Every refusal of the core: the right error type, and a message without the secret or code.

Each case is built around one recognisable key so that its raw, hex and base32 spellings can be
searched for in the message. The behaviour behind each refusal is tested in the module's own
test file; this file checks the two properties every refusal must share.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from isoms_otp import (
    HOTP,
    TOTP,
    ConfigurationError,
    InvalidSecretError,
    OTPError,
    decode_secret,
    encode_secret,
    generate_secret,
)
from isoms_otp._limits import MAX_COUNTER, MAX_PERIOD

KEY = b"isoms-secret-key"  # 16 bytes
SHORT = KEY[:12]  # 96 bits: needs allow_short_secret
TINY = KEY[:9]  # 72 bits: refused always
HUGE = KEY * 17  # 272 bytes: over the cap
B32 = base64.b32encode(KEY).decode("ascii").rstrip("=")
HOTP_KEY = HOTP(KEY)
TOTP_KEY = TOTP(KEY)
CODE = HOTP_KEY.generate(0)  # also TOTP_KEY's code at step 0

Case = tuple[Callable[[], Any], type[Exception], bytes]

CASES: dict[str, Case] = {
    # HOTP / TOTP construction: the key
    "HOTP-secret-short": (lambda: HOTP(SHORT), InvalidSecretError, SHORT),
    "HOTP-secret-below-80-bits": (
        lambda: HOTP(TINY, allow_short_secret=True),
        InvalidSecretError,
        TINY,
    ),
    "HOTP-secret-empty": (lambda: HOTP(b""), InvalidSecretError, KEY),
    "HOTP-secret-over-cap": (lambda: HOTP(HUGE), InvalidSecretError, HUGE),
    "HOTP-secret-base32-text": (lambda: HOTP(B32), TypeError, KEY),  # type: ignore[arg-type]
    "HOTP-secret-hex-text": (lambda: HOTP(KEY.hex()), TypeError, KEY),  # type: ignore[arg-type]
    "HOTP-allow_short_secret-int": (
        lambda: HOTP(KEY, allow_short_secret=1),  # type: ignore[arg-type]
        TypeError,
        KEY,
    ),
    "TOTP-secret-short": (lambda: TOTP(SHORT), InvalidSecretError, SHORT),
    "TOTP-secret-below-80-bits": (
        lambda: TOTP(TINY, allow_short_secret=True),
        InvalidSecretError,
        TINY,
    ),
    "TOTP-secret-empty": (lambda: TOTP(b"", allow_short_secret=True), InvalidSecretError, KEY),
    "TOTP-secret-over-cap": (lambda: TOTP(HUGE), InvalidSecretError, HUGE),
    "TOTP-secret-base32-text": (lambda: TOTP(B32), TypeError, KEY),  # type: ignore[arg-type]
    # HOTP / TOTP construction: options
    "HOTP-digits-5": (lambda: HOTP(KEY, digits=5), ConfigurationError, KEY),
    "HOTP-digits-9": (lambda: HOTP(KEY, digits=9), ConfigurationError, KEY),
    "HOTP-digits-float": (lambda: HOTP(KEY, digits=6.0), TypeError, KEY),  # type: ignore[arg-type]
    "HOTP-algorithm-MD5": (lambda: HOTP(KEY, algorithm="MD5"), ConfigurationError, KEY),
    "HOTP-algorithm-bytes": (
        lambda: HOTP(KEY, algorithm=b"SHA1"),  # type: ignore[arg-type]
        TypeError,
        KEY,
    ),
    "TOTP-digits-10": (lambda: TOTP(KEY, digits=10), ConfigurationError, KEY),
    "TOTP-algorithm-SHA-256": (lambda: TOTP(KEY, algorithm="SHA-256"), ConfigurationError, KEY),
    "TOTP-period-0": (lambda: TOTP(KEY, period=0), ConfigurationError, KEY),
    "TOTP-period-negative": (lambda: TOTP(KEY, period=-1), ConfigurationError, KEY),
    "TOTP-period-over-a-week": (
        lambda: TOTP(KEY, period=MAX_PERIOD + 1),
        ConfigurationError,
        KEY,
    ),
    "TOTP-period-float": (lambda: TOTP(KEY, period=1.5), TypeError, KEY),  # type: ignore[arg-type]
    "TOTP-period-bool": (lambda: TOTP(KEY, period=True), TypeError, KEY),
    "TOTP-t0-negative": (lambda: TOTP(KEY, t0=-1), ConfigurationError, KEY),
    "TOTP-t0-float": (lambda: TOTP(KEY, t0=0.5), TypeError, KEY),  # type: ignore[arg-type]
    # HOTP.generate / verify
    "HOTP-generate-counter-negative": (lambda: HOTP_KEY.generate(-1), ConfigurationError, KEY),
    "HOTP-generate-counter-2**64": (
        lambda: HOTP_KEY.generate(MAX_COUNTER + 1),
        ConfigurationError,
        KEY,
    ),
    "HOTP-generate-counter-float": (
        lambda: HOTP_KEY.generate(1.0),  # type: ignore[arg-type]
        TypeError,
        KEY,
    ),
    "HOTP-generate-counter-bool": (lambda: HOTP_KEY.generate(True), TypeError, KEY),
    "HOTP-verify-code-int": (
        lambda: HOTP_KEY.verify(int(CODE), counter=0),  # type: ignore[arg-type]
        TypeError,
        KEY,
    ),
    "HOTP-verify-counter-negative": (
        lambda: HOTP_KEY.verify(CODE, counter=-1),
        ConfigurationError,
        KEY,
    ),
    "HOTP-verify-look_ahead-negative": (
        lambda: HOTP_KEY.verify(CODE, counter=0, look_ahead=-1),
        ConfigurationError,
        KEY,
    ),
    "HOTP-verify-look_ahead-101": (
        lambda: HOTP_KEY.verify(CODE, counter=0, look_ahead=101),
        ConfigurationError,
        KEY,
    ),
    "HOTP-verify-look_ahead-float": (
        lambda: HOTP_KEY.verify(CODE, counter=0, look_ahead=1.0),  # type: ignore[arg-type]
        TypeError,
        KEY,
    ),
    # TOTP times
    "TOTP-at-negative": (lambda: TOTP_KEY.generate(-1), ConfigurationError, KEY),
    "TOTP-at-nan": (lambda: TOTP_KEY.generate(math.nan), ConfigurationError, KEY),
    "TOTP-at-inf": (lambda: TOTP_KEY.generate(math.inf), ConfigurationError, KEY),
    "TOTP-at-bool": (lambda: TOTP_KEY.generate(True), TypeError, KEY),
    "TOTP-at-str": (lambda: TOTP_KEY.generate("59"), TypeError, KEY),  # type: ignore[arg-type]
    "TOTP-at-naive-datetime": (
        lambda: TOTP_KEY.generate(datetime(2020, 1, 1)),  # noqa: DTZ001
        ConfigurationError,
        KEY,
    ),
    "TOTP-at-before-t0": (lambda: TOTP(KEY, t0=100).step(99), ConfigurationError, KEY),
    "TOTP-at-too-far": (lambda: TOTP_KEY.step(30 * 2**64), ConfigurationError, KEY),
    "TOTP-remaining-before-t0": (
        lambda: TOTP(KEY, t0=100).remaining(0),
        ConfigurationError,
        KEY,
    ),
    # TOTP.verify
    "TOTP-verify-code-int": (
        lambda: TOTP_KEY.verify(int(CODE), at=0),  # type: ignore[arg-type]
        TypeError,
        KEY,
    ),
    "TOTP-verify-code-bytes": (
        lambda: TOTP_KEY.verify(CODE.encode(), at=0),  # type: ignore[arg-type]
        TypeError,
        KEY,
    ),
    "TOTP-verify-past-negative": (
        lambda: TOTP_KEY.verify(CODE, at=0, past=-1),
        ConfigurationError,
        KEY,
    ),
    "TOTP-verify-past-11": (lambda: TOTP_KEY.verify(CODE, at=0, past=11), ConfigurationError, KEY),
    "TOTP-verify-future-11": (
        lambda: TOTP_KEY.verify(CODE, at=0, future=11),
        ConfigurationError,
        KEY,
    ),
    "TOTP-verify-future-float": (
        lambda: TOTP_KEY.verify(CODE, at=0, future=1.0),  # type: ignore[arg-type]
        TypeError,
        KEY,
    ),
    "TOTP-verify-after_step-float": (
        lambda: TOTP_KEY.verify(CODE, at=0, after_step=0.0),  # type: ignore[arg-type]
        TypeError,
        KEY,
    ),
    "TOTP-verify-at-negative": (lambda: TOTP_KEY.verify(CODE, at=-5), ConfigurationError, KEY),
    # secrets
    "generate_secret-15": (lambda: generate_secret(15), ConfigurationError, KEY),
    "generate_secret-257": (lambda: generate_secret(257), ConfigurationError, KEY),
    "generate_secret-float": (
        lambda: generate_secret(20.0),  # type: ignore[arg-type]
        TypeError,
        KEY,
    ),
    "encode_secret-empty": (lambda: encode_secret(b""), InvalidSecretError, KEY),
    "encode_secret-over-cap": (lambda: encode_secret(HUGE), InvalidSecretError, HUGE),
    "encode_secret-str": (lambda: encode_secret(B32), TypeError, KEY),  # type: ignore[arg-type]
    "decode_secret-bytes": (
        lambda: decode_secret(B32.encode()),  # type: ignore[arg-type]
        TypeError,
        KEY,
    ),
    "decode_secret-digit-1": (lambda: decode_secret(B32[:-1] + "1"), InvalidSecretError, KEY),
    "decode_secret-digit-8": (lambda: decode_secret("8" + B32[1:]), InvalidSecretError, KEY),
    "decode_secret-unicode-letter": (
        lambda: decode_secret(B32[:-1] + "\u00c9"),
        InvalidSecretError,
        KEY,
    ),
    "decode_secret-padding-inside": (
        lambda: decode_secret(B32[:8] + "=" + B32[8:]),
        InvalidSecretError,
        KEY,
    ),
    "decode_secret-impossible-length": (
        lambda: decode_secret(B32 + "A"),
        InvalidSecretError,
        KEY,
    ),
    "decode_secret-wrong-padding": (lambda: decode_secret(B32 + "=="), InvalidSecretError, KEY),
    "decode_secret-non-canonical": (
        lambda: decode_secret(B32[:-1] + "F"),
        InvalidSecretError,
        KEY,
    ),
    "decode_secret-double-space": (
        lambda: decode_secret(B32[:4] + "  " + B32[4:]),
        InvalidSecretError,
        KEY,
    ),
    "decode_secret-empty": (lambda: decode_secret(" \n"), InvalidSecretError, KEY),
    "decode_secret-over-text-cap": (
        lambda: decode_secret(B32 * 40),
        InvalidSecretError,
        KEY * 40,
    ),
    "decode_secret-over-byte-cap": (
        lambda: decode_secret(base64.b32encode(HUGE).decode()),
        InvalidSecretError,
        HUGE,
    ),
}


def forms(secret: bytes) -> list[str]:
    """The spellings of a secret that must not appear in a message."""
    b32 = base64.b32encode(secret).decode("ascii").rstrip("=")
    raw = secret.decode("latin-1")
    return [b32, b32.lower(), b32[:16], secret.hex(), secret.hex()[:16], raw, raw[:9], repr(secret)]


def test_the_key_is_recognisable() -> None:
    """The key's spellings do not occur in ordinary English messages by chance."""
    assert "NFZW63LTFVZWKY3SMV2C223FPE" == B32
    assert "isoms-secret-key" == KEY.decode()


@pytest.mark.parametrize("name", sorted(CASES))
def test_refusal(name: str) -> None:
    """The refusal raises its documented type; the message holds no secret and no code."""
    action, expected, secret = CASES[name]
    with pytest.raises(expected) as info:
        action()
    assert expected is type(info.value)
    message = str(info.value)
    assert message, "an error must say what is wrong"
    for form in forms(KEY) + forms(secret):
        assert form not in message
    assert CODE not in message


@pytest.mark.parametrize("name", sorted(CASES))
def test_refusal_family(name: str) -> None:
    """Value refusals are OTPError and ValueError; type refusals are plain TypeError."""
    action, expected, _ = CASES[name]
    with pytest.raises(expected) as info:
        action()
    if expected is TypeError:
        assert not isinstance(info.value, OTPError)
    else:
        assert isinstance(info.value, OTPError)
        assert isinstance(info.value, ValueError)


HUGE_INT = 10**5000  # str() of this raises ValueError (CPython's int_max_str_digits)


@pytest.mark.parametrize(
    "call",
    [
        lambda: TOTP(KEY, period=HUGE_INT),
        lambda: TOTP(KEY, t0=HUGE_INT),
        lambda: TOTP(KEY, digits=HUGE_INT),
        lambda: HOTP(KEY).generate(HUGE_INT),
        lambda: HOTP(KEY).verify("123456", counter=0, look_ahead=HUGE_INT),
        lambda: TOTP(KEY).generate(-HUGE_INT),
        lambda: TOTP(KEY).verify("123456", past=HUGE_INT),
        lambda: generate_secret(HUGE_INT),
    ],
    ids=["period", "t0", "digits", "counter", "look_ahead", "at", "past", "nbytes"],
)
def test_huge_ints_are_named_not_printed(call: Callable[[], object]) -> None:
    """Regression: an int past 4300 digits used to turn our error into a bare ValueError."""
    with pytest.raises(ConfigurationError, match="an int beyond 2\\*\\*64"):
        call()


def test_t0_is_capped() -> None:
    """t0 is at most 2**53: a start time past any real clock is a configuration mistake."""
    assert 2**53 == TOTP(KEY, t0=2**53).t0
    with pytest.raises(ConfigurationError, match="t0 must be from 0 to 2\\*\\*53"):
        TOTP(KEY, t0=2**53 + 1)
