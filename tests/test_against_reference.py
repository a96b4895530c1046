"""The optimised hot paths against plain reference implementations written from the RFCs.

TOTP.verify, HOTP/TOTP construction and decode_secret take inlined fast paths for the usual
arguments (see docs/performance.md). These tests hold them to straightforward code built on
``hmac.digest`` and ``base64``, so that a later speed-up cannot change an answer.
"""

from __future__ import annotations

import base64
import hmac
import string

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from isoms_otp import HOTP, TOTP, ConfigurationError, InvalidSecretError, decode_secret
from isoms_otp._hotp import check_digits
from isoms_otp._totp import check_window

MAX_COUNTER = 2**64 - 1


def reference_code(key: bytes, algorithm: str, digits: int, counter: int) -> str:
    """RFC 4226 section 5.3 with the standard library's HMAC."""
    mac = hmac.digest(key, counter.to_bytes(8, "big"), algorithm.lower())
    offset = mac[-1] & 0x0F
    value = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def reference_verify(
    otp: TOTP, code: str, *, at: float, past: int, future: int, after_step: int | None
) -> tuple[int, int] | None:
    """Every step of the window, the highest match above ``after_step`` wins."""
    current = int((at - otp.t0) // otp.period)
    found = None
    for step in range(max(current - past, 0), min(current + future, MAX_COUNTER) + 1):
        matches = reference_code(otp.secret, otp.algorithm, otp.digits, step) == code
        if matches and (after_step is None or step > after_step):
            found = step
    return None if found is None else (found, found - current)


@st.composite
def totp_cases(draw: st.DrawFn) -> tuple[TOTP, str, float, int, int, int | None]:
    """A TOTP, a time, a window, a high-water mark, and a code that often matches near it."""
    otp = TOTP(
        draw(st.binary(min_size=16, max_size=140)),
        algorithm=draw(st.sampled_from(["SHA1", "SHA256", "SHA512"])),
        digits=draw(st.integers(6, 8)),
        period=draw(st.sampled_from([1, 30, 60, 90])),
        t0=draw(st.integers(0, 1000)),
    )
    at: float = draw(
        st.one_of(
            st.integers(otp.t0, otp.t0 + 10**10),
            st.floats(otp.t0, otp.t0 + 10**10, allow_nan=False),
        )
    )
    past = draw(st.integers(0, 10))
    future = draw(st.integers(0, 10))
    current = int((at - otp.t0) // otp.period)
    after_step = draw(st.one_of(st.none(), st.integers(-3, current + 3)))
    near = max(current + draw(st.integers(-12, 12)), 0)
    code = draw(
        st.one_of(
            st.just(reference_code(otp.secret, otp.algorithm, otp.digits, near)),
            st.text(string.digits, min_size=otp.digits, max_size=otp.digits),
        )
    )
    return otp, code, at, past, future, after_step


@settings(max_examples=400, deadline=None)
@given(totp_cases())
def test_verify_matches_the_reference(case: tuple[TOTP, str, float, int, int, int | None]) -> None:
    """TOTP.verify finds the same step and drift as a plain loop over hmac.digest."""
    otp, code, at, past, future, after_step = case
    expected = reference_verify(otp, code, at=at, past=past, future=future, after_step=after_step)
    match = otp.verify(code, at=at, past=past, future=future, after_step=after_step)
    actual = None if match is None else (match.step, match.drift)
    assert expected == actual


@pytest.mark.parametrize("after_step", [-1, -2, -(2**70)], ids=["minus-1", "minus-2", "huge"])
def test_negative_after_step_is_no_mark(after_step: int) -> None:
    """Regression: a negative after_step once let 'no match' (-1) pass as a match at step -1."""
    otp = TOTP(b"12345678901234567890")
    assert otp.verify("000000", at=0, past=10, future=0, after_step=after_step) is None
    match = otp.verify(otp.generate(0), at=0, after_step=after_step)
    assert (0, 0) == (None if match is None else (match.step, match.drift))


@pytest.mark.parametrize(
    "at", [2**64 * 30, float(2**64 * 30), 1e300], ids=["int", "float", "1e300"]
)
def test_verify_refuses_a_step_beyond_64_bits(at: float) -> None:
    """The fast time path still refuses a time whose step does not fit the 8-byte counter."""
    otp = TOTP(b"12345678901234567890")
    with pytest.raises(ConfigurationError, match="exceeds 2\\*\\*64-1"):
        otp.verify("123456", at=at)


def test_verify_window_stops_at_the_last_counter() -> None:
    """At the last 64-bit step, future steps past 2**64-1 are not candidates (and do not fail)."""
    otp = TOTP(b"12345678901234567890", period=1)
    at = MAX_COUNTER
    code = reference_code(otp.secret, "SHA1", 6, MAX_COUNTER)
    match = otp.verify(code, at=at, past=0, future=5)
    assert (MAX_COUNTER, 0) == (None if match is None else (match.step, match.drift))


@pytest.mark.parametrize(
    ("past", "future", "error"),
    [
        (1.0, 1, TypeError),
        (True, 1, TypeError),
        (11, 1, ConfigurationError),
        (-1, 1, ConfigurationError),
        (1, "1", TypeError),
        (1, 11, ConfigurationError),
    ],
    ids=["past-float", "past-bool", "past-11", "past-negative", "future-str", "future-11"],
)
def test_window_refusals_survive_the_fast_path(past: object, future: object, error: type) -> None:
    """Windows outside the fast path's int 0-10 still raise the full validator's error."""
    otp = TOTP(b"12345678901234567890")
    with pytest.raises(error):
        otp.verify("123456", at=0, past=past, future=future)  # type: ignore[arg-type]


def test_validators_return_what_they_accept() -> None:
    """check_digits/check_window return valid values (callers other than verify rely on it)."""
    assert (6, 8, 0, 10) == (
        check_digits(6),
        check_digits(8),
        check_window(0, "past"),
        check_window(10, "future"),
    )


class SubBytes(bytes):
    """A bytes subclass: it must not be stored as itself (it could override comparison)."""


@pytest.mark.parametrize(
    "secret",
    [bytearray(b"k" * 20), memoryview(b"k" * 20), SubBytes(b"k" * 20)],
    ids=["bytearray", "memoryview", "bytes-subclass"],
)
@pytest.mark.parametrize("cls", [HOTP, TOTP], ids=["HOTP", "TOTP"])
def test_constructor_stores_plain_bytes(cls: type[HOTP | TOTP], secret: object) -> None:
    """Secrets that are not exactly bytes skip the fast path and are stored as plain bytes."""
    otp = cls(secret)  # type: ignore[arg-type]
    assert (bytes, b"k" * 20) == (type(otp.secret), otp.secret)


@pytest.mark.parametrize("name", ["sha256", "Sha512", "SHA1"], ids=["lower", "mixed", "upper"])
def test_constructor_canonicalises_the_algorithm(name: str) -> None:
    """Only exact canonical names take the fast path; others are normalised as before."""
    assert name.upper() == TOTP(b"k" * 20, algorithm=name).algorithm


@settings(max_examples=300, deadline=None)
@given(
    st.binary(min_size=1, max_size=256),
    st.sampled_from(["upper", "lower", "padded", "grouped"]),
)
@example(b"Hello!\xde\xad\xbe\xef", "upper")
def test_decode_secret_matches_base64(raw: bytes, spelling: str) -> None:
    """decode_secret reads every spelling of a key to the bytes base64.b32decode gives."""
    text = base64.b32encode(raw).decode("ascii")
    if spelling == "upper":
        text = text.rstrip("=")
    elif spelling == "lower":
        text = text.rstrip("=").lower()
    elif spelling == "grouped":
        body = text.rstrip("=")
        assume(len(body) > 4)
        text = body[:4] + " " + body[4:]
    assert raw == decode_secret(text)


@pytest.mark.parametrize("bad", ["0", "1", "8", "9"])
def test_decode_secret_refuses_digits_outside_the_alphabet(bad: str) -> None:
    """Alphanumeric text with 0, 1, 8 or 9 leaves the fast path and gets the usual refusal."""
    with pytest.raises(InvalidSecretError, match="only the letters A-Z and digits 2-7"):
        decode_secret("JBSWY3DP" + bad + "HPK3PX")


@given(st.binary(min_size=1, max_size=64), st.integers(1, 31))
def test_decode_secret_refuses_non_canonical_spellings(raw: bytes, flip: int) -> None:
    """A last symbol with non-zero unused bits is refused, on the fast path as before."""
    text = base64.b32encode(raw).decode("ascii").rstrip("=")
    unused = len(text) * 5 % 8
    assume(unused)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    last = alphabet.index(text[-1]) ^ (flip & ((1 << unused) - 1))
    assume(alphabet[last] != text[-1])
    with pytest.raises(InvalidSecretError, match="not canonical"):
        decode_secret(text[:-1] + alphabet[last])


def test_decode_secret_refuses_over_long_keys_on_the_fast_path() -> None:
    """410 symbols decode to 256 bytes; 416 would be 260 bytes, over the limit."""
    assert 256 == len(decode_secret("A" * 409 + "Q"))
    with pytest.raises(InvalidSecretError, match="260 bytes; the limit is 256"):
        decode_secret("A" * 416)


@settings(max_examples=300, deadline=None)
@given(
    key=st.binary(min_size=16, max_size=140),
    algorithm=st.sampled_from(["SHA1", "SHA256", "SHA512"]),
    digits=st.integers(6, 8),
    counter=st.one_of(st.integers(0, 10**6), st.integers(MAX_COUNTER - 120, MAX_COUNTER)),
    look_ahead=st.integers(0, 100),
    offset=st.integers(-2, 110),
)
def test_hotp_verify_matches_the_reference(
    *, key: bytes, algorithm: str, digits: int, counter: int, look_ahead: int, offset: int
) -> None:
    """HOTP.verify finds the highest matching counter of its window, as a plain loop does."""
    otp = HOTP(key, algorithm=algorithm, digits=digits)
    code = reference_code(key, algorithm, digits, min(max(counter + offset, 0), MAX_COUNTER))
    last = min(counter + look_ahead, MAX_COUNTER)
    found = [
        c for c in range(counter, last + 1) if reference_code(key, algorithm, digits, c) == code
    ]
    expected = (found[-1], found[-1] - counter) if found else None
    match = otp.verify(code, counter=counter, look_ahead=look_ahead)
    assert expected == (None if match is None else (match.step, match.drift))
