"""How long a sign-in waits while SQLiteStore.prune runs: worst verify latency during a prune.

Run from the repository root::

    PYTHONPATH=src python benchmarks/bench_prune.py            # 1M users, 100k stale (minutes)
    PYTHONPATH=src python benchmarks/bench_prune.py --quick    # 20k users: only checks the script

A database of ``--users`` TOTP marks, ``--stale`` of them past ``keep_until`` (spread through
the table), is built once and copied for each case. While another process prunes it, this
process verifies codes for new users back to back (each one ``settle``: one immediate
transaction with an fsync) and records every call's latency. Cases:

- ``quiet``: no prune, for the same number of verifications (the floor);
- ``one statement``: the prune of schema 2 before [harden], one DELETE per table in one
  transaction, without an index (the write lock held for the whole scan);
- ``batched``: ``SQLiteStore.prune`` (indexed, ``BATCH`` rows per transaction).

Figures are printed, never asserted: the machines these run on are shared and noisy.
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

from isoms_otp import TOTP, SQLiteStore, Verifier
from isoms_otp.stores import sqlite

NOW = 1_700_000_000.0
SECRET = bytes(range(20))
# The prune of schema 2 as it was before the indexes and batches.
ONE_STATEMENT = (
    (
        "DELETE FROM isoms_otp_budgets "
        "WHERE failures < 100 AND keep_until <= ?1 AND blocked_until <= ?1"
    ),
    "DELETE FROM isoms_otp_sources WHERE keep_until <= ?1 AND blocked_until <= ?1",
    "DELETE FROM isoms_otp_marks WHERE hotp IS NULL AND keep_until <= ?1",
)


def build(path: Path, users: int, stale: int, *, indexes: bool) -> None:
    """Write ``users`` TOTP marks, ``stale`` of them removable at NOW, in random places."""
    SQLiteStore(path).close()
    chosen = set(random.Random(7).sample(range(users), stale))
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        if not indexes:
            for name in ("budgets", "sources", "marks"):
                conn.execute(f"DROP INDEX IF EXISTS isoms_otp_{name}_stale")
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO isoms_otp_marks VALUES (?, ?, ?, NULL, ?)",
            (
                (f"user{index:07d}", f"cred{index}", str(int(NOW) - 900), keep)
                for index in range(users)
                for keep in ((NOW - 60.0) if index in chosen else (NOW + 3600.0),)
            ),
        )
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def prune_batched(path: str, started: multiprocessing.synchronize.Event, batch: int) -> None:
    sqlite.BATCH = batch
    store = SQLiteStore(path, timeout=60)
    started.set()
    began = time.perf_counter()
    gone = store.prune(NOW)
    took = time.perf_counter() - began
    print(f"    batched prune ({batch}): {gone} rows in {took:.2f} s", flush=True)
    store.close()


def prune_one_statement(path: str, started: multiprocessing.synchronize.Event, _: int) -> None:
    conn = sqlite3.connect(path, timeout=60, isolation_level=None)
    conn.execute("PRAGMA synchronous=FULL")
    started.set()
    began = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    gone = sum(conn.execute(statement, (NOW,)).rowcount for statement in ONE_STATEMENT)
    conn.execute("COMMIT")
    print(f"    one-statement prune: {gone} rows in {time.perf_counter() - began:.2f} s")
    conn.close()


def latencies(path: Path, pruner: str | None, count: int, batch: int = 0) -> list[float]:
    """Verify ``count`` codes (or until the pruner ends) and return each call's seconds."""
    store = SQLiteStore(path, timeout=60)
    totp = TOTP(SECRET)
    verifier = Verifier(store, clock=lambda: NOW)
    code = totp.generate(NOW)
    for index in range(50):  # warm up: the connection, the page cache, the statement cache
        verifier.verify(f"warm{index}", totp, code)
    context = multiprocessing.get_context("spawn")
    started = context.Event()
    worker = None
    if pruner is not None:
        target = prune_batched if pruner == "batched" else prune_one_statement
        worker = context.Process(target=target, args=(str(path), started, batch))
        worker.start()
        started.wait(60)
    took: list[float] = []
    index = 0
    while (worker is not None and worker.is_alive()) or (worker is None and index < count):
        began = time.perf_counter()
        verdict = verifier.verify(f"new{index}", totp, code)
        took.append(time.perf_counter() - began)
        assert verdict.ok, verdict
        index += 1
    if worker is not None:
        worker.join()
    store.close()
    return took


def report(name: str, took: list[float]) -> None:
    ordered = sorted(took)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(
        f"  {name:15} {len(took):6} verifies  median {statistics.median(took) * 1e3:7.2f} ms"
        f"  p99 {p99 * 1e3:7.2f} ms  worst {ordered[-1] * 1e3:8.2f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--stale", type=int, default=100_000)
    parser.add_argument("--batch", type=int, nargs="+", default=[sqlite.BATCH])
    parser.add_argument("--quick", action="store_true", help="20k users, 2k stale")
    args = parser.parse_args(argv)
    users, stale = (20_000, 2_000) if args.quick else (args.users, args.stale)
    print(f"SQLite {sqlite3.sqlite_version}: {users} users, {stale} stale")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        results: dict[str, list[float]] = {}
        cases = [("one statement", "one", False, 0)]
        cases += [(f"batched {batch}", "batched", True, batch) for batch in args.batch]
        for case, pruner, indexes, batch in cases:
            template = root / f"template-{indexes}.sqlite3"
            if not template.exists():
                began = time.perf_counter()
                build(template, users, stale, indexes=indexes)
                print(f"  built {template.name} in {time.perf_counter() - began:.1f} s")
            work = root / "work.sqlite3"
            for suffix in ("", "-wal", "-shm"):
                Path(f"{work}{suffix}").unlink(missing_ok=True)
            shutil.copyfile(template, work)
            results[case] = latencies(work, pruner, 0, batch)
        shutil.copyfile(template, root / "quiet.sqlite3")
        longest = max(len(took) for took in results.values())
        results["quiet"] = latencies(root / "quiet.sqlite3", None, longest)
        for name in ["quiet"] + [case[0] for case in cases]:
            report(name, results[name])
    return 0


if __name__ == "__main__":
    sys.exit(main())
