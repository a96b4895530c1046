"""Secrets at rest: seal each user's OTP secret with AES-256-GCM under a named key of a key ring.

A :class:`Keyring` holds named 256-bit keys; one of them, the *active* key, seals new secrets,
and the others still open what they sealed. :meth:`Keyring.seal` returns a text token for the
database row; :meth:`Keyring.open` gives the secret back. Rotation runs online: put a new key
first (active), keep the old one for opening, :meth:`Keyring.rewrap` the rows at leisure
(:meth:`Keyring.needs_rewrap` says which), and drop the old key once nothing needs it.

A token reads ``v1.<key id>.<length, nonce, ciphertext and tag>``, each part base64url without
padding; the two-byte length of the secret lets a cut or lengthened token be told from a
corrupted one. Its associated data binds the version, the key id, a purpose string, the length
and the user id, so a token copied into another user's row, or altered in any byte, does not
open. ``docs/secrets.md`` says
where to keep the keys and what this does and does not protect against.

Needs the ``crypto`` extra (the ``cryptography`` package): ``pip install 'isoms-otp[crypto]'``.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from collections.abc import Mapping
from typing import Final

from .exceptions import ConfigurationError, InvalidSecretError, MissingExtraError

try:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError as exc:  # pragma: no cover - exercised in a subprocess without cryptography
    raise MissingExtraError(
        "isoms_otp.sealing needs the cryptography package: pip install 'isoms-otp[crypto]'"
    ) from exc

__all__ = [
    "KEY_BYTES",
    "MAX_KEYS",
    "MAX_KEY_ID_LENGTH",
    "MAX_SEALED_BYTES",
    "MAX_TOKEN_LENGTH",
    "MAX_USER_BYTES",
    "Keyring",
]

#: AES-256: every key is exactly 32 bytes.
KEY_BYTES: Final = 32
#: The most keys one ring holds; rotation needs two or three, so more is a configuration slip.
MAX_KEYS: Final = 64
#: Longest user id bound into a token, in UTF-8 bytes (the empty id is allowed).
MAX_USER_BYTES: Final = 1024
#: Longest key id, in characters of ``A-Z a-z 0-9 . _ -`` (the associated data gives it a length
#: byte).
MAX_KEY_ID_LENGTH: Final = 255
#: Largest secret :meth:`Keyring.seal` takes, in bytes (an OTP key is at most 256).
MAX_SEALED_BYTES: Final = 1024
#: Longest token :meth:`Keyring.open` looks at: a 255-character key id and a 1024-byte secret
#: make about 1,750 characters.
MAX_TOKEN_LENGTH: Final = 2048
#: Longest text :meth:`Keyring.from_string` reads (64 entries of the longest form fit).
MAX_KEYRING_TEXT: Final = 8192

_VERSION: Final = "v1"
_PURPOSE: Final = b"isoms-otp secret"
_NONCE_BYTES: Final = 12  # the 96-bit nonce GCM is specified for
_TAG_BYTES: Final = 16
_LENGTH_BYTES: Final = 2  # the secret's length, big-endian, first in the data
_OVERHEAD: Final = _LENGTH_BYTES + _NONCE_BYTES + _TAG_BYTES
_KEY_ID: Final = re.compile(f"[A-Za-z0-9._-]{{1,{MAX_KEY_ID_LENGTH}}}")
_TOKEN: Final = re.compile(r"(v[0-9]{1,3})\.([A-Za-z0-9_-]{1,340})\.([A-Za-z0-9_-]{1,1800})")
# Entries are separated by commas or newlines, with any spaces around them (a keys file may
# hold one entry per line).
_SEPARATOR: Final = re.compile(r"\s*[,\n]\s*")
_MALFORMED: Final = "malformed sealed secret"
_REFUSED: Final = "sealed secret not valid for this user or corrupted"
_KEY_TEXT_HINT: Final = (
    "the form is id:base64key,id:base64key,... with the active key first "
    "(make a key line with `isoms-otp keys generate`)"
)


_TO_URLSAFE: Final = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE: Final = bytes.maketrans(b"-_", b"+/")
# The symbols that may end unpadded base64url of 1 or 2 bytes in the last group: the unused low
# bits must be zero, else two spellings would carry the same bytes (and a changed character
# could still open).
_LAST_SYMBOL: Final = {2: frozenset("AQgw"), 3: frozenset("AEIMQUYcgkosw048")}


def _b64encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).rstrip(b"=").translate(_TO_URLSAFE).decode()


def _b64decode(text: str) -> bytes | None:
    """Decode unpadded base64url (checked alphabet); ``None`` unless it is the canonical form."""
    remainder = len(text) % 4
    if remainder == 1 or (remainder and text[-1] not in _LAST_SYMBOL[remainder]):
        return None
    padded = text.encode("ascii").translate(_FROM_URLSAFE) + b"=" * (-remainder % 4)
    return binascii.a2b_base64(padded)


def _check_key_id(key_id: object, what: str) -> str:
    if type(key_id) is not str:
        raise TypeError(f"{what} must be a str, not {type(key_id).__name__}")
    if _KEY_ID.fullmatch(key_id) is None:
        # Not echoed: a key pasted into the wrong place must not end up in a log.
        raise ConfigurationError(
            f"{what} must be 1 to {MAX_KEY_ID_LENGTH} letters, digits, '.', '_' or '-' "
            "(such as '2026-01')"
        )
    return key_id


def _user_bytes(user: object) -> bytes:
    if type(user) is not str:
        raise TypeError(f"user must be a str, not {type(user).__name__}")
    try:
        data = user.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigurationError(
            "user contains a lone surrogate; use a stable account id"
        ) from None
    if len(data) > MAX_USER_BYTES:
        raise ConfigurationError(
            f"user must be at most {MAX_USER_BYTES} bytes of UTF-8 (got {len(data)}); "
            "use a stable account id"
        )
    return data


def _associated_head(key_id: str) -> bytes:
    """Return the associated data that comes before the user id.

    Purpose, version and key id have fixed or prefixed lengths, so the user id, last, cannot
    run into them: no two (key id, user) pairs give the same associated data.
    """
    raw_id = key_id.encode("ascii")
    return b"".join((_PURPOSE, b"\x00", _VERSION.encode("ascii"), bytes([len(raw_id)]), raw_id))


class Keyring:
    """Named AES-256 keys: ``active`` seals new secrets, every key opens what it sealed.

    ``keys`` maps key ids (1 to 255 of ``A-Z a-z 0-9 . _ -``) to 32-byte keys from
    :meth:`generate_key`; ``active`` must be one of them. Bad ids, wrong key lengths, an empty
    mapping or an unknown ``active`` raise :class:`ConfigurationError` (never showing a key).
    The ``repr`` shows the key ids only. Instances are immutable and safe to share between
    threads.
    """

    __slots__ = ("_active", "_ciphers", "_encoded_ids", "_prefix")

    _active: str
    # Each key id's cipher and the head of its associated data.
    _ciphers: dict[str, tuple[AESGCM, bytes]]
    _encoded_ids: dict[str, str]
    _prefix: str

    def __init__(self, keys: Mapping[str, bytes], *, active: str) -> None:
        if not isinstance(keys, Mapping):
            raise TypeError(f"keys must be a mapping of key id to key, not {type(keys).__name__}")
        if not 0 < len(keys) <= MAX_KEYS:
            raise ConfigurationError(
                f"a key ring holds 1 to {MAX_KEYS} keys (got {len(keys)}): "
                "generate one with Keyring.generate_key()"
            )
        ciphers: dict[str, tuple[AESGCM, bytes]] = {}
        for key_id, key in keys.items():
            _check_key_id(key_id, "a key id")
            if type(key) is not bytes:
                raise TypeError(f"key {key_id!r} must be bytes, not {type(key).__name__}")
            if len(key) != KEY_BYTES:
                raise ConfigurationError(
                    f"key {key_id!r} is {len(key)} bytes; AES-256 needs exactly {KEY_BYTES} "
                    "(use Keyring.generate_key())"
                )
            ciphers[key_id] = (AESGCM(key), _associated_head(key_id))
        _check_key_id(active, "active")
        if active not in ciphers:
            raise ConfigurationError(
                f"active key {active!r} is not in the key ring (ids: {', '.join(ciphers)})"
            )
        object.__setattr__(self, "_ciphers", ciphers)
        object.__setattr__(self, "_active", active)
        # Done once here, not per token: the encoded form of each id, and the start of a token.
        encoded = {_b64encode(key_id.encode("ascii")): key_id for key_id in ciphers}
        object.__setattr__(self, "_encoded_ids", encoded)
        object.__setattr__(self, "_prefix", f"{_VERSION}.{_b64encode(active.encode('ascii'))}.")

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __repr__(self) -> str:
        return f"Keyring(ids={list(self.ids)!r}, active={self._active!r})"

    def __reduce__(self) -> tuple[object, ...]:
        # A pickle would carry the keys to wherever pickles go (caches, queues, crash dumps).
        raise TypeError("a Keyring is not picklable: build it from the key text where it is used")

    @property
    def active(self) -> str:
        """The id of the key that seals new secrets."""
        return self._active

    @property
    def ids(self) -> tuple[str, ...]:
        """Every key id, the active one first as in the text form."""
        return (self._active, *(key_id for key_id in self._ciphers if key_id != self._active))

    @staticmethod
    def generate_key() -> bytes:
        """Return a new random 32-byte key from the operating system's CSPRNG."""
        return secrets.token_bytes(KEY_BYTES)

    @classmethod
    def from_string(cls, text: str) -> Keyring:
        """Read ``id:base64key,id:base64key,...``: the first entry is the active key.

        Entries are separated by commas or newlines (one per line suits a file), and spaces
        around them are ignored; keys are standard base64 with padding.
        A malformed entry, a duplicate id or a key of the wrong length raises
        :class:`ConfigurationError` naming the entry by its position, never its text.
        """
        if type(text) is not str:
            raise TypeError(f"the key text must be a str, not {type(text).__name__}")
        if len(text) > MAX_KEYRING_TEXT:
            raise ConfigurationError(
                f"the key text is longer than {MAX_KEYRING_TEXT} characters; {_KEY_TEXT_HINT}"
            )
        if not text.strip():
            raise ConfigurationError(f"the key text is empty; {_KEY_TEXT_HINT}")
        keys: dict[str, bytes] = {}
        for number, entry in enumerate(_SEPARATOR.split(text.strip()), start=1):
            key_id, colon, encoded = entry.partition(":")
            if not entry:
                raise ConfigurationError(f"key entry {number} is empty; {_KEY_TEXT_HINT}")
            if not colon:
                raise ConfigurationError(f"key entry {number} has no ':'; {_KEY_TEXT_HINT}")
            _check_key_id(key_id, f"the id of key entry {number}")
            if key_id in keys:
                raise ConfigurationError(
                    f"key entry {number} repeats the key id {key_id!r}; each id names one key"
                )
            try:
                key = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise ConfigurationError(
                    f"key entry {number} ({key_id!r}) is not base64; {_KEY_TEXT_HINT}"
                ) from None
            if len(key) != KEY_BYTES:
                raise ConfigurationError(
                    f"key entry {number} ({key_id!r}) is {len(key)} bytes; AES-256 needs exactly "
                    f"{KEY_BYTES} (make one with `isoms-otp keys generate`)"
                )
            keys[key_id] = key
        return cls(keys, active=next(iter(keys)))

    @classmethod
    def from_env(cls, name: str = "ISOMS_OTP_KEYS") -> Keyring:
        """Read the key text (see :meth:`from_string`) from the environment variable ``name``."""
        text = os.environ.get(name)
        if text is None:
            raise ConfigurationError(
                f"the environment variable {name} is not set; {_KEY_TEXT_HINT}"
            )
        try:
            return cls.from_string(text)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{name}: {exc}") from None

    def seal(self, secret: bytes, *, user: str) -> str:
        """Encrypt ``secret`` for ``user``'s row under the active key; return the text token.

        Every call draws a fresh 96-bit nonce, so sealing the same secret twice gives two
        different tokens. ``secret`` is 0 to 1024 bytes (:class:`InvalidSecretError`; an OTP
        key is at most 256); ``user`` is the id the row belongs to, at most 1024 bytes of UTF-8
        (:class:`ConfigurationError`).
        """
        if type(secret) is not bytes:
            raise TypeError(f"secret must be bytes, not {type(secret).__name__}")
        if len(secret) > MAX_SEALED_BYTES:
            raise InvalidSecretError(
                f"a sealed secret is at most {MAX_SEALED_BYTES} bytes (got {len(secret)})"
            )
        return self._seal(secret, _user_bytes(user))

    def _seal(self, secret: bytes, user: bytes) -> str:
        cipher, head = self._ciphers[self._active]
        nonce = secrets.token_bytes(_NONCE_BYTES)
        length = len(secret).to_bytes(_LENGTH_BYTES, "big")
        sealed = cipher.encrypt(nonce, secret, head + length + user)
        return self._prefix + _b64encode(length + nonce + sealed)

    def open(self, token: str, *, user: str) -> bytes:
        """Return the secret sealed in ``token`` for ``user``.

        Raises :class:`InvalidSecretError` saying "unknown key id ..." (the key was dropped from
        the ring: restore it, or re-enrol the user), "not valid for this user or corrupted" (a
        wrong key, another user's token, any changed byte) or "malformed" (not a token, a
        truncated one, an unknown version). ``TypeError`` if ``token`` is not a str.
        """
        key_id, payload = self._parse(token)
        return self._open(key_id, payload, _user_bytes(user))

    def _open(self, key_id: str, payload: bytes, user: bytes) -> bytes:
        found = self._ciphers.get(key_id)
        if found is None:
            raise InvalidSecretError(
                f"sealed secret names an unknown key id {key_id!r}: it was sealed with a key no "
                "longer in the ring (restore that key to open it)"
            )
        cipher, head = found
        length = payload[:_LENGTH_BYTES]
        nonce = payload[_LENGTH_BYTES : _LENGTH_BYTES + _NONCE_BYTES]
        try:
            return cipher.decrypt(
                nonce, payload[_LENGTH_BYTES + _NONCE_BYTES :], head + length + user
            )
        except InvalidTag:
            raise InvalidSecretError(_REFUSED) from None

    def needs_rewrap(self, token: str) -> bool:
        """Return whether ``token`` was sealed with a key other than the active one.

        Reads the token's key id only (no key is used): a token under an unknown key id needs a
        rewrap too, which :meth:`rewrap` then refuses. A malformed token raises
        :class:`InvalidSecretError`.
        """
        key_id, _payload = self._parse(token)
        return key_id != self._active

    def rewrap(self, token: str, *, user: str) -> str:
        """Open ``token`` for ``user`` and seal the secret again under the active key.

        A token already under the active key is checked (opened) and returned unchanged (the
        same object), so rewrapping twice costs no churn. Errors are those of :meth:`open`.
        """
        key_id, payload = self._parse(token)
        raw_user = _user_bytes(user)
        secret = self._open(key_id, payload, raw_user)
        if key_id == self._active:
            return token
        return self._seal(secret, raw_user)

    def _parse(self, token: object) -> tuple[str, bytes]:
        """Split ``token`` into its key id and nonce-ciphertext-tag; refuse any other shape."""
        if type(token) is not str:
            raise TypeError(f"token must be a str, not {type(token).__name__}")
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidSecretError(f"{_MALFORMED}: longer than {MAX_TOKEN_LENGTH} characters")
        match = _TOKEN.fullmatch(token)
        if match is None:
            raise InvalidSecretError(
                f"{_MALFORMED}: expected {_VERSION}.<key id>.<data> (from Keyring.seal)"
            )
        version, encoded_id, encoded_payload = match.groups()
        if version != _VERSION:
            raise InvalidSecretError(
                f"{_MALFORMED}: unknown version {version} (this library reads {_VERSION})"
            )
        payload = _b64decode(encoded_payload)
        key_id = self._encoded_ids.get(encoded_id)
        if key_id is None:  # not one of ours: decode it, to name it in the error
            raw_id = _b64decode(encoded_id)
            if raw_id is None or payload is None:
                raise InvalidSecretError(f"{_MALFORMED}: not base64url")
            key_id = raw_id.decode("latin-1")
            if _KEY_ID.fullmatch(key_id) is None:
                raise InvalidSecretError(f"{_MALFORMED}: the key id is not a valid id")
        if payload is None:
            raise InvalidSecretError(f"{_MALFORMED}: not base64url")
        if len(payload) < _OVERHEAD:
            raise InvalidSecretError(f"{_MALFORMED}: truncated")
        size = int.from_bytes(payload[:_LENGTH_BYTES], "big")
        if size > MAX_SEALED_BYTES or len(payload) != _OVERHEAD + size:
            raise InvalidSecretError(
                f"{_MALFORMED}: truncated or lengthened (its data does not match its length)"
            )
        return key_id, payload
