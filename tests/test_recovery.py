"""RecoveryCodes: generation, the normalisation rule, the stored text and its strict parser."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hmac
import pickle
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import isoms_otp
from isoms_otp import ConfigurationError, InvalidRecoveryCodesError, OTPError, RecoveryCodes
from isoms_otp.recovery import (
    ALPHABET,
    CODE_BITS,
    DEFAULT_COUNT,
    MAX_COUNT,
    MAX_TEXT,
    normalize_recovery_code,
)

SHOWN = re.compile(f"[{ALPHABET}]{{4}}(?:-[{ALPHABET}]{{4}}){{3}}")
#: A set made once for the tests that only read it.
CODES, SET = RecoveryCodes.generate()


def symbols(code: str) -> str:
    return code.replace("-", "")


# --------------------------------------------------------------------------- generation


def test_generate_defaults_to_ten_codes_in_four_groups() -> None:
    """Ten codes of 16 alphabet symbols in groups of four, all different."""
    assert 10 == DEFAULT_COUNT == len(CODES) == SET.count == len(set(CODES))
    for code in CODES:
        assert SHOWN.fullmatch(code), code


def test_codes_hold_at_least_64_bits() -> None:
    """16 symbols of a 32-symbol alphabet: 80 bits per code."""
    assert 32 == len(ALPHABET) == len(set(ALPHABET))
    assert 80 == CODE_BITS >= 64


def test_alphabet_has_no_look_alikes() -> None:
    """No I, L, O or U (Crockford): nothing reads as another symbol."""
    assert set() == set("ILOU") & set(ALPHABET)


@pytest.mark.parametrize("count", [1, 2, 16, MAX_COUNT])
def test_generate_count(count: int) -> None:
    """Any count from 1 to 100 gives that many codes, each of which matches its own index."""
    codes, recovery = RecoveryCodes.generate(count)
    assert count == len(codes) == recovery.count
    for index, code in enumerate(codes):
        wanted = normalize_recovery_code(code)
        assert wanted is not None
        assert index == recovery.index(wanted)


@pytest.mark.parametrize("count", [0, -1, MAX_COUNT + 1, 2**70])
def test_generate_refuses_counts_out_of_range(count: int) -> None:
    """Counts outside 1..100 are a ConfigurationError that names the range."""
    with pytest.raises(ConfigurationError, match="from 1 to 100"):
        RecoveryCodes.generate(count)


@pytest.mark.parametrize("count", [True, 1.0, "10", None])
def test_generate_refuses_non_int_counts(count: Any) -> None:
    """A bool, float or str count is a TypeError."""
    with pytest.raises(TypeError, match="count must be an int"):
        RecoveryCodes.generate(count)


def test_two_sets_differ() -> None:
    """Each set has its own salt, codes and set id."""
    codes, other = RecoveryCodes.generate()
    assert set() == set(codes) & set(CODES)
    assert other.salt != SET.salt
    assert other.set_id != SET.set_id


def test_codes_of_one_set_never_match_another() -> None:
    """A regenerated set is a new set: the old codes are not in it."""
    _, other = RecoveryCodes.generate()
    for code in CODES:
        assert other.index(symbols(code)) is None


def test_generate_redraws_a_repeated_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """This used to be only likely: a repeated draw would have put one code in a set twice."""
    draws = iter([0, 0, 1])
    monkeypatch.setattr("isoms_otp.recovery.secrets.randbits", lambda _bits: next(draws))
    codes, recovery = RecoveryCodes.generate(2)
    assert ("0000-0000-0000-0000", "1000-0000-0000-0000") == codes
    assert 2 == recovery.count


# --------------------------------------------------------------------------- the value object


def test_repr_holds_nothing_secret() -> None:
    """repr shows the id and count, never a code, the salt or a hash."""
    text = repr(SET)
    assert f"RecoveryCodes(set_id='{SET.set_id}', count=10)" == text
    for code in CODES:
        assert symbols(code) not in text
        assert code not in text
    assert SET.salt.hex() not in text
    assert str(SET) == text


def test_frozen() -> None:
    """Attributes cannot be set or added."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        SET.salt = b"x" * 16  # type: ignore[misc]
    with pytest.raises((AttributeError, TypeError)):
        SET.extra = 1  # type: ignore[attr-defined]


def test_set_id_is_derived_from_the_salt_and_hashes() -> None:
    """Same salt and hashes, same id; any change to either, another id."""
    same = RecoveryCodes(salt=SET.salt, hashes=SET.hashes)
    assert same == SET
    assert same.set_id == SET.set_id
    assert 32 == len(SET.set_id)
    fewer = RecoveryCodes(salt=SET.salt, hashes=SET.hashes[:-1])
    salted = RecoveryCodes(salt=bytes(16), hashes=SET.hashes)
    assert len({SET.set_id, fewer.set_id, salted.set_id}) == 3


def test_set_id_reveals_no_code() -> None:
    """The id is a hash of the stored hashes, not of any code."""
    for code in CODES:
        assert symbols(code).lower() not in SET.set_id


def test_pickle_and_copy_round_trip() -> None:
    """A set survives pickling and copying (the HMAC state is rebuilt)."""
    for twin in (pickle.loads(pickle.dumps(SET)), copy.copy(SET), copy.deepcopy(SET)):  # noqa: S301
        assert SET == twin
        assert 0 == twin.index(symbols(CODES[0]))


@pytest.mark.parametrize(
    ("salt", "hashes", "message"),
    [
        (bytes(15), (bytes(16),), "salt must be 16 bytes"),
        (bytes(16), (), "1 to 100 codes"),
        (bytes(16), tuple(bytes([n]) * 16 for n in range(101)), "1 to 100 codes"),
        (bytes(16), (bytes(15),), "each hash must be 16 bytes"),
        (bytes(16), (bytes(16), bytes(16)), "same hash twice"),
    ],
    ids=["short-salt", "empty", "too-many", "short-hash", "duplicate"],
)
def test_constructor_refuses_bad_values(
    salt: bytes, hashes: tuple[bytes, ...], message: str
) -> None:
    """Bad salts and hash tuples are InvalidRecoveryCodesError, an OTPError and ValueError."""
    with pytest.raises(InvalidRecoveryCodesError, match=message) as caught:
        RecoveryCodes(salt=salt, hashes=hashes)
    assert isinstance(caught.value, OTPError)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("salt", "hashes", "message"),
    [
        ("00" * 16, (bytes(16),), "salt must be bytes"),
        (bytes(16), [bytes(16)], "hashes must be a tuple"),
        (bytes(16), ("00" * 16,), "hashes must hold bytes"),
    ],
    ids=["str-salt", "list", "str-hash"],
)
def test_constructor_refuses_wrong_types(salt: Any, hashes: Any, message: str) -> None:
    """Wrong types are a TypeError."""
    with pytest.raises(TypeError, match=message):
        RecoveryCodes(salt=salt, hashes=hashes)


def test_reexported_from_the_package() -> None:
    """The public names are importable from isoms_otp."""
    assert isoms_otp.RecoveryCodes is RecoveryCodes
    assert isoms_otp.InvalidRecoveryCodesError is InvalidRecoveryCodesError


# --------------------------------------------------------------------------- normalisation


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("7KQM-3X9D-F2HT-RW8N", "7KQM3X9DF2HTRW8N"),
        ("7kqm3x9df2htrw8n", "7KQM3X9DF2HTRW8N"),
        ("  7KQM 3X9D\tF2HT - RW8N\r\n", "7KQM3X9DF2HTRW8N"),
        ("OOOO-IIII-LLLL-oil0", "0000111111110110"),
        ("--7KQM--3X9D--F2HT--RW8N--", "7KQM3X9DF2HTRW8N"),
    ],
    ids=["shown", "lower", "spaces-tabs-newline", "look-alikes", "many-hyphens"],
)
def test_normalisation_rule(typed: str, expected: str) -> None:
    """Case, spaces, tabs, line breaks and hyphens are dropped; O->0, I->1, L->1."""
    assert expected == normalize_recovery_code(typed)


@pytest.mark.parametrize(
    "typed",
    [
        "",
        "7KQM-3X9D-F2HT-RW8",  # 15 symbols
        "7KQM-3X9D-F2HT-RW8NN",  # 17 symbols
        "7KQM-3X9D-F2HT-RW8U",  # U is not in the alphabet
        "7KQM_3X9D_F2HT_RW8N",  # underscores are not separators
        "7KQM.3X9D.F2HT.RW8N",
        "7KQM-3X9D-F2HT-RW8\u0131",  # dotless i would upper-case to I
        "\uff17KQM-3X9D-F2HT-RW8N",  # a fullwidth digit
        "7KQM3X9DF2HTRW8N" + " " * 49,  # over 64 characters, even though it would normalise
        "7KQM\x003X9DF2HTRW8N",
    ],
    ids=[
        "empty",
        "short",
        "long",
        "U",
        "underscores",
        "dots",
        "dotless-i",
        "fullwidth",
        "over-64",
        "nul",
    ],
)
def test_normalisation_refuses(typed: str) -> None:
    """Anything else is no code (None), never an error."""
    assert normalize_recovery_code(typed) is None


def test_normalisation_takes_a_str_subclass() -> None:
    """A str subclass (a web framework's markup string) is read as its plain value."""

    class Markup(str):
        __slots__ = ()

        def upper(self) -> str:
            return "wrong"

    assert "7KQM3X9DF2HTRW8N" == normalize_recovery_code(Markup("7kqm-3x9d-f2ht-rw8n"))


@pytest.mark.parametrize("typed", [b"7KQM3X9DF2HTRW8N", 12345678, None])
def test_normalisation_refuses_non_str(typed: Any) -> None:
    """A non-str code is a TypeError."""
    with pytest.raises(TypeError, match="recovery code must be a str"):
        normalize_recovery_code(typed)


_separator = st.sampled_from(["", "", " ", "-", "\t", "  ", "- "])


@given(
    st.data(),
    st.integers(min_value=0, max_value=DEFAULT_COUNT - 1),
)
def test_generated_codes_survive_any_typing(data: st.DataObject, which: int) -> None:
    """Random case, spaces and hyphens between any symbols still find the code's index."""
    code = symbols(CODES[which])
    typed = "".join(
        data.draw(_separator) + (char.lower() if data.draw(st.booleans()) else char)
        for char in code
    )
    typed += data.draw(_separator)
    if len(typed) <= 64:
        wanted = normalize_recovery_code(typed)
        assert code == wanted
        assert which == SET.index(code)


@given(st.text(max_size=100))
def test_normalisation_of_junk(text: str) -> None:
    """Any text gives None or 16 alphabet symbols; it never raises."""
    wanted = normalize_recovery_code(text)
    assert wanted is None or (len(wanted) == 16 and set(wanted) <= set(ALPHABET))


# --------------------------------------------------------------------------- matching


def test_index_does_uniform_work(
    count_copies: Callable[[Any], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One HMAC per candidate and a comparison with every code, matched first, last or not."""
    codes, recovery = RecoveryCodes.generate(12)
    hashes = count_copies(recovery)
    compared: list[int] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append(1)
        return real(a, b)

    monkeypatch.setattr("isoms_otp.recovery.compare_digest", counting)
    for candidate in (codes[0], codes[-1], "0000-0000-0000-0000"):
        compared.clear()
        hashes.copies = 0
        recovery.index(symbols(candidate))
        assert (1, 12) == (hashes.copies, len(compared))


# --------------------------------------------------------------------------- the stored text


def test_to_string_format() -> None:
    """Versioned, lower-case hex, one hash per code, no code in it."""
    text = SET.to_string()
    prefix, version, salt, hashes = text.split(":")
    assert ("isoms-otp-recovery", "v1", SET.salt.hex()) == (prefix, version, salt)
    assert [one.hex() for one in SET.hashes] == hashes.split(",")
    assert text.isascii()
    for code in CODES:
        assert symbols(code) not in text.upper()


def test_largest_set_fits_max_text() -> None:
    """The largest set's text is exactly MAX_TEXT characters long."""
    _, largest = RecoveryCodes.generate(MAX_COUNT)
    assert MAX_TEXT == len(largest.to_string())


@given(st.integers(min_value=1, max_value=MAX_COUNT), st.binary(min_size=16, max_size=16))
def test_round_trip(count: int, salt: bytes) -> None:
    """from_string(to_string()) gives an equal set with the same id."""
    hashes = tuple(index.to_bytes(16, "big") for index in range(count))
    recovery = RecoveryCodes(salt=salt, hashes=hashes)
    again = RecoveryCodes.from_string(recovery.to_string())
    assert recovery == again
    assert recovery.set_id == again.set_id


def test_round_trip_keeps_codes_working() -> None:
    """A set read back from its text still knows every code."""
    again = RecoveryCodes.from_string(SET.to_string())
    assert list(range(10)) == [again.index(symbols(code)) for code in CODES]


_GOOD = SET.to_string()
_HASH = "ab" * 16


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "must start with"),
        ("isoms-otp-recovery", "must start with"),
        ("ISOMS-OTP-RECOVERY:v1:" + _GOOD[22:], "must start with"),
        (" " + _GOOD, "must start with"),
        ("isoms-otp-recovery:v2:" + _GOOD[22:], "not version v1"),
        ("isoms-otp-recovery:V1:" + _GOOD[22:], "not version v1"),
        ("isoms-otp-recovery:v1", "a version, a salt and hashes"),
        ("isoms-otp-recovery:v1:" + "00" * 16, "a version, a salt and hashes"),
        (_GOOD + ":", "a version, a salt and hashes"),
        ("isoms-otp-recovery:v1:" + "00" * 15 + ":" + _HASH, "salt"),
        ("isoms-otp-recovery:v1:" + "AB" * 16 + ":" + _HASH, "salt"),
        ("isoms-otp-recovery:v1:" + "00" * 16 + ":", "hashes"),
        ("isoms-otp-recovery:v1:" + "00" * 16 + ":" + _HASH.upper(), "hashes"),
        ("isoms-otp-recovery:v1:" + "00" * 16 + ":" + _HASH + ",", "hashes"),
        ("isoms-otp-recovery:v1:" + "00" * 16 + ":" + _HASH + ", " + _HASH, "hashes"),
        ("isoms-otp-recovery:v1:" + "00" * 16 + ":" + _HASH[:-1], "hashes"),
        ("isoms-otp-recovery:v1:" + "00" * 16 + ":" + _HASH + "\n", "hashes"),
        ("isoms-otp-recovery:v1:" + "00" * 16 + ":" + "\uff10" * 32, "hashes"),
        ("isoms-otp-recovery:v1:" + "00" * 16 + ":" + _HASH + "," + _HASH, "same hash twice"),
        (_GOOD + "," + _HASH + "x" * MAX_TEXT, "longer than"),
    ],
    ids=[
        "empty",
        "prefix-only",
        "upper-prefix",
        "leading-space",
        "v2",
        "upper-version",
        "no-parts",
        "no-hashes",
        "extra-part",
        "short-salt",
        "upper-salt",
        "empty-hashes",
        "upper-hash",
        "trailing-comma",
        "space",
        "short-hash",
        "newline",
        "fullwidth-digits",
        "duplicate",
        "too-long",
    ],
)
def test_from_string_refuses(text: str, message: str) -> None:
    """Malformed text is InvalidRecoveryCodesError, and the message never repeats it."""
    with pytest.raises(InvalidRecoveryCodesError, match=message) as caught:
        RecoveryCodes.from_string(text)
    assert SET.salt.hex() not in str(caught.value)
    assert _HASH not in str(caught.value)


def test_from_string_refuses_more_than_max_count() -> None:
    """101 hashes fit no valid text: the length bound or the count bound refuses them."""
    hashes = ",".join(f"{index:032x}" for index in range(MAX_COUNT + 1))
    with pytest.raises(InvalidRecoveryCodesError):
        RecoveryCodes.from_string(f"isoms-otp-recovery:v1:{'00' * 16}:{hashes}")


@pytest.mark.parametrize("text", [b"isoms-otp-recovery:v1:", None, 1])
def test_from_string_refuses_non_str(text: Any) -> None:
    """A non-str is a TypeError."""
    with pytest.raises(TypeError, match="text must be a str"):
        RecoveryCodes.from_string(text)


@given(st.text(max_size=200) | st.text(alphabet="0123456789abcdef:,v", max_size=200))
def test_from_string_junk_raises_only_our_error(text: str) -> None:
    """Any text either parses or raises InvalidRecoveryCodesError, nothing else."""
    with contextlib.suppress(InvalidRecoveryCodesError):
        RecoveryCodes.from_string("isoms-otp-recovery:" + text)
    with contextlib.suppress(InvalidRecoveryCodesError):
        RecoveryCodes.from_string(text)
