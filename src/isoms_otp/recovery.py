"""Recovery codes: single-use look-up secrets for a person who lost their authenticator.

A set is made with :meth:`RecoveryCodes.generate`, which returns the codes to show the person
once and the :class:`RecoveryCodes` to store beside them. The stored value holds only salted
hashes: the codes themselves cannot be read back from it, by the application or by anyone who
copies its database. Which codes were used lives in the replay store (``Verifier``), so a code
is accepted at most once even when many processes verify at the same moment.

The codes
    16 symbols of Crockford's base32 alphabet (``0-9`` and ``A-Z`` without ``I``, ``L``, ``O``
    and ``U``), shown as four groups of four: ``7KQM-3X9D-F2HT-RW8N``. Each symbol is 5 random
    bits from :mod:`secrets`, so a code holds 80 bits.

The normalisation rule (what a typed code is turned into before it is compared)
    A code longer than 64 characters or with any non-ASCII character is no code at all
    (``"malformed"``). Otherwise every space, tab, line break and hyphen is dropped, letters are
    upper-cased, ``O`` is read as ``0`` and ``I`` and ``L`` as ``1``; what is left must be
    exactly 16 symbols of the alphabet, or it is ``"malformed"``. Non-ASCII is refused rather
    than case-folded, because Unicode upper-casing turns other letters into ASCII ones (the
    dotless i, U+0131, becomes ``I``).

Storage
    ``HMAC-SHA256(salt, label || code)`` per code, truncated to 128 bits, with a random 128-bit
    salt per set. Finding one code of a set from its stored value takes about 2**80 / count
    HMAC evaluations (at least 2**73 for the largest set), and a salt per set means no work
    carries over from one set or one user to another.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from hmac import compare_digest
from typing import Any, Final

from ._limits import integer_in
from .exceptions import InvalidRecoveryCodesError

__all__ = [
    "ALPHABET",
    "CODE_BITS",
    "DEFAULT_COUNT",
    "MAX_COUNT",
    "MAX_TEXT",
    "RecoveryCodes",
    "normalize_recovery_code",
]

#: Crockford's base32 alphabet: no I, L, O or U, so nothing reads as another symbol.
ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: Symbols per code, and how they are grouped for display.
_SYMBOLS: Final = 16
_GROUP: Final = 4
#: Random bits per code (5 per symbol).
CODE_BITS: Final = 5 * _SYMBOLS
#: Codes in a set unless the caller asks otherwise.
DEFAULT_COUNT: Final = 10
#: The most codes in one set: the store keeps one bit per code, and a person needs about ten.
MAX_COUNT: Final = 100
#: The longest typed code that is looked at (a code with separators is 19 characters).
_MAX_TYPED: Final = 64

_SALT_BYTES: Final = 16
_HASH_BYTES: Final = 16
_CODE_LABEL: Final = b"isoms-otp recovery code v1\x00"
_SET_LABEL: Final = b"isoms-otp recovery set id v1\x00"

#: The text format: ``isoms-otp-recovery:v1:<salt hex>:<hash hex>,<hash hex>,...``.
_PREFIX: Final = "isoms-otp-recovery:"
_VERSION: Final = "v1"
_HEX_SALT: Final = re.compile(f"[0-9a-f]{{{2 * _SALT_BYTES}}}")
_HEX_HASHES: Final = re.compile(f"[0-9a-f]{{{2 * _HASH_BYTES}}}(?:,[0-9a-f]{{{2 * _HASH_BYTES}}})*")
#: The longest valid text: the prefix, the version, the salt and MAX_COUNT hashes.
MAX_TEXT: Final = len(_PREFIX) + len(_VERSION) + 1 + 2 * _SALT_BYTES + 1 + MAX_COUNT * 33 - 1

_DROPPED: Final = str.maketrans("", "", " \t\r\n-")
_LOOK_ALIKES: Final = str.maketrans("OIL", "011")
_SYMBOL_SET: Final = frozenset(ALPHABET)


def normalize_recovery_code(code: str) -> str | None:
    """Return ``code`` as the 16 symbols it stands for, or ``None`` when it is no code.

    The one rule (see the module docstring): at most 64 ASCII characters; spaces, tabs, line
    breaks and hyphens dropped; upper-cased; ``O`` read as ``0``, ``I`` and ``L`` as ``1``;
    then exactly 16 symbols of :data:`ALPHABET`. ``TypeError`` for a non-``str``.
    """
    if type(code) is not str:
        if not isinstance(code, str):
            raise TypeError(f"a recovery code must be a str, not {type(code).__name__}")
        code = str.__str__(code)  # a str subclass: use its plain value
    if len(code) > _MAX_TYPED or not code.isascii():
        return None
    wanted = code.translate(_DROPPED).upper().translate(_LOOK_ALIKES)
    if len(wanted) != _SYMBOLS or not _SYMBOL_SET.issuperset(wanted):
        return None
    return wanted


def _check_count(count: object) -> int:
    return integer_in(count, "count", 1, MAX_COUNT)


def _new_code() -> str:
    bits = secrets.randbits(CODE_BITS)
    return "".join(ALPHABET[bits >> (5 * index) & 31] for index in range(_SYMBOLS))


def _shown(symbols: str) -> str:
    return "-".join(symbols[start : start + _GROUP] for start in range(0, _SYMBOLS, _GROUP))


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveryCodes:
    """One person's set of recovery codes, as stored: a salt and a salted hash per code.

    Make one with :meth:`generate`; store :meth:`to_string` and read it back with
    :meth:`from_string`. ``salt`` is 16 bytes, ``hashes`` 1 to :data:`MAX_COUNT` distinct
    16-byte values (:class:`InvalidRecoveryCodesError` otherwise; ``TypeError`` for wrong
    types). ``set_id`` names the set in the replay store; it is derived one-way from the salt
    and the hashes, so a regenerated set is a new set. ``count`` is the number of codes. Nothing
    in the object reveals a code, and ``repr`` shows only the id and the count.
    """

    salt: bytes = field(repr=False)
    hashes: tuple[bytes, ...] = field(repr=False)
    set_id: str = field(init=False)
    count: int = field(init=False)
    _inner: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        salt, hashes = self.salt, self.hashes
        if type(salt) is not bytes:
            raise TypeError(f"salt must be bytes, not {type(salt).__name__}")
        if type(hashes) is not tuple:
            raise TypeError(f"hashes must be a tuple of bytes, not {type(hashes).__name__}")
        if len(salt) != _SALT_BYTES:
            raise InvalidRecoveryCodesError(
                f"the salt must be {_SALT_BYTES} bytes (got {len(salt)})"
            )
        if not 1 <= len(hashes) <= MAX_COUNT:
            raise InvalidRecoveryCodesError(
                f"a set holds 1 to {MAX_COUNT} codes (got {len(hashes)})"
            )
        for one in hashes:
            if type(one) is not bytes:
                raise TypeError(f"hashes must hold bytes, not {type(one).__name__}")
            if len(one) != _HASH_BYTES:
                raise InvalidRecoveryCodesError(
                    f"each hash must be {_HASH_BYTES} bytes (got {len(one)})"
                )
        if len(set(hashes)) != len(hashes):
            # Two equal hashes would let one code be used twice (once per index).
            raise InvalidRecoveryCodesError("the set holds the same hash twice")
        ident = hashlib.sha256(_SET_LABEL + salt + b"".join(hashes)).hexdigest()[:32]
        setter = object.__setattr__
        setter(self, "set_id", ident)
        setter(self, "count", len(hashes))
        setter(self, "_inner", hmac.new(salt, _CODE_LABEL, hashlib.sha256))

    @classmethod
    def generate(cls, count: int = DEFAULT_COUNT) -> tuple[tuple[str, ...], RecoveryCodes]:
        """Make ``count`` new codes (1 to 100; default 10); return them and the set to store.

        Show the codes to the person once (``"7KQM-3X9D-F2HT-RW8N"``) and keep only the
        returned :class:`RecoveryCodes` (its :meth:`to_string`). Storing a new set replaces the
        old one: the old codes never match the new set. ``TypeError`` for a non-int count,
        :class:`ConfigurationError` outside 1 to 100.
        """
        wanted = _check_count(count)
        codes: dict[str, None] = {}
        while len(codes) < wanted:  # 80-bit codes practically never repeat; a repeat is redrawn
            codes[_new_code()] = None
        salt = secrets.token_bytes(_SALT_BYTES)
        inner = hmac.new(salt, _CODE_LABEL, hashlib.sha256)
        hashes = tuple(_hashed(inner, code) for code in codes)
        return tuple(_shown(code) for code in codes), cls(salt=salt, hashes=hashes)

    def __reduce__(self) -> tuple[object, ...]:
        # The HMAC state cannot be pickled or copied as is; the text holds everything.
        return (RecoveryCodes.from_string, (self.to_string(),))

    def to_string(self) -> str:
        """Return the set as text to store beside the user (ASCII, at most :data:`MAX_TEXT`).

        ``isoms-otp-recovery:v1:<salt>:<hash>,<hash>,...`` in lower-case hex. It holds no
        code; it need not be secret, but only the application should be able to change it.
        """
        hashes = ",".join(one.hex() for one in self.hashes)
        return f"{_PREFIX}{_VERSION}:{self.salt.hex()}:{hashes}"

    @classmethod
    def from_string(cls, text: str) -> RecoveryCodes:
        """Read a set written by :meth:`to_string`.

        Strict: exactly the format above (lower-case hex, no spaces, no duplicate hashes, 1 to
        100 codes), at most :data:`MAX_TEXT` characters. :class:`InvalidRecoveryCodesError`
        (an ``OTPError`` and a ``ValueError``) for anything else, naming what is wrong without
        repeating the text; ``TypeError`` for a non-``str``.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, not {type(text).__name__}")
        if len(text) > MAX_TEXT:
            raise InvalidRecoveryCodesError(
                f"recovery codes text is longer than {MAX_TEXT} characters"
            )
        if not text.startswith(_PREFIX):
            raise InvalidRecoveryCodesError(
                f"recovery codes text must start with {_PREFIX!r} (from to_string())"
            )
        parts = text[len(_PREFIX) :].split(":")
        if parts[0] != _VERSION:
            raise InvalidRecoveryCodesError(
                f"recovery codes text is not version {_VERSION}; use a matching isoms-otp"
            )
        if len(parts) != 3:
            raise InvalidRecoveryCodesError(
                "recovery codes text must have a version, a salt and hashes, separated by ':'"
            )
        _, salt, hashes = parts
        if _HEX_SALT.fullmatch(salt) is None:
            raise InvalidRecoveryCodesError(
                f"the salt of recovery codes text must be {2 * _SALT_BYTES} lower-case hex digits"
            )
        if _HEX_HASHES.fullmatch(hashes) is None:
            raise InvalidRecoveryCodesError(
                "the hashes of recovery codes text must be comma-separated groups of "
                f"{2 * _HASH_BYTES} lower-case hex digits"
            )
        return cls(
            salt=bytes.fromhex(salt),
            hashes=tuple(bytes.fromhex(one) for one in hashes.split(",")),
        )

    def index(self, code: str) -> int | None:
        """Return the index of the code in the set that ``code`` is, or ``None``.

        ``code`` must already be normalised (:func:`normalize_recovery_code`). Uniform work: one
        HMAC for the candidate, then a constant-time comparison with every stored hash, with no
        early exit, so timing tells neither whether nor where it matched. This says nothing
        about whether the code was used: only ``Verifier.verify_recovery`` decides that.
        """
        candidate = _hashed(self._inner, code)
        found = -1
        for position, stored in enumerate(self.hashes):
            hit = compare_digest(stored, candidate)
            found = position if hit else found
        return None if found < 0 else found


def _hashed(inner: Any, code: str) -> bytes:
    digest = inner.copy()
    digest.update(code.encode("ascii"))
    result: bytes = digest.digest()[:_HASH_BYTES]
    return result
