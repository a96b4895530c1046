"""The ``isoms-otp`` command: enrol a test account, show and check codes, inspect URIs, keys.

Installed as the ``isoms-otp`` console script and runnable as ``python -m isoms_otp``. The
commands are ``enroll``, ``code``, ``verify``, ``inspect``, ``keys generate``/``keys rewrap``
(sealing keys, the ``crypto`` extra) and ``demo``; ``docs/cli.md`` shows each one.

Secrets never travel on the command line, because any user on the machine can read another
user's argv (``ps``, ``/proc``). ``code`` and ``verify`` read a base32 secret or an
``otpauth://`` URI from stdin (without echo when stdin is a terminal) or from ``--secret-file``
/ ``--uri-file``. Errors are one line on stderr, ``isoms-otp: error: ...``, with exit status 2;
no message repeats a secret, a URI or a code.

Exit status: 0 success, 1 ``verify`` found no match or ``keys rewrap`` refused some lines, 2 an
error. Ctrl-C ends ``code --watch`` with status 0, since that is how a watch is meant to end;
anywhere else (at the secret prompt, say) it ends with 130, the shell's convention for SIGINT,
and no traceback.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import json
import math
import os
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final, NoReturn, TextIO

from . import __version__, _cli_store
from ._code import normalize_code
from ._hmac import ALGORITHMS, normalize_algorithm
from ._hotp import HOTP
from ._limits import (
    LEGACY_MIN_SECRET_BYTES,
    MAX_COUNTER,
    MAX_DIGITS,
    MAX_LOOK_AHEAD,
    MAX_PERIOD,
    MAX_TOTP_WINDOW,
    MIN_DIGITS,
    MIN_SECRET_BYTES,
    whole_number,
)
from ._secret import decode_secret, encode_secret, generate_secret, grouped_secret
from ._totp import TOTP
from .compat import APPS, Finding, check_compatibility
from .demo import command as _demo_command  # argument parsing only: Flask is imported on use
from .exceptions import (
    ConfigurationError,
    InvalidSecretError,
    InvalidURIError,
    MissingExtraError,
    OTPError,
)
from .qr import qr_png, qr_svg, qr_terminal
from .uri import OTPAuthURI, build_uri, parse_uri

if TYPE_CHECKING:
    from .sealing import Keyring

__all__ = ["main"]

PROG: Final = "isoms-otp"
#: Longest input read from stdin or a file, in bytes: a URI is at most 2048 characters and a
#: base32 secret at most 1024, so anything longer is a mistake (or an attack), not a key.
INPUT_LIMIT: Final = 4096
DEFAULT_ISSUER: Final = "iSOMS"
#: Width of the countdown bar of ``code --watch``, in characters.
BAR_WIDTH: Final = 20

_EXTRA_HINT: Final = "pip install 'isoms-otp[qr]'"
_KEYS_VARIABLE: Final = "ISOMS_OTP_KEYS"
#: Longest ``user<TAB>token`` line ``keys rewrap`` reads, in bytes (a user id of up to 1024
#: bytes and a token of up to 2048 characters fit); a longer line is refused, not read whole.
MAX_REWRAP_LINE: Final = 4096
#: How many refused lines ``keys rewrap`` names one by one; later ones are only counted.
LISTED_REFUSALS: Final = 100
_SCHEME: Final = "otpauth:"
_UNIX_SECONDS: Final = re.compile(r"[0-9]{1,20}(?:\.[0-9]{1,9})?")
_FILE_KINDS: Final = {"--svg": "SVG QR code", "--png": "PNG QR code", "--save-uri": "URI"}


class _UsageError(Exception):
    """A usage problem found after parsing; the message is printed as is (never a secret)."""


class _Args(argparse.Namespace):
    """The parsed command line, typed: each command reads only the options it defines."""

    command: str
    # enroll
    account: str
    issuer: str
    qr: str | None
    svg: str | None
    png: str | None
    save_uri: str | None
    # code, verify (and --digits, --algorithm, --period for enroll too)
    secret_file: str | None
    uri_file: str | None
    digits: int | None
    algorithm: str | None
    period: int | None
    counter: int | None
    allow_short_secret: bool
    at: int | float | None
    watch: bool
    code: str
    past: int | None
    future: int | None
    look_ahead: int | None
    # inspect
    uri: str | None
    show_secret: bool
    # keys
    keys_command: str
    id: str | None
    file: str | None
    keys_file: str | None
    progress_every: int
    # every command but demo
    json: bool


def _sys_stdin() -> TextIO | None:
    return sys.stdin


def _sys_stdout() -> TextIO:
    return sys.stdout


def _sys_stderr() -> TextIO:
    return sys.stderr


def _os_environ() -> Mapping[str, str]:
    return os.environ


@dataclass(frozen=True, slots=True, kw_only=True)
class _Runtime:
    """What the commands use outside the process: streams, prompt, environment and clock.

    :func:`main` takes them from :mod:`sys` and :mod:`os` when it is called; tests pass their
    own instead of patching those modules. ``clock`` and ``sleep`` drive ``code --watch``,
    whose redraws ``ticks`` caps; ``getpass`` reads a secret at a terminal without echo.
    """

    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    ticks: int | None = None
    stdin: TextIO | None = field(default_factory=_sys_stdin)
    stdout: TextIO = field(default_factory=_sys_stdout)
    stderr: TextIO = field(default_factory=_sys_stderr)
    getpass: Callable[[str], str] = getpass.getpass
    environ: Mapping[str, str] = field(default_factory=_os_environ)

    def say(self, *lines: str) -> None:
        """Write each of ``lines`` to stdout, one line each."""
        for line in lines:
            self.stdout.write(f"{line}\n")

    def warn(self, line: str) -> None:
        """Write ``line`` to stderr."""
        self.stderr.write(f"{line}\n")

    def note(self, message: str) -> None:
        """Write ``isoms-otp: note: message`` to stderr."""
        self.warn(f"{PROG}: note: {message}")

    def json(self, value: object) -> None:
        """Write ``value`` to stdout as indented JSON."""
        self.say(json.dumps(value, indent=2))


@dataclass(frozen=True, slots=True, kw_only=True)
class _Counted:
    """An HOTP key and the counter a command uses with it."""

    otp: HOTP
    counter: int


# --------------------------------------------------------------------------- argument types


def _bounded(low: int, high: int) -> Callable[[str], int]:
    """Return an argparse type for a plain ASCII decimal from ``low`` to ``high``."""

    def parse(text: str) -> int:
        try:
            return whole_number(text, low, high)
        except ConfigurationError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _algorithm(text: str) -> str:
    name = normalize_algorithm(text)  # the library's own reading: ASCII, any letter case
    if name is None:
        *others, last = ALGORITHMS
        raise argparse.ArgumentTypeError(f"must be {', '.join(others)} or {last}")
    return name


def _label_part(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def _instant(text: str) -> int | float:
    """Parse ``--at``: Unix seconds, or ISO-8601 with a time zone (a naive time is refused)."""
    if _UNIX_SECONDS.fullmatch(text):
        return float(text) if "." in text else int(text)
    # Python 3.10's fromisoformat() does not read the "Z" suffix; 3.11 does.
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        raise argparse.ArgumentTypeError(
            "must be Unix seconds (1700000000) or an ISO-8601 time with a time zone "
            "(2023-11-14T22:13:20Z)"
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise argparse.ArgumentTypeError(
            "has no time zone, so it names no instant: add Z or an offset such as +01:00"
        )
    stamp = moment.timestamp()
    return int(stamp) if stamp.is_integer() else stamp


# --------------------------------------------------------------------------- the parser


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and never repeat an argument's value.

    argparse quotes unrecognised arguments, ambiguous options and invalid choices.
    Someone who types ``isoms-otp code JBSWY3DP...`` put a secret there, and stderr
    may end up in a log. Abbreviated options are off (subparsers inherit this through
    ``parser_class``): prefix matching turned ``--secret JBSW...`` into
    ``--secret-file`` with the secret as its path.
    """

    def __init__(self, *, runtime: _Runtime | None = None, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(**kwargs)
        self._runtime = _Runtime() if runtime is None else runtime

    def _print_message(self, message: str, file: object = None) -> None:
        # argparse writes help and --version to sys.stdout and errors to sys.stderr: use the
        # streams the command was given instead.
        stream = self._runtime.stderr if file is sys.stderr else self._runtime.stdout
        stream.write(message)

    def add_command(self, commands: Any, name: str, **kwargs: Any) -> _Parser:
        """Add the subcommand ``name`` to ``commands`` (from add_subparsers), with our streams."""
        parser: _Parser = commands.add_parser(
            name, runtime=self._runtime, formatter_class=_Formatter, **kwargs
        )
        return parser

    def error(self, message: str) -> NoReturn:
        if message.startswith(("unrecognized arguments", "ambiguous option")):
            message = (
                "unexpected arguments (not repeated here, in case one is a secret): "
                "secrets and URIs are read from stdin or --secret-file/--uri-file"
            )
        elif "ignored explicit argument" in message:  # --json=VALUE: the value may be a secret
            message = message[: message.index("ignored explicit argument")] + "takes no value"
        elif "invalid choice" in message:
            head = message[: message.index("invalid choice")]
            _, found, choices = message.rpartition("(choose from")
            message = f"{head}invalid choice" + (f" (choose from{choices}" if found else "")
        self.exit(2, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


_Formatter = argparse.RawDescriptionHelpFormatter

_MAIN_EPILOG = """\
examples:
  isoms-otp enroll --account alice@example.com
  isoms-otp code --uri-file alice.uri
  isoms-otp verify 123456 --uri-file alice.uri
  isoms-otp inspect < alice.uri
  isoms-otp keys generate --file new.key

Secrets and URIs are read from stdin or a file, never from the command line.
Exit status: 0 success, 1 no match (verify) or lines refused (keys rewrap),
2 error."""

_ENROLL_EPILOG = """\
examples:
  isoms-otp enroll --account alice@example.com
  isoms-otp enroll --account alice@example.com --qr none --svg alice.svg --save-uri alice.uri
  isoms-otp enroll --account alice@example.com --json --qr none

The output contains the new secret: do not log it or share it. Files are
created with mode 0600 and never overwritten. Settings other than SHA1,
6 digits and 30 s make Microsoft Authenticator and Authy show wrong codes."""

_CODE_EPILOG = """\
examples:
  isoms-otp code < alice.uri
  isoms-otp code --uri-file alice.uri --watch
  isoms-otp code --secret-file key.txt --at 2023-11-14T22:13:20Z
  isoms-otp code --secret-file key.txt --counter 5          # HOTP

Input is a base32 secret or an otpauth:// URI. --digits, --algorithm and
--period describe a raw secret; a URI carries its own (giving them is an
error). --counter makes a raw secret HOTP, or overrides an HOTP URI's counter."""

_VERIFY_EPILOG = """\
examples:
  isoms-otp verify 123456 < alice.uri
  isoms-otp verify 123456 --uri-file alice.uri --past 2 --future 0 --json
  isoms-otp verify 123456 --secret-file key.txt --counter 5 --look-ahead 10

Exit status 0 and "match: step N, drift D" when the code matches; 1 and
"no match" when it does not. The code is short-lived, so it may be given on
the command line; the secret may not."""

_KEYS_EPILOG = """\
examples:
  isoms-otp keys generate --file new.key
  isoms-otp keys rewrap --keys-file ring.keys < rows.tsv > rewrapped.tsv

Exit status: 0 success, 1 some lines refused (rewrap), 2 error."""

_GENERATE_EPILOG = """\
examples:
  isoms-otp keys generate
  isoms-otp keys generate --id 2026-12 --file 2026-12.key

The line is a key: keep it out of logs, shells' history and version control.
Prefer --file (created 0600, never overwritten) to a shell redirect."""

_REWRAP_EPILOG = """\
examples:
  ISOMS_OTP_KEYS="$(cat ring.keys)" isoms-otp keys rewrap < rows.tsv > rewrapped.tsv
  isoms-otp keys rewrap --keys-file ring.keys < rows.tsv > rewrapped.tsv

Keys come from --keys-file or ISOMS_OTP_KEYS: id:base64key entries separated
by commas or newlines, the active key first. Lines already under the active
key are checked and written unchanged. Exit status: 0 every line written,
1 some lines refused (each is named by number on stderr), 2 error."""

_INSPECT_EPILOG = """\
examples:
  isoms-otp inspect < alice.uri
  isoms-otp inspect --uri-file alice.uri --json

A URI given as an argument is visible to other users of the machine (ps):
prefer stdin or --uri-file. The secret is hidden unless --show-secret."""


def _key_options(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--secret-file", metavar="PATH", help="read a base32 secret from PATH (default: stdin)"
    )
    source.add_argument(
        "--uri-file", metavar="PATH", help="read an otpauth:// URI from PATH (default: stdin)"
    )
    parser.add_argument(
        "--digits",
        type=_bounded(MIN_DIGITS, MAX_DIGITS),
        metavar="N",
        help="code length of a raw secret: 6 (default), 7 or 8",
    )
    parser.add_argument(
        "--algorithm",
        type=_algorithm,
        metavar="ALG",
        help="HMAC of a raw secret: SHA1 (default), SHA256 or SHA512",
    )
    parser.add_argument(
        "--period",
        type=_bounded(1, MAX_PERIOD),
        metavar="S",
        help="TOTP step of a raw secret in seconds (default 30)",
    )
    parser.add_argument(
        "--counter",
        type=_bounded(0, MAX_COUNTER),
        metavar="N",
        help="HOTP counter: makes a raw secret HOTP; overrides an HOTP URI's counter",
    )
    parser.add_argument(
        "--allow-short-secret",
        action="store_true",
        help="accept a legacy key of 80 to 127 bits (RFC 4226 requires 128)",
    )


def _build_parser(runtime: _Runtime) -> _Parser:
    parser = _Parser(
        runtime=runtime,
        prog=PROG,
        description="Enrol accounts, show and verify TOTP/HOTP codes, inspect otpauth:// URIs,\n"
        "make and rotate the keys that seal secrets at rest.",
        epilog=_MAIN_EPILOG,
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    enroll = parser.add_command(
        commands,
        "enroll",
        help="make a new secret; print its URI, manual key and QR code",
        description="Make a fresh TOTP secret for an account and print its otpauth:// URI,\n"
        "the key for manual entry and a QR code to scan, plus app compatibility findings.",
        epilog=_ENROLL_EPILOG,
    )
    enroll.add_argument(
        "--account", required=True, type=_label_part, help="the user's login name (required)"
    )
    enroll.add_argument(
        "--issuer",
        default=DEFAULT_ISSUER,
        type=_label_part,
        help=f"service name the app shows (default {DEFAULT_ISSUER})",
    )
    enroll.add_argument(
        "--digits",
        type=_bounded(MIN_DIGITS, MAX_DIGITS),
        metavar="N",
        help="code length: 6 (default), 7 or 8",
    )
    enroll.add_argument(
        "--algorithm",
        type=_algorithm,
        metavar="ALG",
        help="SHA1 (default), SHA256 or SHA512",
    )
    enroll.add_argument(
        "--period",
        type=_bounded(1, MAX_PERIOD),
        metavar="S",
        help="time step in seconds (default 30)",
    )
    enroll.add_argument(
        "--qr",
        choices=("terminal", "none"),
        help="draw the QR code in the terminal (the default) or not",
    )
    enroll.add_argument("--svg", metavar="PATH", help="also write the QR code as SVG to PATH")
    enroll.add_argument("--png", metavar="PATH", help="also write the QR code as PNG to PATH")
    enroll.add_argument(
        "--save-uri", metavar="PATH", help="also write the URI to PATH (for code --uri-file)"
    )
    enroll.add_argument("--json", action="store_true", help="print JSON (no terminal QR code)")

    code = parser.add_command(
        commands,
        "code",
        help="print the current code of a secret or URI",
        description="Print the code of a secret or otpauth:// URI read from stdin or a file.",
        epilog=_CODE_EPILOG,
    )
    _key_options(code)
    when = code.add_mutually_exclusive_group()
    when.add_argument(
        "--at", type=_instant, metavar="T", help="Unix seconds or ISO-8601 with a zone (TOTP)"
    )
    when.add_argument(
        "--watch", action="store_true", help="redraw the code with a countdown until Ctrl-C"
    )
    code.add_argument("--json", action="store_true", help="print JSON")

    verify = parser.add_command(
        commands,
        "verify",
        help="check a code against a secret or URI (exit 0 match, 1 no match)",
        description="Check CODE against a secret or otpauth:// URI read from stdin or a file.",
        epilog=_VERIFY_EPILOG,
    )
    verify.add_argument("code", metavar="CODE", help="the code to check, such as 123456")
    _key_options(verify)
    window = _bounded(0, MAX_TOTP_WINDOW)
    verify.add_argument("--past", type=window, metavar="N", help="TOTP steps back (default 1)")
    verify.add_argument("--future", type=window, metavar="N", help="TOTP steps ahead (default 1)")
    verify.add_argument(
        "--at", type=_instant, metavar="T", help="Unix seconds or ISO-8601 with a zone (TOTP)"
    )
    verify.add_argument(
        "--look-ahead",
        type=_bounded(0, MAX_LOOK_AHEAD),
        metavar="N",
        help="HOTP counters past --counter to try (default 0)",
    )
    verify.add_argument("--json", action="store_true", help="print JSON")

    inspect = parser.add_command(
        commands,
        "inspect",
        help="show the fields of an otpauth:// URI and its app compatibility",
        description="Show the fields of an otpauth:// URI (from stdin, --uri-file or URI)\n"
        "with the secret hidden, and what each authenticator app does with it.",
        epilog=_INSPECT_EPILOG,
    )
    inspect.add_argument("uri", nargs="?", metavar="URI", help="the URI (prefer stdin)")
    inspect.add_argument("--uri-file", metavar="PATH", help="read the URI from PATH")
    inspect.add_argument("--show-secret", action="store_true", help="print the secret too")
    inspect.add_argument("--json", action="store_true", help="print JSON")

    demo = parser.add_command(
        commands,
        "demo",
        help="run the iSOMS sign-in demo server on loopback (needs the demo extra)",
        description="Serve the iSOMS sign-in flow (SMS code, Activate TOTP, recovery codes, TOTP\n"
        "sign-in, admin unlock) on loopback, with a demo user and a demo administrator whose\n"
        "new passwords it prints on every start.",
        epilog="example:\n  isoms-otp demo --port 8000 --db /tmp/isoms-demo.sqlite3",
    )
    _demo_command.add_arguments(demo)

    keys = parser.add_command(
        commands,
        "keys",
        help="make keys for sealed secrets, rewrap sealed secrets (needs the crypto extra)",
        description="Make AES-256 keys for isoms_otp.sealing, and rewrap sealed secrets under\n"
        "the active key during a rotation (docs/secrets.md).",
        epilog=_KEYS_EPILOG,
    )
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    generate = keys.add_command(
        actions,
        "generate",
        help="print a new key line, id:base64key",
        description="Print a new random 256-bit key as a key line, id:base64key, for\n"
        "ISOMS_OTP_KEYS or a --keys-file (the first entry there is the active key).",
        epilog=_GENERATE_EPILOG,
    )
    generate.add_argument(
        "--id", metavar="ID", help="the key id (default: today's date and a random suffix)"
    )
    generate.add_argument(
        "--file", metavar="PATH", help="write the key line to PATH (mode 0600) instead of stdout"
    )
    rewrap = keys.add_command(
        actions,
        "rewrap",
        help="rewrap user<TAB>token lines from stdin under the active key",
        description="Read user<TAB>token lines on stdin and write them to stdout with each token\n"
        "sealed under the active key. Refused lines are counted and reported by\n"
        "line number on stderr, never echoed.",
        epilog=_REWRAP_EPILOG,
    )
    rewrap.add_argument(
        "--keys-file",
        metavar="PATH",
        help=f"read the keys from PATH (default: the {_KEYS_VARIABLE} environment variable)",
    )
    rewrap.add_argument(
        "--progress-every",
        type=_bounded(0, 10**9),
        default=10_000,
        metavar="N",
        help="print a progress line on stderr every N lines (default 10000; 0: never)",
    )
    _cli_store.add_store_commands(commands)
    return parser


# --------------------------------------------------------------------------- reading keys


def _one_line(data: bytes, origin: str, expected: str) -> str:
    if len(data) > INPUT_LIMIT:
        raise _UsageError(f"{origin} holds more than {INPUT_LIMIT} bytes; expected {expected}")
    try:
        text = data.decode("utf-8-sig")  # tolerate the BOM some Windows editors write
    except UnicodeDecodeError:
        raise _UsageError(f"{origin} is not UTF-8 text; expected {expected}") from None
    return _checked(text.strip(), origin, expected)


def _checked(text: str, origin: str, expected: str) -> str:
    if not text:
        raise _UsageError(f"{origin} is empty; expected {expected}")
    if "\n" in text or "\r" in text:
        raise _UsageError(f"{origin} holds more than one line; expected {expected}")
    return text


def _read_file(path: str, origin: str, expected: str) -> str:
    try:
        with Path(path).open("rb") as stream:
            data = stream.read(INPUT_LIMIT + 1)
    except OSError as exc:
        raise _UsageError(f"cannot read {origin}: {exc.strerror or exc}") from None
    return _one_line(data, origin, expected)


def _read_stdin(rt: _Runtime, prompt: str, expected: str) -> str:
    stdin = rt.stdin
    if stdin is None:  # started with stdin closed (<&-)
        raise _UsageError(f"stdin is closed; expected {expected} there, or use a file option")
    if stdin.isatty():
        # A person at a terminal: read without echo, so the secret stays off the screen.
        try:
            typed = rt.getpass(prompt)
        except EOFError:  # Ctrl-D at the prompt
            typed = ""
        return _checked(typed.strip(), "the input", expected)
    return _one_line(stdin.buffer.read(INPUT_LIMIT + 1), "stdin", expected)


def _is_uri(text: str) -> bool:
    return text[: len(_SCHEME)].lower() == _SCHEME


def _check_strength(secret: bytes, origin: str, allow_short: bool) -> None:
    bits = len(secret) * 8
    if len(secret) < LEGACY_MIN_SECRET_BYTES:
        raise _UsageError(
            f"{origin}: the secret is {bits} bits; even legacy keys have at least "
            f"{LEGACY_MIN_SECRET_BYTES * 8}: enrol a new key (isoms-otp enroll)"
        )
    if len(secret) < MIN_SECRET_BYTES and not allow_short:
        raise _UsageError(
            f"{origin}: the secret is {bits} bits; RFC 4226 requires at least "
            f"{MIN_SECRET_BYTES * 8}: pass --allow-short-secret only for an existing legacy key"
        )


def _load_key(args: _Args, rt: _Runtime) -> TOTP | _Counted:
    """Read the secret or URI that ``code``/``verify`` work on, and apply the key options."""
    expected = "one base32 secret or otpauth:// URI"
    if args.secret_file is not None:
        # The path is not repeated in messages: a mistyped command line can put a secret there.
        origin = "--secret-file"
        text = _read_file(args.secret_file, origin, "one base32 secret")
        if _is_uri(text):
            raise _UsageError(f"{origin} holds an otpauth URI, not a secret: use --uri-file")
        return _key_from_secret(text, origin, args)
    if args.uri_file is not None:
        origin = "--uri-file"
        return _key_from_uri(_read_file(args.uri_file, origin, "one otpauth:// URI"), origin, args)
    text = _read_stdin(rt, "Secret or otpauth URI (not shown): ", expected)
    if _is_uri(text):
        return _key_from_uri(text, "stdin", args)
    return _key_from_secret(text, "stdin", args)


def _key_from_uri(text: str, origin: str, args: _Args) -> TOTP | _Counted:
    raw_only = {"--digits": args.digits, "--algorithm": args.algorithm, "--period": args.period}
    for option, value in raw_only.items():
        if value is not None:
            # Silently preferring either value could show codes from the wrong settings.
            raise _UsageError(f"{option} is for a raw secret; the URI sets its own: drop {option}")
    try:
        parsed = parse_uri(text, allow_short_secret=True)
    except InvalidURIError as exc:
        raise _UsageError(f"{origin}: {exc}") from None
    _check_strength(parsed.otp.secret, origin, args.allow_short_secret)
    if isinstance(parsed.otp, TOTP):
        if args.counter is not None:
            raise _UsageError("--counter is for HOTP; this URI is TOTP: drop --counter")
        return parsed.otp
    counter = parsed.counter if args.counter is None else args.counter
    assert counter is not None  # noqa: S101 - OTPAuthURI requires a counter for HOTP
    return _Counted(otp=parsed.otp, counter=counter)


def _key_from_secret(text: str, origin: str, args: _Args) -> TOTP | _Counted:
    try:
        secret = decode_secret(text)
    except InvalidSecretError as exc:
        raise _UsageError(f"{origin}: {exc}") from None
    _check_strength(secret, origin, args.allow_short_secret)
    digits = 6 if args.digits is None else args.digits
    algorithm = args.algorithm or "SHA1"
    if args.counter is None:
        period = 30 if args.period is None else args.period
        return TOTP(
            secret, digits=digits, algorithm=algorithm, period=period, allow_short_secret=True
        )
    if args.period is not None:
        raise _UsageError(
            "--period is for TOTP, and --counter makes the key HOTP: drop one of them"
        )
    hotp = HOTP(secret, digits=digits, algorithm=algorithm, allow_short_secret=True)
    return _Counted(otp=hotp, counter=args.counter)


def _refuse(given: Mapping[str, object], kind: str, why: str) -> None:
    """Refuse any of ``given`` (option name to parsed value) that was set on the command line."""
    for option, value in given.items():
        if value is not None and value is not False:
            raise _UsageError(f"{option} does not apply to {kind} keys ({why}): drop it")


# --------------------------------------------------------------------------- output helpers


def _shown(text: str) -> str:
    """Return ``text`` for a terminal: escaped if it holds characters that do not show as such."""
    # parse_uri() already refuses control, format (U+202E) and line-separator characters; this
    # also covers spaces other than ' ' (NBSP), private-use and unassigned code points.
    return text if text.isprintable() else ascii(text)


def _finding_json(finding: Finding) -> dict[str, str]:
    return {
        "rule": finding.rule,
        "app": finding.app,
        "severity": finding.severity,
        "problem": finding.problem,
        "fix": finding.fix,
        "source": finding.source,
    }


def _apps_with(findings: Sequence[Finding], severity: str) -> str:
    apps = {finding.app for finding in findings if finding.severity == severity}
    names = [app for app in APPS if app in apps]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _print_findings(rt: _Runtime, findings: Sequence[Finding]) -> None:
    if not findings:
        rt.say(
            "compatibility: no known problem in Google Authenticator, Microsoft Authenticator "
            "or Authy"
        )
        return
    rt.say(f"compatibility: {len(findings)} finding{'s' if len(findings) != 1 else ''}")
    severities = {finding.severity for finding in findings}
    if "wrong-codes" in severities:
        rt.say(f"  WARNING: {_apps_with(findings, 'wrong-codes')} would show WRONG CODES")
    if "refuses" in severities:
        rt.say(f"  WARNING: {_apps_with(findings, 'refuses')} would refuse to add the account")
    for finding in findings:
        rt.say(
            f"  - {finding.severity}: {finding.app}: {finding.problem}",
            f"      fix: {finding.fix}",
            f"      source: {finding.source}",
        )


# --------------------------------------------------------------------------- enroll


def _write_private(path: str, data: bytes) -> None:
    """Create ``path`` with mode 0600 and write ``data``; an existing file is an error.

    O_EXCL means an existing file (which may be readable by others) or a symlink planted at
    ``path`` is never written through. A write that fails (a full disk) removes the file again:
    the file is ours, since O_EXCL created it.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    descriptor = os.open(path, flags, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
    except OSError:
        Path(path).unlink(missing_ok=True)
        raise


def _can_draw(stream: TextIO) -> bool:
    try:
        "\u2580".encode(stream.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _terminal_qr(rt: _Runtime, uri: str, explicit: bool) -> str | None:
    """Draw the terminal QR code; when it was not asked for, a missing extra is only a note."""
    if not _can_draw(rt.stdout):
        if explicit:
            raise _UsageError(
                f"stdout's encoding ({rt.stdout.encoding}) cannot draw the QR code: set "
                "PYTHONIOENCODING=utf-8, or use --svg/--png"
            )
        rt.note("no QR code: stdout's encoding cannot draw it (set PYTHONIOENCODING=utf-8)")
        return None
    try:
        return qr_terminal(uri)
    except MissingExtraError:
        if explicit:
            raise
        rt.note(f"no QR code drawn: that needs the qr extra ({_EXTRA_HINT})")
        return None


def _write_files(files: Sequence[tuple[str, str, bytes]]) -> None:
    """Write each (option, path, data) with mode 0600, or none of them."""
    written: list[str] = []
    for option, path, data in files:
        try:
            _write_private(path, data)
        except OSError as exc:
            for done in written:  # leave no copy of the secret behind for a failed enrolment
                Path(done).unlink(missing_ok=True)
            if isinstance(exc, FileExistsError):
                reason = "it exists; remove it or choose another path"
            else:
                reason = exc.strerror or str(exc)
            raise _UsageError(f"cannot write {option} {path!r}: {reason}") from None
        written.append(path)


@dataclass(frozen=True, slots=True, kw_only=True)
class _NewKey:
    """What ``enroll`` made: the key, its URI, findings, the files to write, the terminal QR."""

    otp: TOTP
    uri: str
    findings: Sequence[Finding]
    files: Sequence[tuple[str, str, bytes]]
    terminal: str | None


def _cmd_enroll(args: _Args, rt: _Runtime) -> int:
    if args.json and args.qr == "terminal":
        raise _UsageError(
            "--json prints no terminal QR code: drop --qr terminal (or use --svg/--png)"
        )
    made = _make_key(args, rt)
    _write_files(made.files)
    if args.json:
        _enroll_json(args, rt, made)
    else:
        _enroll_text(args, rt, made)
    return 0


def _make_key(args: _Args, rt: _Runtime) -> _NewKey:
    """Make the key and draw everything, writing nothing yet.

    Every file is drawn before any is written (and before the optional terminal QR code), so a
    missing extra is one error and leaves no half-done enrolment behind.
    """
    otp = TOTP(
        generate_secret(),
        digits=6 if args.digits is None else args.digits,
        algorithm=args.algorithm or "SHA1",
        period=30 if args.period is None else args.period,
    )
    uri = build_uri(otp, account=args.account, issuer=args.issuer)
    files: list[tuple[str, str, bytes]] = []
    if args.svg is not None:
        files.append(("--svg", args.svg, qr_svg(uri).encode("utf-8")))
    if args.png is not None:
        files.append(("--png", args.png, qr_png(uri)))
    if args.save_uri is not None:
        files.append(("--save-uri", args.save_uri, f"{uri}\n".encode("ascii")))
    terminal = None
    if not args.json and args.qr != "none":
        terminal = _terminal_qr(rt, uri, explicit=args.qr == "terminal")
    return _NewKey(
        otp=otp, uri=uri, findings=check_compatibility(uri), files=files, terminal=terminal
    )


def _enroll_json(args: _Args, rt: _Runtime, made: _NewKey) -> None:
    otp = made.otp
    rt.json(
        {
            "type": "totp",
            "account": args.account,
            "issuer": args.issuer,
            "algorithm": otp.algorithm,
            "digits": otp.digits,
            "period": otp.period,
            "uri": made.uri,
            "secret": encode_secret(otp.secret),
            "manual_key": grouped_secret(otp.secret),
            "files": {option[2:]: path for option, path, _ in made.files},
            "findings": [_finding_json(finding) for finding in made.findings],
        }
    )


def _enroll_text(args: _Args, rt: _Runtime, made: _NewKey) -> None:
    otp = made.otp
    rt.say(
        f"account:     {_shown(args.account)}",
        f"issuer:      {_shown(args.issuer)}",
        f"settings:    TOTP, {otp.algorithm}, {otp.digits} digits, {otp.period} s",
        f"uri:         {made.uri}",
        f"manual key:  {grouped_secret(otp.secret)}",
    )
    if (otp.algorithm, otp.digits, otp.period) != ("SHA1", 6, 30):
        rt.say("             (typed in by hand, the app must also be set to these settings)")
    if made.terminal is not None:
        rt.say("")
        rt.stdout.write(made.terminal)
        rt.say("Scan the QR code with the authenticator app, or type in the manual key.")
    for option, path, _ in made.files:
        rt.say(f"wrote {_FILE_KINDS[option]} to {path} (mode 0600)")
    _print_findings(rt, made.findings)
    if any(finding.severity == "wrong-codes" for finding in made.findings):
        rt.say("To enrol for every app, drop --algorithm, --digits and --period (SHA1, 6, 30 s).")
    rt.say("This output contains the secret: do not log it, share it or leave it on screen.")


# --------------------------------------------------------------------------- code


def _bar(remaining: float, period: int) -> str:
    filled = min(BAR_WIDTH, math.ceil(remaining / period * BAR_WIDTH))
    return "#" * filled + "-" * (BAR_WIDTH - filled)


def _watch(otp: TOTP, runtime: _Runtime) -> int:
    """Redraw the code and a countdown on one line until Ctrl-C (or ``runtime.ticks``)."""
    out = runtime.stdout
    width = len(str(otp.period))
    runtime.warn("Press Ctrl-C to stop.")
    drawn = 0
    try:
        while runtime.ticks is None or drawn < runtime.ticks:
            now = runtime.clock()
            remaining = otp.remaining(now)
            seconds = math.ceil(remaining)
            out.write(
                f"\r{otp.generate(now)}  [{_bar(remaining, otp.period)}]  {seconds:>{width}}s"
            )
            out.flush()
            drawn += 1
            # Wake when the number of seconds shown changes (and so, at 0, the code).
            runtime.sleep(remaining - (seconds - 1))
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a watch ends: finish the line, no traceback
    out.write("\n")
    out.flush()
    return 0


def _cmd_code(args: _Args, runtime: _Runtime) -> int:
    if args.watch and args.json:
        raise _UsageError("--watch draws for a person and --json is for scripts: drop one")
    key = _load_key(args, runtime)
    if isinstance(key, _Counted):
        _refuse(
            {"--at": args.at, "--watch": args.watch},
            "HOTP",
            "HOTP codes follow --counter, not the clock",
        )
        otp = key.otp
        code = otp.generate(key.counter)
        if args.json:
            runtime.json(
                {
                    "type": "hotp",
                    "code": code,
                    "counter": key.counter,
                    "digits": otp.digits,
                    "algorithm": otp.algorithm,
                }
            )
        else:
            runtime.say(code)
        return 0
    if args.watch:
        return _watch(key, runtime)
    at = runtime.clock() if args.at is None else args.at
    code = key.generate(at)
    if args.json:
        runtime.json(
            {
                "type": "totp",
                "code": code,
                "at": at,
                "step": key.step(at),
                "remaining": key.remaining(at),
                "digits": key.digits,
                "algorithm": key.algorithm,
                "period": key.period,
            }
        )
    else:
        runtime.say(code)
    return 0


# --------------------------------------------------------------------------- verify


def _cmd_verify(args: _Args, runtime: _Runtime) -> int:
    key = _load_key(args, runtime)
    result: dict[str, Any]
    if isinstance(key, _Counted):
        _refuse(
            {"--past": args.past, "--future": args.future, "--at": args.at},
            "HOTP",
            "HOTP codes follow --counter",
        )
        look_ahead = 0 if args.look_ahead is None else args.look_ahead
        digits = key.otp.digits
        match = key.otp.verify(args.code, counter=key.counter, look_ahead=look_ahead)
        result = {"type": "hotp", "counter": key.counter, "look_ahead": look_ahead}
        if match is not None:
            result |= {"matched_counter": match.step, "next_counter": match.step + 1}
            line = (
                f"match: counter {match.step}, drift {match.drift} "
                f"(store {match.step + 1} as the next counter)"
            )
    else:
        _refuse(
            {"--look-ahead": args.look_ahead}, "TOTP", "use --past/--future for the time window"
        )
        at = runtime.clock() if args.at is None else args.at
        past = 1 if args.past is None else args.past
        future = 1 if args.future is None else args.future
        digits = key.digits
        match = key.verify(args.code, at=at, past=past, future=future)
        result = {"type": "totp", "at": at, "step": key.step(at), "past": past, "future": future}
        if match is not None:
            result["matched_step"] = match.step
            line = f"match: step {match.step}, drift {match.drift}"
    if match is not None:
        _emit(runtime, args.json, {"match": True, "drift": match.drift, **result}, line)
        return 0
    # A code that cannot be `digits` digits is "no match" in the core; say why, for a person.
    malformed = normalize_code(args.code, digits) is None
    reason = "malformed" if malformed else "invalid"
    line = f"no match (a code is {digits} digits)" if malformed else "no match"
    _emit(runtime, args.json, {"match": False, "reason": reason, **result}, line)
    return 1


def _emit(rt: _Runtime, as_json: bool, value: dict[str, Any], line: str) -> None:
    if as_json:
        rt.json(value)
    else:
        rt.say(line)


# --------------------------------------------------------------------------- inspect


def _cmd_inspect(args: _Args, runtime: _Runtime) -> int:
    expected = "one otpauth:// URI"
    if args.uri is not None:
        if args.uri_file is not None:
            raise _UsageError("give the URI once: as an argument or with --uri-file, not both")
        origin, text = "the URI argument", _checked(args.uri.strip(), "the URI argument", expected)
    elif args.uri_file is not None:
        origin = "--uri-file"
        text = _read_file(args.uri_file, origin, expected)
    else:
        origin, text = "stdin", _read_stdin(runtime, "otpauth URI (not shown): ", expected)
    try:
        # Legacy short keys are reported below rather than refused: this is a diagnostic.
        parsed = parse_uri(text, allow_short_secret=True)
    except InvalidURIError as exc:
        raise _UsageError(f"{origin}: {exc}") from None
    findings = check_compatibility(parsed)
    if args.json:
        runtime.json(_inspect_json(parsed, findings, show_secret=args.show_secret))
        return 0
    otp = parsed.otp
    bits = len(otp.secret) * 8
    lines = [
        f"type:        {'hotp' if isinstance(otp, HOTP) else 'totp'}",
        f"issuer:      {'(none)' if parsed.issuer is None else _shown(parsed.issuer)}",
        f"account:     {_shown(parsed.account)}",
        f"algorithm:   {otp.algorithm}",
        f"digits:      {otp.digits}",
        f"counter:     {parsed.counter}"
        if isinstance(otp, HOTP)
        else f"period:      {otp.period} s",
        f"image:       {'(none)' if parsed.image is None else _shown(parsed.image)}",
        f"secret:      {encode_secret(otp.secret)} ({bits} bits)"
        if args.show_secret
        else f"secret:      (hidden: {bits} bits; --show-secret prints it)",
    ]
    runtime.say(*lines)
    if len(otp.secret) < MIN_SECRET_BYTES:
        runtime.say(
            f"warning:     the secret is shorter than the {MIN_SECRET_BYTES * 8} bits RFC 4226 "
            "requires; code/verify need --allow-short-secret"
        )
    if parsed.quirks:
        runtime.say(f"spelling:    not canonical ({', '.join(sorted(parsed.quirks))})")
    _print_findings(runtime, findings)
    return 0


def _inspect_json(
    parsed: OTPAuthURI, findings: Sequence[Finding], *, show_secret: bool
) -> dict[str, Any]:
    otp = parsed.otp
    result: dict[str, Any] = {
        "type": "hotp" if isinstance(otp, HOTP) else "totp",
        "issuer": parsed.issuer,
        "account": parsed.account,
        "algorithm": otp.algorithm,
        "digits": otp.digits,
    }
    if isinstance(otp, HOTP):
        result["counter"] = parsed.counter
    else:
        result["period"] = otp.period
    result |= {
        "image": parsed.image,
        "secret_bits": len(otp.secret) * 8,
        "quirks": sorted(parsed.quirks),
        "canonical_uri_differs": bool(parsed.quirks),
        "findings": [_finding_json(finding) for finding in findings],
    }
    if show_secret:
        result["secret"] = encode_secret(otp.secret)
    return result


# --------------------------------------------------------------------------- keys


def _cmd_keys(args: _Args, rt: _Runtime) -> int:
    if args.keys_command == "generate":
        return _keys_generate(args, rt)
    return _keys_rewrap(args, rt)


def _keys_generate(args: _Args, rt: _Runtime) -> int:
    from .sealing import Keyring  # noqa: PLC0415 - the crypto extra, needed by this command only

    key_id = args.id
    if key_id is None:
        day = time.strftime("%Y-%m-%d", time.gmtime(rt.clock()))
        key_id = f"{day}-{secrets.token_hex(3)}"
    key = Keyring.generate_key()
    try:
        Keyring({key_id: key}, active=key_id)  # the library's own check of the id
    except ConfigurationError as exc:
        raise _UsageError(f"--id: {exc}") from None
    entry = f"{key_id}:{base64.b64encode(key).decode('ascii')}"
    if args.file is not None:
        _write_files([("--file", args.file, f"{entry}\n".encode("ascii"))])
        rt.note(f"wrote key {key_id!r} to {args.file} (mode 0600)")
    else:
        rt.say(entry)
    rt.note(
        f"the key line is a secret; put it first in {_KEYS_VARIABLE} (or the keys file) to seal "
        "new secrets with it, and keep the old keys after it until nothing needs them"
    )
    return 0


def _load_keyring(args: _Args, rt: _Runtime) -> Keyring:
    from .sealing import MAX_KEYRING_TEXT, Keyring  # noqa: PLC0415 - the crypto extra

    if args.keys_file is not None:
        origin = "--keys-file"
        try:
            with Path(args.keys_file).open("rb") as stream:
                data = stream.read(MAX_KEYRING_TEXT + 1)
        except OSError as exc:
            raise _UsageError(f"cannot read {origin}: {exc.strerror or exc}") from None
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise _UsageError(f"{origin} is not UTF-8 text") from None
    else:
        origin = _KEYS_VARIABLE
        found = rt.environ.get(_KEYS_VARIABLE)
        if found is None:
            raise _UsageError(
                f"no keys: set {_KEYS_VARIABLE} (id:base64key,... with the active key first) or "
                "pass --keys-file"
            )
        text = found
    try:
        return Keyring.from_string(text)
    except ConfigurationError as exc:
        raise _UsageError(f"{origin}: {exc}") from None


@dataclass(slots=True)
class _Tally:
    """What ``keys rewrap`` did so far; only the first refused line numbers are kept."""

    lines: int = 0
    rewrapped: int = 0
    current: int = 0
    refused: int = 0
    refused_lines: list[int] = field(default_factory=list)

    def counts(self) -> str:
        return f"{self.rewrapped} rewrapped, {self.current} already current, {self.refused} refused"


def _keys_rewrap(args: _Args, rt: _Runtime) -> int:
    ring = _load_keyring(args, rt)
    if rt.stdin is None:
        raise _UsageError("stdin is closed; expected user<TAB>token lines there")
    rt.warn(
        f"{PROG}: keys rewrap: sealing under key {ring.active!r}; "
        f"opening with {', '.join(map(repr, ring.ids))}"
    )
    tally = _Tally()
    for number, outcome, text in _rewrapped_lines(ring, rt.stdin.buffer):
        tally.lines = number
        if outcome == "refused":
            tally.refused += 1
            if tally.refused <= LISTED_REFUSALS:
                tally.refused_lines.append(number)
                rt.warn(f"{PROG}: keys rewrap: line {number} refused: {text}")
                if tally.refused == LISTED_REFUSALS:
                    rt.warn(f"{PROG}: keys rewrap: further refused lines are only counted")
        else:
            rt.stdout.write(text)
            if outcome == "current":
                tally.current += 1
            else:
                tally.rewrapped += 1
        if args.progress_every and number % args.progress_every == 0:
            rt.warn(f"{PROG}: keys rewrap: {number} lines read ({tally.counts()})")
    rt.stdout.flush()
    lines = f"{tally.lines} line{'' if tally.lines == 1 else 's'}"
    summary = f"{PROG}: keys rewrap: done, {lines}: {tally.counts()}"
    if tally.refused:
        listed = ", ".join(map(str, tally.refused_lines))
        more = tally.refused - len(tally.refused_lines)
        rt.warn(f"{summary} (lines {listed}{f' and {more} more' if more else ''})")
        return 1
    rt.warn(summary)
    return 0


def _rewrapped_lines(ring: Keyring, source: IO[bytes]) -> Iterable[tuple[int, str, str]]:
    """Yield (line number, outcome, output line or reason) for each line of ``source``.

    Reads one bounded line at a time, so memory stays constant however long the input.
    """
    number = 0
    while raw := source.readline(MAX_REWRAP_LINE + 1):
        number += 1
        if len(raw) > MAX_REWRAP_LINE and not raw.endswith(b"\n"):
            while (rest := source.readline(MAX_REWRAP_LINE)) and not rest.endswith(b"\n"):
                pass  # skip the rest of an overlong line without holding it
            yield number, "refused", f"longer than {MAX_REWRAP_LINE} bytes"
            continue
        yield (number, *_rewrap_line(ring, raw))


def _rewrap_line(ring: Keyring, raw: bytes) -> tuple[str, str]:
    """Return ("rewrapped" or "current", the output line), or ("refused", why)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "refused", "not UTF-8"
    user, tab, token = text.removesuffix("\n").removesuffix("\r").rpartition("\t")
    if not tab:
        return "refused", "expected user<TAB>token"
    if not user:  # a row always belongs to someone: an empty column is a broken export
        return "refused", "no user id before the tab"
    try:
        wrapped = ring.rewrap(token, user=user)
    except (InvalidSecretError, ConfigurationError) as exc:
        return "refused", str(exc)  # our messages never hold the token or the secret
    # rewrap() returns a current token as it is; a new seal never equals it (a fresh nonce).
    return "current" if wrapped == token else "rewrapped", f"{user}\t{wrapped}\n"


# --------------------------------------------------------------------------- entry points

_COMMANDS: Final[dict[str, Callable[[_Args, _Runtime], int]]] = {
    "enroll": _cmd_enroll,
    "code": _cmd_code,
    "verify": _cmd_verify,
    "inspect": _cmd_inspect,
    "keys": _cmd_keys,
    "demo": lambda args, rt: _demo_command.run(args, out=rt.stdout, err=rt.stderr),
    **_cli_store.COMMANDS,
}


def _main(argv: Sequence[str] | None, runtime: _Runtime) -> int:
    parser = _build_parser(runtime)
    try:
        args = parser.parse_args(argv, namespace=_Args())
    except SystemExit as exc:  # --help, --version and usage errors: keep main() returning
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    try:
        return _COMMANDS[args.command](args, runtime)
    except (_UsageError, OTPError) as exc:
        # OTPError messages never contain a secret or a code (see exceptions.py); input decoding
        # and file errors were turned into _UsageError where the file's role is known.
        message = str(exc)
    except OSError as exc:  # such as a closed stdout
        message = exc.strerror or str(exc)
    except KeyboardInterrupt:  # Ctrl-C at the secret prompt, say: no traceback
        runtime.warn("")
        return 130
    runtime.warn(f"{PROG}: error: {message}")
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``isoms-otp`` command with ``argv`` (default ``sys.argv[1:]``); return the status.

    0 success, 1 ``verify`` found no match or ``keys rewrap`` refused lines, 2 an error (one
    line on stderr, no traceback). The console script passes the result to ``sys.exit``.
    """
    return _main(argv, _Runtime())
