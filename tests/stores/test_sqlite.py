"""SQLiteStore beyond the contract: pruning, persistence, failing closed, forks."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from isoms_otp import HOTP, TOTP, ConfigurationError, SQLiteStore, StoreError, ThrottlePolicy
from isoms_otp import Verifier as _Verifier
from isoms_otp.stores import Attempt, Budget, Snapshot, decide
from isoms_otp.stores.sqlite import SCHEMA_VERSION
from isoms_otp.testing import FakeClock
from isoms_otp.verifier import credential_id


@contextmanager
def connect(path: str | Path) -> Iterator[sqlite3.Connection]:
    """A plain connection in one transaction, closed afterwards (sqlite3's own ``with`` only
    commits, and Python 3.13 warns about the connection left open)."""
    conn = sqlite3.connect(path)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


SECRET = bytes(range(20))
START = 30 * 56_666_667 + 10
POLICY = ThrottlePolicy(max_failures=3, base_delay=0)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "otp.sqlite3"


@pytest.fixture
def opened() -> Iterator[Callable[..., SQLiteStore]]:
    """Open SQLiteStores that are closed after the test (unclosed connections warn)."""
    stores: list[SQLiteStore] = []

    def open_store(*args: Any, **kwargs: Any) -> SQLiteStore:
        stores.append(SQLiteStore(*args, **kwargs))
        return stores[-1]

    yield open_store
    for store in stores:
        store.close()


def verifier(store: SQLiteStore, clock: FakeClock) -> _Verifier:
    return _Verifier(store, clock=clock, policy=POLICY)


def rows(path: Path, table: str = "isoms_otp_marks") -> list[tuple[object, ...]]:
    with connect(path) as conn:
        return conn.execute(f"SELECT * FROM {table} ORDER BY user").fetchall()  # noqa: S608


def test_state_survives_reopening(path: Path) -> None:
    """A used code stays used for a new store object (another process) on the same file."""
    clock, totp = FakeClock(START), TOTP(SECRET)
    first = SQLiteStore(path)
    assert "accepted" == verifier(first, clock).verify("alice", totp, totp.generate(START)).reason
    first.close()
    second = SQLiteStore(path)
    assert "replayed" == verifier(second, clock).verify("alice", totp, totp.generate(START)).reason
    second.close()


def test_prune_counts_and_keeps(path: Path, opened: Callable[..., SQLiteStore]) -> None:
    """prune drops TOTP-only users once their mark cannot matter, and nothing else."""
    clock, totp, hotp = FakeClock(START), TOTP(SECRET), HOTP(SECRET)
    store = opened(path)
    check = verifier(store, clock)
    assert check.verify("t1", totp, totp.generate(START))
    assert check.verify("t2", totp, totp.generate(START))
    assert check.verify("h", hotp, hotp.generate(0))
    assert not check.verify("f", totp, "000000")
    assert 0 == check.prune()
    clock.advance(11 * 30)  # the mark's step is now 11 steps back: below every window
    assert 2 == check.prune()
    assert ["h"] == [row[0] for row in rows(path)]
    assert ["f"] == [row[0] for row in rows(path, "isoms_otp_budgets")]
    assert 0 == check.prune()


def test_marks_are_exact_text(path: Path, opened: Callable[..., SQLiteStore]) -> None:
    """HOTP counters up to 2**64-1 are stored exactly (SQLite integers stop at 2**63-1)."""
    store = opened(path)
    outcome = store.settle(
        Attempt(user="h", now=START, kind="hotp", credential="c", claim=2**64 - 1, policy=POLICY)
    )
    assert "accepted" == outcome.reason
    assert [("h", "c", None, str(2**64 - 1), 0.0)] == rows(path)


@pytest.mark.parametrize(
    ("table", "column", "value"),
    [
        ("budgets", "failures", "'many'"),
        ("budgets", "failures", "-1"),
        ("budgets", "blocked_until", "'soon'"),
        ("marks", "hotp", "'12x'"),
        ("marks", "totp", "X'37'"),
        ("marks", "keep_until", "'later'"),
        ("sources", "failures", "'many'"),
    ],
    ids=["failures-text", "failures-negative", "blocked-text", "hotp-junk", "totp-blob",
         "keep-text", "source-failures-text"],
)  # fmt: skip
def test_corrupt_row_fails_closed(
    path: Path, table: str, column: str, value: str, opened: Callable[..., SQLiteStore]
) -> None:
    """A row this module would not have written raises StoreError, never a verdict."""
    clock, totp = FakeClock(START), TOTP(SECRET)
    store = opened(path)
    check = verifier(store, clock)
    assert not check.verify("alice", totp, "000000")
    assert not check.record_failure("alice")
    with connect(path) as conn:
        conn.execute(
            "INSERT INTO isoms_otp_marks VALUES ('alice', ?, '1', NULL, 0.0)",
            (credential_id(totp),),
        )
        conn.execute(f"UPDATE isoms_otp_{table} SET {column} = {value}")  # noqa: S608
    with pytest.raises(StoreError, match="SQLite store") as caught:
        verifier(store, clock).verify("alice", totp, totp.generate(START))
    assert totp.generate(START) not in str(caught.value)


def test_failed_write_leaves_nothing_behind(path: Path, opened: Callable[..., SQLiteStore]) -> None:
    """If the write of a settle fails, the transaction rolls back: no half-written state."""
    clock, totp = FakeClock(START), TOTP(SECRET)
    store = opened(path)
    with connect(path) as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON isoms_otp_marks "
            "BEGIN SELECT RAISE(ABORT, 'disk full (simulated)'); END"
        )
    with pytest.raises(StoreError, match="disk full"):
        verifier(store, clock).verify("alice", totp, totp.generate(START))
    assert [] == rows(path)
    with connect(path) as conn:
        conn.execute("DROP TRIGGER refuse")
    assert "accepted" == verifier(store, clock).verify("alice", totp, totp.generate(START)).reason


def test_interrupted_settle_releases_the_write_lock(
    path: Path, opened: Callable[..., SQLiteStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: a BaseException inside a settle used to leave the transaction open.

    Only sqlite3.Error, ValueError and TypeError rolled back, so a KeyboardInterrupt
    (or SystemExit, or a gevent Timeout) between BEGIN IMMEDIATE and COMMIT kept the
    write lock: every other process then failed with "database is locked".
    """
    clock, totp = FakeClock(START), TOTP(SECRET)
    interrupted = opened(path)
    calls: list[int] = []

    def decide_interrupted_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return decide(*args, **kwargs)

    monkeypatch.setattr("isoms_otp.stores.sqlite.decide", decide_interrupted_once)
    with pytest.raises(KeyboardInterrupt):
        verifier(interrupted, clock).verify("alice", totp, totp.generate(START))
    other = opened(path, timeout=0.05)  # a held lock would fail this at once
    assert "accepted" == verifier(other, clock).verify("alice", totp, totp.generate(START)).reason
    assert (
        "replayed"
        == verifier(interrupted, clock).verify("alice", totp, totp.generate(START)).reason
    )


def test_transaction_left_open_is_rolled_back_first(
    path: Path, opened: Callable[..., SQLiteStore]
) -> None:
    """A transaction left open on the store's connection is rolled back by its next call.

    That happens if the rollback after an interruption is itself interrupted; the next call
    must not run inside the stale transaction, and must let go of the write lock.
    """
    clock, totp = FakeClock(START), TOTP(SECRET)
    store = opened(path)
    store._connection().execute("BEGIN IMMEDIATE")
    assert "accepted" == verifier(store, clock).verify("alice", totp, totp.generate(START)).reason
    other = opened(path, timeout=0.05)
    assert "replayed" == verifier(other, clock).verify("alice", totp, totp.generate(START)).reason


def test_busy_database_fails_closed(path: Path, opened: Callable[..., SQLiteStore]) -> None:
    """A write lock held elsewhere past the timeout gives StoreError; then it works again."""
    clock, totp = FakeClock(START), TOTP(SECRET)
    store = opened(path, timeout=0.05)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    with pytest.raises(StoreError, match="locked"):
        verifier(store, clock).verify("alice", totp, totp.generate(START))
    holder.execute("ROLLBACK")
    holder.close()
    assert "accepted" == verifier(store, clock).verify("alice", totp, totp.generate(START)).reason


def test_unopenable_path(tmp_path: Path) -> None:
    """A path that cannot be opened fails at construction with StoreError."""
    with pytest.raises(StoreError, match="SQLite store"):
        SQLiteStore(tmp_path / "missing-directory" / "otp.sqlite3")


def test_other_schema_version_refused(path: Path) -> None:
    """A file written by another schema version is refused, not guessed at."""
    with connect(path) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="schema version 99") as caught:
        SQLiteStore(path)
    assert "use a matching isoms-otp" in str(caught.value)


def test_wal_mode(path: Path) -> None:
    """The file is in WAL mode, so readers never block the writer."""
    SQLiteStore(path).close()
    with connect(path) as conn:
        assert "wal" == conn.execute("PRAGMA journal_mode").fetchone()[0]


def test_memory_database(opened: Callable[..., SQLiteStore]) -> None:
    """ ":memory:" works (private to the object), for tests."""
    clock, totp = FakeClock(START), TOTP(SECRET)
    store = opened(":memory:")
    assert "SQLiteStore(':memory:')" == repr(store)
    assert verifier(store, clock).verify("alice", totp, totp.generate(START))


def test_new_connection_after_fork(path: Path) -> None:
    """A store used in another process (after fork) opens its own connection."""
    clock, totp = FakeClock(START), TOTP(SECRET)
    store = SQLiteStore(path)
    assert verifier(store, clock).verify("alice", totp, totp.generate(START))
    inherited = store._conn
    store._pid = -1  # what os.getpid() differing from the creator's pid means: a forked child
    assert "replayed" == verifier(store, clock).verify("alice", totp, totp.generate(START)).reason
    assert store._conn is not inherited
    assert [inherited] == store._abandoned
    own = store._conn
    store._pid = -1
    store.close()  # not this process's connection: left alone, never closed
    assert own is not None
    own.execute("SELECT 1")
    store._pid = -1  # a fork of a closed store: nothing to abandon
    assert "replayed" == verifier(store, clock).verify("alice", totp, totp.generate(START)).reason
    assert [inherited] == store._abandoned
    store.close()
    for conn in (inherited, own):
        assert conn is not None
        conn.close()


def test_not_a_database(path: Path) -> None:
    """A file that is not an SQLite database fails with StoreError."""
    path.write_bytes(b"this is not an SQLite database, but it is long enough to look at" * 2)
    with pytest.raises(StoreError, match="not a database"):
        SQLiteStore(path)


@pytest.mark.parametrize(
    ("timeout", "error"),
    [("1", TypeError), (True, TypeError), (0, ConfigurationError), (601, ConfigurationError)],
    ids=["str", "bool", "zero", "too-long"],
)
def test_timeout_validated(path: Path, timeout: object, error: type[Exception]) -> None:
    """The timeout must be a number of seconds in (0, 600]."""
    with pytest.raises(error, match="timeout"):
        SQLiteStore(path, timeout=timeout)  # type: ignore[arg-type]


def test_path_type(path: Path) -> None:
    """The path must be a str or os.PathLike."""
    with pytest.raises(TypeError, match="path"):
        SQLiteStore(3)  # type: ignore[arg-type]


def test_decide_is_pure() -> None:
    """decide() never mutates the state it is given."""
    state = Snapshot(budget=Budget(failures=1))
    decision = decide(Attempt(user="a", now=10.0, kind="hotp", policy=POLICY), state)
    assert (Snapshot(budget=Budget(failures=1)), "invalid", 2) == (
        state, decision.settlement.reason, decision.budget and decision.budget.failures
    )  # fmt: skip


V1_SCHEMA = """
CREATE TABLE isoms_otp_users (
    user TEXT PRIMARY KEY NOT NULL,
    totp TEXT,
    hotp TEXT,
    failures INTEGER NOT NULL DEFAULT 0,
    blocked_until REAL NOT NULL DEFAULT 0,
    keep_until REAL NOT NULL DEFAULT 0
) WITHOUT ROWID
"""


def test_migration_from_schema_1_reopens_no_code(
    path: Path, opened: Callable[..., SQLiteStore]
) -> None:
    """A version-1 file is migrated in place: its marks bind every credential of the user,
    failure counts and locks stay, and the file says version 2 afterwards."""
    totp, hotp, clock = TOTP(SECRET), HOTP(SECRET), FakeClock(START)
    step_start = START - START % 30
    with connect(path) as conn:
        conn.execute(V1_SCHEMA)
        conn.executemany(
            "INSERT INTO isoms_otp_users VALUES (?, ?, ?, ?, ?, ?)",
            [
                ("alice", str(step_start), None, 0, 0.0, float(step_start + 330)),
                ("carol", None, "7", 0, 0.0, 0.0),
                ("mallory", None, None, 3, float(START + 600), float(START + 87_000)),
            ],
        )
        conn.execute("PRAGMA user_version = 1")
    store = opened(path)
    check = verifier(store, clock)
    assert "replayed" == check.verify("alice", totp, totp.generate(START)).reason
    other = TOTP(bytes(range(50, 70)))  # the floor holds for any key of the user
    assert "replayed" == check.verify("alice", other, other.generate(START)).reason
    assert 8 == check.next_counter("carol", hotp)
    assert "invalid" == check.verify("carol", hotp, hotp.generate(7)).reason
    assert "accepted" == check.verify("carol", hotp, hotp.generate(8)).reason
    locked = check.verify("mallory", totp, totp.generate(START))
    assert ("throttled", 600.0, 3) == (locked.reason, locked.retry_after, locked.failures)
    with connect(path) as conn:
        assert SCHEMA_VERSION == conn.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    assert "isoms_otp_users" not in tables
    assert {"": "alice"} == dict.fromkeys(store.marks("alice"), "alice")
