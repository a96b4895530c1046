"""SQLiteStore under faults: files removed or replaced, contention, racing opens, prune, clocks.

Each test says what used to happen ([harden], issue 10).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from isoms_otp import TOTP, SQLiteStore, StoreError, ThrottlePolicy, Verifier
from isoms_otp.stores import StoreFinding, sqlite
from isoms_otp.testing import FakeClock

SECRET = bytes(range(20))
OTHER_SECRET = bytes(range(1, 21))
START = 30 * 56_666_667  # the start of a step
YEAR = 365 * 86400.0
POLICY = ThrottlePolicy(max_failures=3, base_delay=0)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    return folder / "otp.sqlite3"


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


def verifier(store: SQLiteStore, clock: FakeClock, policy: ThrottlePolicy = POLICY) -> Verifier:
    return Verifier(store, clock=clock, policy=policy)


# --- 1. a file removed or replaced under a running store ------------------------------------


def _remove_directory(path: Path) -> None:
    shutil.rmtree(path.parent)
    path.parent.mkdir()


def _remove(suffixes: tuple[str, ...]) -> Callable[[Path], None]:
    def remove(path: Path) -> None:
        for suffix in suffixes:
            Path(f"{path}{suffix}").unlink()

    return remove


def _replace(path: Path) -> None:
    other = path.with_name("other.sqlite3")
    SQLiteStore(other).close()  # a clean copy, as a restored backup would be
    other.replace(path)  # mv other.sqlite3 otp.sqlite3


FAULTS = {
    "directory-removed": _remove_directory,
    "all-files-removed": _remove(("", "-wal", "-shm")),
    "db-removed": _remove(("",)),
    "wal-removed": _remove(("-wal",)),
    "shm-removed": _remove(("-shm",)),
    "replaced": _replace,
}


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
def test_changed_file_never_accepts(
    path: Path, opened: Callable[..., SQLiteStore], fault: Callable[[Path], None]
) -> None:
    """This used to answer "accepted" into the unlinked file, and a later worker accepted again.

    Now every call of the first store fails closed, for good, so no code is accepted by two.
    """
    clock, totp = FakeClock(START), TOTP(SECRET)
    first = verifier(opened(path), clock)
    assert "accepted" == first.verify("alice", totp, totp.generate(clock())).reason
    fault(path)
    clock.advance(30)
    code = totp.generate(clock())
    with pytest.raises(StoreError, match=r"was (removed|replaced) while this store had it open"):
        first.verify("alice", totp, code)
    with pytest.raises(StoreError, match="open a new SQLiteStore"):
        first.retry_after("alice")  # every call, reads included, until a new store is opened
    later = verifier(opened(path), clock)
    assert "accepted" == later.verify("alice", totp, code).reason
    with pytest.raises(StoreError, match="was refused"):
        first.verify("alice", totp, code)


def test_unchanged_file_after_chdir(
    path: Path, opened: Callable[..., SQLiteStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative path is resolved once: changing directory is not a replaced file."""
    monkeypatch.chdir(path.parent)
    store = opened(path.name)
    monkeypatch.chdir(path.parent.parent)
    clock, totp = FakeClock(START), TOTP(SECRET)
    assert "accepted" == verifier(store, clock).verify("alice", totp, totp.generate(START)).reason


def test_memory_database_needs_no_file(opened: Callable[..., SQLiteStore]) -> None:
    """ ":memory:" has no file to watch and keeps working."""
    clock, totp = FakeClock(START), TOTP(SECRET)
    check = verifier(opened(":memory:"), clock)
    assert "accepted" == check.verify("alice", totp, totp.generate(START)).reason
    assert "replayed" == check.verify("alice", totp, totp.generate(START)).reason


# --- 2. timeout is a deadline per call ---------------------------------------------------------

_HOLD_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
conn.rollback()
conn.close()
"""


@contextmanager
def held(path: Path) -> Iterator[None]:
    """Another process holds the file's write lock inside the block."""
    with subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdout is not None
        assert holder.stdin is not None
        try:
            assert "locked\n" == holder.stdout.readline()
            yield
        finally:
            holder.stdin.close()
            holder.stdout.close()
            holder.wait(timeout=10)


def test_deadline_per_call_for_threads(path: Path, opened: Callable[..., SQLiteStore]) -> None:
    """8 threads behind another process's lock used to fail after 0.5, 1.0 ... 4.0 s.

    Each waited for the store's own lock, then for a full busy timeout. Now every call ends
    within its timeout plus the documented slack (generous here for loaded test machines).
    """
    timeout = 0.5
    store = opened(path, timeout=timeout)
    clock, totp = FakeClock(START), TOTP(SECRET)
    check = verifier(store, clock)
    took: list[float] = []
    errors: list[str] = []
    barrier = threading.Barrier(8)

    def attempt() -> None:
        barrier.wait()
        began = time.monotonic()
        try:
            check.verify("alice", totp, totp.generate(START))
        except StoreError as exc:
            errors.append(str(exc))
        took.append(time.monotonic() - began)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    with held(path):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert 8 == len(errors)
    assert all("the verification was refused" in error for error in errors)
    assert max(took) <= timeout + sqlite.SLACK + 0.4, sorted(took)


def test_open_while_another_process_writes(path: Path, opened: Callable[..., SQLiteStore]) -> None:
    """A worker starting while another process held the write lock used to wait for it (and
    fail after its timeout): a file that already has the schema is opened without the lock."""
    opened(path)
    with held(path):
        store = opened(path, timeout=0.5)
        assert {} == store.marks("alice")  # WAL readers do not wait for the writer


# --- 3. workers opening a new database together --------------------------------------------


def _open_many(folder: str, rounds: int, barrier: Any, failures: Any) -> None:
    for index in range(rounds):
        barrier.wait()
        try:
            SQLiteStore(Path(folder) / f"{index}.sqlite3", timeout=20).close()
        except StoreError as exc:
            failures.put(str(exc))


@pytest.mark.slow
def test_workers_create_the_file_together(tmp_path: Path) -> None:
    """8 processes opening a new file together: 2-6 of 160 used to fail with "database is
    locked" from the switch to WAL, within 1 ms of a 20 s timeout. Now none fails."""
    context = multiprocessing.get_context("spawn")
    workers, rounds = 8, 20
    barrier = context.Barrier(workers)
    failures = context.Queue()
    processes = [
        context.Process(target=_open_many, args=(str(tmp_path), rounds, barrier, failures))
        for _ in range(workers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [0] * workers == [process.exitcode for process in processes]
    found = []
    while not failures.empty():
        found.append(failures.get())
    failures.close()
    assert [] == found


def test_locked_switch_to_wal_is_retried(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The race above, made certain: "database is locked" from the switch to WAL (which the busy
    handler does not cover) used to fail the open at once; it is retried within the deadline."""
    calls: list[int] = []
    switch = sqlite._wal

    def flaky(conn: sqlite3.Connection, *, private: bool) -> None:
        calls.append(1)
        if len(calls) <= 3:
            raise sqlite3.OperationalError("database is locked")
        switch(conn, private=private)

    monkeypatch.setattr(sqlite, "_wal", flaky)
    SQLiteStore(path, timeout=5).close()
    assert 4 == len(calls)


def test_locked_switch_gives_up_at_the_deadline(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that stays locked fails the open within its timeout, saying it could not open."""

    def locked(conn: sqlite3.Connection, *, private: bool) -> None:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(sqlite, "_wal", locked)
    began = time.monotonic()
    with pytest.raises(
        StoreError, match=r"could not open the SQLite store .* nothing was verified"
    ):
        SQLiteStore(path, timeout=0.3)
    assert time.monotonic() - began <= 0.3 + sqlite.SLACK + 0.4


def test_open_failure_says_so(tmp_path: Path) -> None:
    """A file that cannot be opened used to say "the verification was refused": it says what
    failed, and that nothing was verified."""
    with pytest.raises(StoreError, match="could not open the SQLite store") as caught:
        SQLiteStore(tmp_path / "missing" / "otp.sqlite3")
    assert "verification was refused" not in str(caught.value)
    assert "nothing was verified" in str(caught.value)


# --- 4. prune in bounded batches, on an index ----------------------------------------------


def _fill(path: Path, rows: int, stale: int, now: float) -> None:
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO isoms_otp_marks VALUES (?, 'c', ?, NULL, ?)",
            (
                (f"u{index}", str(START), now - 1.0 if index < stale else now + 3600.0)
                for index in range(rows)
            ),
        )
        conn.executemany(
            "INSERT INTO isoms_otp_budgets VALUES (?, ?, 0.0, ?)",
            (
                # 100 failures: kept for ever, whatever keep_until says
                (f"b{index}", 100 if index % 3 == 0 else 1, now - 1.0)
                for index in range(rows // 10)
            ),
        )
        conn.executemany(
            "INSERT INTO isoms_otp_sources VALUES (?, 's', 1, 0.0, ?)",
            ((f"p{index}", now - 1.0) for index in range(rows // 20)),
        )
    conn.close()


def test_prune_in_batches_returns_the_exact_count(
    path: Path, opened: Callable[..., SQLiteStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """prune used to delete everything in one transaction, holding the write lock throughout.

    Now each transaction deletes at most BATCH rows, and the count stays exact.
    """
    monkeypatch.setattr(sqlite, "BATCH", 10)
    now = START + 100.0
    store = opened(path)
    _fill(path, rows=400, stale=123, now=now)
    commits: list[str] = []
    store.marks("x")  # connect, then watch the connection's statements
    conn = store._conn
    assert conn is not None
    conn.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
    budgets = 40 - 14  # 14 of the 40 have 100 failures
    assert 123 + budgets + 20 == store.prune(now)
    assert len(commits) >= 123 // 10 + budgets // 10 + 20 // 10
    conn.set_trace_callback(None)
    with sqlite3.connect(path) as plain:
        left = [
            plain.execute(f"SELECT count(*) FROM isoms_otp_{table}").fetchone()[0]  # noqa: S608
            for table in ("marks", "budgets", "sources")
        ]
    plain.close()
    assert [400 - 123, 14, 0] == left
    assert 0 == store.prune(now)


@pytest.mark.parametrize("table", ["budgets", "sources", "marks"])
def test_prune_uses_an_index(path: Path, opened: Callable[..., SQLiteStore], table: str) -> None:
    """prune used to scan every row; it finds stale rows through an index now."""
    opened(path)
    statement = next(sql for sql in sqlite._DELETE_STALE if f"isoms_otp_{table} " in sql)
    with sqlite3.connect(path) as conn:
        plan = conn.execute(f"EXPLAIN QUERY PLAN {statement}", (1.0, 10)).fetchall()
    conn.close()
    assert any(f"isoms_otp_{table}_stale" in str(row[-1]) for row in plan), plan


# --- 5. a clock that ran ahead and was corrected ---------------------------------------------


def test_wait_from_a_clock_ahead_ends_within_the_policy(
    path: Path, opened: Callable[..., SQLiteStore]
) -> None:
    """After the clock ran 10 years ahead and was corrected, a lock used to last 10 years.

    The clamp when read was a moving target (``now + longest`` is always ahead); the first
    attempt that sees the wait now writes it back cut, so it ends within ``longest_wait``.
    """
    policy = POLICY
    clock, totp = FakeClock(START + 10 * YEAR), TOTP(SECRET)
    check = verifier(opened(path), clock, policy)
    for _ in range(3):
        assert "invalid" == check.verify("alice", totp, "000000").reason
    clock.set(START)
    refused = check.verify("alice", totp, totp.generate(clock()))
    assert "throttled" == refused.reason
    assert refused.retry_after is not None
    assert refused.retry_after <= policy.longest_wait
    clock.advance(policy.longest_wait)
    assert "accepted" == check.verify("alice", totp, totp.generate(clock())).reason


def test_source_wait_from_a_clock_ahead_ends_within_the_policy(
    path: Path, opened: Callable[..., SQLiteStore]
) -> None:
    """The (user, source) pair's lock is cut the same way."""
    policy = POLICY
    clock = FakeClock(START + 10 * YEAR)
    check = verifier(opened(path), clock, policy)
    outcomes = [check.record_failure("alice", source="10.0.0.1") for _ in range(12)]
    assert any(outcome.locked for outcome in outcomes)
    clock.set(START)
    wait = check.retry_after("alice", source="10.0.0.1")
    assert wait is not None
    assert wait <= policy.longest_wait
    assert "throttled" == check.record_failure("alice", source="10.0.0.1").reason
    clock.advance(policy.longest_wait)
    assert check.retry_after("alice", source="10.0.0.1") is None


def test_mark_from_a_clock_ahead_refuses_until_real_time_passes_it(
    path: Path, opened: Callable[..., SQLiteStore]
) -> None:
    """Documented limit: a code accepted with the clock ahead leaves a mark in the future.

    That credential's codes are "replayed" until real time passes the mark; a new secret (a
    new credential) is the way out.
    """
    clock, totp = FakeClock(START + 10 * YEAR), TOTP(SECRET)
    check = verifier(opened(path), clock)
    assert "accepted" == check.verify("alice", totp, totp.generate(clock())).reason
    clock.set(START)
    assert "replayed" == check.verify("alice", totp, totp.generate(clock())).reason
    fresh = TOTP(OTHER_SECRET)
    assert "accepted" == check.verify("alice", fresh, fresh.generate(clock())).reason


def test_prune_with_a_clock_ahead_forgets_marks(
    path: Path, opened: Callable[..., SQLiteStore]
) -> None:
    """Documented limit: prune run with a clock far ahead forgets TOTP marks still in use.

    A code used just before is then accepted again while it is in the window.
    """
    clock, totp = FakeClock(START), TOTP(SECRET)
    store = opened(path)
    check = verifier(store, clock)
    code = totp.generate(clock())
    assert "accepted" == check.verify("alice", totp, code).reason
    assert 1 == store.prune(START + 10 * YEAR)
    assert "accepted" == check.verify("alice", totp, code).reason


# --- 6. the deployment check ---------------------------------------------------------------


def test_check_finds_nothing_on_a_private_local_file(
    path: Path, opened: Callable[..., SQLiteStore]
) -> None:
    """A 0600 file on a local disk, in WAL mode with synchronous=FULL: no serious finding."""
    store = opened(path)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").chmod(0o600)
    found = store.check()
    assert all(isinstance(finding, StoreFinding) for finding in found)
    assert [] == [finding for finding in found if finding.severity != "info"]


@pytest.mark.parametrize(
    ("mode", "rule", "severity"),
    [(0o644, "readable-by-others", "warning"), (0o666, "writable-by-others", "serious")],
)
def test_check_finds_files_others_can_use(
    path: Path, opened: Callable[..., SQLiteStore], mode: int, rule: str, severity: str
) -> None:
    """Files others can read leak who signs in; files they can write clear lock-outs."""
    store = opened(path)
    for suffix in ("", "-shm"):
        Path(f"{path}{suffix}").chmod(0o600)
    Path(f"{path}-wal").chmod(mode)
    found = [finding for finding in store.check() if finding.rule == rule]
    assert [severity] == [finding.severity for finding in found]
    assert "-wal" in found[0].message


def test_check_finds_weak_synchronous(path: Path, opened: Callable[..., SQLiteStore]) -> None:
    """synchronous below FULL can forget accepted codes on a power cut: serious."""
    store = opened(path)
    store.marks("x")
    assert store._conn is not None
    store._conn.execute("PRAGMA synchronous=NORMAL")
    found = [finding for finding in store.check() if finding.rule == "synchronous"]
    assert ["serious"] == [finding.severity for finding in found]


def test_check_finds_a_removed_file(path: Path, opened: Callable[..., SQLiteStore]) -> None:
    """A store whose file went cannot be checked either, and says why (serious)."""
    store = opened(path)
    _remove(("",))(path)
    found = {finding.rule: finding for finding in store.check()}
    assert "serious" == found["unreadable"].severity
    assert "removed" in found["unreadable"].message


MOUNTS = """sysfs /sys sysfs rw 0 0
/dev/sda1 / ext4 rw,relatime 0 0
server:/export /srv/otp nfs4 rw,relatime 0 0
//host/share /mnt/my\\040share cifs rw 0 0
user@host:/x /mnt/ssh fuse.sshfs rw 0 0
/dev/sdb1 /srv/otp/local ext4 rw 0 0
"""


@pytest.mark.parametrize(
    ("where", "kind"),
    [
        ("/srv/otp/otp.sqlite3", "nfs4"),
        ("/mnt/my share/otp.sqlite3", "cifs"),
        ("/mnt/ssh/a/otp.sqlite3", "fuse.sshfs"),
        ("/srv/otp/local/otp.sqlite3", None),
        ("/srv/otpx/otp.sqlite3", None),
        ("/var/lib/otp.sqlite3", None),
    ],
)
def test_check_finds_network_filesystems(tmp_path: Path, where: str, kind: str | None) -> None:
    """The longest mount point over the file decides; octal escapes are decoded."""
    mounts = tmp_path / "mounts"
    mounts.write_text(MOUNTS, encoding="utf-8")
    found = sqlite._filesystem_findings(where, str(mounts))
    if kind is None:
        assert [] == found
    else:
        assert [("network-filesystem", "serious")] == [(f.rule, f.severity) for f in found]
        assert kind in found[0].message


def test_check_says_what_it_could_not_read(tmp_path: Path) -> None:
    """Without /proc/mounts (not Linux) the check says the filesystem was not checked."""
    found = sqlite._filesystem_findings(str(tmp_path / "otp"), str(tmp_path / "no-mounts"))
    assert [("filesystem-unknown", "info")] == [(f.rule, f.severity) for f in found]
    assert "could not read" in found[0].message


def test_check_of_a_memory_database(opened: Callable[..., SQLiteStore]) -> None:
    """ ":memory:" is private to one object: said, as information."""
    found = opened(":memory:").check()
    assert [("private", "info")] == [(f.rule, f.severity) for f in found]


def test_umask_is_respected(path: Path, opened: Callable[..., SQLiteStore]) -> None:
    """A service run with umask 077 gets files nobody else can read."""
    old = os.umask(0o077)
    try:
        store = opened(path)
    finally:
        os.umask(old)
    assert [] == [finding for finding in store.check() if finding.severity != "info"]
