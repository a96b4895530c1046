"""What Google Authenticator, Microsoft Authenticator and Authy do with a given URI.

Apps fail silently: Microsoft Authenticator and Authy scan a SHA256 QR code and then show wrong
codes. :func:`check_compatibility` lists every known problem, with the app, what the app does,
and how to fix the URI. The knowledge is the :data:`RULES` table below. Each entry cites its
source (issue threads and user reports, dated) so it can be re-checked and updated when an app
changes. The URI that every app handles (TOTP, SHA1, 6 digits, 30 s, an upper-case unpadded
secret, a short label) has no findings; that is what :func:`build_uri` and :func:`enroll` write by
default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from ._hotp import HOTP
from ._limits import DENSE_URI_LENGTH, JAVA_INT_MAX
from .uri import OTPAuthURI, Quirk, parse_uri

__all__ = [
    "APPS",
    "DENSE_URI_LENGTH",
    "JAVA_INT_MAX",
    "RULES",
    "App",
    "Finding",
    "Rule",
    "Severity",
    "check_compatibility",
]

App = Literal[
    "Google Authenticator Android",
    "Google Authenticator iOS",
    "Microsoft Authenticator",
    "Authy",
]
_GA_ANDROID: Final[App] = "Google Authenticator Android"
_GA_IOS: Final[App] = "Google Authenticator iOS"
_MICROSOFT: Final[App] = "Microsoft Authenticator"
_AUTHY: Final[App] = "Authy"
#: The apps the rules cover.
APPS: Final[tuple[App, ...]] = (_GA_ANDROID, _GA_IOS, _MICROSOFT, _AUTHY)

#: ``"wrong-codes"``: the app scans the QR code and then shows codes the server rejects (the worst
#: case: nobody notices until sign-in fails). ``"refuses"``: the app will not add the account.
#: ``"warning"``: the codes are right but something else is off (display, scanning, unknowns).
Severity = Literal["wrong-codes", "refuses", "warning"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One app's problem with one URI.

    ``rule`` is a stable identifier (such as ``"period"``), ``app`` one of :data:`APPS`,
    ``severity`` one of ``"wrong-codes"``, ``"refuses"`` and ``"warning"``, ``problem`` what the
    app does, ``fix`` how to change the URI, and ``source`` where the behaviour was reported.
    """

    rule: str
    app: App
    severity: Severity
    problem: str
    fix: str
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """One row of :data:`RULES`: when ``applies`` is true of a URI, ``apps`` have the problem."""

    rule: str
    apps: tuple[App, ...]
    severity: Severity
    applies: Callable[[OTPAuthURI], bool]
    problem: str
    fix: str
    source: str


def _algorithm(uri: OTPAuthURI) -> bool:
    return uri.otp.algorithm != "SHA1"


def _digits(uri: OTPAuthURI) -> bool:
    return uri.otp.digits != 6


def _period(uri: OTPAuthURI) -> bool:
    return not isinstance(uri.otp, HOTP) and uri.otp.period != 30


def _hotp(uri: OTPAuthURI) -> bool:
    return isinstance(uri.otp, HOTP)


def _java_int_last(uri: OTPAuthURI) -> bool:
    return uri.counter == JAVA_INT_MAX


def _java_int_over(uri: OTPAuthURI) -> bool:
    return uri.counter is not None and uri.counter > JAVA_INT_MAX


def _image(uri: OTPAuthURI) -> bool:
    return uri.image is not None


def _dense(uri: OTPAuthURI) -> bool:
    return len(uri.to_uri()) > DENSE_URI_LENGTH


def _quirk(name: Quirk) -> Callable[[OTPAuthURI], bool]:
    return lambda uri: name in uri.quirks


_USE_SHA1 = "use algorithm SHA1 (the default) for app enrolment"
_USE_6 = "use 6 digits (the default) for app enrolment"
_USE_30 = "use a period of 30 seconds (the default) for app enrolment"
_USE_TOTP = "use TOTP for app enrolment"
_CANONICAL = "re-issue the URI in the canonical spelling (build_uri and isoms-otp enroll write it)"

#: The knowledge base: one row per (behaviour, apps). Sources are GitHub issue/PR threads
#: (owner/repo#number) unless stated; "open code" means Google's published source, which is older
#: than the store apps. Update a row when an app changes, and keep the source with it.
RULES: Final[tuple[Rule, ...]] = (
    # Source: the open-source 5.x code hard-codes HMAC-SHA1 (AccountDb.getSigningOracle);
    # google-authenticator-android#29 (2015-2019) and privacyidea#3311 (Sep 2022, v5.20R4) report
    # wrong codes; ArubaOTP-seed-extractor#21 (Jul 2023) a scan error for SHA256;
    # keycloak#27349 / PR #27351 (Feb 2024): "the latest version of the app works".
    Rule(
        rule="algorithm",
        apps=(_GA_ANDROID,),
        severity="wrong-codes",
        applies=_algorithm,
        problem="versions before 2024 compute SHA1 whatever the algorithm parameter says "
        "(wrong codes); a 2023 version refused the QR code",
        fix=_USE_SHA1,
        source="google/google-authenticator-android#29; privacyidea/privacyidea#3311; "
        "andry08/ArubaOTP-seed-extractor#21; keycloak/keycloak#27349",
    ),
    # Source: Microsoft publishes nothing; five independent reports (2020-2024) of SHA256/SHA512
    # accepted at scan time and then wrong codes; Keycloak's PR #27351 (Feb 2024) "tested also
    # Microsoft Authenticator, but it still has the old limitations".
    Rule(
        rule="algorithm",
        apps=(_MICROSOFT,),
        severity="wrong-codes",
        applies=_algorithm,
        problem="computes SHA1 whatever the algorithm parameter says: every code is wrong",
        fix=_USE_SHA1,
        source="kspearrin/Otp.NET#54 (2023) and #62 (2024); privacyidea/privacyidea#3812 "
        "(2023); RobThree/TwoFactorAuth#54 (2020); keycloak/keycloak PR #27351 (2024)",
    ),
    # Source: RobThree/TwoFactorAuth#54 (2020); kanidm#501 (2021, Authy iOS and SHA512);
    # antonioribeiro/google2fa PR #126 (2019): "Authy (SHA1 support only)".
    Rule(
        rule="algorithm",
        apps=(_AUTHY,),
        severity="wrong-codes",
        applies=_algorithm,
        problem="supports SHA1 only: SHA256 and SHA512 keys give wrong codes",
        fix=_USE_SHA1,
        source="RobThree/TwoFactorAuth#54 (2020); kanidm/kanidm#501 (2021); "
        "antonioribeiro/google2fa PR #126 (2019)",
    ),
    # Source: the open-source 5.x code ignores digits (6 fixed); ArubaOTP-seed-extractor#21
    # (Jul 2023) sees 8 digits honoured. No evidence at all for 7 digits.
    Rule(
        rule="digits",
        apps=(_GA_ANDROID,),
        severity="wrong-codes",
        applies=_digits,
        problem="older versions always show 6 digits; 7 digits were never reported to work",
        fix=_USE_6,
        source="google/google-authenticator-android open code (5.x); "
        "andry08/ArubaOTP-seed-extractor#21 (2023)",
    ),
    # Source: puddly/android-otp-extractor#33 (2020): "the digits portion ... seems to be
    # ignored"; dotnet/aspnetcore#48317 (2023); RobThree/TwoFactorAuth.Net#1 (2016).
    Rule(
        rule="digits",
        apps=(_MICROSOFT,),
        severity="wrong-codes",
        applies=_digits,
        problem="ignores the digits parameter and shows 6-digit codes",
        fix=_USE_6,
        source="puddly/android-otp-extractor#33 (2020); dotnet/aspnetcore#48317 (2023); "
        "RobThree/TwoFactorAuth.Net#1 (2016)",
    ),
    # Source: thin and contradictory. sec51/twofactor#11 (2018): 8 digits did not work (with
    # SHA512); a deepnet wiki page claims 7-digit tokens work in Authy desktop. Authy's own
    # tokens (7 digits, 10 s) are not otpauth QR tokens. Treated as unsupported until shown.
    Rule(
        rule="digits",
        apps=(_AUTHY,),
        severity="wrong-codes",
        applies=_digits,
        problem="reported to ignore digits other than 6 (evidence thin and contradictory)",
        fix=_USE_6,
        source="sec51/twofactor#11 (2018)",
    ),
    # Source: ArubaOTP-seed-extractor#21 (Jul 2023): period ignored, code changes every 30 s;
    # Keycloak's GoogleAuthenticatorProvider (PR #27351, Feb 2024) requires period 30.
    Rule(
        rule="period",
        apps=(_GA_ANDROID,),
        severity="wrong-codes",
        applies=_period,
        problem="ignores the period parameter and changes the code every 30 seconds",
        fix=_USE_30,
        source="andry08/ArubaOTP-seed-extractor#21 (2023); keycloak/keycloak PR #27351 (2024)",
    ),
    # Source: RobThree/TwoFactorAuth.Net#18 (2021): period 60 wrong in Microsoft Authenticator,
    # right in Google Authenticator (iOS); Keycloak's Microsoft provider requires period 30.
    Rule(
        rule="period",
        apps=(_MICROSOFT,),
        severity="wrong-codes",
        applies=_period,
        problem="ignores the period parameter and changes the code every 30 seconds",
        fix=_USE_30,
        source="RobThree/TwoFactorAuth.Net#18 (2021); keycloak/keycloak PR #27351 (2024)",
    ),
    # Source: privacyidea#1156 (2018): "Authy is unable to use a 60 second interval token".
    Rule(
        rule="period",
        apps=(_AUTHY,),
        severity="wrong-codes",
        applies=_period,
        problem="cannot use periods other than 30 seconds",
        fix=_USE_30,
        source="privacyidea/privacyidea#1156 (2018)",
    ),
    # Source: privacyidea#709 (2017): hotp QR codes scan but are treated as TOTP; Keycloak's
    # MicrosoftAuthenticatorOTPProvider (2024) requires TOTP.
    Rule(
        rule="hotp",
        apps=(_MICROSOFT,),
        severity="wrong-codes",
        applies=_hotp,
        problem="scans hotp URIs but generates time-based codes from them",
        fix=_USE_TOTP,
        source="privacyidea/privacyidea#709 (2017); keycloak/keycloak PR #27351 (2024)",
    ),
    # Source: no report either way was found; listed so nobody assumes it works.
    Rule(
        rule="hotp",
        apps=(_AUTHY,),
        severity="warning",
        applies=_hotp,
        problem="HOTP support is unknown: no report either way was found",
        fix=_USE_TOTP + ", or test HOTP on a device first",
        source="none found (2024)",
    ),
    # Source: the open-source code parses counter with Integer.parseInt (its test withCounterTooBig
    # refuses counter=34359738368) and keeps it in a Java Integer that AccountDb.incrementCounter
    # adds 1 to with no overflow check. So a counter above 2**31-1 is refused at scan time, and
    # 2**31-1 itself scans but wraps to -2**31 at the first increment: wrong codes from then on.
    # The store app is closed; assume it kept the limit.
    Rule(
        rule="counter-over-2**31",
        apps=(_GA_ANDROID,),
        severity="wrong-codes",
        applies=_java_int_last,
        problem="keeps the counter in a 32-bit signed int: 2**31-1 is accepted, but the next "
        "counter wraps to -2**31 and every code from then on is wrong",
        fix="keep the HOTP counter below 2**31-1",
        source="google/google-authenticator-android open code (test withCounterTooBig, "
        "AccountDb.incrementCounter)",
    ),
    Rule(
        rule="counter-over-2**31",
        apps=(_GA_ANDROID,),
        severity="refuses",
        applies=_java_int_over,
        problem="reads the counter as a 32-bit signed int and refuses larger values",
        fix="keep the HOTP counter below 2**31-1",
        source="google/google-authenticator-android open code (test withCounterTooBig, "
        "AccountDb.incrementCounter)",
    ),
    # Source: dullage/flatnotes#237 (Sep 2024): "Can't scan this QR code" for a padded secret,
    # while Microsoft Authenticator scanned it; the old iOS code errors on padding
    # (google/google-authenticator#652, 2018).
    Rule(
        rule="secret-padded",
        apps=(_GA_ANDROID, _GA_IOS),
        severity="refuses",
        applies=_quirk("secret-padded"),
        problem="refuses a secret with '=' padding (\"Can't scan this QR code\")",
        fix="drop the '=' padding from the secret; " + _CANONICAL,
        source="dullage/flatnotes#237 (2024); google/google-authenticator#652 (2018)",
    ),
    # Source: pyauth/pyotp#169 (the maintainer, Nov 2024) for Android;
    # dlenski/python-vipaccess#13 (GA iOS 3.0.0, 2018) for iOS.
    Rule(
        rule="algorithm-lower-case",
        apps=(_GA_ANDROID, _GA_IOS),
        severity="refuses",
        applies=_quirk("algorithm-lower-case"),
        problem="refuses an algorithm name in lower case (such as sha1)",
        fix="write the algorithm in upper case (SHA1, SHA256, SHA512); " + _CANONICAL,
        source="pyauth/pyotp#169 (2024); dlenski/python-vipaccess#13 (2018)",
    ),
    # Source: Google's own enrolment QR codes carry lower-case secrets (pquerna/otp#24,
    # apptension/onetimepass#80), so Google's apps read them; nothing is known for these two.
    Rule(
        rule="secret-lower-case",
        apps=(_MICROSOFT, _AUTHY),
        severity="warning",
        applies=_quirk("secret-lower-case"),
        problem="untested with a lower-case secret (no report either way)",
        fix="write the secret in upper case; " + _CANONICAL,
        source="none found; Google's apps accept it (pquerna/otp#24)",
    ),
    # Source: the open-source Google decoders strip spaces and hyphens (Android Base32String,
    # iOS OTPAuthURL); nothing is known for the current store apps or the other two.
    Rule(
        rule="secret-separators",
        apps=APPS,
        severity="warning",
        applies=_quirk("secret-separators"),
        problem="untested with spaces or hyphens inside the secret parameter",
        fix="remove spaces and hyphens from the secret; " + _CANONICAL,
        source="google/google-authenticator-android open code; none found for current apps",
    ),
    # Source: Key Uri Format wiki: older Google Authenticator versions display the label prefix
    # and ignore the issuer parameter; Microsoft's own Entra URIs have a differing prefix
    # (kspearrin/Otp.NET#62), and the parameter wins in this library.
    Rule(
        rule="issuer-mismatch",
        apps=(_GA_ANDROID,),
        severity="warning",
        applies=_quirk("issuer-mismatch"),
        problem="older versions show the label's issuer, not the issuer parameter: the user "
        "may see another name",
        fix="use the same issuer in the label and the parameter; " + _CANONICAL,
        source="google/google-authenticator wiki Key-Uri-Format; kspearrin/Otp.NET#62",
    ),
    # Source: freeotp/freeotp.github.io#51 (2021): GA iOS 3.1.1 displays the issuer parameter and
    # ignores the label prefix.
    Rule(
        rule="issuer-only-in-label",
        apps=(_GA_IOS,),
        severity="warning",
        applies=_quirk("issuer-only-in-label"),
        problem="ignores the label's issuer and shows none, because there is no issuer parameter",
        fix="add the issuer parameter; " + _CANONICAL,
        source="freeotp/freeotp.github.io#51 (2021)",
    ),
    # Source: Android's Uri.getQueryParameter decodes '+' as a space (form decoding), while
    # RFC 3986 and this parser read a plus; pyauth/pyotp#47 and dashbitco/nimble_totp#10 show
    # users seeing the wrong name.
    Rule(
        rule="plus-in-query",
        apps=(_GA_ANDROID,),
        severity="warning",
        applies=_quirk("plus-in-query"),
        problem="reads '+' in the issuer or image parameter as a space",
        fix="write a space as %20 and a plus as %2B; " + _CANONICAL,
        source="pyauth/pyotp#47; dashbitco/nimble_totp#10; Android Uri.getQueryParameter",
    ),
    # Source: pyauth/pyotp#96 (the reporter checked it): Google Authenticator ignores `image`.
    Rule(
        rule="image",
        apps=(_GA_ANDROID, _GA_IOS),
        severity="warning",
        applies=_image,
        problem="ignores the image parameter (no logo is shown)",
        fix="nothing to fix; do not rely on the image",
        source="pyauth/pyotp#96",
    ),
    # Source: privacyIDEA's create_google_authenticator_url cuts labels so the URI stays within
    # 180 characters for scannable QR codes; see DENSE_URI_LENGTH.
    Rule(
        rule="dense-qr",
        apps=APPS,
        severity="warning",
        applies=_dense,
        problem=f"the URI is longer than {DENSE_URI_LENGTH} characters, so the QR code is dense "
        "and phone cameras scan it badly",
        fix="shorten the account name or issuer (non-ASCII characters take 6 to 12 "
        "characters each once percent-encoded)",
        source="privacyidea/privacyidea create_google_authenticator_url (180-character cap)",
    ),
)


def check_compatibility(uri_or_parsed: str | OTPAuthURI) -> list[Finding]:
    """Return every known problem an authenticator app has with a URI; ``[]`` means none.

    Accepts a URI string or the :class:`OTPAuthURI` that :func:`parse_uri` returns. A string is
    parsed with ``allow_short_secret=True``, because a legacy key is not an app problem. An
    invalid string raises :class:`InvalidURIError`, and a wrong type raises ``TypeError``.
    Checks of spelling (padding, lower case) need the parsed text: an :class:`OTPAuthURI` you
    build yourself has the canonical spelling. Findings are listed in :data:`RULES` order, one
    for each app a rule names.
    """
    if isinstance(uri_or_parsed, str):
        parsed = parse_uri(uri_or_parsed, allow_short_secret=True)
    elif isinstance(uri_or_parsed, OTPAuthURI):
        parsed = uri_or_parsed
    else:
        raise TypeError(
            f"expected an otpauth URI str or an OTPAuthURI, not {type(uri_or_parsed).__name__}"
        )
    return [
        Finding(
            rule=rule.rule,
            app=app,
            severity=rule.severity,
            problem=rule.problem,
            fix=rule.fix,
            source=rule.source,
        )
        for rule in RULES
        if rule.applies(parsed)
        for app in rule.apps
    ]
