"""The ``isoms-otp demo`` command: argument parsing and the server loop (Flask imported late).

``isoms_otp.cli`` registers it with :func:`add_arguments` and :func:`run`; ``python -m
isoms_otp.demo`` runs :func:`main`. Importing this module imports neither Flask nor
cryptography, so the CLI works without the ``demo`` extra until this command is used.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import secrets
import sqlite3
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final, TextIO

from isoms_otp.exceptions import MissingExtraError, OTPError

__all__ = ["DEMO_ADMIN", "DEMO_USER", "add_arguments", "default_db", "main", "run", "state_dir"]

#: The seeded account; every start gives it a new random password and prints it.
DEMO_USER: Final = "alice"
#: The seeded administrator (the admin pages): a new random password of its own on every start.
DEMO_ADMIN: Final = "admin"
#: Fictional numbers (the 555-01xx range is reserved for fiction in North America).
DEMO_PHONE: Final = "+1 555 0100"
DEMO_ADMIN_PHONE: Final = "+1 555 0199"
#: The file name of the default ``--db`` in :func:`state_dir`.
DEFAULT_DB_NAME: Final = "demo.sqlite3"


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Return the per-user directory for the demo's state (not created here).

    ``$XDG_STATE_HOME/isoms-otp`` when that variable holds an absolute path (the XDG Base
    Directory rule: a relative one is ignored), else ``~/.local/state/isoms-otp``; on Windows
    ``isoms-otp`` in ``%LOCALAPPDATA%``. The demo's database holds password hashes and TOTP secrets,
    so it belongs there rather than in whatever directory the command was started from.
    """
    env = os.environ if environ is None else environ
    if os.name == "nt" and env.get("LOCALAPPDATA"):  # pragma: no cover - tests run on POSIX
        return Path(env["LOCALAPPDATA"]) / "isoms-otp"
    xdg = env.get("XDG_STATE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "state"
    return base / "isoms-otp"


def default_db(environ: Mapping[str, str] | None = None) -> Path:
    """Return the default ``--db``, creating :func:`state_dir` with mode 0700 if needed.

    An existing directory is set to 0700 too: what it holds is secret. Raises ``OSError``
    when the directory cannot be made.
    """
    directory = state_dir(environ)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    return directory / DEFAULT_DB_NAME


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the demo's options to ``parser``."""
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: 127.0.0.1; loopback only, see --allow-remote)",
    )
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default: 8000)")
    parser.add_argument(
        "--db",
        default=None,
        help=(
            "SQLite file for all demo state: password hashes and TOTP secrets (default: "
            f"{DEFAULT_DB_NAME} in the per-user state directory $XDG_STATE_HOME/isoms-otp, "
            "else ~/.local/state/isoms-otp, created with mode 0700)"
        ),
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host (the demo serves plain HTTP: do not expose it)",
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Seed the demo user and admin, print how to sign in, and serve until Ctrl-C; return 0.

    Without ``--db`` the state goes to :func:`default_db`. Returns 2 (with a message on
    stderr) for a non-loopback ``--host`` without ``--allow-remote``, a port out of range or in
    use, a ``--db`` (or state directory) that cannot be opened or used, or a missing ``demo``
    extra.
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    if not _is_loopback(args.host) and not args.allow_remote:
        print(
            f"isoms-otp demo: refusing to listen on {args.host}: it is not a loopback address. "
            "The demo serves plain HTTP; pass --allow-remote only on a trusted network.",
            file=err,
        )
        return 2
    if not 0 <= args.port <= 65535:
        print(f"isoms-otp demo: --port must be from 0 to 65535 (got {args.port})", file=err)
        return 2
    try:
        from werkzeug.serving import make_server  # noqa: PLC0415 - the optional demo extra

        from .app import STORE_EXTENSION, create_app  # noqa: PLC0415
        from .db import KEYS_SUFFIX, DemoDB  # noqa: PLC0415 - seals with the crypto extra
    except ImportError as exc:
        error = MissingExtraError(
            "the demo needs Flask, segno, cryptography and prometheus_client: "
            "pip install 'isoms-otp[demo]'"
        )
        print(f"isoms-otp demo: {error} ({exc})", file=err)
        return 2
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.db is None:
        try:
            db_path = str(default_db())
        except OSError as exc:
            print(f"isoms-otp demo: cannot create {state_dir()}: {exc}", file=err)
            return 2
    else:
        db_path = args.db
    password = secrets.token_urlsafe(12)
    admin_password = secrets.token_urlsafe(12)
    try:
        app = create_app(db_path)
    except (sqlite3.Error, OTPError, OSError) as exc:  # OTPError: a StoreError, a bad key file
        print(f"isoms-otp demo: cannot open --db {db_path!r}: {exc}", file=err)
        return 2
    try:
        # Seeded before listening: a database that fails (locked by another program) is one
        # line, like one that cannot be opened, not a traceback with the port already taken.
        seed = DemoDB(db_path)
        seed.set_user(DEMO_USER, password, phone=DEMO_PHONE)
        seed.set_user(DEMO_ADMIN, admin_password, phone=DEMO_ADMIN_PHONE, admin=True)
    except (OTPError, OSError) as exc:
        app.extensions[STORE_EXTENSION].close()
        print(f"isoms-otp demo: cannot use --db {db_path!r}: {exc}", file=err)
        return 2
    try:
        server = make_server(args.host, args.port, app, threaded=True)
    except (OSError, SystemExit):
        # werkzeug prints why (such as "Address already in use") and calls sys.exit(1).
        app.extensions[STORE_EXTENSION].close()
        print(f"isoms-otp demo: cannot listen on {args.host}:{args.port}", file=err)
        return 2
    host = f"[{args.host}]" if ":" in args.host else args.host
    # The password goes to the terminal only, never to the log.
    print(
        f"isoms-otp demo on http://{host}:{server.server_port}/  (state in {db_path})\n"
        f"  TOTP secrets are sealed with the key in {db_path}{KEYS_SUFFIX} (mode 0600)\n"
        f"  sign in as {DEMO_USER} with password {password}  (new on every start)\n"
        f"  administrator: {DEMO_ADMIN} with password {admin_password}  (new on every start)\n"
        "  text messages are simulated: see /outbox and the [SIMULATED SMS] log lines\n"
        "  stop with Ctrl-C",
        file=out,
        flush=True,
    )
    try:
        server.serve_forever()  # werkzeug's: returns on Ctrl-C, after closing the socket
    finally:
        app.extensions[STORE_EXTENSION].close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m isoms_otp.demo [options]``; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="isoms-otp demo",
        description="Run the iSOMS sign-in flow demo server.",
        allow_abbrev=False,  # as the main CLI: an option is spelt out or refused
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))
