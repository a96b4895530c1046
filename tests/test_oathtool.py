"""Differential tests against OATH Toolkit's ``oathtool`` (Debian package ``oathtool``).

Each example is one ``oathtool`` run without a shell; its ``-w`` window option prints several
consecutive codes per run, so one call checks many counters or steps. The number of examples is
bounded to keep the suite fast. A missing ``oathtool`` fails these tests; it is never skipped.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isoms_otp import HOTP, TOTP
from isoms_otp._limits import MAX_COUNTER

pytestmark = pytest.mark.oathtool

EXAMPLES = settings(
    max_examples=150,
    deadline=None,  # a subprocess start is slow on a busy machine; speed is not under test
    suppress_health_check=[HealthCheck.too_slow],
)
WINDOW = 20  # oathtool -w 20 prints 21 codes per call

secrets = st.one_of(st.binary(min_size=16, max_size=64), st.binary(min_size=16, max_size=256))
digit_counts = st.sampled_from([6, 7, 8])


def oathtool(*args: str) -> list[str]:
    """Run oathtool with ``args`` (no shell) and return its output lines."""
    path = shutil.which("oathtool")
    if path is None:
        pytest.fail(
            "oathtool is not installed; the differential tests need it. "
            "Install it with: sudo apt-get install oathtool"
        )
    result = subprocess.run([path, *args], capture_output=True, text=True, check=False, timeout=30)
    assert 0 == result.returncode, result.stderr
    return result.stdout.split()


def test_oathtool_is_the_expected_tool() -> None:
    """oathtool runs and reproduces RFC 4226 counter 0 (a sanity check of the harness)."""
    assert ["755224"] == oathtool("--hotp", "-d", "6", "-c", "0", b"12345678901234567890".hex())


@EXAMPLES
@given(
    secret=secrets,
    digits=digit_counts,
    counter=st.one_of(st.integers(0, 10**6), st.integers(0, MAX_COUNTER - WINDOW)),
)
def test_hotp_matches_oathtool(secret: bytes, digits: int, counter: int) -> None:
    """HOTP-SHA1 codes equal oathtool's for 21 consecutive counters per example."""
    expected = oathtool(
        "--hotp", "-d", str(digits), "-c", str(counter), "-w", str(WINDOW), secret.hex()
    )
    hotp = HOTP(secret, digits=digits)
    actual = [hotp.generate(counter + offset) for offset in range(WINDOW + 1)]
    assert expected == actual


@EXAMPLES
@given(
    secret=secrets,
    digits=digit_counts,
    algorithm=st.sampled_from(["SHA1", "SHA256", "SHA512"]),
    at=st.one_of(st.integers(0, 2**31), st.integers(0, 2**40), st.just(20000000000)),
    period=st.one_of(st.sampled_from([30, 60]), st.integers(1, 604800)),
    t0=st.one_of(st.just(0), st.integers(0, 2**30)),
)
def test_totp_matches_oathtool(
    *, secret: bytes, digits: int, algorithm: str, at: int, period: int, t0: int
) -> None:
    """TOTP codes equal oathtool's for every algorithm, period and start time, 21 steps a call."""
    at += t0
    expected = oathtool(
        f"--totp={algorithm}",
        "-d",
        str(digits),
        "-s",
        f"{period}s",
        "-S",
        f"@{t0}",
        "-N",
        f"@{at}",
        "-w",
        str(WINDOW),
        secret.hex(),
    )
    totp = TOTP(secret, digits=digits, algorithm=algorithm, period=period, t0=t0)
    actual = [totp.generate(at + offset * period) for offset in range(WINDOW + 1)]
    assert expected == actual


@EXAMPLES
@given(
    secret=secrets,
    counter=st.integers(0, 10**9),
    drift=st.integers(0, 10),
)
def test_oathtool_accepts_our_hotp_codes_at_our_drift(
    secret: bytes, counter: int, drift: int
) -> None:
    """oathtool's validator finds our code at the same distance our verify reports."""
    hotp = HOTP(secret)
    code = hotp.generate(counter + drift)
    match = hotp.verify(code, counter=counter, look_ahead=10)
    assert match is not None
    position = oathtool("--hotp", "-c", str(counter), "-w", "10", secret.hex(), code)
    # oathtool reports the first matching position, verify the last: equal without a collision.
    first = min(c for c in range(counter, counter + 11) if hotp.generate(c) == code)
    assert [str(first - counter)] == position
    assert match.step >= first


@pytest.mark.parametrize(
    ("algorithm", "seed"),
    [
        ("SHA1", b"12345678901234567890"),
        ("SHA256", b"12345678901234567890123456789012"),
        ("SHA512", b"1234567890123456789012345678901234567890123456789012345678901234"),
    ],
)
@pytest.mark.parametrize("at", [59, 1111111109, 2000000000, 20000000000, 2**40])
def test_rfc6238_times_match_oathtool(algorithm: str, seed: bytes, at: int) -> None:
    """The RFC 6238 token agrees with oathtool at the RFC's times and at 2**40 s."""
    expected = oathtool(f"--totp={algorithm}", "-d", "8", "-N", f"@{at}", seed.hex())
    assert expected == [TOTP(seed, digits=8, algorithm=algorithm).generate(at)]


def test_top_counters_match_oathtool() -> None:
    """The last counters before 2**64 agree with oathtool (which wraps after them; we stop)."""
    key = b"12345678901234567890"
    expected = oathtool("--hotp", "-d", "7", "-c", str(MAX_COUNTER - 1), key.hex())
    expected += oathtool("--hotp", "-d", "7", "-c", str(MAX_COUNTER), key.hex())
    hotp = HOTP(key, digits=7)
    assert expected == [hotp.generate(MAX_COUNTER - 1), hotp.generate(MAX_COUNTER)]
