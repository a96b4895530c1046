"""The embedded default store: one SQLite file, safe across threads and processes on one machine."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable
from typing import TypeVar

from isoms_otp.exceptions import ConfigurationError, StoreError
from isoms_otp.throttle import ThrottlePolicy

from ._base import EMPTY, Failure, Kind, Settlement, UserState, decide

__all__ = ["SQLiteStore"]

_T = TypeVar("_T")

#: Bumped when the table layout changes; a file with another version is refused, not guessed at.
SCHEMA_VERSION = 1

# Marks are TEXT because HOTP counters reach 2**64-1 and SQLite integers stop at 2**63-1.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS isoms_otp_users (
    user TEXT PRIMARY KEY NOT NULL,
    totp TEXT,
    hotp TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    blocked_until REAL NOT NULL DEFAULT 0,
    keep_until REAL NOT NULL DEFAULT 0
) WITHOUT ROWID
"""
_SELECT = (
    "SELECT totp, hotp, failures, blocked_until, keep_until FROM isoms_otp_users WHERE user = ?"
)
_UPSERT = (
    "INSERT OR REPLACE INTO isoms_otp_users "
    "(user, totp, hotp, failures, blocked_until, keep_until) VALUES (?, ?, ?, ?, ?, ?)"
)
# The same rule as _base.removable, as SQL.
_DELETE_STALE = (
    "DELETE FROM isoms_otp_users WHERE hotp IS NULL AND keep_until <= ?1 AND blocked_until <= ?1"
)
_DELETE_STALE_USER = (
    "DELETE FROM isoms_otp_users "
    "WHERE user = ?2 AND hotp IS NULL AND keep_until <= ?1 AND blocked_until <= ?1"
)


def _mark(value: object) -> int | None:
    if value is None:
        return None
    if type(value) is not str or not value.isascii() or not value.isdigit():
        raise ValueError("a replay mark is not a decimal number")
    return int(value)


def _state(row: tuple[object, ...] | None) -> UserState:
    """Turn a row into a UserState, refusing anything this module would not have written."""
    if row is None:
        return EMPTY
    totp, hotp, failures, blocked, keep = row
    if type(failures) is not int or failures < 0:
        raise ValueError("a failure count is not a non-negative integer")
    if type(blocked) is not float or type(keep) is not float:
        raise ValueError("a stored time is not a number")
    return UserState(
        totp=_mark(totp), hotp=_mark(hotp), failures=failures, blocked_until=blocked,
        keep_until=keep,
    )  # fmt: skip


def _text(mark: int | None) -> str | None:
    return None if mark is None else str(mark)


class SQLiteStore:
    """A store in one SQLite file (stdlib ``sqlite3``): the default for one machine.

    Every operation is one ``BEGIN IMMEDIATE`` transaction, so the read and the write of a
    verification hold SQLite's write lock together: threads, and processes that open the same
    file, cannot interleave inside it. The file is in WAL mode with ``synchronous=FULL`` (an
    accepted code stays used after a power cut). ``timeout`` is how long an operation waits for
    the lock before it fails with :class:`StoreError`. ``":memory:"`` works for tests but is
    private to this object.

    The store is safe to share between threads. After ``fork()`` a child opens its own
    connection (SQLite connections must not cross ``fork``). Do not put the file on a network
    filesystem: SQLite's locking is unreliable there; use :class:`RedisStore` across machines.
    """

    __slots__ = ("_abandoned", "_conn", "_lock", "_path", "_pid", "_timeout")

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 5.0) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or os.PathLike, not {type(path).__name__}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError(f"timeout must be a number of seconds, not {type(timeout).__name__}")
        if not 0 < timeout <= 600:
            raise ConfigurationError(f"timeout must be from 0 to 600 seconds (got {timeout!r})")
        self._path = os.fspath(path)
        self._timeout = float(timeout)
        self._lock = threading.Lock()
        self._abandoned: list[sqlite3.Connection] = []
        self._conn: sqlite3.Connection | None = None
        self._pid = os.getpid()
        try:
            with self._lock:
                self._run(self._create)
        except StoreError:
            self.close()  # a refused file must not leave a connection open
            raise

    def __repr__(self) -> str:
        return f"SQLiteStore({self._path!r})"

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self._path, timeout=self._timeout, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
        except BaseException:
            conn.close()
            raise
        return conn

    def _connection(self) -> sqlite3.Connection:
        if self._pid != os.getpid():
            # A connection inherited through fork() must never be used, nor closed (closing may
            # checkpoint the parent's WAL); keep it referenced and open a fresh one.
            if self._conn is not None:
                self._abandoned.append(self._conn)
            self._conn = None
            self._pid = os.getpid()
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def _run(self, operation: Callable[[sqlite3.Connection], _T], *, write: bool = True) -> _T:
        """Run ``operation`` in one immediate transaction; any failure rolls back and fails closed.

        ``write=False`` runs a single read without taking the write lock (WAL readers see the
        last committed state). The caller holds ``self._lock``.
        """
        try:
            conn = self._connection()
            if conn.in_transaction:
                # Left open by a call whose rollback was itself interrupted: it holds the
                # write lock that every other process is waiting for.
                conn.rollback()
            if not write:
                return operation(conn)
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = operation(conn)
                conn.execute("COMMIT")
            except BaseException:
                # KeyboardInterrupt, SystemExit or a gevent Timeout too: an open transaction
                # would keep the write lock and stall every other process using the file.
                # The original exception is the one to report, so the rollback's own is dropped.
                with contextlib.suppress(sqlite3.Error):
                    conn.rollback()
                raise
        except (sqlite3.Error, ValueError, TypeError) as exc:
            raise StoreError(
                f"the SQLite store at {self._path!r} failed ({type(exc).__name__}: {exc}); "
                "the verification was refused"
            ) from exc
        return result

    @staticmethod
    def _create(conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            raise ValueError(
                f"schema version {version} is not {SCHEMA_VERSION}; use a matching isoms-otp"
            )
        conn.execute(_SCHEMA)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def settle(
        self,
        user: str,
        *,
        now: float,
        kind: Kind,
        step: int | None,
        failure: Failure,
        keep_until: float,
        policy: ThrottlePolicy,
    ) -> Settlement:
        """Decide one verification in one immediate transaction (see ``decide``)."""

        def operation(conn: sqlite3.Connection) -> Settlement:
            state = _state(conn.execute(_SELECT, (user,)).fetchone())
            new, outcome = decide(
                state,
                now=now,
                kind=kind,
                step=step,
                failure=failure,
                keep_until=keep_until,
                policy=policy,
            )
            if new is not None:
                conn.execute(
                    _UPSERT,
                    (
                        user,
                        _text(new.totp),
                        _text(new.hotp),
                        new.failures,
                        float(new.blocked_until),
                        float(new.keep_until),
                    ),
                )
            return outcome

        with self._lock:
            return self._run(operation)

    def mark(self, user: str, kind: Kind) -> int | None:
        """Return the highest accepted step/counter of ``kind`` for ``user`` (``None``: none)."""

        def operation(conn: sqlite3.Connection) -> int | None:
            state = _state(conn.execute(_SELECT, (user,)).fetchone())
            return state.totp if kind == "totp" else state.hotp

        with self._lock:
            return self._run(operation, write=False)

    def blocked_until(self, user: str) -> float:
        """Return the Unix time before which ``user``'s attempts are refused (0: never blocked)."""

        def operation(conn: sqlite3.Connection) -> float:
            return _state(conn.execute(_SELECT, (user,)).fetchone()).blocked_until

        with self._lock:
            return self._run(operation, write=False)

    def reset(self, user: str, *, now: float) -> None:
        """Clear ``user``'s failures and lock; the replay marks stay."""

        def operation(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE isoms_otp_users SET failures = 0, blocked_until = 0 WHERE user = ?",
                (user,),
            )
            conn.execute(_DELETE_STALE_USER, (now, user))

        with self._lock:
            self._run(operation)

    def prune(self, now: float) -> int:
        """Forget every user whose state no longer matters at ``now``; return how many."""

        def operation(conn: sqlite3.Connection) -> int:
            return conn.execute(_DELETE_STALE, (now,)).rowcount

        with self._lock:
            return self._run(operation)

    def close(self) -> None:
        """Close this process's connection; the store must not be used afterwards."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
