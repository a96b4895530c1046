"""Secrets: generate_secret, encode_secret, decode_secret and the key rules of HOTP/TOTP."""

from __future__ import annotations

import array
import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

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
from isoms_otp._limits import (
    LEGACY_MIN_SECRET_BYTES,
    MAX_SECRET_BYTES,
    MAX_SECRET_TEXT,
    MIN_SECRET_BYTES,
)

# A recognisable 16-byte key: its raw, hex and base32 forms are all distinctive strings.
KEY = b"isoms-secret-key"
KEY_B32 = "NFZW63LTFVZWKY3SMV2C223FPE"  # encode_secret(KEY)


def secret_forms(secret: bytes) -> list[str]:
    """Every spelling of ``secret`` that must never appear in a message."""
    b32 = base64.b32encode(secret).decode("ascii").rstrip("=")
    return [
        b32,
        b32.lower(),
        secret.hex(),
        secret.hex().upper(),
        repr(secret),
        secret.decode("latin-1"),
    ]


def assert_no_secret(error: BaseException, secret: bytes) -> None:
    """The message of ``error`` holds no form of ``secret``."""
    message = str(error)
    for form in secret_forms(secret):
        assert form not in message


def assert_no_text(error: BaseException, text: str) -> None:
    """The message of ``error`` does not echo the secret text (nor its upper-case symbols)."""
    message = str(error)
    stripped = text.strip()
    for form in {stripped, stripped.upper(), stripped.replace(" ", "").replace("-", "").upper()}:
        if form:  # "" is in every string; an empty secret has nothing to leak
            assert form not in message


def test_key_constant() -> None:
    """The constant base32 spelling above is right."""
    assert KEY_B32 == encode_secret(KEY)


# --- generate_secret ----------------------------------------------------------------------------


def test_generate_secret_default_is_20_bytes() -> None:
    """The default is 160 bits, as RFC 4226 recommends."""
    secret = generate_secret()
    assert bytes is type(secret)
    assert 20 == len(secret)


@pytest.mark.parametrize("nbytes", [MIN_SECRET_BYTES, 20, 32, 64, MAX_SECRET_BYTES])
def test_generate_secret_sizes(nbytes: int) -> None:
    """Any size from 16 to 256 bytes is produced exactly and usable as a key."""
    secret = generate_secret(nbytes)
    assert nbytes == len(secret)
    assert 6 == len(TOTP(secret).generate(0))


def test_generate_secret_is_random() -> None:
    """Two secrets differ (a 2**-160 chance of a false failure)."""
    assert generate_secret() != generate_secret()


@pytest.mark.parametrize("nbytes", [0, -1, 10, MIN_SECRET_BYTES - 1, MAX_SECRET_BYTES + 1, 2**70])
def test_generate_secret_refuses_sizes(nbytes: int) -> None:
    """Sizes outside 16..256 are a ConfigurationError that says the range."""
    with pytest.raises(ConfigurationError, match="from 16 to 256"):
        generate_secret(nbytes)


@pytest.mark.parametrize("nbytes", [20.0, "20", True, None, b"20"], ids=repr)
def test_generate_secret_refuses_types(nbytes: object) -> None:
    """A non-int size (bool included) is a TypeError."""
    with pytest.raises(TypeError, match="nbytes must be an int"):
        generate_secret(nbytes)  # type: ignore[arg-type]


# --- encode_secret ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"f", "MY"),
        (b"fo", "MZXQ"),
        (b"foo", "MZXW6"),
        (b"foob", "MZXW6YQ"),
        (b"fooba", "MZXW6YTB"),
        (b"foobar", "MZXW6YTBOI"),
        (b"Hello!\xde\xad\xbe\xef", "JBSWY3DPEHPK3PXP"),
    ],
    ids=repr,
)
def test_encode_secret_rfc4648(raw: bytes, expected: str) -> None:
    """RFC 4648 section 10 vectors, upper case and without '=' padding."""
    assert expected == encode_secret(raw)


def test_encode_secret_accepts_bytes_like() -> None:
    """bytearray and memoryview encode like bytes."""
    # The annotations say bytes; bytes-like objects are accepted at run time as a convenience.
    assert KEY_B32 == encode_secret(bytearray(KEY))  # type: ignore[arg-type]
    assert KEY_B32 == encode_secret(memoryview(KEY))  # type: ignore[arg-type]


def test_encode_secret_refuses_empty() -> None:
    """An empty secret is an InvalidSecretError."""
    with pytest.raises(InvalidSecretError, match="empty"):
        encode_secret(b"")


def test_encode_secret_refuses_over_the_cap() -> None:
    """More than 256 bytes is an InvalidSecretError that does not echo the secret."""
    secret = KEY * 17
    with pytest.raises(InvalidSecretError, match="272 bytes") as info:
        encode_secret(secret)
    assert_no_secret(info.value, secret)


def test_encode_secret_measures_memoryview_in_bytes() -> None:
    """Regression: a memoryview of 8-byte items used to be measured in items and pass the cap."""
    wide = memoryview(array.array("Q", [0] * 40))  # 40 items, 320 bytes
    with pytest.raises(InvalidSecretError, match="320 bytes"):
        encode_secret(wide)  # type: ignore[arg-type]


def test_encode_secret_max_size() -> None:
    """256 bytes encode to 410 symbols."""
    assert 410 == len(encode_secret(bytes(MAX_SECRET_BYTES)))


@pytest.mark.parametrize("secret", ["JBSWY3DPEHPK3PXP", None, 42, [1, 2]], ids=repr)
def test_encode_secret_refuses_types(secret: object) -> None:
    """A non-bytes argument is a TypeError."""
    with pytest.raises(TypeError, match="secret must be bytes"):
        encode_secret(secret)  # type: ignore[arg-type]


# --- decode_secret: accepted spellings ----------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "NFZW63LTFVZWKY3SMV2C223FPE",
        "nfzw63ltfvzwky3smv2c223fpe",
        "NfZw63LtFvZwKy3SmV2c223fPe",
        "NFZW 63LT FVZW KY3S MV2C 223F PE",
        "nfzw-63lt-fvzw-ky3s-mv2c-223f-pe",
        "NFZW 63LT-FVZW KY3S-MV2C 223F-PE",
        "N-F-Z-W-6-3-L-T-F-V-Z-W-K-Y-3-S-M-V-2-C-2-2-3-F-P-E",
        "  NFZW63LTFVZWKY3SMV2C223FPE\n",
        "\tNFZW63LTFVZWKY3SMV2C223FPE\r\n",
        "NFZW63LTFVZWKY3SMV2C223FPE======",
        "nfzw 63lt fvzw ky3s mv2c 223f pe======",
    ],
    ids=repr,
)
def test_decode_secret_accepts(text: str) -> None:
    """Any case, single spaces/hyphens between groups, outer whitespace, exact or no padding."""
    assert KEY == decode_secret(text)


@pytest.mark.parametrize(
    ("text", "raw"),
    [
        ("MY", b"f"),
        ("MY======", b"f"),
        ("MZXQ", b"fo"),
        ("MZXQ====", b"fo"),
        ("MZXW6", b"foo"),
        ("MZXW6===", b"foo"),
        ("MZXW6YQ", b"foob"),
        ("MZXW6YQ=", b"foob"),
        ("MZXW6YTB", b"fooba"),
        ("MZXW6YTBOI", b"foobar"),
        ("MZXW6YTBOI======", b"foobar"),
    ],
    ids=repr,
)
def test_decode_secret_rfc4648(text: str, raw: bytes) -> None:
    """RFC 4648 section 10 vectors decode with and without their padding."""
    assert raw == decode_secret(text)


def test_decode_secret_legacy_80_bit_key() -> None:
    """80-bit keys still decode; the 128-bit rule is checked where a key is used."""
    assert b"Hello!\xde\xad\xbe\xef" == decode_secret("JBSWY3DPEHPK3PXP")


def test_decode_secret_max_size() -> None:
    """The largest key, 256 bytes (410 symbols), decodes."""
    raw = bytes(range(256))
    assert raw == decode_secret(encode_secret(raw))


def test_decode_secret_long_text_with_separators() -> None:
    """Up to 1024 characters are looked at, separators included."""
    raw = bytes(range(200))
    symbols = encode_secret(raw)
    grouped = " ".join(symbols[i : i + 2] for i in range(0, len(symbols), 2))
    assert len(grouped) <= MAX_SECRET_TEXT
    assert raw == decode_secret(grouped)


def test_decode_secret_returns_bytes() -> None:
    """The result is bytes (not bytearray)."""
    assert bytes is type(decode_secret(KEY_B32))


def test_decode_secret_str_subclass() -> None:
    """A str subclass decodes like its value."""

    class Text(str):
        __slots__ = ()

    assert KEY == decode_secret(Text(KEY_B32))


# --- decode_secret: refusals (one test per refusal) ---------------------------------------------


def refuse(text: str, match: str) -> None:
    """Assert decode_secret(text) is an InvalidSecretError saying ``match`` without the text."""
    with pytest.raises(InvalidSecretError, match=match) as info:
        decode_secret(text)
    assert_no_text(info.value, text)


def test_decode_refuses_empty() -> None:
    """An empty string is refused."""
    refuse("", "empty")


@pytest.mark.parametrize("text", [" ", "\t\r\n ", "   \n"], ids=repr)
def test_decode_refuses_whitespace_only(text: str) -> None:
    """Only whitespace is refused as empty."""
    refuse(text, "empty")


@pytest.mark.parametrize("symbol", ["0", "1", "8", "9"])
def test_decode_refuses_digits_outside_alphabet(symbol: str) -> None:
    """0, 1, 8 and 9 are not base32 symbols (people mistype O, I, B, g)."""
    refuse(f"NFZW63LTFVZWKY3SMV2C223F{symbol}E", "only the letters A-Z and digits 2-7")


@pytest.mark.parametrize(
    "symbol",
    [
        "\u00c9",  # LATIN CAPITAL LETTER E WITH ACUTE
        "\u0410",  # CYRILLIC CAPITAL LETTER A (looks like A)
        "\uff21",  # FULLWIDTH LATIN CAPITAL LETTER A
        "\u017f",  # LATIN SMALL LETTER LONG S (upper-cases to S)
        "\u0131",  # LATIN SMALL LETTER DOTLESS I (upper-cases to I)
        "\u0663",  # ARABIC-INDIC DIGIT THREE
    ],
    ids=ascii,
)
def test_decode_refuses_unicode_letters(symbol: str) -> None:
    """Non-ASCII letters and digits are refused, even those whose upper case is ASCII."""
    refuse(f"NFZW63LTFVZWKY3SMV2C223F{symbol}E", "only the letters")


@pytest.mark.parametrize(
    "text",
    [
        "NFZW63LTFVZW=KY3SMV2C223FPE",
        "=NFZW63LTFVZWKY3SMV2C223FPE",
        "NFZW63LTFVZWKY3SMV2C223FPE==A",
    ],
)
def test_decode_refuses_padding_in_the_middle(text: str) -> None:
    """'=' anywhere but at the end is refused."""
    refuse(text, "trailing '=' padding")


@pytest.mark.parametrize(
    "text",
    [
        "NFZW  63LTFVZWKY3SMV2C223FPE",
        "NFZW- 63LTFVZWKY3SMV2C223FPE",
        "-NFZW63LTFVZWKY3SMV2C223FPE",
        "NFZW63LTFVZWKY3SMV2C223FPE-",
        "NFZW\t63LTFVZWKY3SMV2C223FPE",
        "NFZW_63LTFVZWKY3SMV2C223FPE",
        "NFZW63LTFVZWKY3SMV2C223FPE =",
        "NFZW\u00a063LTFVZWKY3SMV2C223FPE",
        "NFZW.63LT.FVZW.KY3S.MV2C.223F.PE",
    ],
    ids=ascii,
)
def test_decode_refuses_bad_separators(text: str) -> None:
    """Two separators in a row, outer hyphens, tabs, underscores, NBSP, dots are refused."""
    refuse(text, "single spaces or hyphens between groups")


@pytest.mark.parametrize(
    "text",
    [
        "NFZW63LTF",  # 9 symbols: 9 % 8 == 1
        "NFZW63LTFVZ",  # 11 symbols: 3
        "NFZW63LTFVZWKY",  # 14 symbols: 6
        "NFZW63LTFVZWKY3SMV2C223FPEA",  # 27 symbols: 3
        "NFZW63LTF========",
    ],
)
def test_decode_refuses_impossible_lengths(text: str) -> None:
    """Lengths with len % 8 in {1, 3, 6} cannot come from RFC 4648 and are refused."""
    refuse(text, "the length is impossible")


@pytest.mark.parametrize(
    "text",
    [
        "NFZW63LTFVZWKY3SMV2C223FPE=",  # 6 expected
        "NFZW63LTFVZWKY3SMV2C223FPE=======",  # 7
        "MZXW6YTBOI====",  # 4 instead of 6
        "JBSWY3DPEHPK3PXP=",  # a full group takes no padding
        "JBSWY3DPEHPK3PXP========",
    ],
)
def test_decode_refuses_wrong_padding(text: str) -> None:
    """Padding must be absent or exactly right."""
    refuse(text, "padding characters")


@pytest.mark.parametrize(
    "text",
    [
        "NFZW63LTFVZWKY3SMV2C223FPF",  # F = 00101: the last bit is unused but set
        "NFZW63LTFVZWKY3SMV2C223FP7",
        "MZ",  # 1 byte, 2 unused bits set
        "MZXW7",  # 3 bytes, 1 unused bit set
    ],
)
def test_decode_refuses_non_canonical_trailing_bits(text: str) -> None:
    """A last symbol with non-zero unused bits (a typo?) is refused, not silently decoded."""
    refuse(text, "not canonical")
    # The same through the full path (padding, separators, lower case): the same message.
    refuse(text.lower() + "=" * (-len(text) % 8), "not canonical")
    refuse(f" {text[:1]}-{text[1:]} ", "not canonical")


def test_decode_refuses_over_the_text_cap() -> None:
    """More than 1024 characters are refused before any parsing."""
    refuse("A" * (MAX_SECRET_TEXT + 1), "limit is 1024")


def test_decode_refuses_outer_whitespace_over_the_text_cap() -> None:
    """The cap counts the raw text, outer whitespace included (bounded work)."""
    refuse(" " * MAX_SECRET_TEXT + KEY_B32, "limit is 1024")


def test_decode_refuses_over_the_byte_cap() -> None:
    """Text within 1024 characters that decodes to more than 256 bytes is refused."""
    text = base64.b32encode(KEY * 16 + b"abcd").decode("ascii")  # 260 bytes, 416 symbols
    assert len(text) <= MAX_SECRET_TEXT
    refuse(text, "260 bytes; the limit is 256")


@pytest.mark.parametrize("text", [b"NFZW63LTFVZWKY3SMV2C223FPE", None, 7, ["A"]], ids=repr)
def test_decode_refuses_non_str(text: object) -> None:
    """A non-str argument is a TypeError."""
    with pytest.raises(TypeError, match="must be a str"):
        decode_secret(text)  # type: ignore[arg-type]


@given(st.binary(min_size=1, max_size=MAX_SECRET_BYTES))
def test_encode_decode_round_trip(raw: bytes) -> None:
    """decode_secret(encode_secret(b)) == b for every key size."""
    assert raw == decode_secret(encode_secret(raw))


@given(st.binary(min_size=1, max_size=64), st.sampled_from([" ", "-"]), st.integers(1, 8))
def test_round_trip_through_grouped_lower_case(raw: bytes, separator: str, size: int) -> None:
    """Grouped, lower-cased, padded spellings of a key decode to it."""
    text = encode_secret(raw)
    grouped = separator.join(text[i : i + size] for i in range(0, len(text), size)).lower()
    padding = "=" * (-len(text) % 8)
    assert raw == decode_secret(grouped)
    assert raw == decode_secret(grouped + padding)


@given(st.text(max_size=80))
def test_decode_secret_any_text_is_bytes_or_our_error(text: str) -> None:
    """Any str gives bytes or an InvalidSecretError; a refusal never echoes the text."""
    try:
        raw = decode_secret(text)
    except InvalidSecretError as error:
        message = str(error)
    else:
        symbols = text.strip(" \t\r\n").rstrip("=").replace(" ", "").replace("-", "").upper()
        assert symbols == encode_secret(raw)
        return
    if len(text.strip()) >= 8:
        assert text.strip() not in message


# --- key rules of HOTP and TOTP -----------------------------------------------------------------


@pytest.mark.parametrize("cls", [HOTP, TOTP])
@pytest.mark.parametrize("size", [MIN_SECRET_BYTES, 20, 64, 65, 128, 129, MAX_SECRET_BYTES])
def test_key_sizes_accepted(cls: type[HOTP] | type[TOTP], size: int) -> None:
    """Keys of 16 to 256 bytes are accepted by default."""
    assert size == len(cls(bytes(size)).secret)


@pytest.mark.parametrize("cls", [HOTP, TOTP])
@pytest.mark.parametrize("size", [LEGACY_MIN_SECRET_BYTES, 12, MIN_SECRET_BYTES - 1])
def test_short_key_refused_by_default(cls: type[HOTP] | type[TOTP], size: int) -> None:
    """80 to 127 bits need allow_short_secret; the message says so and holds no secret."""
    secret = KEY[:size]
    with pytest.raises(InvalidSecretError, match="allow_short_secret=True") as info:
        cls(secret)
    assert_no_secret(info.value, secret)


@pytest.mark.parametrize("cls", [HOTP, TOTP])
@pytest.mark.parametrize("size", [LEGACY_MIN_SECRET_BYTES, 12, MIN_SECRET_BYTES - 1])
def test_short_key_allowed_on_request(cls: type[HOTP] | type[TOTP], size: int) -> None:
    """allow_short_secret=True accepts 80 to 127 bits."""
    assert KEY[:size] == cls(KEY[:size], allow_short_secret=True).secret


@pytest.mark.parametrize("cls", [HOTP, TOTP])
@pytest.mark.parametrize("allow", [False, True])
@pytest.mark.parametrize("size", [4, 5, LEGACY_MIN_SECRET_BYTES - 1])
def test_key_below_80_bits_never(cls: type[HOTP] | type[TOTP], allow: bool, size: int) -> None:
    """Below 80 bits is refused even with allow_short_secret=True."""
    secret = KEY[:size]
    with pytest.raises(InvalidSecretError, match="at least 80 bits") as info:
        cls(secret, allow_short_secret=allow)
    assert_no_secret(info.value, secret)


@pytest.mark.parametrize("cls", [HOTP, TOTP])
@pytest.mark.parametrize("allow", [False, True])
def test_empty_key_always_refused(cls: type[HOTP] | type[TOTP], allow: bool) -> None:
    """An empty key is refused whatever allow_short_secret says."""
    with pytest.raises(InvalidSecretError, match="empty"):
        cls(b"", allow_short_secret=allow)


@pytest.mark.parametrize("cls", [HOTP, TOTP])
def test_key_over_the_cap(cls: type[HOTP] | type[TOTP]) -> None:
    """More than 256 bytes is refused without echoing the key."""
    secret = KEY * 17
    with pytest.raises(InvalidSecretError, match="limit is 256") as info:
        cls(secret)
    assert_no_secret(info.value, secret)


@pytest.mark.parametrize("cls", [HOTP, TOTP])
def test_key_text_is_a_type_error_with_a_hint(cls: type[HOTP] | type[TOTP]) -> None:
    """Base32 text instead of bytes is a TypeError pointing at decode_secret(), not echoing it."""
    with pytest.raises(TypeError, match=r"decode_secret\(\)") as info:
        cls(KEY_B32)  # type: ignore[arg-type]
    assert KEY_B32 not in str(info.value)


@pytest.mark.parametrize("cls", [HOTP, TOTP])
@pytest.mark.parametrize("secret", [None, 123, [1] * 16, 1.5], ids=repr)
def test_key_of_wrong_type(cls: type[HOTP] | type[TOTP], secret: object) -> None:
    """A key that is not bytes-like is a TypeError."""
    with pytest.raises(TypeError, match="secret must be bytes"):
        cls(secret)  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", [HOTP, TOTP])
@pytest.mark.parametrize("allow", [1, 0, "yes", None], ids=repr)
def test_allow_short_secret_must_be_bool(cls: type[HOTP] | type[TOTP], allow: object) -> None:
    """allow_short_secret is True or False, nothing truthy."""
    with pytest.raises(TypeError, match="allow_short_secret must be True or False"):
        cls(KEY, allow_short_secret=allow)  # type: ignore[arg-type]


@pytest.mark.parametrize("cls", [HOTP, TOTP])
def test_bytes_like_keys_are_stored_as_bytes(cls: type[HOTP] | type[TOTP]) -> None:
    """bytearray/memoryview keys are copied to bytes: a later mutation changes nothing."""
    mutable = bytearray(KEY)
    otp = cls(mutable)  # type: ignore[arg-type]
    code = otp.generate(0)
    mutable[:] = bytes(16)
    assert bytes is type(otp.secret)
    assert KEY == otp.secret
    assert code == otp.generate(0)
    assert KEY == cls(memoryview(KEY)).secret  # type: ignore[arg-type]


def test_errors_are_otp_errors_and_value_errors() -> None:
    """InvalidSecretError is catchable as OTPError and as ValueError."""
    assert issubclass(InvalidSecretError, OTPError)
    assert issubclass(InvalidSecretError, ValueError)


@pytest.mark.parametrize("make", [encode_secret, HOTP, TOTP], ids=["encode_secret", "HOTP", "TOTP"])
def test_released_memoryview_is_our_error(make: object) -> None:
    """Regression: a released memoryview used to escape as a bare ValueError."""
    view = memoryview(KEY * 2)
    view.release()
    with pytest.raises(InvalidSecretError, match="released"):
        make(view)  # type: ignore[operator]


@pytest.mark.parametrize("position", [0, 13, 25])
def test_decode_fast_path_refuses_every_other_character(position: int) -> None:
    """At a length the fast path takes, every character outside the alphabet (all 256 of the
    first code points, bar the 56 symbols in either case) sends the text to the full checks,
    which refuse it: the fast path's table lets none through."""
    alphabet = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567abcdefghijklmnopqrstuvwxyz")
    base = "NFZW63LTFVZWKY3SMV2C223FPE"  # 26 symbols: a fast-path length
    for point in range(256):
        symbol = chr(point)
        if symbol in alphabet:
            continue
        text = base[:position] + symbol + base[position + 1 :]
        with pytest.raises(InvalidSecretError) as info:
            decode_secret(text)
        assert_no_text(info.value, text)
