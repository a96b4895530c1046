"""Races between real processes: the SQLite file and the Redis server decide, not a Python lock."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

import isoms_otp
from isoms_otp import TOTP

pytestmark = pytest.mark.slow

SECRET = bytes(range(20))
NOW = 30 * 56_666_667 + 10
PROCESSES = 8
SRC = str(Path(isoms_otp.__file__).resolve().parent.parent)

# Each worker connects, says "ready", waits for "go" on stdin, verifies once, prints the reason.
WORKER = """
import sys
from isoms_otp import RedisStore, SQLiteStore, ThrottlePolicy, TOTP, Verifier
backend, where, now, max_failures, code = sys.argv[1:]
store = SQLiteStore(where, timeout=60) if backend == "sqlite" else RedisStore.from_url(where)
policy = ThrottlePolicy(max_failures=int(max_failures), base_delay=0)
verifier = Verifier(store, clock=lambda: float(now), policy=policy)
otp = TOTP(bytes(range(20)))
store.snapshot("warm-up")  # connect before the start signal
print("ready", flush=True)
sys.stdin.readline()
source = None if code.startswith("!") else f"10.0.{len(code)}.{abs(hash(code)) % 250}"
if code == "!password":
    print(verifier.record_failure("alice", source="one-source").reason, flush=True)
else:
    print(verifier.verify("alice", otp, code.lstrip("!"), source=source).reason, flush=True)
"""


def race(backend: str, where: str, max_failures: int, codes: list[str]) -> Counter[str]:
    """Start one worker per code, release them together, and count the reasons they print."""
    env = {**os.environ, "PYTHONPATH": SRC}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, backend, where, str(NOW), str(max_failures), code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for code in codes
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            assert "ready\n" == worker.stdout.readline()
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        reasons = Counter(worker.communicate(timeout=120)[0].strip() for worker in workers)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    assert [0] * len(workers) == [worker.returncode for worker in workers]
    return reasons


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """A store location shared by every worker: a SQLite file or the test Redis server."""
    if request.param == "sqlite":
        return "sqlite", str(tmp_path / "otp.sqlite3")
    redis_url: str = request.getfixturevalue("redis_url")
    return "redis", redis_url


def test_same_code_from_many_processes(backend: tuple[str, str]) -> None:
    """N processes submit the same valid code at once: exactly one is accepted."""
    code = TOTP(SECRET).generate(NOW)
    reasons = race(*backend, max_failures=100, codes=[code] * PROCESSES)
    assert Counter({"accepted": 1, "replayed": PROCESSES - 1}) == reasons


def test_guesses_from_many_processes(backend: tuple[str, str]) -> None:
    """N processes guess wrong at once with a limit of k: exactly k get "invalid"."""
    limit = 3
    right = int(TOTP(SECRET).generate(NOW))
    guess: Callable[[int], str] = lambda n: f"{(right + 1 + n) % 10**6:06d}"  # noqa: E731
    reasons = race(*backend, max_failures=limit, codes=[guess(n) for n in range(PROCESSES)])
    assert Counter({"invalid": limit, "throttled": PROCESSES - limit}) == reasons


def test_wrong_passwords_from_many_processes(backend: tuple[str, str]) -> None:
    """N processes record a wrong password from one source at once: exactly 10 are counted
    (the per-source limit), the rest throttled."""
    reasons = race(*backend, max_failures=3, codes=["!password"] * 12)
    assert Counter({"invalid": 10, "throttled": 2}) == reasons
