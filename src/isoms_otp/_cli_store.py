"""The operators' store commands of ``isoms-otp``: ``user``, ``prune`` and ``check``.

``isoms_otp.cli`` registers them with :func:`add_store_commands` and dispatches to
:data:`COMMANDS`. Each reads the store named by ``--store URL`` (or the ``ISOMS_OTP_STORE``
environment variable, where a Redis password stays out of ``ps``): ``sqlite:///relative/path``,
``sqlite:////absolute/path``, ``redis://``, ``rediss://`` or ``unix://``. Nothing printed is a
secret: credential ids are one-way, and a store holds no secret or code. Errors are raised as
:class:`OTPError` (one line on stderr and exit status 2, by ``cli``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final

from ._limits import MAX_FAILURES_CEILING, whole_number
from .exceptions import ConfigurationError
from .stores._base import Budget, Mark, Snapshot, Store, StoreFinding, blocked_until
from .stores.sqlite import SQLiteStore
from .throttle import ThrottlePolicy
from .verifier import Verifier, _check_source, _check_user

__all__ = ["COMMANDS", "ENV_STORE", "add_store_commands", "open_store", "run"]

#: The environment variable read when ``--store`` is not given.
ENV_STORE: Final = "ISOMS_OTP_STORE"
_SQLITE: Final = "sqlite:///"
_REDIS: Final = ("redis://", "rediss://", "unix://")
_DEFAULT_POLICY: Final = ThrottlePolicy()

_USER_EPILOG: Final = """\
examples:
  isoms-otp user status alice --store sqlite:////var/lib/isoms/otp.sqlite3
  isoms-otp user status alice --source 203.0.113.7 --json
  ISOMS_OTP_STORE=redis://:password@redis.internal:6379/0 isoms-otp user unlock alice

unlock is the helpdesk reset: check the person's identity another way first
(docs/recovery.md). It clears failures and locks; replay marks and used
recovery codes stay."""

_PRUNE_EPILOG: Final = """\
example:
  isoms-otp prune --store sqlite:////var/lib/isoms/otp.sqlite3

Run it from a periodic job for SQLite; Redis expires keys by itself (0)."""

_CHECK_EPILOG: Final = """\
examples:
  isoms-otp check --store sqlite:////var/lib/isoms/otp.sqlite3
  ISOMS_OTP_STORE=redis://:password@redis.internal:6379/0 isoms-otp check --json

Each line is: severity, rule, what was found and how to fix it. Exit status:
0 nothing serious, 1 a serious finding (replay marks or lock-outs can be
lost), 2 an error. Nothing is changed."""


def open_store(url: str) -> Store:
    """Open the store named by ``url``: ``sqlite:///PATH`` or a Redis URL.

    ``sqlite:///otp.sqlite3`` is relative to the working directory, ``sqlite:////var/otp.db``
    absolute (the path is everything after ``sqlite:///``, taken as is). The SQLite file must
    exist already, so a mistyped path is an error rather than a new, empty store. Redis URLs
    (``redis://``, ``rediss://``, ``unix://``) need the ``redis`` extra. Raises
    :class:`ConfigurationError` (the message never repeats a Redis URL: it may hold a
    password), :class:`MissingExtraError` or :class:`StoreError`.
    """
    if url.startswith(_SQLITE):
        path = url[len(_SQLITE) :]
        if not path or path == ":memory:":
            raise ConfigurationError(
                "a sqlite store URL needs a file path: sqlite:///relative/path or "
                "sqlite:////absolute/path"
            )
        if not Path(path).is_file():
            raise ConfigurationError(f"no SQLite store at {path!r}; check --store")
        return SQLiteStore(path)
    if url.startswith(_REDIS):
        from .stores.redis import RedisStore  # noqa: PLC0415 - the optional extra, on use

        return RedisStore.from_url(url)
    raise ConfigurationError(
        "the store URL must start with sqlite:///, redis://, rediss:// or unix:// "
        "(not repeated here: it may hold a password)"
    )


def _store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        metavar="URL",
        help=f"sqlite:///PATH or redis://...; default: ${ENV_STORE} (keeps a password out of ps)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")


def add_store_commands(subparsers: Any) -> None:
    """Add ``user`` (``status``, ``unlock``), ``prune`` and ``check`` to ``subparsers``."""
    formatter = argparse.RawDescriptionHelpFormatter
    user = subparsers.add_parser(
        "user",
        help="show or unlock one user's throttle and replay state in a store",
        description="Show one user's failures, waits, replay marks and used recovery codes,\n"
        "or unlock the user (the helpdesk reset). Prints no secret.",
        epilog=_USER_EPILOG,
        formatter_class=formatter,
    )
    actions = user.add_subparsers(dest="action", required=True, metavar="ACTION")
    status = actions.add_parser(
        "status",
        help="failures, wait, lock, replay marks and used recovery codes",
        description="Show USER's code failures (all sources), the wait and whether it is a\n"
        "lock, the credentials with replay marks, and which recovery codes were used.",
        epilog=_USER_EPILOG,
        formatter_class=formatter,
    )
    status.add_argument("user", metavar="USER", help="the user key the application verifies")
    status.add_argument(
        "--source", metavar="SOURCE", help="also show the wrong-password budget of this source"
    )
    status.add_argument(
        "--max-failures",
        type=_failures,
        default=_DEFAULT_POLICY.max_failures,
        metavar="N",
        help=f"the application's policy.max_failures (default {_DEFAULT_POLICY.max_failures})",
    )
    _store_options(status)
    unlock = actions.add_parser(
        "unlock",
        help="clear USER's failures and locks (replay marks stay)",
        description="Clear USER's code failures and every source's back-off or lock. Replay\n"
        "marks and used recovery codes stay. Check the person's identity first.",
        epilog=_USER_EPILOG,
        formatter_class=formatter,
    )
    unlock.add_argument("user", metavar="USER", help="the user key the application verifies")
    _store_options(unlock)
    prune = subparsers.add_parser(
        "prune",
        help="forget store records that no longer change any decision",
        description="Forget failure and mark records that no longer change any decision.",
        epilog=_PRUNE_EPILOG,
        formatter_class=formatter,
    )
    _store_options(prune)
    check = subparsers.add_parser(
        "check",
        help="find what in the store's deployment can lose replay marks or lock-outs",
        description="Read the store's deployment (SQLite: filesystem, file modes, journal;\n"
        "Redis: eviction, persistence, role) and print what can silently lose replay\n"
        "marks or lock-outs. Nothing is changed.",
        epilog=_CHECK_EPILOG,
        formatter_class=formatter,
    )
    _store_options(check)


def _failures(text: str) -> int:
    try:
        return whole_number(text, 1, MAX_FAILURES_CEILING)
    except ConfigurationError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _url(args: argparse.Namespace) -> str:
    url: str | None = args.store if args.store is not None else os.environ.get(ENV_STORE)
    if not url:
        raise ConfigurationError(f"say which store: --store URL or ${ENV_STORE}")
    return url


def run(args: argparse.Namespace, _runtime: object = None) -> int:
    """Run ``user status``, ``user unlock`` or ``prune`` as parsed into ``args``; return 0."""
    url = _url(args)
    if args.command == "user":
        _check_user(args.user)
    source = _check_source(getattr(args, "source", None))
    store = open_store(url)
    try:
        now = time.time()
        verifier = Verifier(store, clock=lambda: now)
        if args.command == "prune":
            gone = verifier.prune()
            _emit(args.json, {"pruned": gone}, [f"pruned {gone} records"])
        elif args.action == "unlock":
            verifier.reset(args.user)
            _emit(
                args.json,
                {"user": args.user, "unlocked": True},
                [f"{args.user}: unlocked (failures and locks cleared; replay marks kept)"],
            )
        else:
            policy = ThrottlePolicy(max_failures=args.max_failures)
            report = _status(store, args.user, source, now, policy)
            _emit(args.json, report, _status_lines(report, source))
    finally:
        store.close()
    return 0


def check(args: argparse.Namespace, _runtime: object = None) -> int:
    """Run ``check``: print the store's findings; return 1 if any is serious, else 0."""
    store = open_store(_url(args))
    try:
        findings = _findings(store)
    finally:
        store.close()
    serious = sum(finding.severity == "serious" for finding in findings)
    report = {
        "findings": [
            {"severity": item.severity, "rule": item.rule, "message": item.message}
            for item in findings
        ],
        "serious": serious,
    }
    lines = [f"{item.severity}  {item.rule}  {item.message}" for item in findings]
    _emit(args.json, report, lines or ["no findings"])
    return 1 if serious else 0


def _findings(store: Store) -> list[StoreFinding]:
    check_store: Callable[[], list[StoreFinding]] | None = getattr(store, "check", None)
    if check_store is not None:
        return list(check_store())
    return [
        StoreFinding(
            rule="no-check",
            severity="info",
            message=f"{type(store).__name__} has no deployment check; nothing was checked",
        )
    ]


def _budget(
    budget: Budget, snapshot: Snapshot, now: float, policy: ThrottlePolicy, limit: int
) -> dict[str, Any]:
    until = blocked_until(snapshot, now, policy)
    wait = until - now if until > now else None
    return {
        "failures": budget.failures,
        "wait_seconds": None if wait is None or math.isinf(wait) else round(wait, 3),
        "locked": wait is not None and budget.failures >= limit,
        "locked_until_unlock": math.isinf(until),
    }


def _iso(at: int) -> str:
    return datetime.fromtimestamp(at, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _mark(credential: str, mark: Mark) -> dict[str, Any]:
    kinds = [kind for kind, value in (("totp", mark.totp_start), ("hotp", mark.hotp_counter))
             if value is not None]  # fmt: skip
    return {
        "credential": credential,
        "kinds": kinds,
        "totp_step_start": None if mark.totp_start is None else _iso(mark.totp_start),
        "hotp_counter": mark.hotp_counter,
    }


def _status(
    store: Store, user: str, source: str, now: float, policy: ThrottlePolicy
) -> dict[str, Any]:
    state = store.snapshot(user, source=source)
    report: dict[str, Any] = {"user": user}
    report |= _budget(state.budget, Snapshot(budget=state.budget), now, policy, policy.max_failures)
    if source:
        pair = _budget(
            state.pair, Snapshot(pair=state.pair), now, policy, policy.source_max_failures
        )
        report["source"] = {"source": source, **pair}
    report["marks"] = [_mark(cred, mark) for cred, mark in sorted(store.marks(user).items())]
    recovery = state.recovery
    used = [index for index in range(recovery.used.bit_length()) if recovery.used >> index & 1]
    report["recovery"] = {"set_id": recovery.set_id, "used": used} if recovery.set_id else None
    return report


def _wait_text(part: dict[str, Any]) -> str:
    if part["locked_until_unlock"]:
        return "until an unlock (100 failures in a row)"
    if part["wait_seconds"] is None:
        return "none"
    kind = "locked" if part["locked"] else "backing off"
    return f"{part['wait_seconds']:g} s ({kind})"


def _status_lines(report: dict[str, Any], source: str) -> list[str]:
    lines = [
        f"user:      {report['user']}",
        f"failures:  {report['failures']} (codes, all sources)",
        f"wait:      {_wait_text(report)}",
    ]
    if source:
        pair = report["source"]
        lines.append(
            f"source:    {source}: {pair['failures']} wrong passwords, wait {_wait_text(pair)}"
        )
    marks = report["marks"]
    lines.append(f"marks:     {len(marks) or 'none'}")
    for mark in marks:
        name = mark["credential"] or "(schema 1, every credential)"
        detail = []
        if mark["totp_step_start"] is not None:
            detail.append(f"totp step from {mark['totp_step_start']}")
        if mark["hotp_counter"] is not None:
            detail.append(f"hotp counter {mark['hotp_counter']}")
        lines.append(f"  {name}  {', '.join(detail)}")
    recovery = report["recovery"]
    if recovery is None:
        lines.append("recovery:  no code used")
    else:
        used = ", ".join(str(index) for index in recovery["used"])
        lines.append(f"recovery:  set {recovery['set_id']}, codes used: {used}")
    return lines


def _emit(as_json: bool, value: dict[str, Any], lines: list[str]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(value, indent=2) + "\n")
    else:
        sys.stdout.write("\n".join(lines) + "\n")


#: The commands this module adds, for ``cli``'s dispatch table.
COMMANDS: Final[dict[str, Callable[[argparse.Namespace, Any], int]]] = {
    "user": run,
    "prune": run,
    "check": check,
}
