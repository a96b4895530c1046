"""The ``isoms-otp demo`` command: loopback only, the printed credentials, a real server."""

from __future__ import annotations

import argparse
import importlib
import io
import re
import runpy
import socket
import stat
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from isoms_otp import StoreError
from isoms_otp.demo.command import (
    DEMO_ADMIN,
    DEMO_USER,
    add_arguments,
    default_db,
    main,
    run,
    state_dir,
)
from isoms_otp.demo.db import DemoDB


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_defaults() -> None:
    """Loopback, port 8000, the database in the state directory (run decides), no remote."""
    args = parse()
    assert ("127.0.0.1", 8000, None, False) == (args.host, args.port, args.db, args.allow_remote)


@pytest.mark.parametrize(
    ("xdg", "expected"),
    [("/srv/state", "/srv/state/isoms-otp"), ("", "HOME/.local/state/isoms-otp"),
     ("relative/dir", "HOME/.local/state/isoms-otp")],
    ids=["xdg-state-home", "unset", "relative-is-ignored"],
)  # fmt: skip
def test_state_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, xdg: str, expected: str
) -> None:
    """$XDG_STATE_HOME/isoms-otp when it is absolute, else ~/.local/state/isoms-otp."""
    monkeypatch.setenv("HOME", str(tmp_path))
    environ = {"XDG_STATE_HOME": xdg} if xdg else {}
    assert Path(expected.replace("HOME", str(tmp_path))) == state_dir(environ)


def test_default_db_is_not_in_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: without --db the demo wrote its database (password hashes, TOTP secrets)
    to isoms-otp-demo.sqlite3 in whatever directory it was started from. It now lives in
    the per-user state directory, made 0700, in a file made 0600.
    """
    work, state = tmp_path / "work", tmp_path / "state"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    with socket.socket() as taken:  # run() stops after opening and seeding the database
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert 2 == main(["--port", str(taken.getsockname()[1])])
    assert "cannot listen on" in capsys.readouterr().err
    assert [] == list(work.iterdir())
    db = state / "isoms-otp" / "demo.sqlite3"
    assert 0o700 == stat.S_IMODE((state / "isoms-otp").stat().st_mode)
    assert 0o600 == stat.S_IMODE(db.stat().st_mode)
    assert DemoDB(db).user(DEMO_USER) is not None


def test_existing_state_directory_is_made_private(tmp_path: Path) -> None:
    """A state directory that others could read is set to 0700."""
    (tmp_path / "isoms-otp").mkdir(mode=0o755)
    (tmp_path / "isoms-otp").chmod(0o755)
    assert tmp_path / "isoms-otp" / "demo.sqlite3" == default_db({"XDG_STATE_HOME": str(tmp_path)})
    assert 0o700 == stat.S_IMODE((tmp_path / "isoms-otp").stat().st_mode)


def test_state_directory_that_cannot_be_made_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A state directory under a file gives a message, not a traceback."""
    (tmp_path / "file").write_text("", encoding="ascii")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "file"))
    assert 2 == main(["--port", "0"])
    err = capsys.readouterr().err
    assert f"isoms-otp demo: cannot create {tmp_path / 'file' / 'isoms-otp'}:" in err
    assert 1 == len(err.splitlines())


def test_help_says_where_the_state_goes(capsys: pytest.CaptureFixture[str]) -> None:
    """`isoms-otp demo --help` names the state directory."""
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "$XDG_STATE_HOME/isoms-otp, else ~/.local/state/isoms-otp" in help_text
    assert "mode 0700" in help_text


def test_db_failing_while_seeding_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A database that opens but then fails (another program took its lock) is one line too."""

    def locked(*_args: object, **_kwargs: object) -> None:
        raise StoreError("the demo database failed: database is locked")

    monkeypatch.setattr(DemoDB, "set_user", locked)
    path = str(tmp_path / "d.sqlite3")
    assert 2 == main(["--port", "0", "--db", path])
    err = capsys.readouterr().err
    assert f"isoms-otp demo: cannot use --db {path!r}: the demo database failed" in err
    assert 1 == len(err.splitlines())


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "::", "example.org"])  # noqa: S104
def test_non_loopback_host_is_refused(host: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A non-loopback address needs --allow-remote."""
    assert 2 == main(["--host", host])
    assert "not a loopback address" in capsys.readouterr().err


@pytest.mark.parametrize("port", ["-1", "65536"])
def test_port_out_of_range_is_refused(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Ports are 0 to 65535."""
    assert 2 == main(["--port", port])
    assert "--port must be from 0 to 65535" in capsys.readouterr().err


def test_db_that_cannot_be_opened_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: a --db in a missing directory used to end in a traceback."""
    path = str(tmp_path / "missing" / "x.sqlite3")
    assert 2 == main(["--port", "0", "--db", path])
    err = capsys.readouterr().err
    assert f"isoms-otp demo: cannot open --db {path!r}" in err
    assert 1 == len(err.splitlines())


def test_a_key_file_others_may_read_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A demo key file with loose permissions stops the start with one line saying why."""
    path = tmp_path / "d.sqlite3"
    (tmp_path / "d.sqlite3.keys").write_text("junk\n", encoding="ascii")
    (tmp_path / "d.sqlite3.keys").chmod(0o644)
    assert 2 == main(["--port", "0", "--db", str(path)])
    err = capsys.readouterr().err
    assert "cannot open --db" in err
    assert "chmod 600" in err
    assert 1 == len(err.splitlines())


def test_port_in_use_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A port another program holds gives a message, not a traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        assert 2 == main(["--port", port, "--db", str(tmp_path / "d.sqlite3")])
    assert "cannot listen on 127.0.0.1:" in capsys.readouterr().err


def test_missing_flask_says_which_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without Flask the command names the extra to install."""
    monkeypatch.setitem(sys.modules, "isoms_otp.demo.app", None)
    assert 2 == main([])
    assert "pip install 'isoms-otp[demo]'" in capsys.readouterr().err


def test_importing_the_entry_point_runs_nothing() -> None:
    """Importing isoms_otp.demo.__main__ (as tools do) starts no server."""
    module = importlib.import_module("isoms_otp.demo.__main__")
    assert main is module.main


def test_module_entry_point_runs_main(monkeypatch: pytest.MonkeyPatch) -> None:
    """python -m isoms_otp.demo is the same command."""
    monkeypatch.setattr(sys, "argv", ["isoms_otp.demo", "--host", "0.0.0.0"])  # noqa: S104
    # runpy warns when the module was imported before (as the test above does).
    monkeypatch.delitem(sys.modules, "isoms_otp.demo.__main__", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("isoms_otp.demo", run_name="__main__")
    assert 2 == exit_info.value.code


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_serves_and_prints_working_credentials(
    tmp_path: Path, host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server answers on the printed URL and the printed password is alice's.

    Regression: this test used to stop the server with ``_thread.interrupt_main()``, which does
    nothing when SIGINT is ignored (a job started with ``&`` from a script), so the suite hung
    for ever. The command now runs in a helper thread and the test stops it with the server's
    own ``shutdown()``, whatever the signal dispositions; Ctrl-C in a real process is
    ``tests/test_cli.py::test_console_script_serves_the_demo``.
    """
    import werkzeug.serving  # noqa: PLC0415 - the demo extra, as the command imports it

    servers: list[werkzeug.serving.BaseWSGIServer] = []
    real_make_server = werkzeug.serving.make_server

    def capture(*args: Any, **kwargs: Any) -> werkzeug.serving.BaseWSGIServer:
        server = real_make_server(*args, **kwargs)
        servers.append(server)
        return server

    monkeypatch.setattr(werkzeug.serving, "make_server", capture)
    out = io.StringIO()
    db_path = tmp_path / "demo.sqlite3"
    status: list[int] = []
    args = parse("--host", host, "--port", "0", "--db", str(db_path))
    serving = threading.Thread(target=lambda: status.append(run(args, out=out)), daemon=True)
    serving.start()
    try:
        found = None
        for _ in range(400):
            found = re.search(
                r"(http://\S+/).*alice with password (\S+).*admin with password (\S+)",
                out.getvalue(),
                re.DOTALL,
            )
            if found or not serving.is_alive():
                break
            time.sleep(0.05)
        assert found is not None, out.getvalue()
        url, password, admin_password = found.groups()
        with urllib.request.urlopen(url + "sign-in", timeout=10) as page:  # noqa: S310
            assert "Sign in" in page.read().decode()
    finally:
        for server in servers:
            server.shutdown()  # from another thread: serve_forever returns, whatever SIGINT does
        serving.join(timeout=30)
    assert not serving.is_alive()
    assert [0] == status
    assert DemoDB(db_path).check_password(DEMO_USER, password) is not None
    admin = DemoDB(db_path).check_password(DEMO_ADMIN, admin_password)
    assert admin is not None
    assert admin.is_admin
    assert admin_password != password


def test_allow_remote_lets_any_address_through(tmp_path: Path) -> None:
    """--allow-remote accepts a non-loopback host (here one this machine cannot bind)."""
    args = parse("--host", "192.0.2.1", "--port", "0", "--allow-remote", "--db",
                 str(tmp_path / "d.sqlite3"))  # fmt: skip
    assert 2 == run(args)  # got past the loopback check, then the bind failed
