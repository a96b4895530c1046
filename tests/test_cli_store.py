"""The operators' commands ``user status``, ``user unlock`` and ``prune``, as operators run them.

Every test runs the installed ``isoms-otp`` console script in a subprocess against a real SQLite
file or the test suite's redis-server, the way an operator would, and once more through
``cli.main`` in this process, so that coverage sees the code.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from isoms_otp import (
    HOTP,
    TOTP,
    RecoveryCodes,
    SQLiteStore,
    Store,
    ThrottlePolicy,
    Verifier,
)
from isoms_otp._cli_store import open_store
from isoms_otp.cli import main
from isoms_otp.testing import FakeClock

SECRET = bytes(range(20))
SCRIPT = shutil.which("isoms-otp", path=str(Path(sys.executable).parent))
#: A policy that locks after three failures, without back-off before.
THREE = ThrottlePolicy(max_failures=3, base_delay=0)


@dataclass(frozen=True)
class Done:
    """What one run of the command gave."""

    returncode: int
    stdout: str
    stderr: str


Run = Callable[..., Done]


@pytest.fixture(params=["script", "in-process"])
def cli(
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> Run:
    """Run the command: the console script in a subprocess, or ``main()`` (for coverage)."""

    def script(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Done:
        if SCRIPT is None:
            pytest.fail(f"no isoms-otp console script next to {sys.executable}: pip install -e .")
        base = {key: value for key, value in os.environ.items() if key != "ISOMS_OTP_STORE"}
        done = subprocess.run(
            [SCRIPT, *args],
            capture_output=True,
            text=True,
            cwd=cwd,
            env={**base, **(env or {})},
            timeout=60,
            check=False,
        )
        return Done(done.returncode, done.stdout, done.stderr)

    def in_process(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Done:
        capsys.readouterr()
        with monkeypatch.context() as patch:
            patch.delenv("ISOMS_OTP_STORE", raising=False)
            for key, value in (env or {}).items():
                patch.setenv(key, value)
            if cwd is not None:
                patch.chdir(cwd)
            status = main(list(args))
        out, err = capsys.readouterr()
        return Done(status, out, err)

    return script if request.param == "script" else in_process


def ok_json(cli: Run, *args: str, **kwargs: Any) -> Any:
    done = cli(*args, "--json", **kwargs)
    assert (0, "") == (done.returncode, done.stderr)
    return json.loads(done.stdout)


def one_error(cli: Run, *args: str, **kwargs: Any) -> str:
    """Run a command that must fail: exit 2, nothing on stdout, one line on stderr."""
    done = cli(*args, **kwargs)
    assert (2, "") == (done.returncode, done.stdout)
    lines = done.stderr.splitlines()
    assert 1 == len(lines), done.stderr
    assert lines[0].startswith("isoms-otp: error: ")
    return str(lines[0])


@pytest.fixture
def db(tmp_path: Path) -> Iterator[tuple[Path, SQLiteStore]]:
    path = tmp_path / "otp.sqlite3"
    store = SQLiteStore(path)
    yield path, store
    store.close()


def fill(store: Store) -> tuple[tuple[str, ...], RecoveryCodes]:
    """Give alice a TOTP mark, an HOTP mark, two used recovery codes and two failures."""
    verifier = Verifier(store, policy=THREE)
    totp, hotp = TOTP(SECRET), HOTP(bytes(range(30, 50)))
    assert verifier.verify("alice", totp, totp.generate()).ok
    assert verifier.verify("alice", hotp, hotp.generate(4)).ok
    codes, recovery = RecoveryCodes.generate()
    assert verifier.verify_recovery("alice", recovery, codes[7]).ok
    assert verifier.verify_recovery("alice", recovery, codes[2]).ok
    verifier.verify("alice", totp, "000000")
    verifier.verify_recovery("alice", recovery, "0" * 16)
    verifier.record_failure("alice", source="203.0.113.7")
    return codes, recovery


def test_status_json(cli: Run, db: tuple[Path, SQLiteStore]) -> None:
    """Failures, wait, marks (ids and kinds) and used recovery codes; no secret, no code."""
    path, store = db
    codes, recovery = fill(store)
    report = ok_json(cli, "user", "status", "alice", "--store", f"sqlite:///{path}")
    assert {"user", "failures", "wait_seconds", "locked", "locked_until_unlock", "marks"} < set(
        report
    )
    assert ("alice", 2, None, False, False) == (
        report["user"],
        report["failures"],
        report["wait_seconds"],
        report["locked"],
        report["locked_until_unlock"],
    )
    kinds = sorted(tuple(mark["kinds"]) for mark in report["marks"])
    assert [("hotp",), ("totp",)] == kinds
    hotp = next(mark for mark in report["marks"] if mark["kinds"] == ["hotp"])
    assert (4, None) == (hotp["hotp_counter"], hotp["totp_step_start"])
    assert {"set_id": recovery.set_id, "used": [2, 7]} == report["recovery"]
    assert "source" not in report
    text = json.dumps(report)
    assert all(code.replace("-", "") not in text.upper() for code in codes)
    assert SECRET.hex() not in text


def test_status_text(cli: Run, db: tuple[Path, SQLiteStore]) -> None:
    """The text form says the same in lines an operator reads."""
    path, store = db
    _, recovery = fill(store)
    done = cli("user", "status", "alice", "--store", f"sqlite:///{path}")
    assert (0, "") == (done.returncode, done.stderr)
    out = done.stdout
    assert "user:      alice\n" in out
    assert "failures:  2 (codes, all sources)\n" in out
    assert "wait:      none\n" in out
    assert "marks:     2\n" in out
    assert "hotp counter 4" in out
    assert "totp step from 20" in out
    assert f"recovery:  set {recovery.set_id}, codes used: 2, 7\n" in out


def test_status_of_an_unknown_user(cli: Run, db: tuple[Path, SQLiteStore]) -> None:
    """A user the store never saw has nothing: no failures, no marks, no recovery record."""
    path, _ = db
    report = ok_json(cli, "user", "status", "nobody", "--store", f"sqlite:///{path}")
    assert (0, [], None) == (report["failures"], report["marks"], report["recovery"])
    done = cli("user", "status", "nobody", "--store", f"sqlite:///{path}")
    assert "marks:     none\n" in done.stdout
    assert "recovery:  no code used\n" in done.stdout


def test_status_of_a_source(cli: Run, db: tuple[Path, SQLiteStore]) -> None:
    """--source adds that source's wrong-password budget, backing off before its lock."""
    path, store = db
    fill(store)
    slow = Verifier(store, policy=ThrottlePolicy(base_delay=600, max_delay=600))
    slow.record_failure("alice", source="198.51.100.1")
    url = f"sqlite:///{path}"
    report = ok_json(cli, "user", "status", "alice", "--source", "203.0.113.7", "--store", url)
    assert {
        "source": "203.0.113.7",
        "failures": 1,
        "wait_seconds": None,
        "locked": False,
        "locked_until_unlock": False,
    } == report["source"]
    waiting = ok_json(cli, "user", "status", "alice", "--source", "198.51.100.1", "--store", url)
    assert 0 < waiting["source"]["wait_seconds"] <= 600
    assert not waiting["source"]["locked"]
    done = cli("user", "status", "alice", "--source", "198.51.100.1", "--store", url)
    assert "source:    198.51.100.1: 1 wrong passwords, wait " in done.stdout
    assert " s (backing off)\n" in done.stdout


def test_status_of_a_locked_user(cli: Run, db: tuple[Path, SQLiteStore]) -> None:
    """A user at the application's max_failures is reported locked, with the wait left."""
    path, store = db
    verifier = Verifier(store, policy=THREE)
    for _ in range(3):
        verifier.verify("alice", TOTP(SECRET), "not a code")
    url = f"sqlite:///{path}"
    report = ok_json(cli, "user", "status", "alice", "--max-failures", "3", "--store", url)
    assert (3, True, False) == (report["failures"], report["locked"], report["locked_until_unlock"])
    assert 0 < report["wait_seconds"] <= THREE.lock_duration
    default = ok_json(cli, "user", "status", "alice", "--store", url)
    assert not default["locked"]  # under the default max_failures (10) it is a back-off
    done = cli("user", "status", "alice", "--max-failures", "3", "--store", url)
    assert " s (locked)\n" in done.stdout


def test_status_at_the_ceiling(cli: Run, db: tuple[Path, SQLiteStore]) -> None:
    """100 failures in a row: locked until an unlock, whatever the policy."""
    path, store = db
    verifier = Verifier(store, policy=ThrottlePolicy(max_failures=100, base_delay=0))
    for _ in range(100):  # no back-off before the 100th failure, so each one is examined
        verifier.verify("alice", TOTP(SECRET), "")
    report = ok_json(cli, "user", "status", "alice", "--store", f"sqlite:///{path}")
    assert (100, None, True, True) == (
        report["failures"],
        report["wait_seconds"],
        report["locked"],
        report["locked_until_unlock"],
    )
    done = cli("user", "status", "alice", "--store", f"sqlite:///{path}")
    assert "wait:      until an unlock (100 failures in a row)\n" in done.stdout


def test_schema_1_marks_are_named(cli: Run, db: tuple[Path, SQLiteStore]) -> None:
    """A mark kept from a version-1 file (credential "") is shown as such."""
    path, store = db
    store.close()
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO isoms_otp_marks (user, credential, totp, hotp, keep_until) "
            "VALUES ('alice', '', '1700000000', NULL, 0)"
        )
    conn.close()
    done = cli("user", "status", "alice", "--store", f"sqlite:///{path}")
    assert "  (schema 1, every credential)  totp step from 2023-11-14T22:13:20Z\n" in done.stdout


def test_relative_and_absolute_paths(cli: Run, db: tuple[Path, SQLiteStore]) -> None:
    """sqlite:///name is relative to the working directory, sqlite:////abs/name absolute."""
    path, store = db
    fill(store)
    relative = ok_json(
        cli, "user", "status", "alice", "--store", "sqlite:///otp.sqlite3", cwd=path.parent
    )
    assert path.is_absolute()
    absolute = ok_json(
        cli, "user", "status", "alice", "--store", f"sqlite:///{path}", cwd=Path("/")
    )
    assert relative == absolute
    assert str(path).startswith("/")  # so the URL above had four slashes


def test_store_from_the_environment(cli: Run, db: tuple[Path, SQLiteStore]) -> None:
    """ISOMS_OTP_STORE names the store when --store is not given; --store wins."""
    path, store = db
    fill(store)
    report = ok_json(cli, "user", "status", "alice", env={"ISOMS_OTP_STORE": f"sqlite:///{path}"})
    assert 2 == report["failures"]
    message = one_error(
        cli, "user", "status", "alice", "--store", "sqlite:///missing", env={"ISOMS_OTP_STORE": "x"}
    )
    assert "no SQLite store at 'missing'" in message


def test_unlock(cli: Run, db: tuple[Path, SQLiteStore]) -> None:
    """unlock clears failures and locks; replay marks and used recovery codes stay."""
    path, store = db
    codes, recovery = fill(store)
    url = f"sqlite:///{path}"
    before = ok_json(cli, "user", "status", "alice", "--source", "203.0.113.7", "--store", url)
    done = cli("user", "unlock", "alice", "--store", url)
    assert (0, "", "alice: unlocked (failures and locks cleared; replay marks kept)\n") == (
        done.returncode,
        done.stderr,
        done.stdout,
    )
    after = ok_json(cli, "user", "status", "alice", "--source", "203.0.113.7", "--store", url)
    assert (0, 0) == (after["failures"], after["source"]["failures"])
    assert (before["marks"], before["recovery"]) == (after["marks"], after["recovery"])
    verifier = Verifier(store)
    assert "replayed" == verifier.verify_recovery("alice", recovery, codes[7]).reason
    assert {"user": "bob", "unlocked": True} == ok_json(
        cli, "user", "unlock", "bob", "--store", url
    )


def test_prune(cli: Run, db: tuple[Path, SQLiteStore]) -> None:
    """prune forgets records that changed no decision any more, and says how many."""
    path, store = db
    old = Verifier(store, clock=FakeClock(1_000_000_000), policy=THREE)
    for user in ("old1", "old2", "old3"):
        old.verify(user, TOTP(SECRET), "000000")
    fill(store)
    assert {"pruned": 3} == ok_json(cli, "prune", "--store", f"sqlite:///{path}")
    done = cli("prune", "--store", f"sqlite:///{path}")
    assert (0, "pruned 0 records\n") == (done.returncode, done.stdout)
    assert 2 == ok_json(cli, "user", "status", "alice", "--store", f"sqlite:///{path}")["failures"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("user", "status", "alice"), "say which store: --store URL or $ISOMS_OTP_STORE"),
        (("prune", "--store", "sqlite:///"), "needs a file path"),
        (("prune", "--store", "sqlite:///:memory:"), "needs a file path"),
        (("prune", "--store", "sqlite:///no/such.db"), "no SQLite store at 'no/such.db'"),
        (("prune", "--store", "postgres://u:hunter2@db/x"), "must start with sqlite:///"),
        (("prune", "--store", "sqlite://otp.db"), "must start with sqlite:///"),
        (("user", "status", "", "--store", "sqlite:///x"), "user must be 1 to 256 characters"),
        (("user", "status", "a\x01b", "--store", "sqlite:///x"), "user contains a control"),
        (("user", "unlock", "a" * 257, "--store", "sqlite:///x"), "user must be 1 to 256"),
        (
            ("user", "status", "alice", "--source", "", "--store", "sqlite:///x"),
            "source must be 1 to 256",
        ),
        (("user", "status", "alice", "--max-failures", "0"), "must be a whole number from 1 to"),
        (("user", "status", "alice", "--max-failures", "101"), "must be a whole number from 1 to"),
        (("user", "frobnicate", "alice"), "invalid choice"),
        (("user",), "required"),
        (("prune", "--json=yes"), "takes no value"),
    ],
    ids=[
        "no-store",
        "empty-path",
        "memory",
        "missing-file",
        "other-scheme",
        "two-slashes",
        "empty-user",
        "control-user",
        "long-user",
        "empty-source",
        "max-failures-0",
        "max-failures-101",
        "bad-action",
        "no-action",
        "json-value",
    ],
)
def test_errors_are_one_line_with_status_2(cli: Run, args: tuple[str, ...], message: str) -> None:
    """Each refusal is one line on stderr and exit status 2; a URL's password is never shown."""
    line = one_error(cli, *args)
    assert message in line
    assert "hunter2" not in line


def test_a_file_that_is_no_store(cli: Run, tmp_path: Path) -> None:
    """A file that is not a SQLite store is a StoreError line, not a traceback."""
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database, " * 100)
    assert "the SQLite store at" in one_error(cli, "prune", "--store", f"sqlite:///{junk}")


def test_unreachable_redis_hides_the_password(cli: Run) -> None:
    """A Redis server that does not answer is one line, and the URL's password is not in it."""
    line = one_error(cli, "user", "status", "alice", "--store", "redis://:hunter2@127.0.0.1:1/0")
    assert "the Redis store failed" in line
    assert "hunter2" not in line


def test_bad_redis_url_hides_the_password(cli: Run) -> None:
    """A malformed Redis URL is refused without repeating it."""
    line = one_error(cli, "prune", "--store", "redis://:hunter2@127.0.0.1:notaport/0")
    assert "hunter2" not in line


@pytest.mark.redis
def test_redis_status_unlock_prune(cli: Run, redis_url: str) -> None:
    """The same commands against a real redis-server."""
    store = open_store(redis_url)
    try:
        codes, recovery = fill(store)
    finally:
        store.close()
    report = ok_json(cli, "user", "status", "alice", "--store", redis_url)
    assert (2, [2, 7]) == (report["failures"], report["recovery"]["used"])
    assert 2 == len(report["marks"])
    assert {"user": "alice", "unlocked": True} == ok_json(
        cli, "user", "unlock", "alice", "--store", redis_url
    )
    assert 0 == ok_json(cli, "user", "status", "alice", "--store", redis_url)["failures"]
    assert {"pruned": 0} == ok_json(cli, "prune", "--store", redis_url)
    store = open_store(redis_url)
    try:
        assert "replayed" == Verifier(store).verify_recovery("alice", recovery, codes[2]).reason
    finally:
        store.close()


def test_open_store_in_process(db: tuple[Path, SQLiteStore]) -> None:
    """open_store gives a working SQLiteStore for a sqlite URL."""
    path, store = db
    fill(store)
    opened = open_store(f"sqlite:///{path}")
    try:
        assert isinstance(opened, SQLiteStore)
        assert 2 == opened.snapshot("alice").budget.failures
    finally:
        opened.close()


# --------------------------------------------------------------------------- check


def test_check_sqlite(cli: Run, db: tuple[Path, SQLiteStore]) -> None:
    """Findings print one a line (severity, rule, message); only a serious one exits 1."""
    path, store = db
    fill(store)
    for each in path.parent.glob("otp.sqlite3*"):
        each.chmod(0o600)
    done = cli("check", "--store", f"sqlite:///{path}")
    assert (0, "") == (done.returncode, done.stderr)
    lines = done.stdout.splitlines()
    assert lines == ["no findings"] or all(line.split("  ")[0] != "serious" for line in lines)
    path.chmod(0o666)
    done = cli("check", "--store", f"sqlite:///{path}")
    assert (1, "") == (done.returncode, done.stderr)
    assert "serious  writable-by-others  " in done.stdout
    report = json.loads(cli("check", "--json", env={"ISOMS_OTP_STORE": f"sqlite:///{path}"}).stdout)
    assert report["serious"] >= 1
    assert {"severity": "serious", "rule": "writable-by-others"} == {
        key: report["findings"][0][key] for key in ("severity", "rule")
    }


@pytest.mark.redis
def test_check_redis(cli: Run, redis_servers: Callable[..., Any]) -> None:
    """A Redis without persistence is serious (exit 1); one with AOF has nothing to say."""
    bare = redis_servers()
    done = cli("check", env={"ISOMS_OTP_STORE": bare.url})
    assert (1, "") == (done.returncode, done.stderr)
    assert done.stdout.startswith("serious  no-persistence  neither AOF nor RDB")
    durable = redis_servers("--appendonly", "yes")
    done = cli("check", "--store", durable.url)
    assert (0, "no findings\n", "") == (done.returncode, done.stdout, done.stderr)
    assert {"findings": [], "serious": 0} == ok_json(cli, "check", "--store", durable.url)


def test_check_of_an_unreachable_redis_is_serious(cli: Run) -> None:
    """Nothing checked is not "no findings": exit 1, and the password is not shown."""
    done = cli("check", "--store", "redis://:hunter2@127.0.0.1:1/0")
    assert (1, "") == (done.returncode, done.stderr)
    assert "serious  unreachable  could not reach Redis" in done.stdout
    assert "hunter2" not in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("check",), "say which store"),
        (("check", "--store", "mysql://x"), "must start with sqlite:///"),
        (("check", "--store", "sqlite:///no/such/file"), "no SQLite store at"),
    ],
    ids=["no-store", "other-scheme", "missing-file"],
)
def test_check_errors_exit_2(cli: Run, args: tuple[str, ...], message: str) -> None:
    """What stops the check from running is one line on stderr and exit 2."""
    assert message in one_error(cli, *args)
