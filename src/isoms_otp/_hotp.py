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
    shown,
)
from ._match import Match
from ._secret import check_secret
from .exceptions import ConfigurationError

__all__ = [
    "HOTP",
    "PACK_CODE",
    "PACK_COUNTER",
    "UNPACK_31",
    "check_counter",
    "check_digits",
    "prepare",
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


def check_digits(digits: object) -> int:
    """Validate the code length (6, 7 or 8)."""
    if type(digits) is not int:
        raise TypeError(f"digits must be an int, not {type(digits).__name__}")
    if not MIN_DIGITS <= digits <= MAX_DIGITS:
        raise ConfigurationError(f"digits must be 6, 7 or 8 (got {shown(digits)})")
    return digits


def check_counter(counter: object, name: str = "counter") -> int:
    """Validate an RFC 4226 moving factor: an int from 0 to 2**64-1."""
    if type(counter) is not int:
        raise TypeError(f"{name} must be an int, not {type(counter).__name__}")
    if not 0 <= counter <= MAX_COUNTER:
        raise ConfigurationError(f"{name} must be from 0 to 2**64-1 (got {shown(counter)})")
    return counter


def prepare(
    obj: object, secret: object, digits: object, algorithm: object, allow_short_secret: bool
) -> None:
    """Validate the shared parameters of HOTP/TOTP and precompute the per-key state on ``obj``."""
    # A login builds a TOTP from its stored secret every time, so the usual arguments take inlined
    # fast paths; anything else goes through the full checks, which raise in the same order.
    if (
        type(secret) is bytes
        and type(allow_short_secret) is bool
        and MIN_SECRET_BYTES <= len(secret) <= MAX_SECRET_BYTES
    ):
        key = secret
    else:
        key = check_secret(secret, allow_short_secret=allow_short_secret)
    if type(digits) is not int or not MIN_DIGITS <= digits <= MAX_DIGITS:
        check_digits(digits)
    if type(algorithm) is str and algorithm in ALGORITHMS:
        name: str | None = algorithm
    else:
        name = normalize_algorithm(algorithm)
    if name is None:
        if not isinstance(algorithm, str):
            raise TypeError(f"algorithm must be a str, not {type(algorithm).__name__}")
        raise ConfigurationError(
            f"unsupported algorithm {algorithm[:16]!r}; use SHA1, SHA256 or SHA512"
        )
    inner, outer = hmac_states(key, name)
    setter = object.__setattr__
    if key is not secret:
        setter(obj, "secret", key)
    if name is not algorithm:
        setter(obj, "algorithm", name)
    setter(obj, "_inner", inner)
    setter(obj, "_outer", outer)
    setter(obj, "_modulus", _MODULI[digits])  # type: ignore[index]
    setter(obj, "_format", _FORMATS[digits])  # type: ignore[index]


@dataclass(frozen=True, slots=True)
class HOTP:
    """An HOTP generator/verifier for one key (RFC 4226).

    ``secret`` is the raw key (bytes; see :func:`decode_secret` for base32 text), at least 128
    bits unless ``allow_short_secret=True`` (never below 80 bits), at most 2048 bits. ``digits`` is
    6, 7 or 8; ``algorithm`` is SHA1, SHA256 or SHA512 in any letter case (stored upper case).
    Raises :class:`InvalidSecretError` or :class:`ConfigurationError` (``TypeError`` for wrong
    types). The secret never appears in ``repr``.
    """

    secret: bytes = field(repr=False)
    _: KW_ONLY
    digits: int = 6
    algorithm: str = "SHA1"
    allow_short_secret: bool = field(default=False, repr=False, compare=False)
    _inner: hashlib._Hash = field(init=False, repr=False, compare=False)
    _outer: hashlib._Hash = field(init=False, repr=False, compare=False)
    _modulus: int = field(init=False, repr=False, compare=False)
    _format: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        prepare(self, self.secret, self.digits, self.algorithm, self.allow_short_secret)

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
        return self._format % (value % self._modulus)

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
        if type(look_ahead) is not int:
            raise TypeError(f"look_ahead must be an int, not {type(look_ahead).__name__}")
        if not 0 <= look_ahead <= MAX_LOOK_AHEAD:
            raise ConfigurationError(
                f"look_ahead must be from 0 to {MAX_LOOK_AHEAD} (got {shown(look_ahead)})"
            )
        if wanted is None:
            return None
        expected = PACK_CODE(int(wanted))
        last = counter + look_ahead + 1
        if last > _COUNTER_LIMIT:  # noqa: PLR1730 - min() costs a call on the hot path
            last = _COUNTER_LIMIT
        found = -1
        inner_copy = self._inner.copy
        outer_copy = self._outer.copy
        modulus = self._modulus
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
        return Match(step=found, drift=found - counter)


def restore(
    cls: Callable[..., _T], secret: bytes, options: dict[str, Any], allow_short: bool
) -> _T:
    """Rebuild a pickled HOTP/TOTP (hash states cannot be pickled; they are recomputed)."""
    return cls(secret, allow_short_secret=allow_short, **options)
