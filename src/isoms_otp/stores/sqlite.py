"""The embedded default store: one SQLite file, safe across threads and processes on one machine."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from isoms_otp._limits import check_store_timeout
from isoms_otp.exceptions import StoreError

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
    StoreFinding,
    decide,
)

__all__ = ["BATCH", "NETWORK_FILESYSTEMS", "SCHEMA_VERSION", "SLACK", "SQLiteStore"]

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
    # What prune filters on, so that it finds stale rows without scanning every user. Partial
    # where a row can never go (the 100-failure ceiling, HOTP counters): prune never sees them.
    """CREATE INDEX IF NOT EXISTS isoms_otp_budgets_stale
    ON isoms_otp_budgets (keep_until) WHERE failures < 100""",
    "CREATE INDEX IF NOT EXISTS isoms_otp_sources_stale ON isoms_otp_sources (keep_until)",
    """CREATE INDEX IF NOT EXISTS isoms_otp_marks_stale
    ON isoms_otp_marks (keep_until) WHERE hotp IS NULL""",
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
# The rules of _base.budget_removable and mark_removable, as SQL (100: NIST's ceiling), at
# most ?2 rows per statement so that prune holds the write lock for one short batch at a time.
_DELETE_STALE = (
    (
        "DELETE FROM isoms_otp_budgets WHERE user IN (SELECT user FROM isoms_otp_budgets "
        "WHERE failures < 100 AND keep_until <= ?1 AND blocked_until <= ?1 LIMIT ?2)"
    ),
    (
        "DELETE FROM isoms_otp_sources WHERE (user, source) IN (SELECT user, source "
        "FROM isoms_otp_sources WHERE keep_until <= ?1 AND blocked_until <= ?1 LIMIT ?2)"
    ),
    (
        "DELETE FROM isoms_otp_marks WHERE (user, credential) IN (SELECT user, credential "
        "FROM isoms_otp_marks WHERE hotp IS NULL AND keep_until <= ?1 LIMIT ?2)"
    ),
)

_INDEXES = (
    "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name IN "
    "('isoms_otp_budgets_stale', 'isoms_otp_sources_stale', 'isoms_otp_marks_stale')"
)

#: Rows prune deletes per transaction; the write lock is released between batches.
BATCH = 1000

#: How far past ``timeout`` a call may end (seconds): the busy handler's last sleep and the
#: call's own statements. A call that got the write lock also finishes its transaction (one
#: fsync), which no deadline interrupts.
SLACK = 0.05

#: Filesystem types (``/proc/mounts``) on which SQLite's locking or WAL shared memory cannot be
#: trusted: a used code or a lock-out written by one machine may be unseen by another.
NETWORK_FILESYSTEMS = frozenset(
    {
        "9p",
        "afs",
        "ceph",
        "cifs",
        "davfs",
        "fuse.gcsfuse",
        "fuse.glusterfs",
        "fuse.rclone",
        "fuse.s3fs",
        "fuse.sshfs",
        "glusterfs",
        "gpfs",
        "lustre",
        "ncpfs",
        "nfs",
        "nfs4",
        "smb3",
        "smbfs",
        "sshfs",
    }
)

# The files whose identity is recorded: replacing or removing any of them under an open
# connection splits the state in two (this connection writes where no new one will look).
_SUFFIXES = ("", "-wal", "-shm")
_PRIVATE = (":memory:", "")
_FULL = 2  # PRAGMA synchronous: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA


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


def _checkpoint(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _busy(exc: BaseException) -> bool:
    """Say whether ``exc`` is SQLite's "locked" or "busy", which waiting can cure."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def _wal(conn: sqlite3.Connection, *, private: bool) -> None:
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode != "wal" and not private:
        raise ValueError(f"the file could not be put in WAL mode (it is in {mode!r})")


def _identity(path: str) -> tuple[tuple[int, int], ...]:
    """Return the (device, inode) of the database file and its -wal and -shm files."""
    found = []
    for suffix in _SUFFIXES:
        info = os.stat(path + suffix)  # noqa: PTH116 - on every call: no Path object to build
        found.append((info.st_dev, info.st_ino))
    return tuple(found)


def _unescape(field: str) -> str:
    r"""Decode the octal escapes of a /proc/mounts field (``\\040`` is a space)."""
    if "\\" not in field:
        return field
    return field.encode("latin-1").decode("unicode_escape")


def _mount_type(path: str, mounts: str) -> tuple[str, str] | None:
    """Return (mount point, filesystem type) of the mount holding ``path``, from /proc/mounts."""
    best: tuple[str, str] | None = None
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point, kind = _unescape(fields[1]), fields[2]
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= len(best[0])):
            best = (point, kind)  # the last and longest mount point over a path wins
    return best


def _filesystem_findings(path: str, mounts_file: str = "/proc/mounts") -> list[StoreFinding]:
    """Report a network filesystem under ``path``, or that the mount table was unreadable."""
    where = os.path.realpath(path)
    try:
        mounts = Path(mounts_file).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return [
            StoreFinding(
                rule="filesystem-unknown",
                severity="info",
                message=f"could not read {mounts_file} ({type(exc).__name__}): the filesystem "
                f"under {where!r} was not checked; it must be a local disk",
            )
        ]
    found = _mount_type(where, mounts)
    if found is None:
        return [
            StoreFinding(
                rule="filesystem-unknown",
                severity="info",
                message=f"no mount in {mounts_file} holds {where!r}: the filesystem was not "
                "checked; it must be a local disk",
            )
        ]
    point, kind = found
    if kind in NETWORK_FILESYSTEMS or kind.startswith("nfs"):
        return [
            StoreFinding(
                rule="network-filesystem",
                severity="serious",
                message=f"{where!r} is on a {kind} filesystem (mounted at {point!r}): SQLite's "
                "locks and WAL shared memory do not work across machines, so a code can be "
                "accepted twice and failures lost; use a local disk, or RedisStore",
            )
        ]
    return []


def _mode_findings(path: str) -> list[StoreFinding]:
    """Report database files that other users can write (serious) or read (warning)."""
    findings: list[StoreFinding] = []
    for suffix in _SUFFIXES:
        name = path + suffix
        try:
            mode = stat.S_IMODE(Path(name).stat().st_mode)
        except FileNotFoundError:
            continue  # -wal and -shm exist only while the file is open
        except OSError as exc:
            findings.append(
                StoreFinding(
                    rule="mode-unknown",
                    severity="info",
                    message=f"could not read the permissions of {name!r} "
                    f"({type(exc).__name__}): not checked",
                )
            )
            continue
        if mode & 0o022:
            findings.append(
                StoreFinding(
                    rule="writable-by-others",
                    severity="serious",
                    message=f"{name!r} has mode {mode:04o}: other users can clear replay marks "
                    "and lock-outs; chmod 600 it (and its directory's other files)",
                )
            )
        elif mode & 0o044:
            findings.append(
                StoreFinding(
                    rule="readable-by-others",
                    severity="warning",
                    message=f"{name!r} has mode {mode:04o}: other users can read who signs in "
                    "and who is locked out; chmod 600 it (set umask 077 for the service)",
                )
            )
    return findings


class SQLiteStore:
    """A store in one SQLite file (stdlib ``sqlite3``): the default for one machine.

    Every operation is one ``BEGIN IMMEDIATE`` transaction, so the read and the write of a
    verification hold SQLite's write lock together: threads, and processes that open the same
    file, cannot interleave inside it. The file is in WAL mode with ``synchronous=FULL`` (an
    accepted code stays used after a power cut). ``timeout`` is the deadline of every call,
    counted from its start: waiting for this object's other threads, for another process's
    write lock and, when opening, for a file other processes are creating, all share it; past
    it the call fails with :class:`StoreError` (it ends within ``timeout`` plus :data:`SLACK`,
    plus its own transaction when it got the lock). ``":memory:"`` works for tests but is
    private to this object.

    The file must stay where it was opened: every call checks that the path still names the
    file (and ``-wal``/``-shm`` files) this store opened, and once a file was removed or
    replaced, every call fails with :class:`StoreError` until a new store is opened.

    The store is safe to share between threads. After ``fork()`` a child opens its own
    connection (SQLite connections must not cross ``fork``). Do not put the file on a network
    filesystem: SQLite's locking is unreliable there; use :class:`RedisStore` across machines.
    :meth:`check` reports that and other deployment problems.
    """

    __slots__ = (
        "_abandoned",
        "_broken",
        "_busy_ms",
        "_conn",
        "_identity",
        "_lock",
        "_path",
        "_pid",
        "_timeout",
        "_where",
    )

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 5.0) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or os.PathLike, not {type(path).__name__}")
        seconds = check_store_timeout(timeout)
        self._path = os.fspath(path)
        # SQLite resolves a relative path when it opens the file; so must the file checks, or
        # a chdir() would look like a removed file.
        self._where = self._path if self._path in _PRIVATE else str(Path(self._path).absolute())
        self._timeout = seconds
        self._lock = threading.Lock()
        self._abandoned: list[sqlite3.Connection] = []
        self._conn: sqlite3.Connection | None = None
        self._busy_ms = 0
        self._identity: tuple[tuple[int, int], ...] | None = None
        self._broken: str | None = None
        self._pid = os.getpid()
        deadline = time.monotonic() + self._timeout
        try:
            self._open(deadline)
        except (sqlite3.Error, ValueError, OSError) as exc:
            self.close()  # a refused file must not leave a connection open
            raise StoreError(
                f"could not open the SQLite store at {self._path!r} "
                f"({type(exc).__name__}: {exc}); nothing was verified"
            ) from exc

    def __repr__(self) -> str:
        return f"SQLiteStore({self._path!r})"

    def _open(self, deadline: float) -> None:
        """Connect, create or migrate the schema, and record which files were opened.

        Processes creating the same new file together meet "database is locked" from the
        switch to WAL, which SQLite's busy handler does not cover: retried until ``deadline``.
        """
        pause = 0.001
        while True:
            try:
                conn = self._connection(deadline)
                if self._ready(conn):
                    # Nothing to create: no write lock needed, so a worker starts even while
                    # another process holds the lock.
                    self._record()
                    return
                self._begin(conn, deadline)
                try:
                    self._create(conn)
                    self._record()
                    conn.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        conn.rollback()
                    raise
            except sqlite3.Error as exc:  # noqa: PERF203 - a retry loop, rarely taken
                if not _busy(exc) or time.monotonic() + pause >= deadline:
                    raise
                self._discard()
                time.sleep(pause)
                pause = min(pause * 2, 0.05)
            else:
                return

    @staticmethod
    def _ready(conn: sqlite3.Connection) -> bool:
        """Say whether the file already holds this schema version with every index."""
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        indexes = conn.execute(_INDEXES).fetchone()[0]
        return bool(version == SCHEMA_VERSION and indexes == len(_SCHEMA) - 4)

    def _record(self) -> None:
        """Remember which files the path names now (the connection has them open)."""
        if self._path not in _PRIVATE:
            self._identity = _identity(self._where)

    def _discard(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()
        self._conn = None

    def _connect(self, deadline: float) -> sqlite3.Connection:
        remaining = max(deadline - time.monotonic(), 0.001)
        conn = sqlite3.connect(
            self._where, timeout=remaining, isolation_level=None, check_same_thread=False
        )
        self._busy_ms = int(remaining * 1000)
        try:
            _wal(conn, private=self._path in _PRIVATE)
            conn.execute("PRAGMA synchronous=FULL")
        except BaseException:
            conn.close()
            raise
        return conn

    def _connection(self, deadline: float | None = None) -> sqlite3.Connection:
        if deadline is None:
            deadline = time.monotonic() + self._timeout
        if self._pid != os.getpid():
            # A connection inherited through fork() must never be used, nor closed (closing may
            # checkpoint the parent's WAL); keep it referenced and open a fresh one.
            if self._conn is not None:
                self._abandoned.append(self._conn)
            self._conn = None
            self._pid = os.getpid()
        if self._conn is None:
            self._conn = self._connect(deadline)
        return self._conn

    def _begin(self, conn: sqlite3.Connection, deadline: float, *, write: bool = True) -> None:
        """Set the busy timeout to what is left of ``deadline``; take the write lock if ``write``.

        The pragma is issued only when the whole milliseconds left changed, so an uncontended
        call costs nothing extra (and the statement cache keeps its hot statements).
        """
        left = int((deadline - time.monotonic()) * 1000)
        if left <= 0:
            raise sqlite3.OperationalError("database is locked (the deadline passed)")
        if left != self._busy_ms:
            conn.execute(f"PRAGMA busy_timeout = {left}")
            self._busy_ms = left
        if write:
            conn.execute("BEGIN IMMEDIATE")

    def _check_files(self) -> None:
        """Fail (for good) if the path no longer names the files this store opened."""
        if self._identity is None:
            return
        try:
            same = _identity(self._where) == self._identity
            change = "replaced"
        except FileNotFoundError:
            same, change = False, "removed"
        except OSError as exc:  # a directory turned into a file, no permission ...
            same, change = False, f"made unreadable ({type(exc).__name__})"
        if same:
            return
        self._broken = (
            f"the SQLite file at {self._path!r} (or its -wal or -shm file) was {change} "
            "while this store had it open: what this store wrote since is where no other "
            "process looks. Find out why, then open a new SQLiteStore (restart the workers)"
        )
        raise ValueError("the database file changed under this store")

    def _run(
        self,
        operation: Callable[[sqlite3.Connection], _T],
        *,
        write: bool = True,
        refusal: str = "nothing was changed",
    ) -> _T:
        """Run ``operation`` in one immediate transaction within the call's deadline.

        Any failure rolls back and fails closed with :class:`StoreError` ending in ``refusal``.
        ``write=False`` runs a single read without taking the write lock (WAL readers see the
        last committed state).
        """
        deadline = time.monotonic() + self._timeout
        if not self._lock.acquire(timeout=self._timeout):
            raise StoreError(
                f"the SQLite store at {self._path!r} timed out after {self._timeout:g} s "
                f"waiting for this process's other calls; {refusal}"
            )
        try:
            if self._broken is not None:
                raise StoreError(f"{self._broken}; {refusal}")
            return self._transaction(operation, deadline, write=write, refusal=refusal)
        finally:
            self._lock.release()

    def _transaction(
        self,
        operation: Callable[[sqlite3.Connection], _T],
        deadline: float,
        *,
        write: bool,
        refusal: str,
    ) -> _T:
        try:
            try:
                conn = self._connection(deadline)
            except sqlite3.Error as exc:
                raise StoreError(
                    f"could not open the SQLite store at {self._path!r} "
                    f"({type(exc).__name__}: {exc}); {refusal}"
                ) from exc
            if conn.in_transaction:
                # Left open by a call whose rollback was itself interrupted: it holds the
                # write lock that every other process is waiting for.
                conn.rollback()
            if not write:
                self._begin(conn, deadline, write=False)
                result = operation(conn)
                self._check_files()
                return result
            self._begin(conn, deadline)
            try:
                result = operation(conn)
                self._check_files()  # last, so that a change is seen before COMMIT
                conn.execute("COMMIT")
            except BaseException:
                # KeyboardInterrupt, SystemExit or a gevent Timeout too: an open transaction
                # would keep the write lock and stall every other process using the file.
                # The original exception is the one to report, so the rollback's own is dropped.
                with contextlib.suppress(sqlite3.Error):
                    conn.rollback()
                raise
        except (sqlite3.Error, ValueError, TypeError) as exc:
            if self._broken is not None:
                # SQLite skips the checkpoint on close when the database file moved, so
                # closing cannot write into, or delete the -wal of, a file put in its place.
                self._discard()
                raise StoreError(f"{self._broken}; {refusal}") from exc
            if _busy(exc):
                raise StoreError(
                    f"the SQLite store at {self._path!r} stayed locked by another process "
                    f"for the whole timeout ({self._timeout:g} s); {refusal}"
                ) from exc
            raise StoreError(
                f"the SQLite store at {self._path!r} failed ({type(exc).__name__}: {exc}); "
                f"{refusal}"
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

        return self._run(operation, refusal="the verification was refused")

    def snapshot(self, user: str, *, source: str = "", credential: str = "") -> Snapshot:
        """Read what ``decide`` would see for these keys (one read, no write lock)."""

        def operation(conn: sqlite3.Connection) -> Snapshot:
            return _read(conn, user, source, credential)

        return self._run(operation, write=False, refusal="nothing was read")

    def marks(self, user: str) -> dict[str, Mark]:
        """Return every credential mark kept for ``user`` (``""``: marks from schema 1)."""

        def operation(conn: sqlite3.Connection) -> dict[str, Mark]:
            return dict(_mark_row(row) for row in conn.execute(_ALL_MARKS, (user,)).fetchall())

        return self._run(operation, write=False, refusal="nothing was read")

    def reset(self, user: str, *, now: float) -> None:
        """Clear ``user``'s OTP budget and every pair budget of ``user``; the marks stay."""
        del now  # cleared budgets are deleted outright

        def operation(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM isoms_otp_budgets WHERE user = ?", (user,))
            conn.execute("DELETE FROM isoms_otp_sources WHERE user = ?", (user,))

        self._run(operation, refusal="the user was not reset")

    def prune(self, now: float) -> int:
        """Forget every record that changes no decision at ``now``; return how many.

        It deletes at most :data:`BATCH` rows per transaction and lets other calls (threads
        and processes) take the write lock between batches, so a large prune delays a sign-in
        by one batch at most. Each batch has its own ``timeout``; the whole prune takes time
        in proportion to the stale rows. A failure raises :class:`StoreError`: the batches
        before it stay deleted, which changes no decision.
        """
        total = 0
        for statement in _DELETE_STALE:

            def operation(conn: sqlite3.Connection, sql: str = statement) -> int:
                return int(conn.execute(sql, (now, BATCH)).rowcount)

            while True:
                gone = self._run(operation, refusal="the prune stopped")
                total += gone
                # Copy the batch's pages into the database here, without the write lock, so
                # that the next sign-in's commit does not inherit a large automatic checkpoint.
                self._run(_checkpoint, write=False, refusal="the prune stopped")
                if gone < BATCH:
                    break
        return total

    def check(self) -> list[StoreFinding]:
        """Return what about this deployment can lose replay marks or lock-outs, or leak them.

        Looks for: a network filesystem under the file (``/proc/mounts``; Linux), files that
        other users can write (serious) or read (warning), a journal mode other than WAL and
        ``synchronous`` below FULL, and a file removed or replaced since it was opened. What
        could not be read is an ``"info"`` finding that says so. Nothing is changed.
        """
        findings: list[StoreFinding] = []
        if self._path in _PRIVATE:
            findings.append(
                StoreFinding(
                    rule="private",
                    severity="info",
                    message="an in-memory database is private to this object: "
                    "other processes never see its marks (tests only)",
                )
            )
        else:
            findings += _filesystem_findings(self._where)
            findings += _mode_findings(self._where)

        def operation(conn: sqlite3.Connection) -> tuple[str, int]:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            return str(mode), int(conn.execute("PRAGMA synchronous").fetchone()[0])

        try:
            mode, synchronous = self._run(operation, write=False, refusal="nothing was read")
        except StoreError as exc:
            findings.append(StoreFinding(rule="unreadable", severity="serious", message=str(exc)))
            return findings
        if mode != "wal" and self._path not in _PRIVATE:
            findings.append(
                StoreFinding(
                    rule="journal-mode",
                    severity="warning",
                    message=f"the journal mode is {mode!r}, not 'wal': readers wait for "
                    "writers and sign-ins queue; open the file only with isoms-otp",
                )
            )
        if synchronous < _FULL:
            findings.append(
                StoreFinding(
                    rule="synchronous",
                    severity="serious",
                    message=f"PRAGMA synchronous is {synchronous}, below FULL (2): a power cut "
                    "can forget accepted codes (they are accepted again) and failures",
                )
            )
        return findings

    def close(self) -> None:
        """Close this process's connection; the store must not be used afterwards."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
