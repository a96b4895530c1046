"""``otpauth://`` URIs (Google's Key Uri Format): built canonically, parsed as hostile input.

:func:`build_uri` writes the one spelling every authenticator app reads the same way. It
percent-encodes UTF-8 as RFC 3986 does (a space is ``%20``, a plus ``%2B``, never ``+``), puts the
issuer both in the label and in the ``issuer`` parameter, writes the secret as upper-case
base32 without padding, and writes ``algorithm``, ``digits`` and ``period`` only when they
differ from the defaults.

:func:`parse_uri` follows the rules in ``docs/enrolment.md``. It splits the URI first and then
percent-decodes each piece once. The label splits on the first colon (a literal ``:`` or
``%3A``). When the label's issuer and the ``issuer`` parameter disagree, the parameter wins.
Duplicate parameters, bad escapes and control characters are refused, as are invisible
formatting characters (such as U+202E) and line separators in the account or issuer, and any
URI longer than :data:`MAX_URI_LENGTH`. Every refusal is an :class:`InvalidURIError`, and no message
repeats any part of the input, so none can leak the secret.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Final, Literal
from urllib.parse import quote, unquote_to_bytes

from ._hmac import normalize_algorithm
from ._hotp import HOTP
from ._limits import MAX_COUNTER, MAX_DIGITS, MAX_PERIOD, MIN_DIGITS, MIN_PERIOD, check_counter
from ._secret import decode_secret, encode_secret
from ._totp import TOTP
from .exceptions import ConfigurationError, InvalidSecretError, InvalidURIError

__all__ = ["MAX_URI_LENGTH", "OTPAuthURI", "Quirk", "build_uri", "parse_uri"]

#: The longest URI either function handles, in characters. A QR code at error correction level
#: M holds at most 2331 bytes, so every URI within this limit fits in one. The same limit as
#: otplib's parser. A legitimate enrolment URI is about 100 characters long.
MAX_URI_LENGTH: Final = 2048

#: How a parsed URI was spelt differently from the canonical form. :func:`check_compatibility`
#: reads these, because some apps refuse spellings that this parser accepts.
Quirk = Literal[
    "algorithm-lower-case",  # algorithm=sha1: Google Authenticator refuses it
    "issuer-mismatch",  # the label prefix differs from the issuer parameter (the parameter wins)
    "issuer-only-in-label",  # no issuer parameter: the label prefix gave the issuer
    "plus-in-query",  # a raw '+' in the issuer or image value: form decoders read a space
    "secret-lower-case",
    "secret-padded",  # trailing '=' in the secret
    "secret-separators",  # spaces or hyphens in the secret
]

_KNOWN_PARAMETERS: Final = frozenset(
    {"secret", "issuer", "algorithm", "digits", "period", "counter", "image"}
)
# C0 and C1 controls, DEL, and lone surrogates (which cannot be encoded as UTF-8).
_CONTROL: Final = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# Unicode categories refused in an account or issuer: what each is, for the error message.
_HIDDEN_CATEGORIES: Final = {
    "Cc": "a control character",
    "Cs": "a lone surrogate",
    "Cf": "an invisible formatting character (such as a direction override or zero-width space)",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}
_BAD_ESCAPE: Final = re.compile("%(?![0-9A-Fa-f]{2})")
# ASCII digits only, no sign or leading zero; 20 digits are enough for 2**64-1.
_DECIMAL: Final = re.compile("0|[1-9][0-9]{0,19}")
_IMAGE_SCHEME: Final = "https://"


@dataclass(frozen=True, slots=True, kw_only=True)
class OTPAuthURI:
    """One ``otpauth://`` URI as values: the key, the account, and the rest of the label.

    ``otp`` is the :class:`TOTP` (with ``t0`` 0, which the format cannot carry) or the
    :class:`HOTP`. ``account`` must be non-empty. ``issuer`` is a non-empty string or ``None``.
    Neither may start or end with whitespace (Google Authenticator trims it), be only whitespace,
    nor contain ``:`` or a character of Unicode category Cc, Cf, Cs, Zl or Zp (controls,
    invisible formatting such as U+202E or U+200B, surrogates, line and paragraph separators).
    ``counter`` is required for HOTP (0 to 2**64-1) and must be ``None`` for TOTP. ``image`` is an
    ``https://`` URL or ``None``. A value that would make an invalid URI raises
    :class:`InvalidURIError`; a value of the wrong type raises ``TypeError``. ``quirks`` records
    the non-canonical spellings a parsed URI used. It is empty for objects you build, and it is
    left out of equality and ``repr``. The ``repr`` never shows the secret.
    """

    otp: TOTP | HOTP
    account: str
    issuer: str | None = None
    counter: int | None = None
    image: str | None = None
    quirks: frozenset[Quirk] = field(default=frozenset(), repr=False, compare=False)
    _uri: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        otp = self.otp
        if isinstance(otp, TOTP):
            if otp.t0 != 0:
                raise InvalidURIError(
                    "an otpauth URI cannot carry t0, so apps would count steps from 0: "
                    "use a TOTP with t0=0"
                )
            if self.counter is not None:
                raise InvalidURIError("counter is for HOTP; a TOTP URI has none")
        elif isinstance(otp, HOTP):
            if self.counter is None:
                raise InvalidURIError("an HOTP URI needs counter= (the next counter value)")
            try:
                check_counter(self.counter)
            except ConfigurationError as exc:
                raise InvalidURIError(str(exc)) from exc
        else:
            raise TypeError(f"otp must be a TOTP or an HOTP, not {type(otp).__name__}")
        _check_label_part(self.account, "account")
        if not self.account:
            raise InvalidURIError("the account name is empty; give the user's login name")
        _check_outer_spaces(self.account, "the account name")
        if self.issuer is not None:
            _check_label_part(self.issuer, "issuer")
            if not self.issuer:
                raise InvalidURIError("the issuer is empty; pass None for no issuer")
            _check_outer_spaces(self.issuer, "the issuer")
        if self.image is not None:
            if type(self.image) is not str:
                raise TypeError(f"image must be a str or None, not {type(self.image).__name__}")
            if _CONTROL.search(self.image):
                raise InvalidURIError(
                    "the image URL contains a control character or a lone surrogate"
                )
            if not self.image.startswith(_IMAGE_SCHEME) or len(self.image) == len(_IMAGE_SCHEME):
                raise InvalidURIError("the image must be an https:// URL")
        uri = _render(self)
        if len(uri) > MAX_URI_LENGTH:
            raise InvalidURIError(
                f"the URI would be {len(uri)} characters; the limit is {MAX_URI_LENGTH}: "
                "shorten the account name, the issuer or the image URL"
            )
        object.__setattr__(self, "_uri", uri)

    def to_uri(self) -> str:
        """Return the canonical URI as :func:`build_uri` writes it (it contains the secret)."""
        return self._uri


def _check_label_part(value: object, name: str) -> None:
    if type(value) is not str:
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if ":" in value:
        raise InvalidURIError(
            f"the {name} contains ':', which apps read as the issuer/account separator: "
            "remove it or replace it"
        )
    _check_visible(value, f"the {name}")


def _check_outer_spaces(value: str, what: str) -> None:
    """Refuse whitespace at either end of a non-empty name: apps trim it, so names would differ.

    Google Authenticator trims the account and the issuer, so "alice " would be shown (and
    matched by users) as "alice" while the server keeps the space.
    """
    if value[0].isspace():
        raise InvalidURIError(f"{what} starts with a space, which apps drop: strip it first")
    if value[-1].isspace():
        raise InvalidURIError(f"{what} ends with a space, which apps drop: strip it first")


def _check_visible(value: str, what: str) -> None:
    """Refuse text that is only whitespace, or holds a character that hides or reorders text.

    A bidi override (U+202E) or zero-width character lets an issuer pose as another one in the
    app's list, and a line separator breaks log lines; users never type them on purpose.
    """
    for position, character in enumerate(value):
        kind = _HIDDEN_CATEGORIES.get(unicodedata.category(character))
        if kind is not None:
            raise InvalidURIError(
                f"{what} contains {kind} at position {position}: remove it (apps would show "
                "the text differently from what it is)"
            )
    if value and not value.strip():
        raise InvalidURIError(f"{what} is only whitespace; give a visible name")


def _quote(text: str) -> str:
    # RFC 3986: everything but the unreserved characters is %-encoded. '@' is kept because it is
    # legal in paths and queries and Google's own examples show "alice@google.com".
    return quote(text, safe="@")


def _render(uri: OTPAuthURI) -> str:
    otp = uri.otp
    account = _quote(uri.account)
    label = account if uri.issuer is None else f"{_quote(uri.issuer)}:{account}"
    parameters = [f"secret={encode_secret(otp.secret)}"]
    if uri.issuer is not None:
        parameters.append(f"issuer={_quote(uri.issuer)}")
    if otp.algorithm != "SHA1":
        parameters.append(f"algorithm={otp.algorithm}")
    if otp.digits != 6:
        parameters.append(f"digits={otp.digits}")
    if isinstance(otp, TOTP):
        kind = "totp"
        if otp.period != 30:
            parameters.append(f"period={otp.period}")
    else:
        kind = "hotp"
        parameters.append(f"counter={uri.counter}")
    if uri.image is not None:
        parameters.append(f"image={quote(uri.image, safe=':/@')}")
    return f"otpauth://{kind}/{label}?{'&'.join(parameters)}"


def build_uri(
    otp: TOTP | HOTP,
    *,
    account: str,
    issuer: str | None = None,
    counter: int | None = None,
    image: str | None = None,
) -> str:
    """Return the canonical ``otpauth://`` URI for ``otp``: the text to put in a QR code.

    The URI contains the secret: show it only to the user who is enrolling, and never log it.
    ``counter`` is required for an :class:`HOTP` and refused for a :class:`TOTP`. Raises
    :class:`InvalidURIError` if ``account`` is empty, if ``account`` or ``issuer`` starts or ends
    with whitespace, is only whitespace or contains ``:``, a control character or an invisible
    formatting or line-separator character (Unicode Cc, Cf, Cs, Zl, Zp), if ``image`` is not an
    ``https://`` URL, and if the result would be longer than :data:`MAX_URI_LENGTH`. Use an
    issuer: apps show it as the name of the service.
    """
    return OTPAuthURI(
        otp=otp, account=account, issuer=issuer, counter=counter, image=image
    ).to_uri()


def _decode(piece: str, what: str) -> str:
    """Percent-decode one piece of a URI exactly once, as UTF-8, refusing anything odd."""
    if _BAD_ESCAPE.search(piece):
        raise InvalidURIError(
            f"{what} has an invalid percent-escape: '%' must be followed by two hex digits"
        )
    try:
        text = unquote_to_bytes(piece).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidURIError(f"{what} is not UTF-8 once percent-decoded") from None
    if _CONTROL.search(text):
        raise InvalidURIError(f"{what} contains a percent-encoded control character")
    return text


def _integer(text: str, name: str, low: int, high: int) -> int:
    if _DECIMAL.fullmatch(text) is None:
        raise InvalidURIError(
            f"the {name} parameter must be a decimal integer in ASCII digits, without sign, "
            "spaces or leading zeros"
        )
    value = int(text)
    if not low <= value <= high:
        raise InvalidURIError(f"the {name} parameter must be from {low} to {high}")
    return value


def _parameters(query: str) -> tuple[dict[str, str], set[str]]:
    """Split the query on '&' and the first '=', then decode; return values and '+' holders."""
    values: dict[str, str] = {}
    with_plus: set[str] = set()
    for piece in query.split("&"):
        if not piece:  # "a=1&&b=2" or a trailing '&': nothing to misread
            continue
        raw_name, _, raw_value = piece.partition("=")
        name = _decode(raw_name, "a parameter name")
        what = f"the {name} parameter" if name in _KNOWN_PARAMETERS else "a parameter"
        if name in values:
            raise InvalidURIError(f"{what} appears more than once; apps would disagree on which")
        values[name] = _decode(raw_value, what)
        if "+" in raw_value:
            with_plus.add(name)
    return values, with_plus


def _split(uri: str) -> tuple[str, str, str]:
    """Return the type, the raw label and the raw query, checking the frame of the URI."""
    if len(uri) > MAX_URI_LENGTH:
        raise InvalidURIError(f"the URI is {len(uri)} characters; the limit is {MAX_URI_LENGTH}")
    if _CONTROL.search(uri):
        raise InvalidURIError("the URI contains a control character or a lone surrogate")
    scheme, _, rest = uri.partition(":")
    # RFC 3986 section 3.1: schemes are case-insensitive (Android lower-cases it too).
    if not scheme.isascii() or scheme.lower() != "otpauth" or not rest.startswith("//"):
        raise InvalidURIError("the URI must start with otpauth://")
    if "#" in rest:
        raise InvalidURIError("the URI has a fragment ('#'); write '#' in a value as %23")
    head, _, query = rest[2:].partition("?")
    kind, _, raw_label = head.partition("/")
    # Compared case-sensitively, as Google Authenticator for Android does.
    if kind not in ("totp", "hotp"):
        raise InvalidURIError("the type must be totp or hotp, in lower case: otpauth://totp/...")
    return kind, raw_label, query


def _label(raw_label: str) -> tuple[str, str]:
    """Return the issuer prefix ("" if none) and the account name of a raw label."""
    label = _decode(raw_label, "the label")
    prefix, colon, account = label.partition(":")
    if not colon:
        prefix, account = "", label
    account = account.lstrip(" ")  # the Key Uri Format allows spaces after the separator
    if ":" in account:
        raise InvalidURIError(
            "the label has more than one ':'; neither the issuer nor the account may contain one"
        )
    if not account:
        raise InvalidURIError("the account name in the label is empty")
    return prefix, account


def _secret(values: dict[str, str], quirks: set[Quirk]) -> bytes:
    text = values.get("secret")
    if text is None:
        raise InvalidURIError("the secret parameter is missing")
    try:
        key = decode_secret(text)
    except InvalidSecretError as exc:
        raise InvalidURIError(f"the secret parameter is invalid: {exc}") from exc
    if text != text.upper():
        quirks.add("secret-lower-case")
    if "=" in text:
        quirks.add("secret-padded")
    if " " in text or "-" in text:
        quirks.add("secret-separators")
    return key


def _otp(
    kind: str, key: bytes, values: dict[str, str], quirks: set[Quirk], allow_short_secret: bool
) -> tuple[TOTP | HOTP, int | None]:
    """Return the TOTP/HOTP the parameters describe, and the HOTP counter."""
    algorithm_text = values.get("algorithm", "SHA1")
    algorithm = normalize_algorithm(algorithm_text)
    if algorithm is None:
        raise InvalidURIError("the algorithm parameter must be SHA1, SHA256 or SHA512")
    if algorithm != algorithm_text:
        quirks.add("algorithm-lower-case")
    digits = _integer(values.get("digits", "6"), "digits", MIN_DIGITS, MAX_DIGITS)
    try:
        if kind == "totp":
            period = _integer(values.get("period", "30"), "period", MIN_PERIOD, MAX_PERIOD)
            totp = TOTP(
                key,
                digits=digits,
                algorithm=algorithm,
                period=period,
                allow_short_secret=allow_short_secret,
            )
            return totp, None
        if "counter" not in values:
            raise InvalidURIError("the counter parameter is missing; hotp URIs need one")
        counter = _integer(values["counter"], "counter", 0, MAX_COUNTER)
        hotp = HOTP(key, digits=digits, algorithm=algorithm, allow_short_secret=allow_short_secret)
    except InvalidSecretError as exc:  # shorter than the 128-bit policy
        raise InvalidURIError(f"the secret parameter is invalid: {exc}") from exc
    return hotp, counter


def parse_uri(uri: str, *, allow_short_secret: bool = False) -> OTPAuthURI:
    """Read an ``otpauth://`` URI, treating it as hostile input.

    Returns an :class:`OTPAuthURI`; ``parse_uri(x.to_uri()) == x``. ``allow_short_secret`` accepts
    legacy keys of 80 to 127 bits, as the ``TOTP``/``HOTP`` option of the same name does. Refused
    with :class:`InvalidURIError`: input longer than :data:`MAX_URI_LENGTH`, a control character or
    invalid percent-escape anywhere, bytes that are not UTF-8, a scheme other than ``otpauth``, a
    type other than ``totp``/``hotp``, a fragment, an empty account, an account or issuer (in the
    label or the parameter) that is only whitespace or holds an invisible formatting or
    line-separator character, an account or (winning) issuer that starts or ends with
    whitespace, a second ``:`` in the label, duplicate parameters, a missing or
    invalid secret, ``digits`` outside 6-8, a ``period`` outside 1-604800, an unknown ``algorithm``,
    a missing or out-of-range HOTP ``counter``, and an ``image`` that is not ``https://``. Integers
    must be plain ASCII decimals. Unknown parameters, ``period`` in an HOTP URI and ``counter`` in a
    TOTP URI are ignored. A non-``str`` argument is a ``TypeError``.
    """
    if not isinstance(uri, str):
        raise TypeError(f"uri must be a str, not {type(uri).__name__}")
    kind, raw_label, query = _split(uri)
    prefix, account = _label(raw_label)
    values, with_plus = _parameters(query)
    quirks: set[Quirk] = set()
    key = _secret(values, quirks)
    otp, counter = _otp(kind, key, values, quirks, allow_short_secret)
    issuer = values.get("issuer") or None  # Key Uri Format: an empty parameter means absent
    if issuer is not None and ":" in issuer:
        raise InvalidURIError("the issuer parameter contains ':'; an issuer may not contain one")
    if prefix:  # it may be discarded below, but some apps show it: it must not disguise itself
        _check_visible(prefix, "the issuer in the label")
    if prefix and issuer is None:
        quirks.add("issuer-only-in-label")
    elif prefix and issuer != prefix:
        quirks.add("issuer-mismatch")
    if with_plus & {"issuer", "image"}:
        quirks.add("plus-in-query")
    return OTPAuthURI(
        otp=otp,
        account=account,
        issuer=issuer or prefix or None,
        counter=counter,
        image=values.get("image") or None,
        quirks=frozenset(quirks),
    )
