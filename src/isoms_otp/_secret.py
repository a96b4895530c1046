"""Shared secrets: generation and RFC 4648 base32 text, strictly parsed."""

from __future__ import annotations

import base64
import re
import secrets
from typing import Final

from ._limits import (
    LEGACY_MIN_SECRET_BYTES,
    MAX_SECRET_BYTES,
    MAX_SECRET_TEXT,
    MIN_SECRET_BYTES,
    check_nbytes,
)
from .exceptions import InvalidSecretError

__all__ = ["check_secret", "decode_secret", "encode_secret", "generate_secret", "grouped_secret"]

# Groups of base32 symbols, separated by single spaces or hyphens (as sites print keys for manual
# entry: "JBSW Y3DP" or "jbsw-y3dp"), then optional "=" padding. Explicit ASCII classes, no \w or
# \s, which would let Unicode letters and spaces through.
_SECRET_TEXT = re.compile(r"[A-Za-z2-7]+(?:[ -][A-Za-z2-7]+)*=*")
_OUTER_WHITESPACE = " \t\r\n"
# Unpadded base32 lengths that RFC 4648 can produce (len % 8); 1, 3 and 6 are impossible.
_VALID_REMAINDERS = frozenset({0, 2, 4, 5, 7})
# Manual-entry screens show the key in groups of four.
_GROUP = 4
# The RFC 4648 base32 alphabet (values 0-31, in order; either letter case) renamed to the digits
# int(text, 32) reads. Every other ASCII character becomes "!", which int() refuses: without that,
# int() would also take a sign, surrounding whitespace and "_" between digits.
_BASE32_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_TO_INT_DIGITS: Final[dict[int, str | int | None]] = {
    **dict.fromkeys(range(128), "!"),
    **str.maketrans(_BASE32_ALPHABET, "0123456789abcdefghijklmnopqrstuv"),
    **str.maketrans(_BASE32_ALPHABET.lower(), "0123456789abcdefghijklmnopqrstuv"),
}
# The same renaming as a bytes table for the fast path: bytes.translate is one C loop over a
# 256-byte table, where str.translate looks every character up in a dict.
_TO_INT_DIGIT_BYTES: Final = bytes(
    value if isinstance(value := _TO_INT_DIGITS.get(byte, "!"), int) else ord("!")
    for byte in range(256)
)
# For each unpadded length the fast path takes: (key bytes, unused low bits, their mask). Lengths
# RFC 4648 cannot produce, and those that spell keys over the size limit, are missing, so such
# texts take the full path, which refuses them with its usual messages.
_SHAPES: Final = {
    count: (count * 5 // 8, count * 5 % 8, (1 << count * 5 % 8) - 1)
    for count in range(1, MAX_SECRET_TEXT + 1)
    if count % 8 in _VALID_REMAINDERS and count * 5 // 8 <= MAX_SECRET_BYTES
}
_NOT_CANONICAL: Final = (
    "the base32 secret is not canonical: its last symbol carries non-zero unused bits "
    "(a typo in the last character?)"
)


def generate_secret(nbytes: int = 20) -> bytes:
    """Return ``nbytes`` random bytes from :mod:`secrets` for use as an OTP key.

    The default, 20 bytes (160 bits), is the HMAC-SHA1 output size that RFC 4226 recommends and
    what every authenticator app accepts. ``nbytes`` must be an ``int`` from 16 to 256, else
    :class:`ConfigurationError` (``TypeError`` for a non-int).
    """
    return secrets.token_bytes(check_nbytes(nbytes))


def encode_secret(secret: bytes) -> str:
    """Return ``secret`` as RFC 4648 base32: upper case, without ``=`` padding.

    This is the spelling every authenticator app reads (Google Authenticator refuses padding).
    Raises ``TypeError`` for a non-bytes argument and :class:`InvalidSecretError` for an empty or
    over-long secret.
    """
    if not isinstance(secret, (bytes, bytearray, memoryview)):
        raise TypeError(f"secret must be bytes, not {type(secret).__name__}")
    # Measure the bytes, not len(secret): a memoryview of wider items (array("Q")) counts items.
    raw = _to_bytes(secret)
    size = len(raw)
    if size == 0:
        raise InvalidSecretError("the secret is empty")
    if size > MAX_SECRET_BYTES:
        raise InvalidSecretError(f"the secret is {size} bytes; the limit is {MAX_SECRET_BYTES}")
    return base64.b32encode(raw).decode("ascii").rstrip("=")


def grouped_secret(secret: bytes) -> str:
    """Return ``secret`` in base32 in groups of four, as manual-entry screens show it.

    Such as ``"JBSW Y3DP EHPK 3PXP"``; :func:`decode_secret` reads this form back.
    """
    text = encode_secret(secret)
    return " ".join(text[i : i + _GROUP] for i in range(0, len(text), _GROUP))


def decode_secret(text: str) -> bytes:
    """Return the bytes of a base32 secret as people and apps write it.

    Accepted: any letter case, outer whitespace, single spaces or hyphens between groups, and
    missing (or exactly right) ``=`` padding. Refused with :class:`InvalidSecretError`, whose
    message never repeats the input: empty input, input over 1024 characters, symbols outside the
    base32 alphabet (such as ``0``, ``1``, ``8``, ``9``), impossible lengths, wrong padding, and
    non-canonical spellings whose unused trailing bits are not zero. A non-``str`` argument is a
    ``TypeError``. The 128-bit minimum is checked where a key is used (``HOTP``/``TOTP``), so
    80-bit legacy keys still decode here.
    """
    # Fast path for the spelling encode_secret() writes and backends store: a plain str of ASCII
    # base32 symbols only, at a length in _SHAPES (which holds no length over the limit). RFC 4648
    # base32 is the key written as one big-endian number in 5-bit symbols, so int() reads it in C.
    # Anything else (separators, padding, 0/1/8/9, other characters) becomes "!" and makes int()
    # refuse the text, which then takes the full path below and is refused there, or accepted,
    # with the usual checks and messages in the usual order.
    if type(text) is str:
        shape = _SHAPES.get(len(text))
        if shape is not None:
            try:  # non-ASCII: bytes over 127, which become "!" (a lone surrogate: a ValueError)
                number = int(text.encode().translate(_TO_INT_DIGIT_BYTES), 32)
            except ValueError:
                pass
            else:
                size, unused, mask = shape
                if number & mask:
                    raise InvalidSecretError(_NOT_CANONICAL)
                return (number >> unused).to_bytes(size, "big")
    if not isinstance(text, str):
        raise TypeError(f"a base32 secret must be a str, not {type(text).__name__}")
    if len(text) > MAX_SECRET_TEXT:
        raise InvalidSecretError(
            f"the base32 secret is {len(text)} characters; the limit is {MAX_SECRET_TEXT}"
        )
    stripped = text.strip(_OUTER_WHITESPACE)
    if not stripped:
        raise InvalidSecretError("the base32 secret is empty")
    if _SECRET_TEXT.fullmatch(stripped) is None:
        raise InvalidSecretError(
            "the base32 secret may contain only the letters A-Z and digits 2-7, single spaces or "
            "hyphens between groups, and trailing '=' padding"
        )
    body = stripped.rstrip("=")
    padding = len(stripped) - len(body)
    symbols = body.replace(" ", "").replace("-", "").upper()
    if len(symbols) % 8 not in _VALID_REMAINDERS:
        raise InvalidSecretError(
            f"a base32 secret cannot have {len(symbols)} symbols (the length is impossible in "
            "RFC 4648: a symbol is missing or extra)"
        )
    expected_padding = -len(symbols) % 8
    if padding not in (0, expected_padding):
        allowed = f"{expected_padding} or none" if expected_padding else "none at this length"
        raise InvalidSecretError(
            f"the base32 secret has {padding} '=' padding characters; expected {allowed}"
        )
    return _decode_symbols(symbols.translate(_TO_INT_DIGITS), len(symbols))


def _decode_symbols(digits: str, count: int) -> bytes:
    """Return the key spelled by ``count`` base32 symbols already renamed to int()'s digits.

    RFC 4648 base32 is the key written as one big-endian number in 5-bit symbols, so int() reads
    it in C where base64.b32decode loops in Python (the cold path of every login decodes a stored
    secret). Base 32 is a power of two, so int_max_str_digits does not apply. The canonical check
    is "the unused low bits are zero"; the size limit is checked first, as before.
    """
    size, unused = divmod(count * 5, 8)
    if size > MAX_SECRET_BYTES:
        raise InvalidSecretError(f"the secret is {size} bytes; the limit is {MAX_SECRET_BYTES}")
    number = int(digits, 32)
    if number & ((1 << unused) - 1):
        raise InvalidSecretError(_NOT_CANONICAL)
    return (number >> unused).to_bytes(size, "big")


def check_secret(secret: object, *, allow_short_secret: bool) -> bytes:
    """Validate a key for ``HOTP``/``TOTP`` and return it as ``bytes``."""
    if not isinstance(secret, (bytes, bytearray, memoryview)):
        hint = " (decode base32 text with decode_secret() first)" if isinstance(secret, str) else ""
        raise TypeError(f"secret must be bytes, not {type(secret).__name__}{hint}")
    if type(allow_short_secret) is not bool:
        raise TypeError("allow_short_secret must be True or False")
    key = _to_bytes(secret)
    size = len(key)
    if size == 0:
        raise InvalidSecretError("the secret is empty")
    if size > MAX_SECRET_BYTES:
        raise InvalidSecretError(f"the secret is {size} bytes; the limit is {MAX_SECRET_BYTES}")
    if size < LEGACY_MIN_SECRET_BYTES:
        raise InvalidSecretError(
            f"the secret is {size * 8} bits; even legacy keys must have at least "
            f"{LEGACY_MIN_SECRET_BYTES * 8} bits (make a new 160-bit key instead)"
        )
    if size < MIN_SECRET_BYTES and not allow_short_secret:
        raise InvalidSecretError(
            f"the secret is {size * 8} bits; RFC 4226 requires at least {MIN_SECRET_BYTES * 8}. "
            "Pass allow_short_secret=True only for an existing legacy key you cannot replace"
        )
    return key


def _to_bytes(secret: bytes | bytearray | memoryview) -> bytes:
    """Copy a bytes-like key; a released memoryview is an error of ours, not a bare ValueError."""
    try:
        return bytes(secret)
    except ValueError:
        raise InvalidSecretError("the secret buffer has been released") from None
