"""The demo's own tables: users, TOTP secrets (with recovery codes) and the simulated SMS outbox.

They live in the same SQLite file as the :class:`~isoms_otp.SQLiteStore` tables, under their own
names. Every call opens a short-lived connection, so one :class:`DemoDB` is safe to share between
the threads of the web server.

TOTP secrets are stored sealed (:mod:`isoms_otp.sealing`): each row holds a token bound to its
user, and the key ring is kept beside the database in ``<database>.keys``, created with mode
0600 on first start. Someone with a copy of the database alone learns no TOTP secret. (A real
backend keeps the key away from the database: see ``docs/secrets.md``.)
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import secrets
import sqlite3
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from isoms_otp.exceptions import ConfigurationError, StoreError
from isoms_otp.sealing import Keyring

__all__ = [
    "KEYS_SUFFIX",
    "Challenge",
    "DemoDB",
    "Message",
    "TOTPRecord",
    "User",
    "hash_password",
    "load_keyring",
]

#: The key ring lives beside the database, in a file named after it with this suffix.
KEYS_SUFFIX: Final = ".keys"

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
    epoch INTEGER NOT NULL DEFAULT 0,
    is_admin INTEGER NOT NULL DEFAULT 0,
    last_sign_in REAL,
    last_locked REAL
);
CREATE TABLE IF NOT EXISTS demo_totp (
    username TEXT PRIMARY KEY NOT NULL REFERENCES demo_users(username),
    -- Keyring.seal(secret, user=username): text. Versions before sealing stored the raw bytes.
    secret BLOB NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'active')),
    -- RecoveryCodes.to_string() of the active secret's set (hashes only, no code); NULL while
    -- pending and for rows from before recovery codes.
    recovery TEXT,
    -- A new phone's sealed secret while the active one stays in use, until its first code.
    replacement TEXT
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

# (table, column, type) added after the first release; constants, never user input.
_ADDED_COLUMNS: Final = (
    ("demo_users", "is_admin", "INTEGER NOT NULL DEFAULT 0"),
    ("demo_users", "last_sign_in", "REAL"),
    ("demo_users", "last_locked", "REAL"),
    ("demo_totp", "recovery", "TEXT"),
    ("demo_totp", "replacement", "TEXT"),
)


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
    is_admin: bool = False
    #: When this user last signed in, and when their account was last locked (Unix seconds).
    last_sign_in: float | None = None
    last_locked: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TOTPRecord:
    """A user's TOTP secret; ``state`` is ``"pending"`` until the first code confirms it.

    ``sealed`` is the token the row holds, which :meth:`DemoDB.activate` compares.
    ``recovery`` is the active secret's :meth:`RecoveryCodes.to_string` (or ``None``);
    ``replacement`` a new phone's secret waiting for its first code (``replacement_sealed`` its
    token), while the active one stays in use.
    """

    secret: bytes = field(repr=False)
    sealed: str = field(repr=False)
    state: Literal["pending", "active"]
    recovery: str | None = None
    replacement: bytes | None = field(default=None, repr=False)
    replacement_sealed: str | None = field(default=None, repr=False)


def load_keyring(path: str | os.PathLike[str]) -> Keyring:
    """Return the key ring in the file ``path``, creating it (mode 0600, one new key) if missing.

    The file is written in full under a temporary name and then linked into place, so two
    processes starting at once agree on one key and neither reads a half-written file. A file
    that other users may read is refused (:class:`ConfigurationError`): it holds the key.
    """
    target = Path(path)
    if not target.exists():
        key_id = f"demo-{secrets.token_hex(4)}"
        entry = f"{key_id}:{base64.b64encode(Keyring.generate_key()).decode('ascii')}\n"
        draft = target.with_name(f"{target.name}.{secrets.token_hex(8)}.tmp")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w", encoding="ascii") as stream:
                stream.write(entry)
            with contextlib.suppress(FileExistsError):  # another process was first: use its key
                os.link(draft, target)
        finally:
            draft.unlink()
    mode = stat.S_IMODE(target.stat().st_mode)
    if os.name == "posix" and mode & 0o077:
        raise ConfigurationError(
            f"the demo's key file {os.fspath(target)!r} has mode {mode:04o}: other users may "
            f"read it; chmod 600 it"
        )
    return Keyring.from_string(target.read_text(encoding="ascii"))


_USER_COLUMNS: Final = "phone, sms_secret, epoch, is_admin, last_sign_in, last_locked"


def _user(username: str, row: Sequence[Any]) -> User:
    phone, sms_secret, epoch, is_admin, last_sign_in, last_locked = row
    return User(
        username=username,
        phone=phone,
        sms_secret=sms_secret,
        epoch=epoch,
        is_admin=bool(is_admin),
        last_sign_in=None if last_sign_in is None else float(last_sign_in),
        last_locked=None if last_locked is None else float(last_locked),
    )


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
    """The demo's tables in the SQLite file at ``path`` (created with mode 0600 if missing).

    Every method raises :class:`~isoms_otp.StoreError` when SQLite fails (such as "database is
    locked" after ``timeout`` seconds), the error the app answers with its 503 page; ``OSError``
    when the file cannot be created. TOTP secrets are sealed with the key ring kept beside the
    database (``path + KEYS_SUFFIX``, created 0600 on first start).
    """

    __slots__ = ("_keyring", "_path", "_timeout")

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 5.0) -> None:
        self._path = os.fspath(path)
        self._timeout = timeout
        # The file holds password hashes and sealed TOTP secrets: create it 0600 (SQLite would
        # use 0644). SQLite gives its -wal and -shm files the same mode as the database file.
        os.close(os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600))
        self._keyring = load_keyring(self._path + KEYS_SUFFIX)
        with self._connect() as conn:
            conn.executescript(_SCHEMA)
            # Databases from before recovery codes and the admin account lack these columns.
            for table, column, kind in _ADDED_COLUMNS:
                names = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
                if column not in names:
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            # Rows from before sealing hold the raw secret: seal them in place.
            for username, secret in conn.execute(
                "SELECT username, secret FROM demo_totp WHERE typeof(secret) = 'blob'"
            ).fetchall():
                conn.execute(
                    "UPDATE demo_totp SET secret = ? WHERE username = ?",
                    (self._keyring.seal(secret, user=username), username),
                )

    def __repr__(self) -> str:
        return f"DemoDB({self._path!r})"

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # sqlite3.Error is not a StoreError: it used to escape the app's 503 handler and end
        # in a 500 (a locked database on the SMS step). Every storage failure is one error.
        try:
            conn = sqlite3.connect(self._path, timeout=self._timeout)
            try:
                with conn:  # one transaction: commit on success, roll back on error
                    yield conn
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise StoreError(f"the demo database failed: {exc}") from exc

    def set_user(self, username: str, password: str, *, phone: str, admin: bool = False) -> None:
        """Create ``username`` or give it a new password (its TOTP and SMS key stay).

        ``admin`` makes it the demo's administrator (the admin pages), or an ordinary user.
        """
        salt = secrets.token_bytes(_SALT_BYTES)
        digest = hash_password(password, salt)
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO demo_users (username, salt, password_hash, phone, sms_secret, "
                "is_admin) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (username) DO UPDATE SET "
                "salt = excluded.salt, password_hash = excluded.password_hash, "
                "phone = excluded.phone, is_admin = excluded.is_admin, epoch = epoch + 1",
                (username, salt, digest, phone, secrets.token_bytes(20), int(admin)),
            )

    def check_password(self, username: str, password: str) -> User | None:
        """Return the user when ``password`` is right, else ``None``, in about the same time.

        The hash is computed even for an unknown username, and compared in constant time.
        """
        with self._connect() as conn:
            row = conn.execute(
                f"SELECT salt, password_hash, {_USER_COLUMNS} FROM demo_users "  # noqa: S608
                "WHERE username = ?",
                (username,),
            ).fetchone()
        salt, expected = (_DUMMY_SALT, b"") if row is None else (row[0], row[1])
        actual = hash_password(password, salt)
        if row is None or not hmac.compare_digest(expected, actual):
            return None
        return _user(username, row[2:])

    def user(self, username: str) -> User | None:
        """Return ``username``'s account, or ``None``."""
        with self._connect() as conn:
            row = conn.execute(
                f"SELECT {_USER_COLUMNS} FROM demo_users WHERE username = ?",  # noqa: S608
                (username,),
            ).fetchone()
        if row is None:
            return None
        return _user(username, row)

    def usernames(self) -> list[str]:
        """Return every username, sorted."""
        with self._connect() as conn:
            rows = conn.execute("SELECT username FROM demo_users ORDER BY username").fetchall()
        return [row[0] for row in rows]

    def signed_in(self, username: str, at: float) -> None:
        """Record that ``username`` signed in at ``at``."""
        with self._connect() as conn:
            conn.execute(
                "UPDATE demo_users SET last_sign_in = ? WHERE username = ?", (at, username)
            )

    def locked(self, username: str, at: float) -> None:
        """Record that ``username``'s account was locked at ``at`` (an event with ``locked``)."""
        with self._connect() as conn:
            conn.execute("UPDATE demo_users SET last_locked = ? WHERE username = ?", (at, username))

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
                "SELECT secret, state, recovery, replacement FROM demo_totp WHERE username = ?",
                (username,),
            ).fetchone()
        if row is None:
            return None
        # A token that does not open (another user's, altered, or under a lost key) raises
        # InvalidSecretError: an error page, never a sign-in.
        secret = self._keyring.open(row[0], user=username)
        replacement = None if row[3] is None else self._keyring.open(row[3], user=username)
        return TOTPRecord(
            secret=secret,
            sealed=row[0],
            state=row[1],
            recovery=row[2],
            replacement=replacement,
            replacement_sealed=row[3],
        )

    def set_pending(self, username: str, secret: bytes) -> None:
        """Seal and store a new pending secret, replacing any pending one (never an active one)."""
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO demo_totp (username, secret, state) VALUES (?, ?, 'pending') "
                "ON CONFLICT (username) DO UPDATE SET secret = excluded.secret "
                "WHERE state = 'pending'",
                (username, self._keyring.seal(secret, user=username)),
            )

    def set_replacement(self, username: str, secret: bytes) -> None:
        """Seal and store a new phone's ``secret`` beside the active one (which stays in use)."""
        with self._connect() as conn:
            conn.execute(
                "UPDATE demo_totp SET replacement = ? WHERE username = ? AND state = 'active'",
                (self._keyring.seal(secret, user=username), username),
            )

    def cancel_pending(self, username: str) -> None:
        """Drop a pending secret, or an active one's waiting replacement (the active one stays)."""
        with self._connect() as conn:
            conn.execute(
                "DELETE FROM demo_totp WHERE username = ? AND state = 'pending'", (username,)
            )
            conn.execute("UPDATE demo_totp SET replacement = NULL WHERE username = ?", (username,))

    def activate(self, username: str, sealed: str, recovery: str) -> bool:
        """Make the waiting ``sealed`` secret active with the ``recovery`` set, in one write.

        ``sealed`` is :attr:`TOTPRecord.sealed` of a pending record or
        :attr:`TOTPRecord.replacement_sealed` of an active one, as read before the code was
        checked: a replacement retires the old secret and its set here. ``False`` if it is no
        longer the one waiting.
        """
        with self._connect() as conn:
            cursor = conn.execute(
                "UPDATE demo_totp SET state = 'active', recovery = ? "
                "WHERE username = ? AND secret = ? AND state = 'pending'",
                (recovery, username, sealed),
            )
            if cursor.rowcount == 0:
                cursor = conn.execute(
                    "UPDATE demo_totp SET secret = replacement, replacement = NULL, "
                    "recovery = ? WHERE username = ? AND replacement = ? AND state = 'active'",
                    (recovery, username, sealed),
                )
            return cursor.rowcount == 1

    def set_recovery(self, username: str, recovery: str) -> None:
        """Replace the active secret's recovery set with ``recovery`` (regenerated codes)."""
        with self._connect() as conn:
            conn.execute(
                "UPDATE demo_totp SET recovery = ? WHERE username = ? AND state = 'active'",
                (recovery, username),
            )

    def remove_totp(self, username: str) -> None:
        """Forget ``username``'s TOTP secret, pending or active, and its recovery codes."""
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
