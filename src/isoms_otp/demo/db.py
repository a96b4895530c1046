"""The demo's own tables: users, TOTP secrets (pending or active) and the simulated SMS outbox.

They live in the same SQLite file as the :class:`~isoms_otp.SQLiteStore` tables, under their own
names. Every call opens a short-lived connection, so one :class:`DemoDB` is safe to share between
the threads of the web server. Secrets are stored as they are here; a real backend encrypts them
(see ``docs/integration.md``).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final, Literal

__all__ = ["Challenge", "DemoDB", "Message", "TOTPRecord", "User", "hash_password"]

# scrypt as OWASP's password storage cheat sheet gives it (N=2**14, r=8, p=1); 16 MiB per hash.
SCRYPT_N: Final = 2**14
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
_SALT_BYTES: Final = 16
_HASH_BYTES: Final = 32
# Hashed when the username is unknown, so that a missing user costs the same time as a wrong
# password (otherwise response times would tell which usernames exist).
_DUMMY_SALT: Final = bytes(_SALT_BYTES)

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS demo_users (
    username TEXT PRIMARY KEY NOT NULL,
    salt BLOB NOT NULL,
    password_hash BLOB NOT NULL,
    phone TEXT NOT NULL,
    sms_secret BLOB NOT NULL,
    epoch INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS demo_totp (
    username TEXT PRIMARY KEY NOT NULL REFERENCES demo_users(username),
    secret BLOB NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'active'))
);
CREATE TABLE IF NOT EXISTS demo_sms_challenges (
    id TEXT PRIMARY KEY NOT NULL,
    username TEXT NOT NULL,
    counter INTEGER,
    sent_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS demo_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sent_at REAL NOT NULL,
    recipient TEXT NOT NULL,
    body TEXT NOT NULL
);
"""


def hash_password(password: str, salt: bytes) -> bytes:
    """Return the scrypt hash of ``password`` with ``salt`` (the parameters above)."""
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=_HASH_BYTES
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class User:
    """A demo account: each text message's HOTP key is derived from ``sms_secret``."""

    username: str
    phone: str
    sms_secret: bytes = field(repr=False)
    epoch: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TOTPRecord:
    """A user's TOTP secret; ``state`` is ``"pending"`` until the first code confirms it."""

    secret: bytes = field(repr=False)
    state: Literal["pending", "active"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Challenge:
    """A sign-in waiting for its text-message code.

    ``counter`` is the HOTP counter of the code that was sent, or ``None`` when no message was
    sent (wrong password or unknown user); ``sent_at`` is when the message was sent (or the
    challenge began), which starts its lifetime. It is kept on the server because the session
    cookie is signed, not encrypted: the browser must not learn whether a message was sent.
    """

    username: str
    counter: int | None
    sent_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One simulated text message in the outbox."""

    sent_at: float
    recipient: str
    body: str


class DemoDB:
    """The demo's tables in the SQLite file at ``path`` (created with mode 0600 if missing)."""

    __slots__ = ("_path",)

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = os.fspath(path)
        # The file holds password hashes and TOTP secrets: create it 0600 (SQLite would use
        # 0644). SQLite gives its -wal and -shm files the same mode as the database file.
        os.close(os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600))
        with self._connect() as conn:
            conn.executescript(_SCHEMA)

    def __repr__(self) -> str:
        return f"DemoDB({self._path!r})"

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self._path, timeout=5.0)
        try:
            with conn:  # one transaction: commit on success, roll back on error
                yield conn
        finally:
            conn.close()

    def set_user(self, username: str, password: str, *, phone: str) -> None:
        """Create ``username`` or give it a new password (its TOTP and SMS key stay)."""
        salt = secrets.token_bytes(_SALT_BYTES)
        digest = hash_password(password, salt)
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO demo_users (username, salt, password_hash, phone, sms_secret) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (username) DO UPDATE SET "
                "salt = excluded.salt, password_hash = excluded.password_hash, "
                "phone = excluded.phone, epoch = epoch + 1",
                (username, salt, digest, phone, secrets.token_bytes(20)),
            )

    def check_password(self, username: str, password: str) -> User | None:
        """Return the user when ``password`` is right, else ``None``, in about the same time.

        The hash is computed even for an unknown username, and compared in constant time.
        """
        with self._connect() as conn:
            row = conn.execute(
                "SELECT salt, password_hash, phone, sms_secret, epoch FROM demo_users "
                "WHERE username = ?",
                (username,),
            ).fetchone()
        salt, expected = (_DUMMY_SALT, b"") if row is None else (row[0], row[1])
        actual = hash_password(password, salt)
        if row is None or not hmac.compare_digest(expected, actual):
            return None
        return User(username=username, phone=row[2], sms_secret=row[3], epoch=row[4])

    def user(self, username: str) -> User | None:
        """Return ``username``'s account, or ``None``."""
        with self._connect() as conn:
            row = conn.execute(
                "SELECT phone, sms_secret, epoch FROM demo_users WHERE username = ?", (username,)
            ).fetchone()
        if row is None:
            return None
        return User(username=username, phone=row[0], sms_secret=row[1], epoch=row[2])

    def end_sessions(self, username: str) -> int:
        """Invalidate every session of the existing user ``username``; return the new epoch.

        Sessions carry the epoch they began in; one that should survive takes the new epoch.
        """
        with self._connect() as conn:
            conn.execute("UPDATE demo_users SET epoch = epoch + 1 WHERE username = ?", (username,))
            row = conn.execute(
                "SELECT epoch FROM demo_users WHERE username = ?", (username,)
            ).fetchone()
        return int(row[0])

    def totp(self, username: str) -> TOTPRecord | None:
        """Return ``username``'s pending or active TOTP secret, or ``None``."""
        with self._connect() as conn:
            row = conn.execute(
                "SELECT secret, state FROM demo_totp WHERE username = ?", (username,)
            ).fetchone()
        return None if row is None else TOTPRecord(secret=row[0], state=row[1])

    def set_pending(self, username: str, secret: bytes) -> None:
        """Store a new pending secret, replacing any pending one (never an active one)."""
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO demo_totp (username, secret, state) VALUES (?, ?, 'pending') "
                "ON CONFLICT (username) DO UPDATE SET secret = excluded.secret "
                "WHERE state = 'pending'",
                (username, secret),
            )

    def activate(self, username: str, secret: bytes) -> bool:
        """Make the pending ``secret`` active; ``False`` if it is no longer the pending one."""
        with self._connect() as conn:
            cursor = conn.execute(
                "UPDATE demo_totp SET state = 'active' "
                "WHERE username = ? AND secret = ? AND state = 'pending'",
                (username, secret),
            )
            return cursor.rowcount == 1

    def remove_totp(self, username: str) -> None:
        """Forget ``username``'s TOTP secret, pending or active."""
        with self._connect() as conn:
            conn.execute("DELETE FROM demo_totp WHERE username = ?", (username,))

    def add_challenge(self, challenge: Challenge) -> str:
        """Store ``challenge`` and return its random id (for the session)."""
        key = secrets.token_urlsafe(24)
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO demo_sms_challenges (id, username, counter, sent_at) "
                "VALUES (?, ?, ?, ?)",
                (key, challenge.username, challenge.counter, challenge.sent_at),
            )
        return key

    def challenge(self, key: str) -> Challenge | None:
        """Return the challenge with id ``key``, or ``None``."""
        with self._connect() as conn:
            row = conn.execute(
                "SELECT username, counter, sent_at FROM demo_sms_challenges WHERE id = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        return Challenge(username=row[0], counter=row[1], sent_at=row[2])

    def last_sent(self, username: str, counter: int) -> float | None:
        """Return when the newest message for ``username``'s ``counter`` was sent, or ``None``."""
        with self._connect() as conn:
            row = conn.execute(
                "SELECT MAX(sent_at) FROM demo_sms_challenges WHERE username = ? AND counter = ?",
                (username, counter),
            ).fetchone()
        return None if row[0] is None else float(row[0])

    def remove_challenges(self, *, key: str | None = None, before: float | None = None) -> None:
        """Delete the challenge ``key`` and every challenge that began ``before`` a time."""
        with self._connect() as conn:
            conn.execute(
                "DELETE FROM demo_sms_challenges WHERE id = ? OR sent_at < ?",
                (key, -1.0 if before is None else before),
            )

    def end_challenges(self, username: str) -> None:
        """Make every open text-message challenge of ``username`` take no code any more.

        Each message has a key of its own (a credential of its own for the Verifier), so using
        one message's code does not use up another's: a sign-in by text message ends them all.
        """
        with self._connect() as conn:
            conn.execute(
                "UPDATE demo_sms_challenges SET counter = NULL WHERE username = ?", (username,)
            )

    def add_message(self, message: Message) -> None:
        """Append ``message`` to the outbox."""
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO demo_outbox (sent_at, recipient, body) VALUES (?, ?, ?)",
                (message.sent_at, message.recipient, message.body),
            )

    def messages(self, limit: int = 20) -> list[Message]:
        """Return the newest ``limit`` outbox messages, newest first."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT sent_at, recipient, body FROM demo_outbox ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [Message(sent_at=row[0], recipient=row[1], body=row[2]) for row in rows]
