"""Hypothesis properties of the core: round trips, windows, and "junk in raises only our errors"."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from isoms_otp import (
    HOTP,
    TOTP,
    Match,
    OTPError,
    decode_secret,
    encode_secret,
    generate_secret,
)
from isoms_otp._limits import MAX_COUNTER, MAX_LOOK_AHEAD, MAX_TOTP_WINDOW

KEY = b"12345678901234567890"

secrets = st.binary(min_size=16, max_size=256)
algorithms = st.sampled_from(["SHA1", "SHA256", "SHA512", "sha1", "Sha256", "sHA512"])
digit_counts = st.sampled_from([6, 7, 8])
counters = st.one_of(st.integers(0, 1000), st.integers(0, MAX_COUNTER))
windows = st.integers(0, MAX_TOTP_WINDOW)
# Times as ints or floats, up to year ~36800 (2**40 s).
times = st.one_of(st.integers(0, 2**40), st.floats(0, 2**40, allow_nan=False))
periods = st.one_of(st.sampled_from([30, 60]), st.integers(1, 604800))


def expected_match(
    otp: TOTP, code: str, *, at: float, past: int, future: int, after: int | None
) -> Match | None:
    """What verify must return, computed the slow obvious way with generate()."""
    current = otp.step(at)
    lowest = -1 if after is None else after
    best = None
    for step in range(max(0, current - past), min(current + future, MAX_COUNTER) + 1):
        if step > lowest and otp.generate(otp.t0 + step * otp.period) == code:
            best = step
    return None if best is None else Match(step=best, drift=best - current)


# --- generate, then verify ----------------------------------------------------------------------


@given(secret=secrets, algorithm=algorithms, digits=digit_counts, counter=counters)
def test_hotp_own_code_matches_at_drift_zero(
    secret: bytes, algorithm: str, digits: int, counter: int
) -> None:
    """A generated HOTP code verifies at its counter with drift 0."""
    hotp = HOTP(secret, digits=digits, algorithm=algorithm)
    code = hotp.generate(counter)
    assert Match(step=counter, drift=0) == hotp.verify(code, counter=counter)


@given(
    secret=secrets,
    algorithm=algorithms,
    digits=digit_counts,
    counter=counters,
    ahead=st.integers(0, MAX_LOOK_AHEAD),
    look_ahead=st.integers(0, MAX_LOOK_AHEAD),
)
def test_hotp_look_ahead(
    *, secret: bytes, algorithm: str, digits: int, counter: int, ahead: int, look_ahead: int
) -> None:
    """A code `ahead` counters on matches iff it is within look_ahead (or collides lower down)."""
    assume(counter + ahead <= MAX_COUNTER)
    hotp = HOTP(secret, digits=digits, algorithm=algorithm)
    code = hotp.generate(counter + ahead)
    match = hotp.verify(code, counter=counter, look_ahead=look_ahead)
    last = min(counter + look_ahead, MAX_COUNTER)
    candidates = [c for c in range(counter, last + 1) if hotp.generate(c) == code]
    if candidates:
        assert Match(step=candidates[-1], drift=candidates[-1] - counter) == match
    else:
        assert match is None
    if ahead <= look_ahead:
        assert match is not None


@given(
    secret=secrets,
    algorithm=algorithms,
    digits=digit_counts,
    at=times,
    period=periods,
    t0=st.integers(0, 2**31),
)
def test_totp_own_code_matches_at_drift_zero(
    *, secret: bytes, algorithm: str, digits: int, at: float, period: int, t0: int
) -> None:
    """A generated TOTP code verifies at the same time with drift 0 (window 0)."""
    totp = TOTP(secret, digits=digits, algorithm=algorithm, period=period, t0=t0)
    at = at + t0
    code = totp.generate(at)
    assert Match(step=totp.step(at), drift=0) == totp.verify(code, at=at, past=0, future=0)


@given(secret=secrets, digits=digit_counts, at=times, other=st.integers(0, 10**8 - 1))
def test_totp_other_code_never_matches_window_zero(
    secret: bytes, digits: int, at: float, other: int
) -> None:
    """With window 0 any code but the current one is no match."""
    totp = TOTP(secret, digits=digits)
    code = f"{other % 10**digits:0{digits}d}"
    assume(code != totp.generate(at))
    assert totp.verify(code, at=at, past=0, future=0) is None


@given(secret=secrets, digits=digit_counts, counter=counters, other=st.integers(0, 10**8 - 1))
def test_hotp_other_code_never_matches_window_zero(
    secret: bytes, digits: int, counter: int, other: int
) -> None:
    """With look_ahead 0 any code but the counter's own is no match."""
    hotp = HOTP(secret, digits=digits)
    code = f"{other % 10**digits:0{digits}d}"
    assume(code != hotp.generate(counter))
    assert hotp.verify(code, counter=counter) is None


@given(
    secret=secrets,
    digits=digit_counts,
    at=times,
    past=windows,
    future=windows,
    other=st.integers(0, 10**8 - 1),
)
def test_code_outside_the_window_never_matches(
    *, secret: bytes, digits: int, at: float, past: int, future: int, other: int
) -> None:
    """A code equal to no code of the window (collisions excluded) is no match."""
    totp = TOTP(secret, digits=digits)
    current = totp.step(at)
    steps = range(max(0, current - past), current + future + 1)
    window = {totp.generate(step * 30) for step in steps}
    code = f"{other % 10**digits:0{digits}d}"
    assume(code not in window)
    assert totp.verify(code, at=at, past=past, future=future) is None


@given(
    secret=secrets,
    at=times,
    past=windows,
    future=windows,
    offset=st.integers(-MAX_TOTP_WINDOW, MAX_TOTP_WINDOW),
    after=st.one_of(st.none(), st.integers(-2, 2**40 // 30 + 20)),
)
def test_verify_equals_the_obvious_reference(
    *, secret: bytes, at: float, past: int, future: int, offset: int, after: int | None
) -> None:
    """verify == "highest step in the window, above after_step, whose code is equal"."""
    totp = TOTP(secret)
    step = max(0, totp.step(at) + offset)
    code = totp.generate(step * 30)
    expected = expected_match(totp, code, at=at, past=past, future=future, after=after)
    assert expected == totp.verify(code, at=at, past=past, future=future, after_step=after)
    if expected is not None:
        assert after is None or expected.step > after
        assert -past <= expected.drift <= future


@given(st.binary(min_size=1, max_size=256))
def test_secret_round_trip(raw: bytes) -> None:
    """decode_secret(encode_secret(b)) == b."""
    assert raw == decode_secret(encode_secret(raw))


@given(st.integers(16, 256))
def test_generated_secrets_round_trip(nbytes: int) -> None:
    """A generated secret has the size asked for and survives base32."""
    secret = generate_secret(nbytes)
    assert nbytes == len(secret)
    assert secret == decode_secret(encode_secret(secret))


# --- junk in: only our errors (or TypeError) out ------------------------------------------------

aware_datetimes = st.builds(
    lambda moment, minutes: moment.replace(tzinfo=timezone(timedelta(minutes=minutes))),
    st.datetimes(),
    st.integers(-1439, 1439),
)
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(),
    st.text(alphabet="0123456789 -\t\n", max_size=12),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ234567abc= -", max_size=40),
    st.binary(),
    st.binary().map(bytearray),
    st.binary().map(memoryview),  # type: ignore[arg-type]
    st.lists(st.integers(), max_size=3),
    st.tuples(st.integers(), st.text()),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sampled_from([object(), int, str, ..., NotImplemented, float("nan"), float("inf")]),
    aware_datetimes,
    st.sampled_from(
        [int, float, str, bytes, complex, Decimal, Fraction, datetime, date, time, timedelta]
    ).flatmap(st.from_type),
)

HOTP_OBJ = HOTP(KEY)
TOTP_OBJ = TOTP(KEY)

TARGETS: dict[str, Callable[[Any], object]] = {
    "HOTP.secret": HOTP,
    "HOTP.digits": lambda x: HOTP(KEY, digits=x),
    "HOTP.algorithm": lambda x: HOTP(KEY, algorithm=x),
    "HOTP.allow_short_secret": lambda x: HOTP(KEY, allow_short_secret=x),
    "HOTP.generate.counter": HOTP_OBJ.generate,
    "HOTP.verify.code": lambda x: HOTP_OBJ.verify(x, counter=0, look_ahead=3),
    "HOTP.verify.counter": lambda x: HOTP_OBJ.verify("755224", counter=x),
    "HOTP.verify.look_ahead": lambda x: HOTP_OBJ.verify("755224", counter=0, look_ahead=x),
    "TOTP.secret": TOTP,
    "TOTP.digits": lambda x: TOTP(KEY, digits=x),
    "TOTP.algorithm": lambda x: TOTP(KEY, algorithm=x),
    "TOTP.period": lambda x: TOTP(KEY, period=x),
    "TOTP.t0": lambda x: TOTP(KEY, t0=x),
    "TOTP.allow_short_secret": lambda x: TOTP(KEY, allow_short_secret=x),
    "TOTP.generate.at": TOTP_OBJ.generate,
    "TOTP.step.at": TOTP_OBJ.step,
    "TOTP.remaining.at": TOTP_OBJ.remaining,
    "TOTP.verify.code": lambda x: TOTP_OBJ.verify(x, at=59),
    "TOTP.verify.at": lambda x: TOTP_OBJ.verify("287082", at=x),
    "TOTP.verify.past": lambda x: TOTP_OBJ.verify("287082", at=59, past=x),
    "TOTP.verify.future": lambda x: TOTP_OBJ.verify("287082", at=59, future=x),
    "TOTP.verify.after_step": lambda x: TOTP_OBJ.verify("287082", at=59, after_step=x),
    "generate_secret.nbytes": generate_secret,
    "encode_secret.secret": encode_secret,
    "decode_secret.text": decode_secret,
    "Match.step": lambda x: Match(step=x, drift=0),
    "Match.drift": lambda x: Match(step=0, drift=x),
}


@pytest.mark.parametrize("target", sorted(TARGETS))
@given(value=junk)
def test_junk_raises_only_our_errors(target: str, value: object) -> None:
    """Junk passed to any public argument raises an OTPError subclass or TypeError, nothing else."""
    with contextlib.suppress(OTPError, TypeError):
        TARGETS[target](value)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_target_is_exercised(target: str) -> None:
    """Each target accepts a well-formed value (the junk test is not vacuous)."""
    good: dict[str, object] = {
        "HOTP.secret": KEY,
        "HOTP.digits": 8,
        "HOTP.algorithm": "sha256",
        "HOTP.allow_short_secret": True,
        "HOTP.generate.counter": 1,
        "HOTP.verify.code": "287082",
        "HOTP.verify.counter": 0,
        "HOTP.verify.look_ahead": 1,
        "TOTP.secret": KEY,
        "TOTP.digits": 7,
        "TOTP.algorithm": "SHA512",
        "TOTP.period": 60,
        "TOTP.t0": 10,
        "TOTP.allow_short_secret": False,
        "TOTP.generate.at": 59,
        "TOTP.step.at": 59.5,
        "TOTP.remaining.at": datetime(2020, 1, 1, tzinfo=timezone.utc),
        "TOTP.verify.code": "287 082",
        "TOTP.verify.at": 60,
        "TOTP.verify.past": 2,
        "TOTP.verify.future": 0,
        "TOTP.verify.after_step": 0,
        "generate_secret.nbytes": 32,
        "encode_secret.secret": KEY,
        "decode_secret.text": "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
        "Match.step": 1,
        "Match.drift": -1,
    }
    assert good.keys() == TARGETS.keys()
    TARGETS[target](good[target])
