"""Normalisation of typed codes: what counts as a code, and that nothing else raises."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from isoms_otp import HOTP, TOTP
from isoms_otp._code import normalize_code

KEY = b"12345678901234567890"
# RFC 4226 Appendix D: counter 0 gives 755224 (6 digits); its truncated value is 1284755224.
CODE = "755224"


@pytest.mark.parametrize(
    "typed",
    [
        "755224",
        " 755224",
        "755224 ",
        "755224\n",
        "\t755224\r\n",
        "  \t 755224 \n\n",
        "755 224",
        "755-224",
        " 755 224\n",
        "\t755-224\t",
        "7 55224",
        "75522-4",
    ],
    ids=repr,
)
def test_accepted_spellings(typed: str) -> None:
    """Outer ASCII whitespace and one inner space or hyphen are dropped."""
    assert CODE == normalize_code(typed, 6)
    match = HOTP(KEY).verify(typed, counter=0)
    assert match is not None
    assert 0 == match.step


@pytest.mark.parametrize(
    ("typed", "digits"),
    [("1284 755 224", 8), ("4755224", 7), ("4755-224", 7), ("84755224", 8), ("8475 5224", 8)],
    ids=repr,
)
def test_longer_codes(typed: str, digits: int) -> None:
    """7 and 8 digit codes follow the same rule."""
    expected = typed.replace(" ", "").replace("-", "")
    if len(expected) == digits:
        assert expected == normalize_code(typed, digits)
    else:
        assert normalize_code(typed, digits) is None


@pytest.mark.parametrize(
    "typed",
    [
        "",
        " ",
        "75522",
        "7552244",
        "0755224",
        "755 22",
        "75 52 24",
        "755--224",
        "755 -224",
        "755- 224",
        "-755224",
        "755224-",
        "+755224",
        "-75522",
        "755_224",
        "755.224",
        "755/224",
        "755\t224",
        "755\u00a0224",  # NO-BREAK SPACE
        "\u2003755224",  # EM SPACE is not ASCII whitespace
        "755224\u3000",  # IDEOGRAPHIC SPACE
        "\uff17\uff15\uff15\uff12\uff12\uff14",  # FULLWIDTH DIGITS
        "\u0667\u0665\u0665\u0662\u0662\u0664",  # ARABIC-INDIC DIGITS
        "\u0967\u096b\u096b\u0968\u0968\u096a",  # DEVANAGARI DIGITS
        "\u00b955224",  # SUPERSCRIPT ONE (isdigit() is true for it)
        "75522\u2074",  # SUPERSCRIPT FOUR
        "75522a",
        "x755224",
        "755224\x00",
        "0x755224",
        "7.55224",
        "7e5224",
        " " * 30 + "755224",  # longer than 4 * digits: refused without looking further
    ],
    ids=ascii,
)
def test_refused_spellings_are_no_match(typed: str) -> None:
    """Anything else is None: no match, no exception."""
    assert normalize_code(typed, 6) is None
    assert HOTP(KEY).verify(typed, counter=0, look_ahead=5) is None
    assert TOTP(KEY).verify(typed, at=0, past=0, future=1) is None


def test_long_input_is_bounded() -> None:
    """A megabyte of input is simply no match."""
    assert normalize_code("7" * 1_000_000, 6) is None
    assert HOTP(KEY).verify(" " * 1_000_000, counter=0) is None


@pytest.mark.parametrize("code", [755224, 755224.0, b"755224", None, ["755224"], True], ids=repr)
def test_non_str_code_is_a_type_error(code: object) -> None:
    """A non-str code is a TypeError that says why (an int loses its leading zeros)."""
    with pytest.raises(TypeError, match="a code must be a str") as info:
        normalize_code(code, 6)  # type: ignore[arg-type]
    assert "755224" not in str(info.value)
    with pytest.raises(TypeError, match="leading zeros"):
        HOTP(KEY).verify(code, counter=0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="leading zeros"):
        TOTP(KEY).verify(code, at=0)  # type: ignore[arg-type]


def test_int_code_would_lose_its_leading_zero() -> None:
    """Why ints are refused: 081804 as an int is 81804."""
    totp = TOTP(KEY)
    assert "081804" == totp.generate(1111111109)
    with pytest.raises(TypeError):
        totp.verify(81804, at=1111111109)  # type: ignore[arg-type]


class Code(str):
    """A str subclass with a misleading __str__, as frameworks sometimes pass."""

    __slots__ = ()

    def __str__(self) -> str:
        return "000000"


def test_str_subclass_works() -> None:
    """A str subclass is normalised by its value (not its __str__), and the result is a str."""
    result = normalize_code(Code(" 755 224 "), 6)
    assert CODE == result
    assert str is type(result)
    assert HOTP(KEY).verify(Code(CODE), counter=0) is not None


def test_fast_path_returns_the_same_text() -> None:
    """A clean code is returned as it is."""
    assert CODE == normalize_code(CODE, 6)
    assert "00000000" == normalize_code("00000000", 8)


@given(st.text(max_size=40), st.sampled_from([6, 7, 8]))
def test_any_text_is_digits_or_none(text: str, digits: int) -> None:
    """Any str gives exactly `digits` ASCII digits or None, never an exception."""
    result = normalize_code(text, digits)
    if result is not None:
        assert digits == len(result)
        assert all(char in "0123456789" for char in result)


@given(st.integers(0, 10**6 - 1), st.sampled_from(["", " ", "-"]), st.integers(1, 5))
def test_grouping_anywhere_between_digits(value: int, separator: str, cut: int) -> None:
    """One separator at any position between two digits gives the digits back."""
    digits = f"{value:06d}"
    assert digits == normalize_code(digits[:cut] + separator + digits[cut:], 6)
