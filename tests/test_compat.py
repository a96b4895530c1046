"""App compatibility findings: one test per rule, and silence for the safe defaults."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from isoms_otp import (
    HOTP,
    TOTP,
    Finding,
    InvalidURIError,
    OTPAuthURI,
    build_uri,
    check_compatibility,
    enroll,
    generate_secret,
    parse_uri,
)
from isoms_otp.compat import APPS, DENSE_URI_LENGTH, RULES

B32 = "HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ"
PADDED = "AAAQEAYEAUDAOCAJBIFQYDIOB4======"
BASE = f"otpauth://totp/iSOMS:alice?secret={B32}&issuer=iSOMS"
GA_ANDROID = "Google Authenticator Android"
GA_IOS = "Google Authenticator iOS"
MICROSOFT = "Microsoft Authenticator"
AUTHY = "Authy"


def _summary(uri: str | OTPAuthURI) -> set[tuple[str, str, str]]:
    return {(f.rule, f.app, f.severity) for f in check_compatibility(uri)}


# (id, URI, expected (rule, app, severity) findings): one or more cases per rule in RULES.
CASES: list[tuple[str, str, set[tuple[str, str, str]]]] = [
    (
        "sha256",
        f"{BASE}&algorithm=SHA256",
        {
            ("algorithm", GA_ANDROID, "wrong-codes"),
            ("algorithm", MICROSOFT, "wrong-codes"),
            ("algorithm", AUTHY, "wrong-codes"),
        },
    ),
    (
        "digits-8",
        f"{BASE}&digits=8",
        {
            ("digits", GA_ANDROID, "wrong-codes"),
            ("digits", MICROSOFT, "wrong-codes"),
            ("digits", AUTHY, "wrong-codes"),
        },
    ),
    (
        "period-60",
        f"{BASE}&period=60",
        {
            ("period", GA_ANDROID, "wrong-codes"),
            ("period", MICROSOFT, "wrong-codes"),
            ("period", AUTHY, "wrong-codes"),
        },
    ),
    (
        "hotp",
        f"otpauth://hotp/iSOMS:alice?secret={B32}&issuer=iSOMS&counter=0",
        {("hotp", MICROSOFT, "wrong-codes"), ("hotp", AUTHY, "warning")},
    ),
    (
        "hotp-counter-2**31",
        f"otpauth://hotp/iSOMS:alice?secret={B32}&issuer=iSOMS&counter=2147483648",
        {
            ("hotp", MICROSOFT, "wrong-codes"),
            ("hotp", AUTHY, "warning"),
            ("counter-over-2**31", GA_ANDROID, "refuses"),
        },
    ),
    # Regression: 2**31-1 used to have no finding, but the app adds 1 to it in a Java int and
    # wraps to -2**31, so every code after the first is wrong.
    (
        "hotp-counter-2**31-1",
        f"otpauth://hotp/iSOMS:alice?secret={B32}&issuer=iSOMS&counter=2147483647",
        {
            ("hotp", MICROSOFT, "wrong-codes"),
            ("hotp", AUTHY, "warning"),
            ("counter-over-2**31", GA_ANDROID, "wrong-codes"),
        },
    ),
    (
        "hotp-counter-2**31-2",
        f"otpauth://hotp/iSOMS:alice?secret={B32}&issuer=iSOMS&counter=2147483646",
        {("hotp", MICROSOFT, "wrong-codes"), ("hotp", AUTHY, "warning")},
    ),
    (
        "secret-padded",
        f"otpauth://totp/iSOMS:alice?secret={PADDED}&issuer=iSOMS",
        {("secret-padded", GA_ANDROID, "refuses"), ("secret-padded", GA_IOS, "refuses")},
    ),
    (
        "algorithm-lower-case",
        f"{BASE}&algorithm=sha1",
        {
            ("algorithm-lower-case", GA_ANDROID, "refuses"),
            ("algorithm-lower-case", GA_IOS, "refuses"),
        },
    ),
    (
        "algorithm-lower-case-sha512",
        f"{BASE}&algorithm=sha512",
        {
            ("algorithm", GA_ANDROID, "wrong-codes"),
            ("algorithm", MICROSOFT, "wrong-codes"),
            ("algorithm", AUTHY, "wrong-codes"),
            ("algorithm-lower-case", GA_ANDROID, "refuses"),
            ("algorithm-lower-case", GA_IOS, "refuses"),
        },
    ),
    (
        "secret-lower-case",
        f"otpauth://totp/iSOMS:alice?secret={B32.lower()}&issuer=iSOMS",
        {("secret-lower-case", MICROSOFT, "warning"), ("secret-lower-case", AUTHY, "warning")},
    ),
    (
        "secret-separators",
        f"otpauth://totp/iSOMS:alice?secret={B32[:16]}%20{B32[16:]}&issuer=iSOMS",
        {("secret-separators", app, "warning") for app in APPS},
    ),
    (
        "issuer-mismatch",
        f"otpauth://totp/Contoso:alice?secret={B32}&issuer=Microsoft",
        {("issuer-mismatch", GA_ANDROID, "warning")},
    ),
    (
        "issuer-only-in-label",
        f"otpauth://totp/iSOMS:alice?secret={B32}",
        {("issuer-only-in-label", GA_IOS, "warning")},
    ),
    (
        "plus-in-query",
        f"otpauth://totp/A%2BB:alice?secret={B32}&issuer=A+B",
        {("plus-in-query", GA_ANDROID, "warning")},
    ),
    (
        "image",
        f"{BASE}&image=https%3A%2F%2Fexample.com%2Flogo.png",
        {("image", GA_ANDROID, "warning"), ("image", GA_IOS, "warning")},
    ),
    (
        "dense-qr",
        f"otpauth://totp/iSOMS:{'a' * 150}?secret={B32}&issuer=iSOMS",
        {("dense-qr", app, "warning") for app in APPS},
    ),
]


@pytest.mark.parametrize(("uri", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule(uri: str, expected: set[tuple[str, str, str]]) -> None:
    """Each rule fires for the apps it names, and no other rule fires with it."""
    assert expected == _summary(uri)


def test_every_rule_has_a_case() -> None:
    """The cases above exercise every (rule, app) row of the table."""
    covered = {finding for _, _, expected in CASES for finding in expected}
    table = {(rule.rule, app, rule.severity) for rule in RULES for app in rule.apps}
    assert table == covered


def test_every_rule_names_its_source_and_fix() -> None:
    """Rules are data with a source, a problem and a fix, about known apps only."""
    for rule in RULES:
        assert rule.source
        assert rule.problem
        assert rule.fix
        assert rule.apps
        assert set(rule.apps) <= set(APPS)


def test_safe_defaults_have_no_findings() -> None:
    """build_uri with generate_secret and the defaults gives a URI every app handles."""
    uri = build_uri(TOTP(generate_secret()), account="alice@example.org", issuer="iSOMS")
    expected: list[Finding] = []
    assert expected == check_compatibility(uri)
    assert expected == check_compatibility(parse_uri(uri))


def test_enrolment_uri_has_no_findings() -> None:
    """The enroll() helper's URI has no findings."""
    expected: list[Finding] = []
    assert expected == check_compatibility(enroll("alice", issuer="iSOMS").uri)


@given(
    account=st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters=":"),
        min_size=1,
        max_size=35,
    )
)
@example(account="%" * 35)
def test_defaults_with_any_short_ascii_account_have_no_findings(account: str) -> None:
    """Any printable ASCII account of up to 35 characters (105 encoded) has no finding."""
    expected: list[Finding] = []
    uri = build_uri(TOTP(generate_secret()), account=account, issuer="iSOMS")
    assert expected == check_compatibility(uri)


def test_density_threshold_is_exclusive() -> None:
    """A URI of exactly DENSE_URI_LENGTH characters has no finding; one more has."""
    base = build_uri(TOTP(generate_secret()), account="a", issuer="iSOMS")
    account = "a" * (1 + DENSE_URI_LENGTH - len(base))
    expected: list[Finding] = []
    assert expected == check_compatibility(
        OTPAuthURI(otp=TOTP(generate_secret()), account=account, issuer="iSOMS")
    )
    longer = OTPAuthURI(otp=TOTP(generate_secret()), account=account + "a", issuer="iSOMS")
    assert {"dense-qr"} == {finding.rule for finding in check_compatibility(longer)}


def test_findings_explain_themselves() -> None:
    """A finding carries the app, what it does, how to fix it and where that is known from."""
    findings = check_compatibility(f"{BASE}&period=60")
    microsoft = next(f for f in findings if f.app == MICROSOFT)
    assert "30 seconds" in microsoft.problem
    assert "30 seconds" in microsoft.fix
    assert "RobThree/TwoFactorAuth.Net#18" in microsoft.source


def test_findings_follow_the_table_order() -> None:
    """Findings come in RULES order, apps in the order a rule lists them."""
    findings = check_compatibility(f"{BASE}&algorithm=SHA256&digits=8")
    rules = [rule.rule for rule in RULES if rule.rule in {"algorithm", "digits"}]
    assert rules == [finding.rule for finding in findings]


def test_built_objects_have_no_spelling_findings() -> None:
    """An OTPAuthURI built in code has the canonical spelling, so only value rules apply."""
    made = OTPAuthURI(otp=HOTP(generate_secret()), account="a", issuer="b", counter=1)
    expected = {("hotp", MICROSOFT, "wrong-codes"), ("hotp", AUTHY, "warning")}
    assert expected == _summary(made)


def test_legacy_short_secret_is_checked_not_refused() -> None:
    """An 80-bit key is no app problem, so a URI string with one is still checked."""
    expected: list[Finding] = []
    assert expected == check_compatibility(
        "otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example"
    )


def test_invalid_uri_is_refused() -> None:
    """A URI the parser refuses cannot be checked: InvalidURIError."""
    with pytest.raises(InvalidURIError):
        check_compatibility("otpauth://totp/a?secret=1")


def test_wrong_type_is_a_type_error() -> None:
    """Only a str or an OTPAuthURI can be checked."""
    with pytest.raises(TypeError, match="expected an otpauth URI str or an OTPAuthURI"):
        check_compatibility(b"otpauth://totp/a")  # type: ignore[arg-type]
