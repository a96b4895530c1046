"""Published test vectors: RFC 4226 Appendix D, RFC 6238 Appendix B, Google Authenticator's suites.

The vectors are JSON data under ``tests/vectors/``; each file names its source.
"""

from __future__ import annotations

import hmac
import json
import struct
from pathlib import Path
from typing import Any

import pytest

from isoms_otp import HOTP, TOTP, decode_secret, encode_secret
from isoms_otp._hmac import hmac_digest, hmac_states
from isoms_otp.exceptions import ConfigurationError

VECTORS = Path(__file__).parent / "vectors"


def load(name: str) -> dict[str, Any]:
    """Return one vector file as a dict."""
    data: dict[str, Any] = json.loads((VECTORS / name).read_text(encoding="utf-8"))
    return data


RFC4226 = load("rfc4226.json")
RFC6238 = load("rfc6238.json")
VENDOR = load("vendor.json")

RFC4226_SECRET = bytes.fromhex(RFC4226["secret_hex"])
HOTP_ROWS = RFC4226["vectors"]
TOTP_ROWS = RFC6238["vectors"]


def totp_id(row: dict[str, Any]) -> str:
    """Readable id such as ``SHA256-1111111109``."""
    return f"{row['mode']}-{row['time']}"


def rfc6238_totp(mode: str, digits: int) -> TOTP:
    """The RFC 6238 test token for ``mode`` (its seed is repeated to the hash length)."""
    seed = RFC6238["seeds_ascii"][mode].encode("ascii")
    return TOTP(seed, algorithm=mode, digits=digits, period=RFC6238["period"], t0=RFC6238["t0"])


# --- RFC 4226 Appendix D ------------------------------------------------------------------------


def test_rfc4226_secret_is_the_ascii_string() -> None:
    """The hex secret in the data file is the ASCII string the RFC names."""
    assert RFC4226["secret_ascii"].encode("ascii") == RFC4226_SECRET


@pytest.mark.parametrize("row", HOTP_ROWS, ids=lambda row: f"count-{row['count']}")
def test_rfc4226_intermediate_hmac(row: dict[str, Any]) -> None:
    """Table 1: the hand-written HMAC gives the RFC's HMAC-SHA-1(secret, count)."""
    states = hmac_states(RFC4226_SECRET, "SHA1")
    assert row["hmac_hex"] == hmac_digest(states, struct.pack(">Q", row["count"])).hex()


@pytest.mark.parametrize("row", HOTP_ROWS, ids=lambda row: f"count-{row['count']}")
def test_rfc4226_truncation(row: dict[str, Any]) -> None:
    """Table 2: dynamic truncation of the Table 1 HMAC gives the RFC's hex and decimal values."""
    mac = bytes.fromhex(row["hmac_hex"])
    offset = mac[-1] & 0x0F
    truncated = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    assert int(row["truncated_hex"], 16) == truncated
    assert row["truncated_decimal"] == truncated
    assert row["hotp"] == f"{truncated % 10**6:06d}"


@pytest.mark.parametrize("row", HOTP_ROWS, ids=lambda row: f"count-{row['count']}")
def test_rfc4226_hotp(row: dict[str, Any]) -> None:
    """Table 2: HOTP.generate gives the RFC's 6-digit codes."""
    hotp = HOTP(RFC4226_SECRET, digits=RFC4226["digits"], algorithm=RFC4226["algorithm"])
    assert row["hotp"] == hotp.generate(row["count"])


@pytest.mark.parametrize("digits", [7, 8])
@pytest.mark.parametrize("row", HOTP_ROWS, ids=lambda row: f"count-{row['count']}")
def test_rfc4226_hotp_longer_codes(row: dict[str, Any], digits: int) -> None:
    """7 and 8 digit codes are the RFC's decimal truncated value modulo 10**digits."""
    expected = f"{row['truncated_decimal'] % 10**digits:0{digits}d}"
    assert expected == HOTP(RFC4226_SECRET, digits=digits).generate(row["count"])


@pytest.mark.parametrize("row", HOTP_ROWS, ids=lambda row: f"count-{row['count']}")
def test_rfc4226_hotp_verifies(row: dict[str, Any]) -> None:
    """Each RFC code verifies at its counter with drift 0, and from counter 0 with look-ahead."""
    hotp = HOTP(RFC4226_SECRET)
    exact = hotp.verify(row["hotp"], counter=row["count"])
    assert exact is not None
    assert (row["count"], 0) == (exact.step, exact.drift)
    ahead = hotp.verify(row["hotp"], counter=0, look_ahead=9)
    assert ahead is not None
    assert (row["count"], row["count"]) == (ahead.step, ahead.drift)


# --- RFC 6238 Appendix B ------------------------------------------------------------------------


def test_rfc6238_seeds_have_the_hash_length() -> None:
    """The seeds are "12345678901234567890" repeated to 20, 32 and 64 bytes."""
    lengths = {mode: len(seed) for mode, seed in RFC6238["seeds_ascii"].items()}
    assert {"SHA1": 20, "SHA256": 32, "SHA512": 64} == lengths
    for seed in RFC6238["seeds_ascii"].values():
        assert ("1234567890" * 7)[: len(seed)] == seed


@pytest.mark.parametrize("row", TOTP_ROWS, ids=totp_id)
def test_rfc6238_step(row: dict[str, Any]) -> None:
    """The table's 'Value of T (hex)' is TOTP.step(time)."""
    assert int(row["t_hex"], 16) == rfc6238_totp(row["mode"], 8).step(row["time"])


@pytest.mark.parametrize("row", TOTP_ROWS, ids=totp_id)
def test_rfc6238_totp(row: dict[str, Any]) -> None:
    """TOTP.generate gives the RFC's 8-digit codes for every mode and time."""
    assert row["totp"] == rfc6238_totp(row["mode"], RFC6238["digits"]).generate(row["time"])


@pytest.mark.parametrize("digits", [6, 7])
@pytest.mark.parametrize("row", TOTP_ROWS, ids=totp_id)
def test_rfc6238_totp_shorter_codes(row: dict[str, Any], digits: int) -> None:
    """6 and 7 digit codes are the last digits of the RFC's 8-digit code.

    The RFC prints only 8-digit codes. A code is (31-bit truncated value) mod 10**digits, and
    10**6 and 10**7 divide 10**8, so (v mod 10**8) mod 10**d == v mod 10**d: the shorter codes
    are the 8-digit code's last d digits.
    """
    expected = f"{int(row['totp']) % 10**digits:0{digits}d}"
    assert expected == row["totp"][-digits:]
    assert expected == rfc6238_totp(row["mode"], digits).generate(row["time"])


@pytest.mark.parametrize("row", TOTP_ROWS, ids=totp_id)
def test_rfc6238_totp_verifies(row: dict[str, Any]) -> None:
    """Each RFC code verifies at its time with drift 0, and a step later with drift -1."""
    totp = rfc6238_totp(row["mode"], 8)
    step = int(row["t_hex"], 16)
    match = totp.verify(row["totp"], at=row["time"], past=0, future=0)
    assert match is not None
    assert (step, 0) == (match.step, match.drift)
    late = totp.verify(row["totp"], at=row["time"] + 30, past=1, future=0)
    assert late is not None
    assert (step, -1) == (late.step, late.drift)


def test_rfc6238_leading_zero_code() -> None:
    """SHA1 at 1111111109 is 07081804: codes are strings and keep their leading zeros."""
    totp = rfc6238_totp("SHA1", 8)
    assert "07081804" == totp.generate(1111111109)
    assert "081804" == rfc6238_totp("SHA1", 6).generate(1111111109)


# --- Google Authenticator's own test suites -----------------------------------------------------


def vendor_secret(row: dict[str, Any]) -> bytes:
    """Decode a vendor row's base32 key and check it against its hex spelling."""
    secret = decode_secret(row["secret_base32"])
    assert bytes.fromhex(row["secret_hex"]) == secret
    return secret


@pytest.mark.parametrize("row", VENDOR["hotp"], ids=lambda row: row["id"])
def test_vendor_hotp(row: dict[str, Any]) -> None:
    """Google Authenticator's HOTP codes (80-bit test keys need allow_short_secret)."""
    hotp = HOTP(
        vendor_secret(row),
        digits=row["digits"],
        algorithm=row["algorithm"],
        allow_short_secret=True,
    )
    assert row["code"] == hotp.generate(row["counter"])


@pytest.mark.parametrize("row", VENDOR["totp"], ids=lambda row: row["id"])
def test_vendor_totp(row: dict[str, Any]) -> None:
    """Google Authenticator's TOTP codes."""
    totp = TOTP(
        vendor_secret(row),
        digits=row["digits"],
        algorithm=row["algorithm"],
        period=row["period"],
        allow_short_secret=True,
    )
    assert row["code"] == totp.generate(row["time"])


def test_vendor_android_window() -> None:
    """PasscodeGeneratorTest's windows: around step 1234, +-1 and +-2 accept, +3 does not."""
    rows = {
        row["counter"]: row["code"]
        for row in VENDOR["hotp"]
        if row["id"].startswith("android-PasscodeGenerator-") and 1231 <= row["counter"] <= 1237
    }
    assert 7 == len(rows)
    secret = decode_secret("7777777777777777")
    totp = TOTP(secret, allow_short_secret=True)
    at = 1234 * 30
    for step, past, future, accepted in [
        (1234, 1, 1, True),
        (1235, 1, 1, True),
        (1233, 1, 1, True),
        (1232, 1, 1, False),
        (1236, 2, 2, True),
        (1232, 2, 2, True),
        (1237, 2, 2, False),
        (1236, 2, 1, False),
        (1232, 2, 1, True),
        (1235, 0, 0, False),
        (1233, 0, 0, False),
    ]:
        match = totp.verify(rows[step], at=at, past=past, future=future)
        assert accepted == (match is not None), (step, past, future)
    assert totp.verify("000000", at=at, past=2, future=2) is None


@pytest.mark.parametrize("row", VENDOR["steps"], ids=lambda row: row["id"])
def test_vendor_steps(row: dict[str, Any]) -> None:
    """TotpCounterTest's step numbers for period 7 and start time 123."""
    totp = TOTP(bytes(16), period=row["period"], t0=row["t0"])
    assert row["step"] == totp.step(row["time"])


@pytest.mark.parametrize("row", VENDOR["steps_before_t0"], ids=lambda row: row["id"])
def test_vendor_steps_before_t0_are_refused(row: dict[str, Any]) -> None:
    """Where the app returns a negative step, this library refuses the time."""
    totp = TOTP(bytes(16), period=row["period"], t0=row["t0"])
    with pytest.raises(ConfigurationError, match="before t0"):
        totp.step(row["time"])


@pytest.mark.parametrize("row", VENDOR["hmac_sha1"], ids=lambda row: row["id"])
def test_vendor_hmac_sha1(row: dict[str, Any]) -> None:
    """libpam's HMAC-SHA1 self-test: keys of 64 (= block), 20, 100 and 49 bytes."""
    key = bytes.fromhex(row["key_hex"])
    message = row["message_ascii"].encode("ascii")
    assert row["hmac_hex"] == hmac_digest(hmac_states(key, "SHA1"), message).hex()
    assert row["hmac_hex"] == hmac.digest(key, message, "sha1").hex()


@pytest.mark.parametrize("row", VENDOR["base32"], ids=lambda row: row["id"])
def test_vendor_base32(row: dict[str, Any]) -> None:
    """Google's base32 spellings encode and decode exactly."""
    raw = bytes.fromhex(row["bytes_hex"])
    assert row["base32"] == encode_secret(raw)
    assert raw == decode_secret(row["base32"])
    assert raw == decode_secret(row["base32"].lower())
