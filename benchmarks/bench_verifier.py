"""Verifier throughput with MemoryStore, SQLiteStore and RedisStore, beside the bare store cost.

Run from the repository root (a ``redis-server`` binary on PATH, or ``--redis-url``)::

    PYTHONPATH=src python benchmarks/bench_verifier.py             # about a minute
    PYTHONPATH=src python benchmarks/bench_verifier.py --quick     # seconds; only checks the script
    PYTHONPATH=src python benchmarks/bench_verifier.py --bare-only # store floors, no Verifier

Each store's table has its floor, measured in the same run: for SQLite one autocommitted UPSERT
statement on a database with the store's settings (WAL, synchronous=FULL); for Redis one EVALSHA
of a one-line script (one round trip; PING is shown too); for the in-memory store, TOTP.verify
alone (there is no I/O to compare with). Every verification is for a new user, as at the
morning login peak, so no row is throttled or refused as a replay. The Redis server is started
by the script on a free loopback port (unless ``--redis-url`` names one) and stopped at the end.
The number of Redis round trips per verification is counted on the client (socket writes) and
on the server (read events processed).
"""

from __future__ import annotations

import itertools
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import _harness as h

import isoms_otp
from isoms_otp import TOTP

#: The message when the Verifier and stores of issue 4 are not in this checkout yet.
MISSING_VERIFIER = "store benchmarks need isoms_otp.Verifier (issue 4)"
#: The public names the store section is written against.
VERIFIER_NAMES = ("MemoryStore", "RedisStore", "SQLiteStore", "ThrottlePolicy", "Verifier")

AT = 1_700_000_000.0
KEY = b"12345678901234567890"
SQLITE_FLOOR = (
    "INSERT INTO marks(user, mark, failures) VALUES (?, ?, 0) "
    "ON CONFLICT(user) DO UPDATE SET mark = excluded.mark, failures = 0"
)
REDIS_FLOOR = "redis.call('HSET', KEYS[1], 'mark', ARGV[1]) return 1"
RIGHT_ROW = "Verifier.verify, right code (accepted)"
OWN_ROW = "the store's own atomic operation, called directly"


def parse_extra(argv: list[str] | None) -> tuple[list[str], str | None, bool]:
    """Split off this script's own options (``--redis-url URL``, ``--bare-only``)."""
    rest = list(sys.argv[1:] if argv is None else argv)
    url = None
    bare_only = False
    if "--bare-only" in rest:
        rest.remove("--bare-only")
        bare_only = True
    if "--redis-url" in rest:
        at = rest.index("--redis-url")
        if at + 1 >= len(rest):
            raise SystemExit("--redis-url needs a URL, such as redis://127.0.0.1:6379/15")
        url = rest[at + 1]
        del rest[at : at + 2]
    return rest, url, bare_only


def load_verifier_api() -> dict[str, Any]:
    """Return the Verifier and store classes, or stop with :data:`MISSING_VERIFIER`.

    This is the one place that depends on issue 4: ``Verifier(store, policy=..., clock=...)``,
    ``verifier.verify(user, otp, code) -> Verdict(.ok, .reason)``, ``ThrottlePolicy(...)``,
    ``MemoryStore()``, ``SQLiteStore(path)`` and ``RedisStore.from_url(url)``.
    """
    try:
        return {name: getattr(isoms_otp, name) for name in VERIFIER_NAMES}
    except (AttributeError, ImportError):
        raise SystemExit(MISSING_VERIFIER) from None


def store_operation(store: Any, policy: Any) -> Callable[[str], object]:
    """Return a call of the store's own atomic operation for a user (the Store protocol's settle).

    It is what ``Verifier.verify`` asks of the store once per verification: here with a matched
    step, as for a right code. If the protocol's operation is renamed or its keywords change,
    this adapter is the only code to update; until then a clear error says so.
    """
    settle = getattr(store, "settle", None)
    if settle is None:
        raise SystemExit(
            f"{type(store).__name__} has no settle(): update store_operation() in "
            "benchmarks/bench_verifier.py to call the store's atomic operation"
        )
    step_start = int(AT) // 30 * 30
    attempt = isoms_otp.Attempt
    credential = isoms_otp.verifier.credential_id(TOTP(KEY))

    def operation(user: str) -> object:
        return settle(
            attempt(
                user=user,
                source="198.51.100.7",
                now=AT,
                kind="totp",
                credential=credential,
                claim=step_start,
                keep_until=step_start + 11 * 30,
                policy=policy,
            )
        )

    return operation


# ---- a real redis-server on loopback -----------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def redis_server(url: str | None, workdir: Path) -> Iterator[str]:
    """Yield a Redis URL: ``url`` itself, or a server started here on a free loopback port."""
    if url is not None:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server not found on PATH: install it or pass --redis-url URL")
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(workdir)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"redis-server did not start on port {port}")
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# ---- cases -------------------------------------------------------------------------------------


def bare_cases(
    workdir: Path, client: Any, otp: TOTP, code: str, closing: list[Callable[[], object]]
) -> list[h.Case]:
    """The floors: TOTP.verify alone, one SQLite statement, one Redis script call, PING."""
    database = sqlite3.connect(workdir / "bare.sqlite3", isolation_level=None)
    database.execute("PRAGMA journal_mode=WAL")
    database.execute("PRAGMA synchronous=FULL")
    database.execute(
        "CREATE TABLE IF NOT EXISTS marks "
        "(user TEXT PRIMARY KEY, mark INTEGER NOT NULL, failures INTEGER NOT NULL)"
    )
    closing.append(database.close)
    script = client.register_script(REDIS_FLOOR)
    script(keys=["bench:bare:warm"], args=[1])  # load it, so the timed calls are one EVALSHA each
    env = {
        "names": itertools.count(),
        "otp": otp,
        "code": code,
        "AT": AT,
        "database": database,
        "SQL": SQLITE_FLOOR,
        "script": script,
        "client": client,
    }
    return [
        h.Case(
            section="store",
            variant="MemoryStore",
            implementation="floor: TOTP.verify alone (no store)",
            stmt="otp.verify(code, at=AT)",
            env=env,
            floor=True,
        ),
        h.Case(
            section="store",
            variant="SQLiteStore",
            implementation="floor: one SQLite UPSERT, autocommit",
            stmt="database.execute(SQL, (f'b{next(names)}', 1))",
            env=env,
            floor=True,
            note="WAL, synchronous=FULL, as the store opens its database",
        ),
        h.Case(
            section="store",
            variant="RedisStore",
            implementation="floor: one EVALSHA of a one-line script",
            stmt="script(keys=[f'bench:bare:{next(names)}'], args=[1])",
            env=env,
            floor=True,
        ),
        h.Case(
            section="store",
            variant="RedisStore",
            implementation="PING (one bare round trip)",
            stmt="client.ping()",
            env=env,
        ),
    ]


def verifier_cases(
    api: dict[str, Any],
    workdir: Path,
    url: str,
    otp: TOTP,
    closing: list[Callable[[], object]],
) -> list[h.Case]:
    """Verifier.verify and the store's own operation for each store."""
    policy = api["ThrottlePolicy"]()
    right = otp.generate(AT)
    wrong = next(c for c in ("000000", "111111") if otp.verify(c, at=AT, past=2, future=2) is None)
    stores = {
        "MemoryStore": api["MemoryStore"](),
        "SQLiteStore": api["SQLiteStore"](workdir / "store.sqlite3"),
        "RedisStore": api["RedisStore"].from_url(url),
    }
    closing += [store.close for store in stores.values()]
    cases = []
    for variant, store in stores.items():
        verifier = api["Verifier"](store, policy=policy, clock=lambda: AT)
        for code, reason in ((right, "accepted"), (wrong, "invalid")):
            verdict = verifier.verify(f"check-{variant}-{reason}", otp, code)
            h.check(verdict.reason == reason, f"{variant}: a {reason} code gave {verdict.reason}")
            h.check(verdict.ok is (reason == "accepted"), f"{variant}: ok disagrees with reason")
        operation = store_operation(store, policy)
        env = {
            "names": itertools.count(),
            "verifier": verifier,
            "otp": otp,
            "right": right,
            "wrong": wrong,
            "operation": operation,
        }
        cases += [
            h.Case(
                section="store",
                variant=variant,
                implementation=RIGHT_ROW,
                stmt="verifier.verify(f'r{next(names)}', otp, right, source='198.51.100.7')",
                env=env,
            ),
            h.Case(
                section="store",
                variant=variant,
                implementation="Verifier.verify, wrong code (invalid)",
                stmt="verifier.verify(f'w{next(names)}', otp, wrong, source='198.51.100.7')",
                env=env,
            ),
            h.Case(
                section="store",
                variant=variant,
                implementation=OWN_ROW,
                stmt="operation(f's{next(names)}')",
                env=env,
            ),
        ]
    return cases


def count_round_trips(api: dict[str, Any], url: str, otp: TOTP, count: int) -> dict[str, Any]:
    """Socket writes (client) and commands processed (server) per Redis verification."""
    import redis  # noqa: PLC0415 - the redis client is only needed once the Verifier exists
    from redis.connection import AbstractConnection  # noqa: PLC0415

    store = api["RedisStore"].from_url(url)
    verifier = api["Verifier"](store, policy=api["ThrottlePolicy"](), clock=lambda: AT)
    right = otp.generate(AT)
    verifier.verify("trips-warm-up", otp, right)  # loads the script; later calls are EVALSHA
    admin = redis.Redis.from_url(url)
    writes = 0
    original: Callable[..., None] = AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        nonlocal writes
        writes += 1
        original(self, command, check_health)

    try:
        admin.config_resetstat()
        AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]
        try:
            for number in range(count):
                verifier.verify(f"trips-{number}", otp, right, source="198.51.100.7")
        finally:
            AbstractConnection.send_packed_command = original  # type: ignore[method-assign]
        stats = admin.info("stats")
    finally:
        admin.close()
        store.close()
    # CONFIG RESETSTAT zeroes the counters as it runs; the INFO that reads them is one more read.
    # (total_commands_processed would also count the commands a script runs inside the server.)
    reads = int(stats["total_reads_processed"]) - 1
    return {
        "verifications": count,
        "client_writes_per_verification": writes / count,
        "server_reads_per_verification": reads / count,
    }


def main(argv: list[str] | None = None) -> int:
    rest, url, bare_only = parse_extra(argv)
    settings = h.parse_args(__doc__.splitlines()[0], "verifier", rest)
    api = None if bare_only else load_verifier_api()
    import redis  # noqa: PLC0415 - after the clear message above, not before it

    otp = TOTP(KEY)
    code = next(c for c in ("000000", "111111") if otp.verify(c, at=AT) is None)
    with tempfile.TemporaryDirectory(prefix="isoms-otp-bench-") as tmp:
        workdir = Path(tmp)
        with redis_server(url, workdir) as redis_url:
            client = redis.Redis.from_url(redis_url)
            closing: list[Callable[[], object]] = [client.close]
            try:
                cases = bare_cases(workdir, client, otp, code, closing)
                if api is not None:
                    cases += verifier_cases(api, workdir, redis_url, otp, closing)
                print(f"timing {len(cases)} cases in {settings.rounds} interleaved rounds ...")
                results = h.measure(cases, settings)
                trips = None
                if api is not None:
                    trips = count_round_trips(api, redis_url, otp, 50 if settings.quick else 1000)
            finally:
                for close in reversed(closing):
                    close()

    for variant in ("MemoryStore", "SQLiteStore", "RedisStore"):
        h.print_section(
            f"{variant}: ns per verification",
            results,
            "store",
            variant,
            ours=RIGHT_ROW if api is not None else "",
        )
    goals: list[dict[str, Any]] = []
    if api is not None and trips is not None:
        print(
            f"\nRedis round trips per verification: {trips['client_writes_per_verification']:.2f} "
            f"(client socket writes), {trips['server_reads_per_verification']:.2f} "
            "(server read events)"
        )
        for variant in ("SQLiteStore", "RedisStore"):
            verify = results[f"store|{variant}|{RIGHT_ROW}"]
            own = results[f"store|{variant}|{OWN_ROW}"]
            floor = next(m for m in results.values() if m.case.floor and m.case.variant == variant)
            ratio = h.paired_ratio(verify, own)
            goals.append(
                {
                    "target": f"{variant}: Verifier.verify / the store's own operation",
                    "value": round(ratio, 3),
                    "comparison": "<=",
                    "limit": 1.15,
                    "met": ratio <= 1.15,
                }
            )
            goals.append(
                {
                    "target": f"{variant}: Verifier.verify / {floor.case.implementation[7:]}",
                    "value": round(h.paired_ratio(verify, floor), 3),
                    "comparison": "<=",
                    "limit": None,
                    "met": None,
                }
            )
        trips_value = trips["client_writes_per_verification"]
        goals.append(
            {
                "target": "Redis round trips per TOTP verification",
                "value": trips_value,
                "comparison": "<=",
                "limit": 1,
                "met": trips_value <= 1,
            }
        )
        print("\ntargets (ratios from this run)")
        for goal in goals:
            verdict = {True: "met", False: "MISSED", None: "-"}[goal["met"]]
            limit = "" if goal["limit"] is None else f"<= {goal['limit']}"
            print(f"  {goal['target']:70s} {goal['value']:6.2f} {limit:7s} {verdict}")

    h.write_json(
        settings.json_path,
        {
            "benchmark": "verifier",
            "isoms_otp": isoms_otp.__version__,
            "machine": h.machine(["isoms-otp", "redis"]),
            "settings": {
                "quick": settings.quick,
                "rounds": settings.rounds,
                "sample_seconds": settings.sample_seconds,
                "bare_only": api is None,
                "redis": "given by --redis-url" if url is not None else "started on loopback",
                "statistic": "median of per-round samples, ns per operation",
            },
            "results": h.rows(results),
            "round_trips": trips,
            "targets": goals,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
