"""HOTP (RFC 4226): counter-based one-time codes."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from hmac import compare_digest
from typing import Any, Final, TypeVar

from ._code import normalize_code
from ._hmac import ALGORITHMS, hmac_states, normalize_algorithm
from ._limits import (
    MAX_COUNTER,
    MAX_DIGITS,
    MAX_LOOK_AHEAD,
    MAX_SECRET_BYTES,
    MIN_DIGITS,
    MIN_SECRET_BYTES,
    check_counter,
    check_digits,
    check_look_ahead,
)
from ._match import Match, new_match
from ._secret import check_secret
from .exceptions import ConfigurationError

__all__ = [
    "HOTP",
    "PACK_CODE",
    "PACK_COUNTER",
    "UNPACK_31",
    "check_counter",
    "check_digits",
    "check_options",
    "finish",
    "restore",
]

_T = TypeVar("_T")

#: RFC 4226 section 5.2: the counter is hashed as 8 bytes, most significant first.
PACK_COUNTER: Final = struct.Struct(">Q").pack
#: RFC 4226 section 5.3: dynamic truncation reads 4 bytes at the offset, drops the top bit.
UNPACK_31: Final = struct.Struct(">I").unpack_from
#: A code value (below 10**8) as 4 fixed-width bytes, for a constant-time compare_digest.
PACK_CODE: Final = struct.Struct(">I").pack
#: One past the last 64-bit counter: the exclusive end of an HOTP look-ahead window.
_COUNTER_LIMIT: Final = MAX_COUNTER + 1
# 10**digits and "%0{digits}d" for each valid number of digits, made once rather than per object.
_MODULI: Final = {digits: 10**digits for digits in range(MIN_DIGITS, MAX_DIGITS + 1)}
_FORMATS: Final = {digits: f"%0{digits}d" for digits in range(MIN_DIGITS, MAX_DIGITS + 1)}
_NEW: Final = object.__new__


def check_options(
    secret: object, digits: object, algorithm: object, allow_short_secret: bool
) -> tuple[bytes, str]:
    """Validate the shared parameters of HOTP/TOTP; return the key and the canonical algorithm.

    The full checks, in the order the constructors promise: secret (and ``allow_short_secret``),
    then digits, then algorithm. The constructors inline the common case and call this for the
    rest, so every error is raised from here.
    """
    key = check_secret(secret, allow_short_secret=allow_short_secret)
    check_digits(digits)
    name = normalize_algorithm(algorithm)
    if name is None:
        if not isinstance(algorithm, str):
            raise TypeError(f"algorithm must be a str, not {type(algorithm).__name__}")
        raise ConfigurationError(
            f"unsupported algorithm {algorithm[:16]!r}; use SHA1, SHA256 or SHA512"
        )
    return key, name


def finish(state: object, cls: type[_T]) -> _T:
    """Turn ``state``, a filled instance of a plain slotted class, into an instance of ``cls``.

    HOTP and TOTP are frozen: their ``__setattr__`` refuses every store, so a frozen dataclass's
    own ``__init__`` writes each field through ``object.__setattr__``, which cost the per-login
    cold path more than decoding the secret. Their constructors instead fill an instance of the
    plain base class that holds the slots (ordinary, fast attribute stores), then give it its
    final class here; from then on it is frozen. A subclass with another memory layout (one that
    has a ``__dict__``) gets a copy of the slots instead.
    """
    try:
        state.__class__ = cls
    except TypeError:  # a subclass without __slots__ = (): copy the slots over
        made: _T = object.__new__(cls)
        for name in type(state).__slots__:  # type: ignore[attr-defined]
            object.__setattr__(made, name, getattr(state, name))
        return made
    return state  # type: ignore[return-value]  # its class is cls now


class _HOTPSlots:
    """The slots of an :class:`HOTP`, in a plain class so that ``HOTP()`` can fill them fast."""

    __slots__ = (
        "_inner",
        "_outer",
        "algorithm",
        "allow_short_secret",
        "digits",
        "secret",
    )
    secret: bytes
    digits: int
    algorithm: str
    allow_short_secret: bool
    _inner: hashlib._Hash
    _outer: hashlib._Hash


@dataclass(frozen=True, init=False)
class HOTP(_HOTPSlots):
    """An HOTP generator/verifier for one key (RFC 4226).

    ``secret`` is the raw key (bytes; see :func:`decode_secret` for base32 text), at least 128
    bits unless ``allow_short_secret=True`` (never below 80 bits), at most 2048 bits. ``digits`` is
    6, 7 or 8; ``algorithm`` is SHA1, SHA256 or SHA512 in any letter case (stored upper case).
    Raises :class:`InvalidSecretError` or :class:`ConfigurationError` (``TypeError`` for wrong
    types). The secret never appears in ``repr``.
    """

    # The fields (repr, eq, hash, replace) without class-level defaults, which would hide the
    # slots of _HOTPSlots: the defaults are those of __new__. The precomputed per-key state
    # (_inner, _outer) lives in slots that are not fields.
    __slots__ = ()
    secret: bytes = field(repr=False)
    _: KW_ONLY
    digits: int
    algorithm: str
    allow_short_secret: bool = field(repr=False, compare=False)

    def __new__(
        cls,
        secret: bytes,
        *,
        digits: int = 6,
        algorithm: str = "SHA1",
        allow_short_secret: bool = False,
    ) -> HOTP:
        # Written out for the cold path (a login builds the object from its stored secret). The
        # usual arguments pass the inlined checks; anything else goes through check_options(),
        # which raises in the documented order. See TOTP.__new__, which does the same.
        if (
            type(secret) is bytes
            and type(allow_short_secret) is bool
            and MIN_SECRET_BYTES <= len(secret) <= MAX_SECRET_BYTES
            and type(digits) is int
            and MIN_DIGITS <= digits <= MAX_DIGITS
            and type(algorithm) is str
            and algorithm in ALGORITHMS
        ):
            key, name = secret, algorithm
        else:
            key, name = check_options(secret, digits, algorithm, allow_short_secret)
        state = _NEW(_HOTPSlots)
        state.secret = key
        state.digits = digits
        state.algorithm = name
        state.allow_short_secret = allow_short_secret
        state._inner, state._outer = hmac_states(key, name)
        if cls is HOTP:  # finish() inlined for the common case
            state.__class__ = HOTP
            return state  # type: ignore[return-value]  # its class is HOTP now
        return finish(state, cls)

    def __reduce__(self) -> tuple[object, ...]:
        options = {"digits": self.digits, "algorithm": self.algorithm}
        return (restore, (HOTP, self.secret, options, self.allow_short_secret))

    def generate(self, counter: int) -> str:
        """Return the code for ``counter`` (0 to 2**64-1) as a string with its leading zeros."""
        check_counter(counter)
        inner = self._inner.copy()
        inner.update(PACK_COUNTER(counter))
        outer = self._outer.copy()
        outer.update(inner.digest())
        mac = outer.digest()
        value: int = UNPACK_31(mac, mac[-1] & 15)[0] & 0x7FFFFFFF
        digits = self.digits
        code: str = _FORMATS[digits] % (value % _MODULI[digits])
        return code

    def verify(self, code: str, *, counter: int, look_ahead: int = 0) -> Match | None:
        """Check ``code`` against counters ``counter .. counter + look_ahead``.

        Returns a :class:`Match` (``step`` is the matched counter, ``drift`` how far past
        ``counter`` it is) or ``None``. Every candidate is computed and compared in constant time;
        if several match, the highest counter wins, so moving the counter past it can never let
        the same code match again. The caller must store ``match.step + 1`` as the next counter
        (the :class:`Verifier` does this atomically). ``look_ahead`` is 0 to 100. A code that is
        not ``digits`` ASCII digits after the documented normalisation is no match; a non-``str``
        code is a ``TypeError``.
        """
        # The same inlined fast paths and loop as TOTP.verify (see there for why); unusual
        # arguments go through the full checks, which raise in the same order as before.
        digits = self.digits
        if type(code) is str and len(code) == digits and code.isascii() and code.isdigit():
            wanted: str | None = code
        else:
            wanted = normalize_code(code, digits)
        if type(counter) is not int or not 0 <= counter <= MAX_COUNTER:
            check_counter(counter)
        if type(look_ahead) is not int or not 0 <= look_ahead <= MAX_LOOK_AHEAD:
            check_look_ahead(look_ahead)
        if wanted is None:
            return None
        expected = PACK_CODE(int(wanted))
        last = counter + look_ahead + 1
        if last > _COUNTER_LIMIT:  # noqa: PLR1730 - min() costs a call on the hot path
            last = _COUNTER_LIMIT
        found = -1
        inner_copy = self._inner.copy
        outer_copy = self._outer.copy
        modulus = _MODULI[digits]
        for candidate in range(counter, last):
            inner = inner_copy()
            inner.update(PACK_COUNTER(candidate))
            outer = outer_copy()
            outer.update(inner.digest())
            mac = outer.digest()
            if compare_digest(
                PACK_CODE((UNPACK_31(mac, mac[-1] & 15)[0] & 0x7FFFFFFF) % modulus), expected
            ):
                found = candidate
        if found < 0:
            return None
        return new_match(found, found - counter)


def restore(
    cls: Callable[..., _T], secret: bytes, options: dict[str, Any], allow_short: bool
) -> _T:
    """Rebuild a pickled HOTP/TOTP (hash states cannot be pickled; they are recomputed)."""
    return cls(secret, allow_short_secret=allow_short, **options)
