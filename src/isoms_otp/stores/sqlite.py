"""The embedded default store: one SQLite file, safe across threads and processes on one machine."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable
from typing import TypeVar

from isoms_otp.exceptions import ConfigurationError, StoreError

from ._base import (
    EMPTY_BUDGET,
    EMPTY_MARK,
    EMPTY_RECOVERY,
    Attempt,
    Budget,
    Mark,
    RecoverySet,
    Settlement,
    Snapshot,
    decide,
)

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]

_T = TypeVar("_T")

#: Bumped when the table layout changes. Version 1 (one row per user) is migrated in place;
#: a file with a version this code does not know is refused, not guessed at.
SCHEMA_VERSION = 2

#: The credential id under which version-1 marks (one per user, before marks belonged to a
#: credential) are kept after the migration: a floor for every credential of that user, so
#: that the migration never reopens a used code.
LEGACY_CREDENTIAL = ""

# Marks are TEXT because HOTP counters reach 2**64-1 and SQLite integers stop at 2**63-1.
_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS isoms_otp_budgets (
    user TEXT PRIMARY KEY NOT NULL,
    failures INTEGER NOT NULL,
    blocked_until REAL NOT NULL,
    keep_until REAL NOT NULL
) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS isoms_otp_sources (
    user TEXT NOT NULL,
    source TEXT NOT NULL,
    failures INTEGER NOT NULL,
    blocked_until REAL NOT NULL,
    keep_until REAL NOT NULL,
    PRIMARY KEY (user, source)
) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS isoms_otp_marks (
    user TEXT NOT NULL,
    credential TEXT NOT NULL,
    totp TEXT,
    hotp TEXT,
    keep_until REAL NOT NULL,
    PRIMARY KEY (user, credential)
) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS isoms_otp_recovery (
    user TEXT PRIMARY KEY NOT NULL,
    set_id TEXT NOT NULL,
    used TEXT NOT NULL
) WITHOUT ROWID""",
)
# Version 1 -> 2 in one transaction: failures move to the user's budget, marks to the legacy
# credential (a floor for every credential of the user), then the old table goes.
_MIGRATE_1 = (
    (
        "INSERT INTO isoms_otp_budgets (user, failures, blocked_until, keep_until) "
        "SELECT user, failures, blocked_until, keep_until FROM isoms_otp_users "
        "WHERE failures > 0 OR blocked_until > 0"
    ),
    (
        "INSERT INTO isoms_otp_marks (user, credential, totp, hotp, keep_until) "
        "SELECT user, '', totp, hotp, keep_until FROM isoms_otp_users "
        "WHERE totp IS NOT NULL OR hotp IS NOT NULL"
    ),
    "DROP TABLE isoms_otp_users",
)
_BUDGET = "SELECT failures, blocked_until, keep_until FROM isoms_otp_budgets WHERE user = ?"
_PAIR = (
    "SELECT failures, blocked_until, keep_until FROM isoms_otp_sources "
    "WHERE user = ? AND source = ?"
)
_MARKS = (
    "SELECT credential, totp, hotp, keep_until FROM isoms_otp_marks "
    "WHERE user = ? AND credential IN (?, '')"
)
_ALL_MARKS = "SELECT credential, totp, hotp, keep_until FROM isoms_otp_marks WHERE user = ?"
_RECOVERY = "SELECT set_id, used FROM isoms_otp_recovery WHERE user = ?"
_PUT_BUDGET = (
    "INSERT OR REPLACE INTO isoms_otp_budgets (user, failures, blocked_until, keep_until) "
    "VALUES (?, ?, ?, ?)"
)
_PUT_PAIR = (
    "INSERT OR REPLACE INTO isoms_otp_sources "
    "(user, source, failures, blocked_until, keep_until) VALUES (?, ?, ?, ?, ?)"
)
_PUT_MARK = (
    "INSERT OR REPLACE INTO isoms_otp_marks (user, credential, totp, hotp, keep_until) "
    "VALUES (?, ?, ?, ?, ?)"
)
_PUT_RECOVERY = "INSERT OR REPLACE INTO isoms_otp_recovery (user, set_id, used) VALUES (?, ?, ?)"
# The rules of _base.budget_removable and mark_removable, as SQL (100: NIST's ceiling).
_DELETE_STALE = (
    (
        "DELETE FROM isoms_otp_budgets "
        "WHERE failures < 100 AND keep_until <= ?1 AND blocked_until <= ?1"
    ),
    "DELETE FROM isoms_otp_sources WHERE keep_until <= ?1 AND blocked_until <= ?1",
    "DELETE FROM isoms_otp_marks WHERE hotp IS NULL AND keep_until <= ?1",
)


def _mark(value: object) -> int | None:
    if value is None:
        return None
    if type(value) is not str or not value.isascii() or not value.isdigit():
        raise ValueError("a replay mark is not a decimal number")
    return int(value)


def _budget(row: tuple[object, ...] | None) -> Budget:
    """Turn a row into a Budget, refusing anything this module would not have written."""
    if row is None:
        return EMPTY_BUDGET
    failures, blocked, keep = row
    if type(failures) is not int or failures < 0:
        raise ValueError("a failure count is not a non-negative integer")
    if type(blocked) is not float or type(keep) is not float:
        raise ValueError("a stored time is not a number")
    return Budget(failures=failures, blocked_until=blocked, keep_until=keep)


def _mark_row(row: tuple[object, ...]) -> tuple[str, Mark]:
    credential, totp, hotp, keep = row
    if type(credential) is not str or type(keep) is not float:
        raise ValueError("a stored mark is corrupt")
    return credential, Mark(totp_start=_mark(totp), hotp_counter=_mark(hotp), keep_until=keep)


def _higher(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else max(a, b)


def _merged(rows: list[tuple[object, ...]]) -> Mark:
    """Merge a credential's mark with the legacy (version-1) floor of its user."""
    mark = EMPTY_MARK
    for row in rows:
        _, found = _mark_row(row)
        mark = Mark(
            totp_start=_higher(mark.totp_start, found.totp_start),
            hotp_counter=_higher(mark.hotp_counter, found.hotp_counter),
            keep_until=max(mark.keep_until, found.keep_until),
        )
    return mark


def _recovery(row: tuple[object, ...] | None) -> RecoverySet:
    if row is None:
        return EMPTY_RECOVERY
    set_id, used = row
    if type(set_id) is not str:
        raise ValueError("a recovery set id is not text")
    bits = _mark(used)
    return RecoverySet(set_id=set_id, used=0 if bits is None else bits)


def _text(mark: int | None) -> str | None:
    return None if mark is None else str(mark)


def _read(conn: sqlite3.Connection, user: str, source: str, credential: str) -> Snapshot:
    return Snapshot(
        budget=_budget(conn.execute(_BUDGET, (user,)).fetchone()),
        pair=_budget(conn.execute(_PAIR, (user, source)).fetchone()),
        mark=_merged(conn.execute(_MARKS, (user, credential)).fetchall()),
        recovery=_recovery(conn.execute(_RECOVERY, (user,)).fetchone()),
    )


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
        if version not in (0, 1, SCHEMA_VERSION):
            raise ValueError(
                f"schema version {version} is not {SCHEMA_VERSION}; use a matching isoms-otp"
            )
        for statement in _SCHEMA:
            conn.execute(statement)
        if version == 1:
            for statement in _MIGRATE_1:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def settle(self, attempt: Attempt) -> Settlement:
        """Decide one attempt in one immediate transaction (see ``decide``)."""
        user, source = attempt.user, attempt.source

        def operation(conn: sqlite3.Connection) -> Settlement:
            decision = decide(attempt, _read(conn, user, source, attempt.credential))
            budget, pair, mark = decision.budget, decision.pair, decision.mark
            if budget is not None:
                if budget == EMPTY_BUDGET:
                    conn.execute("DELETE FROM isoms_otp_budgets WHERE user = ?", (user,))
                else:
                    conn.execute(
                        _PUT_BUDGET,
                        (user, budget.failures, budget.blocked_until, budget.keep_until),
                    )
            if pair is not None:
                if pair == EMPTY_BUDGET:
                    conn.execute(
                        "DELETE FROM isoms_otp_sources WHERE user = ? AND source = ?",
                        (user, source),
                    )
                else:
                    conn.execute(
                        _PUT_PAIR,
                        (user, source, pair.failures, pair.blocked_until, pair.keep_until),
                    )
            if mark is not None:
                conn.execute(
                    _PUT_MARK,
                    (
                        user,
                        attempt.credential,
                        _text(mark.totp_start),
                        _text(mark.hotp_counter),
                        float(mark.keep_until),
                    ),
                )
            if decision.recovery is not None:
                recovery = decision.recovery
                conn.execute(_PUT_RECOVERY, (user, recovery.set_id, str(recovery.used)))
            return decision.settlement

        with self._lock:
            return self._run(operation)

    def snapshot(self, user: str, *, source: str = "", credential: str = "") -> Snapshot:
        """Read what ``decide`` would see for these keys (one read, no write lock)."""

        def operation(conn: sqlite3.Connection) -> Snapshot:
            return _read(conn, user, source, credential)

        with self._lock:
            return self._run(operation, write=False)

    def marks(self, user: str) -> dict[str, Mark]:
        """Return every credential mark kept for ``user`` (``""``: marks from schema 1)."""

        def operation(conn: sqlite3.Connection) -> dict[str, Mark]:
            return dict(_mark_row(row) for row in conn.execute(_ALL_MARKS, (user,)).fetchall())

        with self._lock:
            return self._run(operation, write=False)

    def reset(self, user: str, *, now: float) -> None:
        """Clear ``user``'s OTP budget and every pair budget of ``user``; the marks stay."""
        del now  # cleared budgets are deleted outright

        def operation(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM isoms_otp_budgets WHERE user = ?", (user,))
            conn.execute("DELETE FROM isoms_otp_sources WHERE user = ?", (user,))

        with self._lock:
            self._run(operation)

    def prune(self, now: float) -> int:
        """Forget every record that changes no decision at ``now``; return how many."""

        def operation(conn: sqlite3.Connection) -> int:
            return sum(conn.execute(statement, (now,)).rowcount for statement in _DELETE_STALE)

        with self._lock:
            return self._run(operation)

    def close(self) -> None:
        """Close this process's connection; the store must not be used afterwards."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
