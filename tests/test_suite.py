"""The test suite's own guards: a hung test fails in bounded time and takes no other with it."""

from __future__ import annotations

import fnmatch
import subprocess
import sys
from pathlib import Path

import pytest

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"

HANGS = """
import time

import pytest


@pytest.mark.timeout(1)
def test_hangs() -> None:
    time.sleep(3600)


def test_runs_after_it() -> None:
    pass
"""


def test_every_test_has_a_deadline(pytestconfig: pytest.Config) -> None:
    """Regression: a test could hang the run for ever (a server stopped only by SIGINT, in a
    job that ignored SIGINT). Every test now has pytest-timeout's deadline, 120 s by default.
    """
    assert ("120", "signal") == (
        str(pytestconfig.getini("timeout")), pytestconfig.getini("timeout_method")
    )  # fmt: skip


def test_a_hung_test_fails_and_the_run_goes_on(tmp_path: Path) -> None:
    """With the project's settings a hanging test is one failure and the next test still runs."""
    (tmp_path / "test_hang.py").write_text(HANGS, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(PYPROJECT),
         "--rootdir", str(tmp_path), str(tmp_path / "test_hang.py")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert 1 == result.returncode, result.stdout + result.stderr
    assert "Timeout" in result.stdout
    assert "1 failed, 1 passed" in result.stdout


@pytest.mark.parametrize(
    "written",
    ["isoms-otp-demo.sqlite3", "isoms-otp-demo.sqlite3-wal", "demo.sqlite3-shm",
     "otp.sqlite3-journal", "benchmarks/results/core-20260101T000000Z.json",
     "test-artifacts/demo/01-sms-step.png", ".coverage", ".coverage.host.1234"],
)  # fmt: skip
def test_gitignore_covers_what_the_demo_and_benchmarks_write(written: str) -> None:
    """Regression: the demo's database (password hashes, TOTP secrets) could be committed."""
    lines = (PYPROJECT.parent / ".gitignore").read_text(encoding="utf-8").splitlines()
    patterns = [line.rstrip("/") for line in lines if line and not line.startswith("#")]
    names = written.split("/")
    # The path, each of its directories, and the file name (a pattern without a slash
    # matches a name at any depth).
    parts = [written, names[-1], *("/".join(names[: n + 1]) for n in range(len(names) - 1))]
    assert any(fnmatch.fnmatch(part, pattern) for part in parts for pattern in patterns)
