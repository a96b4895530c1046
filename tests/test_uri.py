"""otpauth:// URIs: canonical building, hostile-input parsing, and round trips."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from isoms_otp import (
    HOTP,
    TOTP,
    InvalidURIError,
    OTPAuthURI,
    OTPError,
    build_uri,
    decode_secret,
    generate_secret,
    parse_uri,
)
from isoms_otp.uri import MAX_URI_LENGTH

VECTORS = json.loads((Path(__file__).parent / "vectors" / "uris.json").read_text("utf-8"))
VALID: list[dict[str, Any]] = VECTORS["valid"]
INVALID: list[dict[str, Any]] = VECTORS["invalid"]

KEY = decode_secret("HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ")  # 20 bytes
B32 = "HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ"

# Label text as users type it: any Unicode but ':' and the refused categories (controls,
# invisible formatting, surrogates, line and paragraph separators), never only whitespace, with
# the characters that break naive encoders (pyotp#47, #174; otplib#126) drawn often.
SPECIAL = " @+%&=#?/;,!$'()*[]~\\\"<>{}|^`éÜ日本🔐\u00a0\u3000"
REFUSED_CATEGORIES: tuple[Literal["Cc", "Cf", "Cs", "Zl", "Zp"], ...] = (
    "Cc",
    "Cf",
    "Cs",
    "Zl",
    "Zp",
)
LABEL_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(SPECIAL),
        st.characters(blacklist_categories=REFUSED_CATEGORIES, blacklist_characters=":"),
    ),
    min_size=1,
    max_size=40,
).filter(lambda text: not text.isspace())
# What build_uri accepts as an account or issuer: no whitespace at either end (apps trim it).
NAMES = LABEL_TEXT.filter(lambda text: text == text.strip())


def _ids(cases: list[dict[str, Any]]) -> list[str]:
    return [case["id"] for case in cases]


@pytest.mark.parametrize("case", VALID, ids=_ids(VALID))
def test_valid_vector(case: dict[str, Any]) -> None:
    """Each valid vector parses to the listed values and re-renders canonically."""
    parsed = parse_uri(case["uri"], allow_short_secret=case["allow_short_secret"])
    expected_type = TOTP if case["type"] == "totp" else HOTP
    assert expected_type is type(parsed.otp)
    assert bytes.fromhex(case["secret_hex"]) == parsed.otp.secret
    assert case["algorithm"] == parsed.otp.algorithm
    assert case["digits"] == parsed.otp.digits
    if case["period"] is not None:
        assert isinstance(parsed.otp, TOTP)
        assert case["period"] == parsed.otp.period
    assert case["counter"] == parsed.counter
    assert case["account"] == parsed.account
    assert case["issuer"] == parsed.issuer
    assert case["image"] == parsed.image
    assert frozenset(case["quirks"]) == parsed.quirks
    assert case["canonical"] == parsed.to_uri()


@pytest.mark.parametrize("case", VALID, ids=_ids(VALID))
def test_valid_vector_canonical_form_is_stable(case: dict[str, Any]) -> None:
    """The canonical URI parses back to an equal object without any quirk."""
    parsed = parse_uri(case["uri"], allow_short_secret=case["allow_short_secret"])
    again = parse_uri(parsed.to_uri(), allow_short_secret=case["allow_short_secret"])
    assert parsed == again
    assert frozenset() == again.quirks
    assert parsed.to_uri() == again.to_uri()


@pytest.mark.parametrize("case", INVALID, ids=_ids(INVALID))
def test_invalid_vector(case: dict[str, Any]) -> None:
    """Each invalid vector is refused with an InvalidURIError that says what is wrong."""
    with pytest.raises(InvalidURIError, match=re.escape(case["match"])) as info:
        parse_uri(case["uri"], allow_short_secret=case["allow_short_secret"])
    assert isinstance(info.value, OTPError)
    assert isinstance(info.value, ValueError)
    assert B32 not in str(info.value)
    assert B32.lower() not in str(info.value).lower()


def test_google_example_is_built_exactly() -> None:
    """build_uri writes the Key Uri Format wiki's first example byte for byte."""
    otp = TOTP(decode_secret("JBSWY3DPEHPK3PXP"), allow_short_secret=True)
    expected = "otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example"
    assert expected == build_uri(otp, account="alice@google.com", issuer="Example")


def test_defaults_are_omitted() -> None:
    """SHA1, 6 digits and 30 s are the defaults, so they are left out of the URI."""
    expected = f"otpauth://totp/ACME%20Co:john.doe@email.com?secret={B32}&issuer=ACME%20Co"
    assert expected == build_uri(TOTP(KEY), account="john.doe@email.com", issuer="ACME Co")


def test_every_non_default_parameter_is_written() -> None:
    """A non-default algorithm, digits and period all appear (libpam#106 forgot the period)."""
    otp = TOTP(KEY, algorithm="sha256", digits=8, period=60)
    expected = f"otpauth://totp/X:a?secret={B32}&issuer=X&algorithm=SHA256&digits=8&period=60"
    assert expected == build_uri(otp, account="a", issuer="X")


def test_no_issuer_gives_a_bare_label() -> None:
    """Without an issuer the label is the account alone and no issuer parameter is written."""
    assert f"otpauth://totp/alice?secret={B32}" == build_uri(TOTP(KEY), account="alice")


def test_hotp_carries_the_counter() -> None:
    """An HOTP URI always carries counter, even 0."""
    expected = f"otpauth://hotp/X:a?secret={B32}&issuer=X&digits=7&counter=0"
    assert expected == build_uri(HOTP(KEY, digits=7), account="a", issuer="X", counter=0)


def test_space_is_percent_20_and_plus_is_percent_2b() -> None:
    """RFC 3986 encoding: a space is %20 and a plus %2B, never '+' (pyotp#47, nimble_totp#10)."""
    uri = build_uri(TOTP(KEY), account="john+doe smith", issuer="Big Co+")
    expected = f"otpauth://totp/Big%20Co%2B:john%2Bdoe%20smith?secret={B32}&issuer=Big%20Co%2B"
    assert expected == uri


def test_image_is_written_last_and_encoded() -> None:
    """The image URL keeps ':' and '/' but encodes '?', '&' and '='."""
    uri = build_uri(TOTP(KEY), account="a", image="https://x.org/l.png?a=1&b=2")
    expected = f"otpauth://totp/a?secret={B32}&image=https://x.org/l.png%3Fa%3D1%26b%3D2"
    assert expected == uri


def test_secret_is_upper_case_without_padding() -> None:
    """A 16-byte key (26 symbols) is written without the six '=' of RFC 4648 padding."""
    uri = build_uri(TOTP(bytes(range(16))), account="a")
    expected = "otpauth://totp/a?secret=AAAQEAYEAUDAOCAJBIFQYDIOB4"
    assert expected == uri


def _build_error(**changes: Any) -> str:
    arguments: dict[str, Any] = {"otp": TOTP(KEY), "account": "alice", "issuer": "iSOMS"}
    arguments.update(changes)
    otp = arguments.pop("otp")
    with pytest.raises(InvalidURIError) as info:
        build_uri(otp, **arguments)
    return str(info.value)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"account": "a:b"}, "the account contains ':'", id="colon-in-account"),
        pytest.param({"issuer": "A:B"}, "the issuer contains ':'", id="colon-in-issuer"),
        pytest.param({"account": ""}, "account name is empty", id="empty-account"),
        pytest.param({"account": " alice"}, "starts with a space", id="leading-space"),
        pytest.param({"issuer": ""}, "issuer is empty", id="empty-issuer"),
        pytest.param({"account": "a\x00b"}, "control character", id="nul-in-account"),
        pytest.param({"account": "a\nb"}, "control character", id="newline-in-account"),
        pytest.param({"issuer": "a\x7f"}, "control character", id="del-in-issuer"),
        pytest.param({"issuer": "a\x85"}, "control character", id="c1-in-issuer"),
        pytest.param({"account": "a\ud800"}, "lone surrogate", id="surrogate-in-account"),
        pytest.param(
            {"account": "alice\u202e"},
            "account contains an invisible formatting",
            id="bidi-account",
        ),
        pytest.param(
            {"issuer": "\u200biSOMS"}, "issuer contains an invisible formatting", id="zwsp-issuer"
        ),
        pytest.param({"issuer": "i\ufeff"}, "at position 1", id="bom-issuer"),
        pytest.param({"account": "a\u2060b"}, "invisible formatting", id="word-joiner-account"),
        pytest.param({"account": "a\u2028b"}, "a line separator at position 1", id="ls-account"),
        pytest.param({"issuer": "a\u2029"}, "a paragraph separator", id="ps-issuer"),
        pytest.param({"issuer": "  "}, "the issuer is only whitespace", id="spaces-issuer"),
        pytest.param(
            {"issuer": "\u3000"}, "the issuer is only whitespace", id="ideographic-issuer"
        ),
        pytest.param({"account": "\u00a0"}, "the account is only whitespace", id="nbsp-account"),
        pytest.param({"image": "http://x.org/l.png"}, "https:// URL", id="image-http"),
        pytest.param({"image": "https://"}, "https:// URL", id="image-without-host"),
        pytest.param({"image": "https://x\x00"}, "control character", id="image-control"),
        pytest.param({"account": "é" * 400}, "the limit is 2048", id="too-long"),
        pytest.param({"otp": TOTP(KEY, t0=1)}, "cannot carry t0", id="totp-t0"),
        pytest.param({"counter": 1}, "a TOTP URI has none", id="counter-on-totp"),
        pytest.param({"otp": HOTP(KEY)}, "needs counter=", id="hotp-without-counter"),
        pytest.param({"otp": HOTP(KEY), "counter": -1}, "from 0 to 2**64-1", id="counter-low"),
        pytest.param({"otp": HOTP(KEY), "counter": 2**64}, "from 0 to 2**64-1", id="counter-high"),
    ],
)
def test_build_refusals(changes: dict[str, Any], message: str) -> None:
    """build_uri refuses what would make an invalid or ambiguous URI, and says why."""
    text = _build_error(**changes)
    assert message in text
    assert B32 not in text


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"otp": "JBSWY3DPEHPK3PXP"}, "otp must be a TOTP or an HOTP", id="otp-str"),
        pytest.param({"account": b"alice"}, "account must be a str", id="account-bytes"),
        pytest.param({"issuer": 1}, "issuer must be a str", id="issuer-int"),
        pytest.param({"image": b"https://x"}, "image must be a str or None", id="image-bytes"),
        pytest.param({"otp": HOTP(KEY), "counter": True}, "counter must be an int", id="bool"),
        pytest.param({"otp": HOTP(KEY), "counter": 1.0}, "counter must be an int", id="float"),
    ],
)
def test_build_type_errors(changes: dict[str, Any], message: str) -> None:
    """Wrong types are TypeErrors, as everywhere in the library."""
    arguments: dict[str, Any] = {"otp": TOTP(KEY), "account": "alice", "issuer": "iSOMS"}
    arguments.update(changes)
    otp = arguments.pop("otp")
    with pytest.raises(TypeError, match=re.escape(message)):
        build_uri(otp, **arguments)


def test_parse_refuses_a_non_str() -> None:
    """Bytes are not decoded on a guess: a non-str URI is a TypeError."""
    with pytest.raises(TypeError, match="uri must be a str"):
        parse_uri(b"otpauth://totp/a?secret=" + B32.encode())  # type: ignore[arg-type]


def test_length_limit_is_inclusive() -> None:
    """A URI of exactly MAX_URI_LENGTH characters parses; one more is refused."""
    base = f"otpauth://totp/a?secret={B32}&x="
    longest = base + "y" * (MAX_URI_LENGTH - len(base))
    expected = "a"
    assert expected == parse_uri(longest).account
    with pytest.raises(InvalidURIError, match="the limit is 2048"):
        parse_uri(longest + "y")


def test_build_limit_is_inclusive() -> None:
    """build_uri writes a URI of exactly MAX_URI_LENGTH characters and refuses one more."""
    base = build_uri(TOTP(KEY), account="a")
    account = "a" * (1 + MAX_URI_LENGTH - len(base))
    longest = build_uri(TOTP(KEY), account=account)
    assert len(longest) == MAX_URI_LENGTH
    with pytest.raises(InvalidURIError, match="the limit is 2048"):
        build_uri(TOTP(KEY), account=account + "a")


def test_huge_input_is_refused_before_any_work() -> None:
    """A megabyte of junk is refused by its length alone."""
    with pytest.raises(InvalidURIError, match="the limit is 2048"):
        parse_uri("otpauth://totp/" + "%" * 1_000_000)


def test_uri_that_grows_past_the_limit_when_canonical_is_refused() -> None:
    """Raw non-ASCII text can be short but too long once percent-encoded, so it is refused."""
    uri = f"otpauth://totp/{'é' * 500}?secret={B32}"
    assert len(uri) < MAX_URI_LENGTH
    with pytest.raises(InvalidURIError, match="the limit is 2048"):
        parse_uri(uri)


def test_short_secret_passes_with_the_opt_in() -> None:
    """allow_short_secret reaches the core: an 80-bit key parses only with the opt-in."""
    uri = "otpauth://hotp/a?secret=JBSWY3DPEHPK3PXP&counter=3"
    with pytest.raises(InvalidURIError, match="allow_short_secret=True"):
        parse_uri(uri)
    parsed = parse_uri(uri, allow_short_secret=True)
    expected_key, expected_counter = b"Hello!\xde\xad\xbe\xef", 3
    assert expected_key == parsed.otp.secret
    assert expected_counter == parsed.counter


def test_repr_hides_the_secret_and_quirks() -> None:
    """Neither the secret nor the raw spelling appears in repr."""
    parsed = parse_uri(f"otpauth://totp/X:a?secret={B32.lower()}&issuer=X")
    text = repr(parsed)
    assert B32 not in text.upper()
    assert "quirks" not in text
    expected = (
        "OTPAuthURI(otp=TOTP(digits=6, algorithm='SHA1', period=30, t0=0), account='a', "
        "issuer='X', counter=None, image=None)"
    )
    assert expected == text


def test_quirks_do_not_affect_equality() -> None:
    """A lower-case spelling parses equal to the canonical one; only quirks differ."""
    quirky = parse_uri(f"otpauth://totp/a?secret={B32.lower()}&algorithm=sha1")
    canonical = parse_uri(f"otpauth://totp/a?secret={B32}")
    assert canonical == quirky
    assert hash(canonical) == hash(quirky)
    assert frozenset({"secret-lower-case", "algorithm-lower-case"}) == quirky.quirks


def test_the_object_validates_like_build_uri() -> None:
    """OTPAuthURI made directly is held to the same rules and renders the same text."""
    made = OTPAuthURI(otp=HOTP(KEY), account="a", counter=5)
    assert build_uri(HOTP(KEY), account="a", counter=5) == made.to_uri()
    with pytest.raises(InvalidURIError, match="contains ':'"):
        OTPAuthURI(otp=TOTP(KEY), account="a:b")


def test_parsed_code_generation_matches_the_source() -> None:
    """The TOTP read from a URI generates the same codes as the one it was built from."""
    otp = TOTP(generate_secret(), digits=8, algorithm="SHA512", period=45)
    parsed = parse_uri(build_uri(otp, account="a", issuer="b"))
    assert otp == parsed.otp
    assert [otp.generate(at) for at in (0, 59, 10**9)] == [
        parsed.otp.generate(at) for at in (0, 59, 10**9)
    ]


@pytest.mark.parametrize("space", [" ", "\u00a0", "\u3000"], ids=["space", "nbsp", "ideographic"])
@pytest.mark.parametrize(
    ("where", "end"),
    [
        ("account", "start"),
        ("account", "end"),
        ("issuer", "start"),
        ("issuer", "end"),
    ],
)
def test_outer_whitespace_refused_on_build(where: str, end: str, space: str) -> None:
    """Regression: "alice " and "iSOMS " used to be accepted (only a leading space was refused).

    Google Authenticator trims the account and the issuer, so the app would show another name
    than the one the server keeps. Whitespace at either end of either is refused now, as a
    leading space of the account always was.
    """
    text = space + "name" if end == "start" else "name" + space
    account, issuer = (text, "iSOMS") if where == "account" else ("alice", text)
    what = "the account name" if where == "account" else "the issuer"
    expected = f"{what} {end}s with a space, which apps drop: strip it first"
    with pytest.raises(InvalidURIError) as info:
        build_uri(TOTP(KEY), account=account, issuer=issuer)
    assert expected == str(info.value)


@given(
    prefix=LABEL_TEXT,
    hidden=st.characters(whitelist_categories=REFUSED_CATEGORIES),
    suffix=LABEL_TEXT,
    where=st.sampled_from(["account", "issuer"]),
)
def test_hidden_characters_refused_on_build(
    prefix: str, hidden: str, suffix: str, where: str
) -> None:
    """Regression: U+202E, zero-width and line-separator characters used to be accepted.

    Only C0/C1 controls and surrogates were refused, so an issuer could pose as another one
    in the app (a direction override) or break a log line (U+2028). Any character of Unicode
    category Cc, Cf, Cs, Zl or Zp in the account or issuer is now refused.
    """
    text = (prefix + hidden + suffix).lstrip()
    account, issuer = (text, "iSOMS") if where == "account" else ("alice", text)
    with pytest.raises(InvalidURIError, match=f"the {where} contains"):
        build_uri(TOTP(KEY), account=account, issuer=issuer)


@given(
    prefix=LABEL_TEXT,
    hidden=st.characters(whitelist_categories=("Cf", "Zl", "Zp")),
    suffix=LABEL_TEXT,
    where=st.sampled_from(["account", "issuer", "issuer in the label"]),
)
def test_hidden_characters_refused_on_parse(
    prefix: str, hidden: str, suffix: str, where: str
) -> None:
    """Regression: parse_uri used to accept format and separator characters in the label.

    Percent-encoded (controls and surrogates are refused earlier, by the decoder).
    """
    text = quote((prefix + hidden + suffix).lstrip(), safe="")
    account, issuer, label_issuer = "alice", "iSOMS", "iSOMS"
    if where == "account":
        account = text
    elif where == "issuer":
        issuer = text
    else:
        label_issuer = text
    uri = f"otpauth://totp/{label_issuer}:{account}?secret={B32}&issuer={issuer}"
    with pytest.raises(InvalidURIError, match=f"the {where} contains"):
        parse_uri(uri)


@given(account=NAMES, issuer=st.none() | NAMES)
@example(account="alice@example.com", issuer="ACME Co")
@example(account="a+b%20c&d=e#f?g/h", issuer="100% & Co = #1? /x")
@example(account="inner  spaces", issuer="A \u00a0B")
@example(account="日本語", issuer="Über 🔐")
def test_totp_round_trip(account: str, issuer: str | None) -> None:
    """Build then parse gives back the account and issuer exactly, and parse(to_uri()) == x."""
    otp = TOTP(KEY)
    uri = build_uri(otp, account=account, issuer=issuer)
    parsed = parse_uri(uri)
    assert account == parsed.account
    assert issuer == parsed.issuer
    assert otp == parsed.otp
    assert frozenset() == parsed.quirks
    assert uri == parsed.to_uri()
    assert parsed == parse_uri(parsed.to_uri())
    # The canonical text is plain ASCII without a raw space or plus (never ambiguous).
    assert uri.isascii()
    assert " " not in uri
    assert "+" not in uri


@given(
    account=NAMES,
    issuer=st.none() | NAMES,
    counter=st.integers(0, 2**64 - 1),
    options=st.tuples(st.integers(6, 8), st.sampled_from(["SHA1", "SHA256", "SHA512"])),
    nbytes=st.integers(16, 64),
)
def test_hotp_round_trip(
    account: str, issuer: str | None, counter: int, options: tuple[int, str], nbytes: int
) -> None:
    """HOTP URIs round-trip with every counter, digits, algorithm and key size."""
    digits, algorithm = options
    otp = HOTP(generate_secret(nbytes), digits=digits, algorithm=algorithm)
    made = OTPAuthURI(otp=otp, account=account, issuer=issuer, counter=counter)
    assert made == parse_uri(made.to_uri())


@given(period=st.integers(1, 604800), digits=st.integers(6, 8))
def test_period_round_trip(period: int, digits: int) -> None:
    """Every period the core accepts survives a round trip."""
    made = OTPAuthURI(otp=TOTP(KEY, period=period, digits=digits), account="a", issuer="b")
    assert made == parse_uri(made.to_uri())


def _parse_or_refuse(text: str) -> None:
    try:
        parsed = parse_uri(text, allow_short_secret=True)
    except InvalidURIError as exc:
        message = str(exc)
    else:
        # Whatever is accepted has a canonical form that is accepted again, unchanged.
        assert parsed == parse_uri(parsed.to_uri(), allow_short_secret=True)
        return
    assert B32 not in message


@given(st.text(max_size=300))
def test_junk_text_raises_only_invalid_uri_error(text: str) -> None:
    """Any text at all is parsed or refused with InvalidURIError, nothing else."""
    _parse_or_refuse(text)


PIECES = st.sampled_from(
    [
        "otpauth://",
        "totp",
        "hotp",
        "/",
        ":",
        "%3A",
        "?",
        "&",
        "=",
        "#",
        "+",
        " ",
        "%",
        "%20",
        "%2",
        "%FF",
        "%C3%A9",
        "%00",
        "\x00",
        "é",
        "secret=",
        f"secret={B32}",
        "issuer=",
        "algorithm=",
        "sha256",
        "digits=",
        "period=",
        "counter=",
        "image=",
        "https://x",
        "0",
        "6",
        "-1",
        "99999999999999999999999",
        "alice",
    ]
)


@given(st.lists(PIECES | st.text(max_size=3), max_size=25))
def test_junk_from_uri_pieces_raises_only_invalid_uri_error(pieces: list[str]) -> None:
    """Junk assembled from URI syntax reaches deep into the parser and still fails cleanly."""
    _parse_or_refuse("".join(pieces))


@given(
    position=st.integers(0, 200),
    junk=st.text(min_size=1, max_size=4),
    cut=st.booleans(),
)
def test_mutated_valid_uri_raises_only_invalid_uri_error(
    position: int, junk: str, cut: bool
) -> None:
    """A valid URI with junk inserted or a slice removed is parsed or refused cleanly."""
    uri = f"otpauth://hotp/ACME%20Co:bob@x.org?secret={B32}&issuer=ACME%20Co&counter=12&digits=8"
    position %= len(uri) + 1
    mutated = uri[:position] + uri[position + len(junk) :] if cut else uri[:position] + junk
    _parse_or_refuse(mutated + ("" if cut else uri[position:]))


@given(
    name=st.sampled_from(["digits", "period", "algorithm", "issuer", "image", "x", "counter"]),
    value=st.text(max_size=12),
)
def test_secret_never_appears_in_an_error(name: str, value: str) -> None:
    """Whatever other parameter is broken, the message does not repeat the secret."""
    uri = f"otpauth://totp/a?secret={B32}&{name}={value}"
    try:
        parse_uri(uri)
    except InvalidURIError as exc:
        message = str(exc)
    else:
        return
    assert B32 not in message
