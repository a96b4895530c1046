"""HOTP (RFC 4226): construction, generation, verification and uniform work."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from isoms_otp import HOTP, ConfigurationError, Match
from isoms_otp._limits import MAX_COUNTER, MAX_LOOK_AHEAD

KEY = b"12345678901234567890"
# RFC 4226 Appendix D, counters 0..9.
RFC_CODES = ["755224", "287082", "359152", "969429", "338314"]
RFC_CODES += ["254676", "287922", "162583", "399871", "520489"]
# Two counters of the RFC key whose 6-digit codes coincide (found by a search; checked below).
COLLISION = (153567, 153569, "468457")


# --- construction -------------------------------------------------------------------------------


def test_defaults_are_readable() -> None:
    """The configuration is readable: .secret, .digits, .algorithm."""
    hotp = HOTP(KEY)
    assert (KEY, 6, "SHA1") == (hotp.secret, hotp.digits, hotp.algorithm)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("sha1", "SHA1"), ("Sha256", "SHA256"), ("sha512", "SHA512"), ("SHA512", "SHA512")],
)
def test_algorithm_is_normalised(name: str, expected: str) -> None:
    """Any letter case is accepted and stored upper case."""
    assert expected == HOTP(KEY, algorithm=name).algorithm


@pytest.mark.parametrize("name", ["MD5", "SHA-1", "sha3_256", "SHA224", "", " SHA1", "SHA1\x00"])
def test_unsupported_algorithm(name: str) -> None:
    """Other names are a ConfigurationError naming the supported ones."""
    with pytest.raises(ConfigurationError, match="use SHA1, SHA256 or SHA512"):
        HOTP(KEY, algorithm=name)


def test_unsupported_algorithm_message_is_bounded() -> None:
    """A huge algorithm string is not echoed in full."""
    with pytest.raises(ConfigurationError) as info:
        HOTP(KEY, algorithm="X" * 10_000)
    assert len(str(info.value)) < 200


@pytest.mark.parametrize("name", [None, 1, b"SHA1", ["SHA1"]], ids=repr)
def test_algorithm_of_wrong_type(name: object) -> None:
    """A non-str algorithm is a TypeError."""
    with pytest.raises(TypeError, match="algorithm must be a str"):
        HOTP(KEY, algorithm=name)  # type: ignore[arg-type]


@pytest.mark.parametrize("digits", [6, 7, 8])
def test_digits_accepted(digits: int) -> None:
    """6, 7 and 8 digits work and give codes of that length."""
    hotp = HOTP(KEY, digits=digits)
    assert digits == hotp.digits
    assert digits == len(hotp.generate(0))


@pytest.mark.parametrize("digits", [0, 1, 5, 9, 10, -6, 2**64])
def test_digits_out_of_range(digits: int) -> None:
    """Other lengths are a ConfigurationError."""
    with pytest.raises(ConfigurationError, match="digits must be 6, 7 or 8"):
        HOTP(KEY, digits=digits)


@pytest.mark.parametrize("digits", [6.0, "6", True, None], ids=repr)
def test_digits_of_wrong_type(digits: object) -> None:
    """A non-int digits (bool included) is a TypeError."""
    with pytest.raises(TypeError, match="digits must be an int"):
        HOTP(KEY, digits=digits)  # type: ignore[arg-type]


def test_secret_is_positional_and_options_keyword_only() -> None:
    """digits/algorithm cannot be passed by position (a swapped argument would go unnoticed)."""
    with pytest.raises(TypeError):
        HOTP(KEY, 8)  # type: ignore[call-arg]
    assert KEY == HOTP(secret=KEY).secret


# --- generate -----------------------------------------------------------------------------------


@pytest.mark.parametrize("counter", range(10))
def test_generate_rfc4226(counter: int) -> None:
    """The RFC 4226 codes, as strings."""
    assert RFC_CODES[counter] == HOTP(KEY).generate(counter)


def test_codes_keep_leading_zeros() -> None:
    """A code with a leading zero is a str that keeps it.

    Counter 0x23523EC is RFC 6238's step at 1111111109, whose SHA1 code is 07081804.
    """
    assert "07081804" == HOTP(KEY, digits=8).generate(0x23523EC)
    assert "081804" == HOTP(KEY).generate(0x23523EC)
    assert str is type(HOTP(KEY).generate(0x23523EC))


@pytest.mark.parametrize("counter", [0, 1, 2**32, 2**63, MAX_COUNTER - 1, MAX_COUNTER])
def test_counter_range_accepted(counter: int) -> None:
    """Counters from 0 to 2**64-1 (the 8-byte moving factor) work."""
    assert 6 == len(HOTP(KEY).generate(counter))


def test_top_counter_values() -> None:
    """The two largest counters give their known codes (checked against oathtool)."""
    hotp = HOTP(KEY, digits=7)
    assert ("9488204", "3094451") == (hotp.generate(MAX_COUNTER - 1), hotp.generate(MAX_COUNTER))


@pytest.mark.parametrize("counter", [-1, MAX_COUNTER + 1, 2**100, -(2**64)])
def test_counter_out_of_range(counter: int) -> None:
    """-1 and 2**64 are refused: they do not fit the 8-byte counter."""
    with pytest.raises(ConfigurationError, match=r"counter must be from 0 to 2\*\*64-1"):
        HOTP(KEY).generate(counter)


@pytest.mark.parametrize("counter", [1.0, "1", True, None, b"\x01"], ids=repr)
def test_counter_of_wrong_type(counter: object) -> None:
    """A non-int counter (bool included) is a TypeError."""
    with pytest.raises(TypeError, match="counter must be an int"):
        HOTP(KEY).generate(counter)  # type: ignore[arg-type]


# --- verify -------------------------------------------------------------------------------------


def test_verify_exact() -> None:
    """The code of the given counter matches with drift 0."""
    assert Match(step=4, drift=0) == HOTP(KEY).verify("338314", counter=4)


def test_verify_default_look_ahead_is_zero() -> None:
    """Without look_ahead only the given counter is tried."""
    assert HOTP(KEY).verify("338314", counter=3) is None


def test_verify_look_ahead() -> None:
    """A code ahead of the counter matches within look_ahead, with its drift."""
    hotp = HOTP(KEY)
    assert Match(step=9, drift=6) == hotp.verify("520489", counter=3, look_ahead=6)
    assert hotp.verify("520489", counter=3, look_ahead=5) is None


def test_verify_never_looks_behind() -> None:
    """A code of an earlier counter (already used) never matches."""
    assert HOTP(KEY).verify("755224", counter=1, look_ahead=MAX_LOOK_AHEAD) is None


def test_verify_wrong_code() -> None:
    """A wrong code is None, not an exception."""
    assert HOTP(KEY).verify("000000", counter=0, look_ahead=9) is None


def test_collision_is_real() -> None:
    """The two counters of COLLISION really share a code."""
    first, second, code = COLLISION
    hotp = HOTP(KEY)
    assert (code, code) == (hotp.generate(first), hotp.generate(second))


def test_highest_matching_counter_wins() -> None:
    """When two counters in the window share a code, the higher one is returned."""
    first, second, code = COLLISION
    match = HOTP(KEY).verify(code, counter=first, look_ahead=5)
    assert Match(step=second, drift=second - first) == match


def test_verify_at_the_top_clamps() -> None:
    """Near 2**64-1 the window stops at the last counter instead of overflowing."""
    hotp = HOTP(KEY, digits=7)
    match = hotp.verify("3094451", counter=MAX_COUNTER - 1, look_ahead=MAX_LOOK_AHEAD)
    assert Match(step=MAX_COUNTER, drift=1) == match
    assert Match(step=MAX_COUNTER, drift=0) == hotp.verify(
        "3094451", counter=MAX_COUNTER, look_ahead=MAX_LOOK_AHEAD
    )
    # Counter 0 and 1 codes must not match "after wrapping around".
    assert hotp.verify(hotp.generate(0), counter=MAX_COUNTER, look_ahead=5) is None


def test_verify_at_the_top_computes_only_real_counters(count_copies: Callable[[HOTP], Any]) -> None:
    """Clamping means one candidate at 2**64-1, whatever look_ahead says."""
    hotp = HOTP(KEY)
    double = count_copies(hotp)
    hotp.verify("000000", counter=MAX_COUNTER, look_ahead=MAX_LOOK_AHEAD)
    assert 1 == double.copies


@pytest.mark.parametrize("look_ahead", [0, 1, MAX_LOOK_AHEAD])
def test_look_ahead_accepted(look_ahead: int) -> None:
    """0 to 100 is accepted."""
    assert HOTP(KEY).verify("000000", counter=0, look_ahead=look_ahead) is None


@pytest.mark.parametrize("look_ahead", [-1, MAX_LOOK_AHEAD + 1, 2**64])
def test_look_ahead_out_of_range(look_ahead: int) -> None:
    """Negative or above 100 is a ConfigurationError."""
    with pytest.raises(ConfigurationError, match="look_ahead must be from 0 to 100"):
        HOTP(KEY).verify("755224", counter=0, look_ahead=look_ahead)


@pytest.mark.parametrize("look_ahead", [1.0, "1", True, None], ids=repr)
def test_look_ahead_of_wrong_type(look_ahead: object) -> None:
    """A non-int look_ahead is a TypeError."""
    with pytest.raises(TypeError, match="look_ahead must be an int"):
        HOTP(KEY).verify("755224", counter=0, look_ahead=look_ahead)  # type: ignore[arg-type]


@pytest.mark.parametrize("counter", [-1, MAX_COUNTER + 1])
def test_verify_counter_out_of_range(counter: int) -> None:
    """verify checks its counter like generate."""
    with pytest.raises(ConfigurationError, match="counter must be from"):
        HOTP(KEY).verify("755224", counter=counter)


def test_verify_counter_of_wrong_type() -> None:
    """A float counter is a TypeError in verify too."""
    with pytest.raises(TypeError, match="counter must be an int"):
        HOTP(KEY).verify("755224", counter=0.0)  # type: ignore[arg-type]


def test_verify_checks_arguments_even_for_malformed_codes() -> None:
    """A bad window is reported even when the code is not a code (errors do not depend on it)."""
    with pytest.raises(ConfigurationError):
        HOTP(KEY).verify("not a code", counter=0, look_ahead=-1)


# --- uniform work -------------------------------------------------------------------------------


@pytest.mark.parametrize("look_ahead", [0, 1, 10, MAX_LOOK_AHEAD])
def test_uniform_work(look_ahead: int, count_copies: Callable[[HOTP], Any]) -> None:
    """Every candidate is computed whether the first matches, the last matches or none does."""
    counts = []
    for code in ["755224", HOTP(KEY).generate(look_ahead), "000000"]:
        hotp = HOTP(KEY)
        double = count_copies(hotp)
        hotp.verify(code, counter=0, look_ahead=look_ahead)
        counts.append(double.copies)
    assert [look_ahead + 1] * 3 == counts


def test_generate_costs_one_copy(count_copies: Callable[[HOTP], Any]) -> None:
    """generate computes one HMAC from the precomputed states."""
    hotp = HOTP(KEY)
    double = count_copies(hotp)
    assert "755224" == hotp.generate(0)
    assert 1 == double.copies
