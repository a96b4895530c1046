"""Per sign-in cost of the Verifier on every store, beside each store's own settle and pyotp.

Run from the repository root (Debian's postgresql, mariadb-server and redis-server installed)::

    PYTHONPATH=src python benchmarks/bench_service.py            # a few minutes
    PYTHONPATH=src python benchmarks/bench_service.py --quick    # seconds; only checks the script

The script starts its own PostgreSQL, MariaDB and Redis on loopback (tests/servers.py) and stops
them at the end. Each sign-in builds the TOTP from the stored base32 secret, as a backend that
keeps secrets in its user table does. For each store the table shows the Verifier with an
accepted, a wrong and a replayed code, beside the floor: the store's own ``settle`` called
directly with an accepted claim. On PostgreSQL and MariaDB a further row is pyotp with the
straightforward hand-written table (``SELECT ... FOR UPDATE``, compare, ``UPDATE``, ``COMMIT``).
On SQLite, PostgreSQL and MariaDB three more rows are django-otp's ``verify_token`` with an
accepted, a wrong and a replayed code on the same database: a minimal Django project set up
in-process (benchmarks/_django_bench.py), a fresh user and ``TOTPDevice`` per call, made before
each sample outside the timing. Throughput runs 1, 2 and 4 processes per store, each verifying
new users for a fixed time.
"""

from __future__ import annotations

import base64
import itertools
import multiprocessing
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from queue import Empty
from typing import Any

import _django_bench as dj
import _harness as h

import isoms_otp
from isoms_otp import (
    TOTP,
    MemoryStore,
    RedisStore,
    SQLiteStore,
    SQLStore,
    ThrottlePolicy,
    Verifier,
    decode_secret,
)
from isoms_otp.stores import Attempt

ROOT = Path(__file__).resolve().parent.parent
AT = 1_700_000_010.0
SECRET = base64.b32encode(bytes(range(20))).decode()
POLICY = ThrottlePolicy(max_failures=100, base_delay=0)
ACCEPTED = "Verifier, TOTP from base32, accepted"
WRONG = "Verifier, TOTP from base32, wrong code"
REPLAYED = "Verifier, TOTP from base32, replayed"
OWN = "the store's own settle (accepted claim)"
PYOTP = "pyotp + hand-written table (FOR UPDATE, UPDATE)"
DJANGO = {
    "accepted": "django-otp verify_token, accepted",
    "wrong": "django-otp verify_token, wrong code",
    "replayed": "django-otp verify_token, replayed",
}
DJANGO_NOTES = {
    "accepted": "a fresh user and TOTPDevice per call, never used",
    "wrong": "a fresh device per call, so its first failure (a second one within 1 s would be "
    "throttled unchecked, OTP_TOTP_THROTTLE_FACTOR 1)",
    "replayed": "the code of the step its fresh device was made having used (last_t), its first "
    "failure",
}
PROCESSES = (1, 2, 4)


@contextmanager
def servers() -> Iterator[dict[str, str]]:
    """Start PostgreSQL, MariaDB and Redis with the test suite's helpers; yield their URLs."""
    sys.path.insert(0, str(ROOT / "tests"))
    import servers as s  # noqa: PLC0415 - the suite's server helpers

    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="isoms-bench-") as tmp:
        postgres = stack.enter_context(s.running_postgres())
        mariadb = stack.enter_context(s.running_mariadb())
        node = s.redis_node(Path(tmp))
        node.start()
        stack.callback(node.stop)
        yield {"postgres": postgres.url, "mariadb": mariadb.url, "redis": node.url}


def make_store(kind: str, where: str) -> Any:
    """Build one store by name (also used in the throughput worker processes)."""
    if kind == "MemoryStore":
        return MemoryStore()
    if kind == "SQLiteStore":
        return SQLiteStore(where)
    if kind == "RedisStore":
        return RedisStore.from_url(where)
    import sqlalchemy as sa  # noqa: PLC0415

    engine = sa.create_engine(where, pool_size=4, pool_timeout=5)
    return SQLStore(engine)


def sign_in(verifier: Verifier, stored: str, user: str, code: str) -> str:
    """One sign-in as a backend does it: the TOTP from the stored secret, then verify."""
    return verifier.verify(user, TOTP(decode_secret(stored)), code, source="198.51.100.7").reason


def pyotp_table(url: str) -> Callable[[str, str], bool]:
    """The straightforward hand-written replay/throttle table, with pyotp, on one connection."""
    pyotp = h.require({"pyotp": "pyotp"})["pyotp"]
    totp = pyotp.TOTP(SECRET)
    if url.startswith("postgresql"):
        import psycopg  # noqa: PLC0415

        conn: Any = psycopg.connect(url.replace("postgresql+psycopg", "postgresql"))
        conflict = (
            "ON CONFLICT (user_id) DO UPDATE SET last_step = EXCLUDED.last_step, "
            "failures = EXCLUDED.failures"
        )
    else:
        import pymysql  # noqa: PLC0415
        import sqlalchemy as sa  # noqa: PLC0415

        parts = sa.make_url(url)
        conn = pymysql.connect(
            host=parts.host, port=parts.port, user=parts.username, password=parts.password,
            database=parts.database,
        )  # fmt: skip
        conflict = (
            "ON DUPLICATE KEY UPDATE last_step = VALUES(last_step), failures = VALUES(failures)"
        )
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS pyotp_users")
        cur.execute(
            "CREATE TABLE pyotp_users (user_id VARCHAR(255) PRIMARY KEY, "
            "last_step BIGINT NOT NULL, failures INT NOT NULL)"
        )
    conn.commit()
    upsert = "INSERT INTO pyotp_users VALUES (%s, %s, %s) " + conflict  # noqa: S608 - constants

    def verify(user: str, code: str) -> bool:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT last_step, failures FROM pyotp_users WHERE user_id = %s FOR UPDATE",
                (user,),
            )
            row = cur.fetchone()
            last, failures = row if row else (-1, 0)
            step = next(
                (s for s in (-1, 0, 1) if totp.at(AT + 30 * s) == code), None
            )  # pyotp.verify hides which step matched; a replay check needs it
            ok = failures < 10 and step is not None and int(AT // 30) + step > last
            if ok:
                cur.execute(upsert, (user, int(AT // 30) + step, 0))  # type: ignore[operator]
            else:
                cur.execute(upsert, (user, last, failures + 1))
        conn.commit()
        return ok

    return verify


def django_cases(urls: dict[str, str], workdir: Path) -> list[h.Case]:
    """django-otp's verify_token on SQLite, PostgreSQL and MariaDB, beside the stores' rows."""
    dj.configure(urls, workdir / "django.sqlite3")
    found = []
    for variant, alias in dj.ALIASES.items():
        for kind, label in DJANGO.items():
            devices = dj.Devices(alias=alias, kind=kind, key=decode_secret(SECRET))
            said = ", ".join(devices.statements())  # also a first check of the verdict
            note = f"{DJANGO_NOTES[kind]}; made before each sample, untimed; Django's log: {said}"
            found.append(
                h.Case(section="sign-in", variant=variant, implementation=label,
                       stmt="verify()", env={"verify": devices}, note=note,
                       prepare=devices.prepare)
            )  # fmt: skip
    return found


def cases(urls: dict[str, str], workdir: Path, closing: list[Callable[[], object]]) -> list[h.Case]:
    right = TOTP(decode_secret(SECRET)).generate(AT)
    wrong = next(c for c in ("000000", "111111") if c != right)
    wheres = {
        "MemoryStore": "",
        "SQLiteStore": str(workdir / "bench.sqlite3"),
        "SQLStore-PostgreSQL": urls["postgres"],
        "SQLStore-MariaDB": urls["mariadb"],
        "RedisStore": urls["redis"],
    }
    found = []
    for variant, where in wheres.items():
        store = make_store(variant.split("-")[0], where)
        closing.append(store.close)
        verifier = Verifier(store, policy=POLICY, clock=lambda: AT)
        # 2000 users who used the code, each replayed at most 99 times (the lock comes at 100).
        pool = [f"used{n}" for n in range(2000)]
        for user in pool:
            h.check(sign_in(verifier, SECRET, user, right) == "accepted", f"{variant}: accept")
        h.check(sign_in(verifier, SECRET, "used0", right) == "replayed", f"{variant}: replay")
        attempt = Attempt(
            user="x", now=AT, kind="totp", credential="c", claim=int(AT), keep_until=AT + 330,
            policy=POLICY,
        )  # fmt: skip
        env = {
            "names": itertools.count(),
            "replays": itertools.cycle(pool),
            "sign_in": sign_in,
            "verifier": verifier,
            "stored": SECRET,
            "right": right,
            "wrong": wrong,
            "settle": store.settle,
            "attempt": attempt,
            "replace": __import__("dataclasses").replace,
        }
        rows = [
            (ACCEPTED, "sign_in(verifier, stored, f'a{next(names)}', right)", False),
            (WRONG, "sign_in(verifier, stored, f'w{next(names)}', wrong)", False),
            (REPLAYED, "sign_in(verifier, stored, next(replays), right)", False),
            (OWN, "settle(replace(attempt, user=f's{next(names)}'))", True),
        ]
        if variant.startswith("SQLStore"):
            env["pyotp_verify"] = pyotp_table(where)
            rows.append((PYOTP, "pyotp_verify(f'p{next(names)}', right)", False))
        found += [
            h.Case(section="sign-in", variant=variant, implementation=label, stmt=stmt, env=env,
                   floor=floor)
            for label, stmt, floor in rows
        ]  # fmt: skip
    return found


def _worker(kind: str, where: str, seconds: float, tag: str, out: Any) -> None:
    store = make_store(kind, where)
    verifier = Verifier(store, policy=POLICY, clock=lambda: AT)
    right = TOTP(decode_secret(SECRET)).generate(AT)
    sign_in(verifier, SECRET, f"{tag}-warm", right)
    done, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        sign_in(verifier, SECRET, f"{tag}-{done}", right)
        done += 1
    out.put(done)
    store.close()


def throughput(kind: str, where: str, seconds: float) -> dict[int, float]:
    """Sign-ins per second with 1, 2 and 4 processes on one shared store."""
    context = multiprocessing.get_context("spawn")
    rates = {}
    for count in PROCESSES:
        queue = context.Queue()
        workers = [
            context.Process(
                target=_worker, args=(kind, where, seconds, f"t{count}-{n}-{time.time()}", queue)
            )
            for n in range(count)
        ]
        for worker in workers:
            worker.start()
        rates[count] = collect(queue, workers, seconds) / seconds
    return rates


def collect(queue: Any, workers: list[Any], seconds: float) -> int:
    """Add up the workers' counts; a worker that dies fails the run at once, not after a wait."""
    total, reported = 0, 0
    give_up = time.monotonic() + seconds + 120
    while reported < len(workers):
        try:
            total += queue.get(timeout=0.5)
            reported += 1
        except Empty:  # noqa: PERF203 - a poll loop
            dead = [w.exitcode for w in workers if w.exitcode not in (None, 0)]
            if dead or time.monotonic() > give_up:
                for worker in workers:
                    worker.terminate()
                message = f"a throughput worker failed (exit codes: {dead or 'none yet'})"
                raise SystemExit(message) from None
    for worker in workers:
        worker.join(timeout=60)
    return total


def main(argv: list[str] | None = None) -> int:
    settings = h.parse_args(__doc__.splitlines()[0], "service", argv)
    seconds = 0.3 if settings.quick else 3.0
    closing: list[Callable[[], object]] = []
    with servers() as urls, tempfile.TemporaryDirectory(prefix="isoms-bench-") as tmp:
        workdir = Path(tmp)
        try:
            found = cases(urls, workdir, closing) + django_cases(urls, workdir)
            print(f"timing {len(found)} cases in {settings.rounds} interleaved rounds ...")
            results = h.measure(found, settings)
        finally:
            for close in reversed(closing):
                close()
        shared = {
            "SQLiteStore": str(workdir / "throughput.sqlite3"),
            "SQLStore-PostgreSQL": urls["postgres"],
            "SQLStore-MariaDB": urls["mariadb"],
            "RedisStore": urls["redis"],
        }
        rates = {
            variant: throughput(variant.split("-")[0], where, seconds)
            for variant, where in shared.items()
        }
    variants = ("MemoryStore", "SQLiteStore", "SQLStore-PostgreSQL", "SQLStore-MariaDB")
    for variant in (*variants, "RedisStore"):
        h.print_section(f"{variant}: ns per sign-in", results, "sign-in", variant, ours=ACCEPTED)
    print("\nthroughput, sign-ins per second (accepted codes, new users)")
    for variant, by in rates.items():
        print(f"  {variant:22s} " + "  ".join(f"{n} proc {r:9,.0f}" for n, r in by.items()))
    goals = []
    for variant in (*variants, "RedisStore"):
        verify = results[f"sign-in|{variant}|{ACCEPTED}"]
        own = results[f"sign-in|{variant}|{OWN}"]
        ratio = h.paired_ratio(verify, own)
        goals.append(
            {"target": f"{variant}: Verifier sign-in / the store's own settle", "value":
             round(ratio, 3), "comparison": "<=", "limit": 1.15, "met": ratio <= 1.15}
        )  # fmt: skip
    for variant in dj.ALIASES:
        django = results[f"sign-in|{variant}|{DJANGO['accepted']}"]
        ratio = h.paired_ratio(django, results[f"sign-in|{variant}|{ACCEPTED}"])
        goals.append(
            {"target": f"{variant}: django-otp verify_token / Verifier sign-in (accepted)",
             "value": round(ratio, 3), "comparison": ">=", "limit": 4, "met": ratio >= 4}
        )  # fmt: skip
    growth = rates["SQLStore-PostgreSQL"][4] / rates["SQLStore-PostgreSQL"][1]
    goals.append(
        {"target": "PostgreSQL throughput, 4 processes / 1", "value": round(growth, 3),
         "comparison": ">=", "limit": 1.6, "met": growth >= 1.6}
    )  # fmt: skip
    print("\ntargets (ratios from this run)")
    width = max(len(goal["target"]) for goal in goals)
    for goal in goals:
        verdict = "met" if goal["met"] else "MISSED"
        print(f"  {goal['target']:{width}s} {goal['value']:6.2f} {goal['comparison']} "
              f"{goal['limit']:<5} {verdict}")  # fmt: skip
    h.write_json(
        settings.json_path,
        {
            "benchmark": "service",
            "isoms_otp": isoms_otp.__version__,
            "machine": h.machine(
                ["isoms-otp", "sqlalchemy", "psycopg", "pymysql", "redis", "django", "django-otp"]
            ),
            "settings": {
                "quick": settings.quick,
                "rounds": settings.rounds,
                "sample_seconds": settings.sample_seconds,
                "throughput_seconds": seconds,
                "statistic": "median of per-round samples, ns per operation",
                "django_otp": "verify_token(user, device.persistent_id, token) in autocommit "
                "on the same databases (SQLite in WAL with synchronous=FULL, as SQLiteStore); a "
                "fresh user and TOTPDevice (step 30, t0 0, 6 digits, tolerance 1, drift 0) per "
                "call, made before each sample outside the timing; codes for the real clock",
            },
            "results": h.rows(results),
            "throughput": {variant: dict(by.items()) for variant, by in rates.items()},
            "targets": goals,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
