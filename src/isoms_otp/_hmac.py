"""HMAC (RFC 2104) with the key schedule done once per key.

``hmac.digest`` sets the key up again on every call. Here the inner and outer hash states, which
have already absorbed ``key XOR ipad`` and ``key XOR opad``, are made once; each code then costs
two ``copy()`` + ``update()`` + ``digest()`` rounds. The test suite checks this against
:mod:`hmac` for every algorithm and for keys shorter than, equal to and longer than a block.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Final

__all__ = ["ALGORITHMS", "hmac_digest", "hmac_states", "normalize_algorithm"]

# The algorithms of RFC 6238 section 1.2, by their Key Uri Format names.
ALGORITHMS: Final[dict[str, Callable[..., hashlib._Hash]]] = {
    "SHA1": hashlib.sha1,
    "SHA256": hashlib.sha256,
    "SHA512": hashlib.sha512,
}

# For each algorithm an empty hash object, never updated, with its block size (RFC 2104's B):
# copying it and absorbing the padded key costs a quarter less than a hashlib constructor (which
# looks the digest up in OpenSSL every time), and one look-up finds both. Copying an object that
# nothing updates is safe from any thread.
_HASHES: Final = {
    name: (ALGORITHMS[name](), block)
    for name, block in (("SHA1", 64), ("SHA256", 64), ("SHA512", 128))
}

_IPAD: Final = bytes(x ^ 0x36 for x in range(256))
_OPAD: Final = bytes(x ^ 0x5C for x in range(256))


def normalize_algorithm(name: object) -> str | None:
    """Return the canonical name (``"SHA1"``, ``"SHA256"``, ``"SHA512"``) or ``None``."""
    if not isinstance(name, str) or not name.isascii():
        return None
    upper = name.upper()
    return upper if upper in ALGORITHMS else None


def hmac_states(key: bytes, algorithm: str) -> tuple[hashlib._Hash, hashlib._Hash]:
    """Return the inner and outer hash states of HMAC(key) with the padded key absorbed.

    ``algorithm`` must be a canonical name from :data:`ALGORITHMS`.
    """
    empty, block = _HASHES[algorithm]
    if len(key) > block:  # RFC 2104 section 2: longer keys are hashed first
        long_key = empty.copy()
        long_key.update(key)
        key = long_key.digest()
    key = key.ljust(block, b"\0")
    # This runs every time a login builds a TOTP from its stored secret: two copies of the empty
    # object and two updates, no constructor and no throw-away object to ask the block size.
    inner = empty.copy()
    inner.update(key.translate(_IPAD))
    outer = empty.copy()
    outer.update(key.translate(_OPAD))
    return inner, outer


def hmac_digest(states: tuple[hashlib._Hash, hashlib._Hash], message: bytes) -> bytes:
    """Return HMAC(key, message) from the states made by :func:`hmac_states`.

    The OTP classes inline these four lines on their hot path; this function is the reference
    the tests hold them to.
    """
    inner = states[0].copy()
    inner.update(message)
    outer = states[1].copy()
    outer.update(inner.digest())
    return outer.digest()
