"""SQLStore against real servers misbehaving: crashes, exhausted pools, held locks, races."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import isoms_otp
from isoms_otp import TOTP, ConfigurationError, SQLStore, StoreError, ThrottlePolicy, Verifier
from isoms_otp.stores import sql as sql_store
from isoms_otp.testing import FakeClock
from servers import MariaDBServer, PostgresServer

pytestmark = [pytest.mark.servers, pytest.mark.slow]

SECRET = bytes(range(20))
START = 30 * 56_666_667 + 10
POLICY = ThrottlePolicy(max_failures=100, base_delay=0)
SRC = str(Path(isoms_otp.__file__).resolve().parent.parent)
#: What a call may take beyond its timeout: MySQL/MariaDB count lock waits in whole seconds.
SLACK = 1.5
#: How long the crash test may wait for the server to come back and answer.
RECOVERY_SECONDS = 60.0


def empty(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        for table in reversed(sql_store.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture(params=["postgres", "mariadb"])
def server(request: pytest.FixtureRequest) -> PostgresServer | MariaDBServer:
    """The session PostgreSQL or MariaDB server."""
    found: PostgresServer | MariaDBServer = request.getfixturevalue(f"{request.param}_session")
    return found


@pytest.fixture
def engine(server: PostgresServer | MariaDBServer) -> Iterator[sa.Engine]:
    """An engine on emptied tables."""
    engine = sa.create_engine(server.url, pool_size=10, pool_timeout=1)
    sql_store.metadata.create_all(engine)
    empty(engine)
    yield engine
    engine.dispose()


def make(store: SQLStore, policy: ThrottlePolicy = POLICY) -> Verifier:
    return Verifier(store, clock=FakeClock(START), policy=policy)


@pytest.mark.parametrize("pool_timeout", [0.5, None], ids=["pool_timeout=0.5", "default-30s"])
def test_pool_exhausted_is_a_store_error_within_the_deadline(
    engine: sa.Engine, pool_timeout: float | None
) -> None:
    """Every pooled connection is busy: StoreError within the store's timeout, not a hang.
    With SQLAlchemy's default pool (a 30 s wait) the store waits on its own copy of the pool,
    bounded by its timeout, not the pool's 30 s."""
    options = {} if pool_timeout is None else {"pool_timeout": pool_timeout}
    small = sa.create_engine(engine.url, pool_size=1, max_overflow=0, **options)
    store, totp = SQLStore(small, timeout=1), TOTP(SECRET)
    held = store._engine.connect()  # the store's pool (the engine's own, or its copy): all of it
    try:
        started = time.monotonic()
        with pytest.raises(StoreError, match="TimeoutError"):
            make(store).verify("alice", totp, totp.generate(START))
        assert time.monotonic() - started < 1 + SLACK
    finally:
        held.close()
    assert "accepted" == make(store).verify("alice", totp, totp.generate(START)).reason
    store.close()
    small.dispose()


def test_row_lock_held_by_another_session(engine: sa.Engine) -> None:
    """Another session holds the user's row: the call ends with StoreError near its deadline,
    changes nothing, and the user is served normally once the lock is gone."""
    store, totp = SQLStore(engine, timeout=1), TOTP(SECRET)
    verifier = make(store)
    assert "invalid" == verifier.verify("alice", totp, "000000").reason
    budgets = sql_store.metadata.tables["isoms_otp_budgets"]
    with engine.connect() as other, other.begin():
        other.execute(
            sa.select(budgets).where(budgets.c.user_id == "alice").with_for_update()
        ).one()
        started = time.monotonic()
        with pytest.raises(StoreError):
            verifier.verify("alice", totp, totp.generate(START))
        elapsed = time.monotonic() - started
    assert 0.5 < elapsed < 1 + SLACK
    assert 1 == store.snapshot("alice").budget.failures
    assert "accepted" == verifier.verify("alice", totp, totp.generate(START)).reason


def test_sqlite_write_lock_held(tmp_path: Path) -> None:
    """SQLite: another connection holds the write lock; StoreError within the deadline."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'otp.sqlite3'}", pool_timeout=0.5)
    store, totp = SQLStore(engine, timeout=0.5), TOTP(SECRET)
    other = engine.raw_connection()
    try:
        other.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        with pytest.raises(StoreError):
            make(store).verify("alice", totp, totp.generate(START))
        assert time.monotonic() - started < 0.5 + SLACK
    finally:
        other.rollback()
        other.close()
    assert "accepted" == make(store).verify("alice", totp, totp.generate(START)).reason
    engine.dispose()


def test_keys_are_exact_on_mariadb(mariadb_session: MariaDBServer) -> None:
    """Regression guard: MariaDB's collations make 'Alice' = 'alice ' ; the store's keys do not."""
    engine = sa.create_engine(mariadb_session.url, pool_timeout=1)
    sql_store.metadata.create_all(engine)
    empty(engine)
    store, totp = SQLStore(engine), TOTP(SECRET)
    verifier = make(store)
    code = totp.generate(START)
    users = ["alice", "Alice", "alice ", "\u00e5lice", "a\u030alice"]  # å, and a + ring
    assert ["accepted"] * 5 == [verifier.verify(user, totp, code).reason for user in users]
    assert ["replayed"] * 5 == [verifier.verify(user, totp, code).reason for user in users]
    engine.dispose()


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        # One statement (the store's function) in autocommit: no BEGIN, no COMMIT.
        ("postgres", {"wrong": 1, "accepted": 1, "replayed": 1}),
        # Lock, read, then the writes (the failure count; the mark and the cleared count),
        # each plus the COMMIT, which is not a statement.
        ("mariadb", {"wrong": 3, "accepted": 4, "replayed": 3}),
    ],
)
def test_statements_per_settle(
    request: pytest.FixtureRequest, server: str, expected: dict[str, int]
) -> None:
    """Count the statements one settle sends (the numbers docs/stores.md states)."""
    url = request.getfixturevalue(f"{server}_session").url
    engine = sa.create_engine(url, pool_timeout=1)
    store, totp = SQLStore(engine), TOTP(SECRET)
    empty(engine)
    verifier = make(store)
    verifier.verify("warm", totp, "000000")  # connect and prepare outside the count
    sent: list[bool] = []

    def record(conn: Any, cursor: Any, *args: Any) -> None:
        sent.append(getattr(cursor.connection, "autocommit", False) is True)  # psycopg

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        runs = {}
        for name, code in [
            ("wrong", "000000"),
            ("accepted", totp.generate(START)),
            ("replayed", totp.generate(START)),
        ]:
            sent.clear()
            verifier.verify("alice", totp, code)
            runs[name] = len(sent)
            assert [server == "postgres"] * len(sent) == sent
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert expected == runs
    engine.dispose()


def test_other_dialects_refused(tmp_path: Path) -> None:
    """A dialect the store was not written for is refused, naming the supported ones."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'x.sqlite3'}", pool_timeout=1)
    engine.dialect.name = "mssql"
    with pytest.raises(ConfigurationError, match="PostgreSQL, MySQL/MariaDB and SQLite"):
        SQLStore(engine)


def test_in_memory_sqlite_is_one_database_for_every_thread() -> None:
    """SQLStore(create_engine("sqlite://")) works: the default pool would give every thread its
    own empty database, so the store keeps one shared connection (StaticPool) and runs one
    operation at a time on it. 16 threads with one code: exactly one accepted. An engine that
    already has a StaticPool is used as it is (the application sees the same tables); with
    create=False the per-thread pool is refused, saying what to pass."""
    from isoms_otp._contract import run_together  # noqa: PLC0415

    store = SQLStore(sa.create_engine("sqlite://"), timeout=5)
    totp = TOTP(SECRET)
    verifier = make(store)
    reasons = run_together(16, lambda _: verifier.verify("alice", totp, totp.generate(START)))
    assert Counter({"accepted": 1, "replayed": 15}) == reasons
    store.close()

    shared = sa.create_engine(
        "sqlite://", poolclass=sa.pool.StaticPool, connect_args={"check_same_thread": False}
    )
    assert "accepted" == make(SQLStore(shared)).verify("bob", totp, totp.generate(START)).reason
    with shared.connect() as conn:
        names = set(sa.inspect(conn).get_table_names())
    assert {table.name for table in sql_store.metadata.sorted_tables} <= names
    shared.dispose()  # its one connection (Python 3.13 warns about an unclosed one)
    with pytest.raises(ConfigurationError, match="StaticPool"):
        SQLStore(sa.create_engine("sqlite://"), create=False)


def test_a_default_engine_is_accepted(tmp_path: Path) -> None:
    """The engine an application already has (SQLAlchemy's default pool waits 30 s for a free
    connection) is accepted; the store keeps its own copy of the pool whose wait ends within
    the store's timeout, and close() disposes of that copy only."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'x.sqlite3'}")  # QueuePool, 30 s
    store = SQLStore(engine)
    totp = TOTP(SECRET)
    assert "accepted" == make(store).verify("alice", totp, totp.generate(START)).reason
    store.close()
    with engine.connect() as conn:  # the application's engine still works
        assert 1 == conn.execute(sa.text("SELECT 1")).scalar()
    engine.dispose()
    with pytest.raises(TypeError, match="sqlalchemy Engine"):
        SQLStore("sqlite://")  # type: ignore[arg-type]


# -- crash and restart ------------------------------------------------------------------------


@pytest.fixture(params=["postgres", "mariadb"])
def own_server(request: pytest.FixtureRequest) -> PostgresServer | MariaDBServer:
    """A private PostgreSQL or MariaDB server this test may crash."""
    found: PostgresServer | MariaDBServer = request.getfixturevalue(f"own_{request.param}")
    return found


@pytest.mark.timeout(300)  # a server that never comes back must not hang the suite
def test_server_killed_mid_load_and_restarted(own_server: PostgresServer | MariaDBServer) -> None:
    """The server is crashed (SIGKILL) under load and started again: every call in the outage
    is a StoreError within its deadline, and every code acknowledged as accepted before the
    crash is still "replayed" after it."""
    engine = sa.create_engine(own_server.url, pool_size=4, pool_timeout=1, pool_pre_ping=True)
    store, totp = SQLStore(engine, timeout=2), TOTP(SECRET)
    verifier, code = make(store), totp.generate(START)
    acknowledged: list[str] = []
    outcomes: Counter[str] = Counter()
    stop = threading.Event()

    def load() -> None:
        for n in range(1_000_000):
            if stop.is_set():
                return
            try:
                reason = verifier.verify(f"user{n}", totp, code).reason
            except StoreError:
                outcomes["StoreError"] += 1
                time.sleep(0.01)
                continue
            outcomes[reason] += 1
            if reason == "accepted":
                acknowledged.append(f"user{n}")

    worker = threading.Thread(target=load)
    worker.start()
    try:
        deadline = time.monotonic() + RECOVERY_SECONDS
        while len(acknowledged) < 30 and time.monotonic() < deadline:
            time.sleep(0.01)
        own_server.kill()
        for _ in range(5):
            started = time.monotonic()
            with pytest.raises(StoreError):
                verifier.verify("outage", totp, code)
            assert time.monotonic() - started < 2 + SLACK
        before = len(acknowledged)
        own_server.start()
        while len(acknowledged) < before + 30 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        worker.join(timeout=30)
    assert len(acknowledged) >= before + 30, outcomes
    assert {"accepted", "StoreError"} >= set(outcomes)
    assert ["replayed"] * len(acknowledged) == [
        verifier.verify(user, totp, code).reason for user in acknowledged
    ]
    engine.dispose()


# -- processes --------------------------------------------------------------------------------

PROCESSES, THREADS = 8, 4
# Each worker connects, says "ready", then runs rounds: for each line "<user> <max_failures>
# <code,code,...>" on stdin it verifies its THREADS codes in THREADS threads released at once
# and prints the reasons. Processes start once (slow on a busy machine) for every round.
WORKER = """
import sys, threading
import sqlalchemy as sa
from isoms_otp import SQLStore, ThrottlePolicy, TOTP, Verifier
url, now, threads = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
engine = sa.create_engine(url, pool_size=threads, pool_timeout=10)
store = SQLStore(engine, timeout=30, create=False)
otp = TOTP(bytes(range(20)))
store.snapshot("warm-up")
print("ready", flush=True)
for line in sys.stdin:
    user, limit, codes = line.split()
    policy = ThrottlePolicy(max_failures=int(limit), base_delay=0)
    verifier = Verifier(store, clock=lambda: now, policy=policy)
    barrier = threading.Barrier(threads)
    reasons = []
    def run(code):
        barrier.wait()
        reasons.append(verifier.verify(user, otp, code).reason)
    workers = [threading.Thread(target=run, args=(c,)) for c in codes.split(",")]
    for w in workers: w.start()
    for w in workers: w.join()
    print(" ".join(reasons), flush=True)
"""


class Fleet:
    """PROCESSES worker processes of THREADS threads each, all verifying against ``url``."""

    def __init__(self, url: str) -> None:
        env = {**os.environ, "PYTHONPATH": SRC}
        argv = [sys.executable, "-c", WORKER, url, str(START), str(THREADS)]
        self.workers: list[subprocess.Popen[str]] = []
        for _index in range(PROCESSES):
            self.workers.append(
                subprocess.Popen(
                    argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
                )
            )
        for worker in self.workers:
            assert worker.stdout is not None
            assert "ready\n" == worker.stdout.readline()

    def round(self, user: str, max_failures: int, codes: list[str]) -> Counter[str]:
        """Give each process THREADS of ``codes`` at once; count the reasons."""
        for index, worker in enumerate(self.workers):
            assert worker.stdin is not None
            mine = ",".join(codes[index * THREADS : (index + 1) * THREADS])
            worker.stdin.write(f"{user} {max_failures} {mine}\n")
            worker.stdin.flush()
        reasons: Counter[str] = Counter()
        for worker in self.workers:
            assert worker.stdout is not None
            reasons.update(worker.stdout.readline().split())
        return reasons

    def close(self) -> None:
        """End the workers (closing stdin ends their loop); kill any that linger."""
        for worker in self.workers:
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.communicate(timeout=60)
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        assert [0] * PROCESSES == [worker.returncode for worker in self.workers]


@pytest.mark.timeout(300)
def test_races_from_8_processes_of_4_threads(engine: sa.Engine) -> None:
    """32 requests at once from 8 processes of 4 threads each, on the real server:

    - the same valid code: exactly one is accepted;
    - 32 different wrong codes: all "invalid", and the user's count is exactly 32;
    - 32 wrong codes with a limit of 5: exactly 5 examined, 27 throttled.
    """
    totp = TOTP(SECRET)
    right = int(totp.generate(START))
    wrong = [f"{(right + 1 + n) % 10**6:06d}" for n in range(PROCESSES * THREADS)]
    fleet = Fleet(engine.url.render_as_string(hide_password=False))
    try:
        same = fleet.round("alice", 100, [totp.generate(START)] * 32)
        guesses = fleet.round("bob", 100, wrong)
        limited = fleet.round("carol", 5, wrong)
    finally:
        fleet.close()
    assert Counter({"accepted": 1, "replayed": 31}) == same
    assert Counter({"invalid": 32}) == guesses
    assert 32 == SQLStore(engine, create=False).snapshot("bob").budget.failures
    assert Counter({"invalid": 5, "throttled": 27}) == limited


def test_serialisation_failures_are_retried(postgres_session: PostgresServer) -> None:
    """Under SERIALIZABLE, concurrent settles of one user fail with 40001; the store retries
    them, so 16 threads with one code still get one "accepted" and 15 "replayed", no error."""
    from isoms_otp._contract import run_together  # noqa: PLC0415

    engine = sa.create_engine(
        postgres_session.url, pool_size=16, pool_timeout=2,
        connect_args={"options": "-c default_transaction_isolation=serializable"},
    )  # fmt: skip
    sql_store.metadata.create_all(engine)
    empty(engine)
    retried: list[str] = []

    def record(context: Any) -> None:
        if getattr(context.original_exception, "sqlstate", None) == "40001":
            retried.append("40001")

    sa.event.listen(engine, "handle_error", record)
    store, totp = SQLStore(engine, create=False), TOTP(SECRET)
    verifier, code = make(store), totp.generate(START)
    reasons = run_together(16, lambda _: verifier.verify("alice", totp, code))
    assert Counter({"accepted": 1, "replayed": 15}) == reasons
    assert retried  # the retry path was taken, not just a lucky ordering
    engine.dispose()


def drop_everything(engine: sa.Engine) -> None:
    """Back to a database without the store's tables (and without PostgreSQL's function)."""
    with engine.begin() as conn:
        sql_store.metadata.drop_all(conn)
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("DROP FUNCTION IF EXISTS isoms_otp_settle_2")


@pytest.mark.timeout(300)
def test_stores_created_together_on_an_empty_database(engine: sa.Engine) -> None:
    """Eight workers starting at once, each SQLStore(engine) with create=True on a database
    without the tables: every one starts (they take turns on a database lock; concurrent
    CREATE OR REPLACE FUNCTION used to fail one with "tuple concurrently updated"), and the
    store then works. Three rounds, so the creations overlap for sure."""
    count = 8
    for _ in range(3):
        drop_everything(engine)
        barrier = threading.Barrier(count)
        errors: list[BaseException] = []

        def start(barrier: threading.Barrier, errors: list[BaseException]) -> None:
            own = sa.create_engine(engine.url, poolclass=sa.pool.NullPool)
            try:
                barrier.wait(30)
                SQLStore(own, timeout=20)
            except Exception as exc:  # noqa: BLE001 - collected and shown by the assert
                errors.append(exc)
            finally:
                own.dispose()

        threads = [threading.Thread(target=start, args=(barrier, errors)) for _ in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert [] == [f"{type(error).__name__}: {error}" for error in errors]
    totp = TOTP(SECRET)
    assert "accepted" == make(SQLStore(engine)).verify("alice", totp, totp.generate(START)).reason


def test_a_failed_creation_says_nothing_was_verified(engine: sa.Engine) -> None:
    """Tables that cannot be created (a user without the right) raise a StoreError that says
    so, after retrying until the timeout, and never "the verification was refused"."""
    broken = sa.create_engine(engine.url, poolclass=sa.pool.NullPool)

    @sa.event.listens_for(broken, "before_cursor_execute")
    def refuse(*args: object) -> None:
        raise sa.exc.OperationalError("CREATE", {}, PermissionError("permission denied"))

    started = time.monotonic()
    with pytest.raises(StoreError, match="could not create its tables") as caught:
        SQLStore(broken, timeout=0.5)
    assert time.monotonic() - started < 0.5 + SLACK
    assert "verification was refused" not in str(caught.value)
    broken.dispose()
