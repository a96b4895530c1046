"""Recovery codes raced by real processes: the SQLite file or the Redis server decides."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import isoms_otp
from isoms_otp import RecoveryCodes

pytestmark = pytest.mark.slow

PROCESSES = 8
NOW = 30 * 56_666_667 + 10
SRC = str(Path(isoms_otp.__file__).resolve().parent.parent)

# Each worker opens the store, says "ready", waits for "go", verifies one code, prints the reason.
WORKER = """
import sys
import isoms_otp
from isoms_otp import RecoveryCodes, SQLiteStore, ThrottlePolicy, Verifier
backend, where, now, text, code = sys.argv[1:]
if backend == "sqlite":
    store = SQLiteStore(where, timeout=60)
else:
    store = isoms_otp.RedisStore.from_url(where)
verifier = Verifier(
    store, clock=lambda: float(now), policy=ThrottlePolicy(max_failures=100, base_delay=0)
)
codes = RecoveryCodes.from_string(text)
verifier.recovery_remaining("warm-up", codes)  # connect before the start signal
print("ready", flush=True)
sys.stdin.readline()
print(verifier.verify_recovery("alice", codes, code).reason, flush=True)
"""


def race(backend: str, where: str, text: str, codes: list[str]) -> Counter[str]:
    """Start one worker per code, release them together, count the reasons they print."""
    env = {**os.environ, "PYTHONPATH": SRC}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, backend, where, str(NOW), text, code],
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


def test_one_code_from_many_processes(backend: tuple[str, str]) -> None:
    """8 processes submit the same recovery code at once: exactly one is accepted."""
    codes, recovery = RecoveryCodes.generate()
    reasons = race(*backend, recovery.to_string(), [codes[5]] * PROCESSES)
    assert Counter({"accepted": 1, "replayed": PROCESSES - 1}) == reasons


def test_every_code_from_many_processes(backend: tuple[str, str]) -> None:
    """8 processes each use another code of one set at once: no acceptance is lost."""
    codes, recovery = RecoveryCodes.generate(PROCESSES)
    reasons = race(*backend, recovery.to_string(), list(codes))
    assert Counter({"accepted": PROCESSES}) == reasons
