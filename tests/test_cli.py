"""The isoms-otp command: every command, every error path, the QR it prints, the entry points."""

from __future__ import annotations

import argparse
import base64
import dataclasses
import errno
import io
import json
import os
import re
import runpy
import shutil
import signal
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from isoms_otp import (
    HOTP,
    TOTP,
    __version__,
    build_uri,
    cli,
    decode_secret,
    encode_secret,
    parse_uri,
)
from isoms_otp.qr import qr_svg
from isoms_otp.sealing import Keyring

SRC = Path(__file__).resolve().parent.parent / "src"

# RFC 4226 appendix D and RFC 6238 appendix B: the ASCII keys "1234567890..." of 20, 32, 64 bytes.
RFC_KEY_SHA1 = encode_secret(b"12345678901234567890")
RFC_KEY_SHA256 = encode_secret(b"12345678901234567890123456789012")
RFC_KEY_SHA512 = encode_secret(b"1234567890" * 6 + b"1234")
RFC4226_CODES = [
    "755224", "287082", "359152", "969429", "338314",
    "254676", "287922", "162583", "399871", "520489",
]  # fmt: skip
# A 160-bit key used where any valid key will do.
KEY = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
URI = build_uri(TOTP(decode_secret(KEY)), account="alice@example.com", issuer="iSOMS")
HOTP_URI = build_uri(HOTP(b"12345678901234567890"), account="token", issuer="iSOMS", counter=5)
LEGACY_KEY = "JBSWY3DPEHPK3PXP"  # Google's 80-bit example key


@pytest.fixture
def decoder() -> ModuleType:
    """The zxing-cpp module; its absence fails the QR tests (CI installs the test extra)."""
    try:
        import zxingcpp  # noqa: PLC0415 - a missing decoder must fail these tests, not all
    except ImportError:
        pytest.fail("zxing-cpp is needed to decode the printed QR code: pip install -e '.[test]'")
    return zxingcpp


class Run:
    """What one main() call returned and printed."""

    def __init__(self, status: int, out: str, err: str) -> None:
        self.status = status
        self.out = out
        self.err = err

    def json(self) -> Any:
        return json.loads(self.out)


RunCli = Callable[..., Run]


def text_stream(data: bytes = b"", encoding: str = "utf-8") -> io.TextIOWrapper:
    """A text stream over bytes, as sys.stdin/stdout are (with a .buffer and an encoding)."""
    return io.TextIOWrapper(io.BytesIO(data), encoding=encoding, write_through=True)


def written(stream: io.TextIOWrapper) -> str:
    buffer = stream.buffer
    assert isinstance(buffer, io.BytesIO)
    return buffer.getvalue().decode(stream.encoding)


def call_cli(
    *argv: str,
    stdin: str | bytes | TextIO | None = b"",
    runtime: cli._Runtime | None = None,
    stdout: io.TextIOWrapper | None = None,
    **injected: Any,
) -> Run:
    """Call the CLI with ``argv`` on streams of its own; return its status and output.

    ``stdin`` is the input (str or bytes), or a stream of its own (None: closed); the other
    keywords replace fields of the runtime (``getpass``, ``environ``...).
    """
    if isinstance(stdin, str):
        stdin = stdin.encode()
    source = text_stream(stdin) if isinstance(stdin, bytes) else stdin
    out = text_stream() if stdout is None else stdout
    err = text_stream()
    base = runtime or cli._Runtime(clock=lambda: 1_700_000_000.0)
    status = cli._main(
        list(argv),
        dataclasses.replace(base, stdin=source, stdout=out, stderr=err, **injected),
    )
    return Run(status, written(out), written(err))


@pytest.fixture
def run() -> RunCli:
    """Call the CLI with ``argv`` and ``stdin`` (str or bytes), returning status and output."""
    return call_cli


def assert_error(result: Run, *fragments: str) -> None:
    """An error: status 2, nothing on stdout, one line on stderr naming the problem."""
    assert result.status == 2
    assert result.out == ""
    assert result.err.startswith("isoms-otp: error: ")
    assert result.err.count("\n") == 1
    assert result.err.endswith("\n")
    assert "Traceback" not in result.err
    for fragment in fragments:
        assert fragment in result.err


# --------------------------------------------------------------------------- QR decoding


def modules_from_terminal(text: str) -> list[list[int]]:
    """Read the modules back out of qr_terminal text: ``1`` is dark."""
    dark_fg, dark_bg = {"30": 1, "97": 0}, {"40": 1, "107": 0}
    rows: list[list[int]] = []
    for line in text.splitlines():
        top: list[int] = []
        bottom: list[int] = []
        fg = bg = 0
        for code, block in re.findall(r"\x1b\[(\d+)m|(\u2580)", line):
            if block:
                top.append(fg)
                bottom.append(bg)
            elif code in dark_fg:
                fg = dark_fg[code]
            elif code in dark_bg:
                bg = dark_bg[code]
        rows += [top, bottom]
    return rows


def decode_modules(decoder: ModuleType, rows: list[list[int]]) -> list[str]:
    """Paint the modules 4 pixels each and return every QR text zxing-cpp finds."""
    scale = 4
    image = Image.new("L", (len(rows[0]) * scale, len(rows) * scale), 255)
    for y, row in enumerate(rows):
        for x, dark in enumerate(row):
            if dark:
                image.paste(0, (x * scale, y * scale, (x + 1) * scale, (y + 1) * scale))
    return [found.text for found in decoder.read_barcodes(image)]


def qr_lines(out: str) -> str:
    return "".join(line + "\n" for line in out.splitlines() if "\u2580" in line)


def field(out: str, name: str) -> str:
    """The value of a ``name:  value`` line."""
    (value,) = re.findall(rf"^{name}:\s+(.*)$", out, flags=re.MULTILINE)
    return str(value)


# --------------------------------------------------------------------------- help, version


def test_version(run: RunCli) -> None:
    """--version prints the package version and exits 0."""
    result = run("--version")
    assert (0, f"isoms-otp {__version__}\n") == (result.status, result.out)


@pytest.mark.parametrize(
    "command",
    [[], ["enroll"], ["code"], ["verify"], ["inspect"]],
    ids=["program", "enroll", "code", "verify", "inspect"],
)
def test_help_has_an_example(run: RunCli, command: list[str]) -> None:
    """--help on the program and on every command exits 0 and shows examples."""
    result = run(*command, "--help")
    assert result.status == 0
    assert "examples:\n  isoms-otp " + (command[0] if command else "enroll") in result.out


def test_no_command_is_a_usage_error(run: RunCli) -> None:
    """A missing command is one line on stderr with status 2."""
    assert_error(run(), "required", "isoms-otp --help")


def test_secret_as_argument_is_not_echoed(run: RunCli) -> None:
    """A secret typed on the command line is refused without repeating it."""
    result = run("code", KEY)
    assert_error(result, "unexpected arguments", "stdin")
    assert KEY not in result.err


SECRET_URI = f"otpauth://totp/a?secret={KEY}"
MISTYPED_OPTIONS = [
    ["code", "--secret", KEY],
    ["code", "--uri", SECRET_URI],
    ["verify", "123456", "--secret", KEY],
    ["code", "--a=" + KEY],
    ["code", "--s=" + KEY],
    ["code", "--watch=" + KEY],
    ["code", "-h" + KEY],
    ["enroll", "--account", "a", "--json=" + KEY],
]


@pytest.mark.parametrize(
    "argv", MISTYPED_OPTIONS, ids=[argv[1].split("=")[0][:8] for argv in MISTYPED_OPTIONS]
)
def test_mistyped_option_does_not_echo_the_secret(run: RunCli, argv: list[str]) -> None:
    """Regression: a prefix of an option used to be expanded and its value echoed.

    argparse matched ``--secret`` to ``--secret-file`` and ``--uri`` to ``--uri-file``,
    then said "cannot read --secret-file 'JBSW...'"; ``--a=JBSW...`` gave "ambiguous
    option: --a=JBSW... could match ..."; ``--watch=JBSW...`` "ignored explicit argument
    'JBSW...'". Abbreviations are now off and those messages scrubbed.
    """
    result = run(*argv)
    if argv[1].startswith("-h") and result.status == 0:
        # Python 3.13's argparse reads "-hJBSW..." as -h plus more flags and shows the help
        # before it looks at the rest; earlier versions refuse the value. Either is fine here.
        assert result.out.startswith("usage: isoms-otp code")
    else:
        assert_error(result)
    assert KEY not in result.out + result.err


def test_ambiguous_option_message_is_scrubbed() -> None:
    """Regression: argparse's "ambiguous option" error used to repeat the argument.

    With abbreviations off our options cannot be ambiguous, so the message is fed in
    as argparse words it, to pin the scrubbing should a parser ever allow them.
    """
    err = text_stream()
    parser = cli._Parser(prog="isoms-otp code", runtime=cli._Runtime(stderr=err))
    with pytest.raises(SystemExit) as exit_info:
        parser.error(f"ambiguous option: --a={KEY} could match --algorithm, --at")
    assert 2 == exit_info.value.code
    assert "unexpected arguments (not repeated here" in written(err)
    assert KEY not in written(err)


def all_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """``parser`` and every subcommand parser under it, nested ones included."""
    found = [parser]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += all_parsers(sub)
    return found


def test_subcommand_parsers_refuse_abbreviations() -> None:
    """Every parser, the subcommands' included, has prefix matching off."""
    parsers = all_parsers(cli._build_parser(cli._Runtime()))
    assert {"isoms-otp keys generate", "isoms-otp keys rewrap"} <= {p.prog for p in parsers}
    assert {False} == {parser.allow_abbrev for parser in parsers}


@pytest.mark.parametrize("option", ["--secret-file", "--uri-file"])
def test_unreadable_file_error_omits_the_path(run: RunCli, option: str) -> None:
    """Regression: a file-read error used to repeat the path, which may be a mistyped secret."""
    result = run("code", option, KEY)
    assert_error(result, f"cannot read {option}: No such file or directory")
    assert KEY not in result.out + result.err


def test_secret_as_command_is_not_echoed(run: RunCli) -> None:
    """A secret given in place of the command is refused without repeating it."""
    result = run(KEY)
    assert_error(result, "invalid choice", "enroll")
    assert KEY not in result.err


USAGE_ERRORS = [
    (["code", "--digits", "9"], "--digits: must be a whole number from 6 to 8"),
    (["code", "--digits", "+6"], "--digits: must be a whole number"),
    (["code", "--digits", "\u0666"], "--digits: must be a whole number"),
    (["code", "--algorithm", "MD5"], "--algorithm: must be SHA1, SHA256 or SHA512"),
    (["code", "--algorithm", "sha\u0131"], "--algorithm: must be SHA1"),
    (["code", "--period", "0"], "--period: must be a whole number from 1 to 604800"),
    (["code", "--counter", "-1"], "--counter: must be a whole number"),
    (["code", "--counter", str(2**64)], "--counter: must be a whole number"),
    (["code", "--at", "soon"], "--at: must be Unix seconds"),
    (["code", "--at", "-5"], "--at: must be Unix seconds"),
    (["code", "--at", "1e9"], "--at: must be Unix seconds"),
    (["code", "--at", "2023-11-14T22:13:20"], "--at: has no time zone"),
    (["code", "--at", "2023-11-14"], "--at: has no time zone"),
    (["code", "--at", "1", "--watch"], "not allowed with argument --at"),
    (["code", "--secret-file", "a", "--uri-file", "b"], "not allowed with"),
    (["verify"], "the following arguments are required: CODE"),
    (["verify", "123456", "--past", "11"], "--past: must be a whole number from 0 to 10"),
    (["verify", "123456", "--look-ahead", "101"], "--look-ahead: must be a whole number"),
    (["enroll"], "the following arguments are required: --account"),
    (["enroll", "--account", " "], "--account: must not be empty"),
    (["enroll", "--account", "a", "--issuer", ""], "--issuer: must not be empty"),
    (["enroll", "--account", "a", "--qr", "sixel"], "--qr: invalid choice"),
]


@pytest.mark.parametrize(
    ("argv", "fragment"), USAGE_ERRORS, ids=[" ".join(argv) for argv, _ in USAGE_ERRORS]
)
def test_usage_errors(run: RunCli, argv: list[str], fragment: str) -> None:
    """Bad options are one line on stderr, status 2, with the command's help named."""
    assert_error(run(*argv), fragment, f"see 'isoms-otp {argv[0]} --help'")


# --------------------------------------------------------------------------- enroll


def test_enroll_prints_a_qr_code_of_the_printed_uri(run: RunCli, decoder: ModuleType) -> None:
    """The terminal QR code decodes (zxing-cpp) to exactly the URI printed above it."""
    result = run("enroll", "--account", "alice@example.com")
    assert result.status == 0
    uri = field(result.out, "uri")
    assert [uri] == decode_modules(decoder, modules_from_terminal(qr_lines(result.out)))
    parsed = parse_uri(uri)
    assert (parsed.account, parsed.issuer) == ("alice@example.com", "iSOMS")
    assert TOTP(parsed.otp.secret) == parsed.otp  # SHA1, 6 digits, 30 s
    assert parsed.otp.secret == decode_secret(field(result.out, "manual key"))
    assert re.fullmatch(r"([A-Z2-7]{4} ){7}[A-Z2-7]{4}", field(result.out, "manual key"))
    assert "compatibility: no known problem" in result.out
    assert "To enrol for every app" not in result.out
    assert result.err == ""


def test_enroll_makes_a_fresh_secret_each_time(run: RunCli) -> None:
    """Two enrolments never share a secret."""
    first = run("enroll", "--account", "a", "--qr", "none").out
    second = run("enroll", "--account", "a", "--qr", "none").out
    assert field(first, "manual key") != field(second, "manual key")


def test_enroll_qr_none(run: RunCli) -> None:
    """--qr none prints the URI and key but no QR code."""
    result = run("enroll", "--account", "alice", "--issuer", "ACME Co", "--qr", "none")
    assert result.status == 0
    assert qr_lines(result.out) == ""
    assert field(result.out, "uri").startswith("otpauth://totp/ACME%20Co:alice?secret=")
    assert "Scan the QR code" not in result.out


def test_enroll_json(run: RunCli) -> None:
    """--json gives the URI, secret, settings and findings, and no terminal QR code."""
    result = run("enroll", "--account", "alice@example.com", "--json")
    data = result.json()
    parsed = parse_uri(data["uri"])
    assert {
        "type": "totp",
        "account": "alice@example.com",
        "issuer": "iSOMS",
        "algorithm": "SHA1",
        "digits": 6,
        "period": 30,
        "secret": encode_secret(parsed.otp.secret),
        "manual_key": data["manual_key"],
        "uri": data["uri"],
        "files": {},
        "findings": [],
    } == data
    assert "\u2580" not in result.out


def test_enroll_non_default_settings_warn(run: RunCli) -> None:
    """SHA256, 8 digits or 60 s: the findings say which apps would show wrong codes."""
    result = run(
        "enroll", "--account", "a", "--algorithm", "sha256", "--digits", "8", "--period", "60",
        "--qr", "none",
    )  # fmt: skip
    assert result.status == 0
    parsed = parse_uri(field(result.out, "uri"))
    assert isinstance(parsed.otp, TOTP)
    assert (parsed.otp.algorithm, parsed.otp.digits, parsed.otp.period) == ("SHA256", 8, 30 * 2)
    assert "settings:    TOTP, SHA256, 8 digits, 60 s" in result.out
    assert (
        "WARNING: Google Authenticator Android, Microsoft Authenticator and Authy would show "
        "WRONG CODES" in result.out
    )
    assert "the app must also be set to these settings" in result.out
    assert "- wrong-codes: Authy: cannot use periods other than 30 seconds" in result.out
    assert "To enrol for every app, drop --algorithm, --digits and --period" in result.out


def test_enroll_non_default_settings_json_findings(run: RunCli) -> None:
    """The JSON findings are check_compatibility's, with rule, app, severity and source."""
    data = run("enroll", "--account", "a", "--period", "60", "--json").json()
    assert [(f["rule"], f["app"], f["severity"]) for f in data["findings"]] == [
        ("period", "Google Authenticator Android", "wrong-codes"),
        ("period", "Microsoft Authenticator", "wrong-codes"),
        ("period", "Authy", "wrong-codes"),
    ]
    assert all(f["source"] and f["fix"] and f["problem"] for f in data["findings"])


def test_enroll_long_account_warns(run: RunCli) -> None:
    """A long account name makes a dense QR code: a warning finding, not a WARNING headline."""
    result = run("enroll", "--account", "a" * 200, "--qr", "none")
    assert result.status == 0
    assert "- warning: Authy: the URI is longer than 180 characters" in result.out
    assert "WARNING" not in result.out


def test_enroll_writes_private_files(run: RunCli, tmp_path: Path, decoder: ModuleType) -> None:
    """--svg, --png and --save-uri write mode-0600 files holding the printed URI."""
    svg, png, saved = tmp_path / "a.svg", tmp_path / "a.png", tmp_path / "a.uri"
    result = run(
        "enroll", "--account", "a", "--qr", "none",
        "--svg", str(svg), "--png", str(png), "--save-uri", str(saved),
    )  # fmt: skip
    assert result.status == 0
    uri = field(result.out, "uri")
    for path in (svg, png, saved):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert f"{path} (mode 0600)" in result.out
    assert qr_svg(uri) == svg.read_text(encoding="utf-8")
    with Image.open(png) as image:
        assert [uri] == [found.text for found in decoder.read_barcodes(image)]
    assert uri + "\n" == saved.read_text(encoding="ascii")


def test_enroll_json_names_the_files(run: RunCli, tmp_path: Path) -> None:
    """--json lists the files it wrote."""
    saved = tmp_path / "a.uri"
    data = run("enroll", "--account", "a", "--json", "--save-uri", str(saved)).json()
    assert {"save-uri": str(saved)} == data["files"]
    assert data["uri"] + "\n" == saved.read_text(encoding="ascii")


def test_enroll_never_overwrites(run: RunCli, tmp_path: Path) -> None:
    """An existing file is an error, and the files written before it are removed again."""
    svg, png = tmp_path / "a.svg", tmp_path / "a.png"
    png.write_bytes(b"keep")
    result = run("enroll", "--account", "a", "--svg", str(svg), "--png", str(png))
    assert_error(result, f"cannot write --png {str(png)!r}: it exists")
    assert not svg.exists()
    assert png.read_bytes() == b"keep"


class _DiskFull(io.FileIO):
    """A file that takes a few bytes and then reports a full disk."""

    def write(self, data: Any) -> int:
        super().write(bytes(data)[:8])
        raise OSError(errno.ENOSPC, "No space left on device")


def test_enroll_removes_a_half_written_file(
    run: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: a file whose write failed (a full disk) used to stay behind, half-written."""
    svg = tmp_path / "a.svg"
    monkeypatch.setattr(os, "fdopen", lambda descriptor, _mode: _DiskFull(descriptor, "w"))
    result = run("enroll", "--account", "a", "--qr", "none", "--svg", str(svg))
    assert_error(result, f"cannot write --svg {str(svg)!r}: No space left on device")
    assert [] == list(tmp_path.iterdir())


def test_enroll_unwritable_path(run: RunCli, tmp_path: Path) -> None:
    """A file in a missing folder is an error naming the OS reason."""
    missing = tmp_path / "nowhere" / "a.svg"
    assert_error(run("enroll", "--account", "a", "--svg", str(missing)), "No such file")


def test_enroll_invalid_account(run: RunCli) -> None:
    """An account the URI cannot carry is the enrolment module's error, status 2."""
    assert_error(run("enroll", "--account", "a:b"), "the account contains ':'")


def test_enroll_json_with_terminal_qr(run: RunCli) -> None:
    """--json and an explicit --qr terminal contradict each other."""
    assert_error(run("enroll", "--account", "a", "--json", "--qr", "terminal"), "--json")


@pytest.fixture
def no_segno(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import segno`` fail, as without the qr extra."""
    monkeypatch.setitem(sys.modules, "segno", None)


def test_enroll_without_qr_extra_notes_it(run: RunCli, no_segno: None) -> None:
    """Without segno the default enrolment still prints the URI, with a note naming the extra."""
    result = run("enroll", "--account", "a")
    assert result.status == 0
    assert field(result.out, "uri").startswith("otpauth://")
    assert qr_lines(result.out) == ""
    assert "isoms-otp: note: no QR code drawn: that needs the qr extra" in result.err
    assert "pip install 'isoms-otp[qr]'" in result.err


@pytest.mark.parametrize(
    "option", [["--qr", "terminal"], ["--svg", "a.svg"], ["--png", "a.png"]], ids=str
)
def test_enroll_without_qr_extra_asked_for_a_qr(
    run: RunCli, no_segno: None, option: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A QR code that was asked for is an error naming the extra, and no file is written."""
    monkeypatch.chdir(tmp_path)
    assert_error(run("enroll", "--account", "a", *option), "pip install 'isoms-otp[qr]'")
    assert list(tmp_path.iterdir()) == []


def ascii_stdout() -> io.TextIOWrapper:
    """An ASCII-only stdout, as on a C locale."""
    return text_stream(encoding="ascii")


def test_enroll_ascii_terminal_notes_it(run: RunCli) -> None:
    """A stdout that cannot show U+2580 gets no QR code and a note on stderr."""
    result = run("enroll", "--account", "a", stdout=ascii_stdout())
    assert 0 == result.status
    assert "uri:         otpauth://" in result.out
    assert "stdout's encoding cannot draw it" in result.err


def test_enroll_ascii_terminal_explicit_qr(run: RunCli) -> None:
    """An explicit --qr terminal on such a stdout is an error with the fix."""
    result = run("enroll", "--account", "a", "--qr", "terminal", stdout=ascii_stdout())
    assert_error(result, "PYTHONIOENCODING=utf-8")


# --------------------------------------------------------------------------- code


@pytest.mark.parametrize(
    ("key", "algorithm", "expected"),
    [
        (RFC_KEY_SHA1, "SHA1", "94287082"),
        (RFC_KEY_SHA256, "SHA256", "46119246"),
        (RFC_KEY_SHA512, "SHA512", "90693936"),
    ],
    ids=["SHA1-59", "SHA256-59", "SHA512-59"],
)
def test_code_rfc6238_vectors(run: RunCli, key: str, algorithm: str, expected: str) -> None:
    """RFC 6238 appendix B at T=59 s, from a raw secret on stdin."""
    result = run("code", "--at", "59", "--digits", "8", "--algorithm", algorithm, stdin=key)
    assert (0, expected + "\n", "") == (result.status, result.out, result.err)


def test_code_rfc4226_vectors(run: RunCli) -> None:
    """RFC 4226 appendix D: --counter makes a raw secret HOTP."""
    codes = [run("code", "--counter", str(i), stdin=RFC_KEY_SHA1).out for i in range(10)]
    assert [code + "\n" for code in RFC4226_CODES] == codes


def test_code_from_uri_on_stdin(run: RunCli) -> None:
    """A URI on stdin is recognised and its settings used."""
    expected = TOTP(decode_secret(KEY)).generate(1_700_000_000)
    assert expected + "\n" == run("code", stdin=URI + "\n").out


def test_code_files(run: RunCli, tmp_path: Path) -> None:
    """--secret-file and --uri-file read the key from a file instead of stdin."""
    (tmp_path / "key").write_text(f"{KEY.lower()}\n", encoding="utf-8")
    (tmp_path / "uri").write_bytes(b"\xef\xbb\xbf" + URI.encode() + b"\r\n")  # BOM and CRLF
    expected = TOTP(decode_secret(KEY)).generate(1_700_000_000) + "\n"
    assert expected == run("code", "--secret-file", str(tmp_path / "key")).out
    assert expected == run("code", "--uri-file", str(tmp_path / "uri")).out


def test_code_secret_with_groups(run: RunCli) -> None:
    """The manual key as printed by enroll (groups of four) works as a secret."""
    grouped = " ".join(KEY[i : i + 4] for i in range(0, len(KEY), 4))
    assert run("code", stdin=KEY).out == run("code", stdin=grouped).out


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("59", 59),
        ("59.5", 59.5),
        ("1970-01-01T00:00:59Z", 59),
        ("1970-01-01T01:00:59+01:00", 59),
        ("1970-01-01T00:00:59.250000+00:00", 59.25),
    ],
    ids=["unix", "unix-fraction", "iso-Z", "iso-offset", "iso-fraction"],
)
def test_code_at(run: RunCli, at: str, expected: float) -> None:
    """--at reads Unix seconds and ISO-8601 with a time zone."""
    data = run("code", "--at", at, "--json", "--digits", "8", stdin=RFC_KEY_SHA1).json()
    assert (expected, "94287082", 1) == (data["at"], data["code"], data["step"])


def test_code_json_totp(run: RunCli) -> None:
    """--json gives the code, the step and the seconds it stays valid."""
    data = run("code", "--json", "--at", "1700000000", stdin=URI).json()
    assert {
        "type": "totp",
        "code": TOTP(decode_secret(KEY)).generate(1_700_000_000),
        "at": 1_700_000_000,
        "step": 56_666_666,
        "remaining": 10,
        "digits": 6,
        "algorithm": "SHA1",
        "period": 30,
    } == data


def test_code_json_hotp(run: RunCli) -> None:
    """An HOTP URI's code is for its counter; --counter overrides that counter."""
    assert {
        "type": "hotp",
        "code": RFC4226_CODES[5],
        "counter": 5,
        "digits": 6,
        "algorithm": "SHA1",
    } == run("code", "--json", stdin=HOTP_URI).json()
    assert RFC4226_CODES[7] + "\n" == run("code", "--counter", "7", stdin=HOTP_URI).out


def test_code_uses_the_clock(run: RunCli) -> None:
    """Without --at the code is for the runtime's clock."""
    runtime = cli._Runtime(clock=lambda: 59.0)
    result = run("code", "--digits", "8", stdin=RFC_KEY_SHA1, runtime=runtime)
    assert result.out == "94287082\n"


def test_code_legacy_secret(run: RunCli) -> None:
    """An 80-bit key needs --allow-short-secret, from a secret or a URI."""
    legacy_uri = f"otpauth://totp/a?secret={LEGACY_KEY}"
    assert_error(run("code", stdin=LEGACY_KEY), "80 bits", "--allow-short-secret")
    assert_error(run("code", stdin=legacy_uri), "80 bits", "--allow-short-secret")
    expected = TOTP(decode_secret(LEGACY_KEY), allow_short_secret=True).generate(59) + "\n"
    assert expected == run("code", "--allow-short-secret", "--at", "59", stdin=LEGACY_KEY).out
    assert expected == run("code", "--allow-short-secret", "--at", "59", stdin=legacy_uri).out


@pytest.mark.parametrize(
    ("argv", "stdin", "fragments"),
    [
        (["--digits", "8"], URI, ["--digits is for a raw secret", "drop --digits"]),
        (["--algorithm", "SHA1"], URI, ["--algorithm is for a raw secret"]),
        (["--period", "30"], URI, ["--period is for a raw secret"]),
        (["--counter", "1"], URI, ["--counter is for HOTP; this URI is TOTP"]),
        (["--counter", "1", "--period", "60"], KEY, ["--period is for TOTP"]),
        (["--at", "0"], HOTP_URI, ["--at does not apply to HOTP keys"]),
        (["--watch"], HOTP_URI, ["--watch does not apply to HOTP keys"]),
        (["--watch", "--json"], KEY, ["--watch draws for a person"]),
        ([], "", ["stdin is empty; expected one base32 secret or otpauth:// URI"]),
        ([], " \n", ["stdin is empty"]),
        ([], f"{KEY}\n{KEY}\n", ["stdin holds more than one line"]),
        ([], "A" * 4097, ["stdin holds more than 4096 bytes"]),
        ([], b"\xff\xfe" + KEY.encode(), ["stdin is not UTF-8 text"]),
        ([], KEY[:-1] + "1", ["stdin: the base32 secret may contain only"]),
        ([], KEY + "A", ["stdin: a base32 secret cannot have 33 symbols"]),
        ([], "GEZDGNBVGY3TQ", ["stdin: the secret is 64 bits", "isoms-otp enroll"]),
        ([], URI.replace("totp", "motp", 1), ["stdin: the type must be totp or hotp"]),
        ([], URI.replace("secret=", "secret=1", 1), ["stdin: the secret parameter is invalid"]),
        (["--period", "1", "--at", "9" * 20], KEY, ["time is too far in the future"]),
    ],
    ids=[
        "digits-with-uri", "algorithm-with-uri", "period-with-uri", "counter-with-totp-uri",
        "period-with-counter", "at-with-hotp", "watch-with-hotp", "watch-with-json",
        "empty", "blank", "two-lines", "too-long", "not-utf8", "bad-base32", "bad-length",
        "below-80-bits", "bad-uri-type", "bad-uri-secret", "time-out-of-range",
    ],
)  # fmt: skip
def test_code_errors(
    run: RunCli, argv: list[str], stdin: str | bytes, fragments: list[str]
) -> None:
    """Every refusal of code is one line, status 2, without the secret or URI."""
    result = run("code", *argv, stdin=stdin)
    assert_error(result, *fragments)
    assert KEY not in result.err


@pytest.mark.parametrize(
    ("option", "content", "fragment"),
    [
        ("--secret-file", URI, "holds an otpauth URI, not a secret: use --uri-file"),
        ("--uri-file", KEY, "the URI must start with otpauth://"),
        ("--secret-file", "", "is empty; expected one base32 secret"),
        ("--uri-file", "", "is empty; expected one otpauth:// URI"),
    ],
    ids=["uri-in-secret-file", "secret-in-uri-file", "empty-secret-file", "empty-uri-file"],
)
def test_code_file_content_errors(
    run: RunCli, tmp_path: Path, option: str, content: str, fragment: str
) -> None:
    """A file with the wrong kind of content says which option to use."""
    path = tmp_path / "input"
    path.write_text(content, encoding="utf-8")
    result = run("code", option, str(path))
    assert_error(result, option, fragment)
    assert KEY not in result.err
    assert str(path) not in result.err


@pytest.mark.parametrize("option", ["--secret-file", "--uri-file"])
def test_code_unreadable_files(run: RunCli, tmp_path: Path, option: str) -> None:
    """A missing file and a folder are errors naming the option, the path and the reason."""
    missing = tmp_path / "missing"
    assert_error(run("code", option, str(missing)), f"cannot read {option}", "No such file")
    assert_error(run("code", option, str(tmp_path)), f"cannot read {option}", "directory")


def test_code_prompts_without_echo_on_a_terminal(run: RunCli) -> None:
    """At a terminal the secret is read with getpass (no echo), not from the visible line."""
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return f" {KEY} "

    result = run("code", "--at", "59", stdin=Terminal(), getpass=fake_getpass)
    assert (0, TOTP(decode_secret(KEY)).generate(59) + "\n") == (result.status, result.out)
    assert prompts == ["Secret or otpauth URI (not shown): "]


EMPTY_PROMPT_ERROR = (
    "isoms-otp: error: the input is empty; expected one base32 secret or otpauth:// URI\n"
)


class Terminal(io.StringIO):
    """A stdin that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("interruption", "status", "message"),
    [
        (EOFError, 2, EMPTY_PROMPT_ERROR),
        (KeyboardInterrupt, 130, "\n"),
    ],
    ids=["ctrl-d", "ctrl-c"],
)  # fmt: skip
def test_prompt_interrupted(
    run: RunCli, interruption: type[BaseException], status: int, message: str
) -> None:
    """Ctrl-D at the prompt is empty input; Ctrl-C ends with status 130; no traceback."""

    def fake_getpass(prompt: str = "") -> str:
        raise interruption

    result = run("code", stdin=Terminal(), getpass=fake_getpass)
    assert (status, message) == (result.status, result.err)


def test_closed_stdin_is_an_error(run: RunCli) -> None:
    """A process started with stdin closed gets an error naming the file options."""
    assert_error(run("inspect", stdin=None), "stdin is closed")


def test_closed_stdout_is_an_error(run: RunCli) -> None:
    """An OS error writing the output (such as a closed pipe) is one line, status 2."""

    class Broken(io.TextIOWrapper):
        def write(self, _text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    result = run("code", stdin=KEY, stdout=Broken(io.BytesIO()))
    assert (2, "isoms-otp: error: Broken pipe\n") == (result.status, result.err)


def test_main_uses_the_process_streams(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """main() reads sys.stdin and writes sys.stdout/sys.stderr as they are when it is called."""
    monkeypatch.setattr(sys, "stdin", text_stream(KEY.encode()))
    assert 0 == cli.main(["code", "--at", "59"])
    assert 2 == cli.main(["code", "--at", "59"])  # stdin is used up now: an error on stderr
    captured = capsys.readouterr()
    assert TOTP(decode_secret(KEY)).generate(59) + "\n" == captured.out
    assert "isoms-otp: error: stdin is empty" in captured.err


@given(junk=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
@settings(max_examples=200, deadline=None)
def test_code_junk_stdin_is_a_clean_error(junk: bytes) -> None:
    """Any stdin gives a code (status 0) or one error line (status 2), never a traceback."""
    result = call_cli("code", "--at", "59", stdin=junk)
    if result.status == 0:
        assert re.fullmatch(r"[0-9]{6}\n", result.out)
    else:
        assert result.status == 2
        assert re.fullmatch(r"isoms-otp: error: [^\n]+\n", result.err)


# --------------------------------------------------------------------------- code --watch


def test_watch_redraws_with_a_countdown(run: RunCli) -> None:
    """Each tick redraws code, bar and seconds on one line, waking when the seconds change."""
    now = [58.5]
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        now[0] += seconds

    runtime = cli._Runtime(clock=lambda: now[0], sleep=sleep, ticks=3)
    result = run("code", "--watch", "--digits", "8", stdin=RFC_KEY_SHA1, runtime=runtime)
    assert result.status == 0
    otp = TOTP(b"12345678901234567890", digits=8)
    assert (
        f"\r94287082  [{'#' * 1}{'-' * 19}]   2s"
        f"\r94287082  [{'#' * 1}{'-' * 19}]   1s"
        f"\r{otp.generate(60)}  [{'#' * 20}]  30s\n"
    ) == result.out
    assert naps == [0.5, 1.0, 1.0]
    assert result.err == "Press Ctrl-C to stop.\n"


def test_watch_ends_cleanly_on_ctrl_c(run: RunCli) -> None:
    """Ctrl-C (KeyboardInterrupt) ends the watch with status 0, a newline and no traceback."""

    def interrupt(_seconds: float) -> None:
        raise KeyboardInterrupt

    runtime = cli._Runtime(clock=lambda: 0.0, sleep=interrupt)
    result = run("code", "--watch", stdin=URI, runtime=runtime)
    code = TOTP(decode_secret(KEY)).generate(0)
    assert (0, f"\r{code}  [{'#' * 20}]  30s\n") == (result.status, result.out)
    assert "Traceback" not in result.err


# --------------------------------------------------------------------------- verify


def test_code_then_verify_round_trip(run: RunCli) -> None:
    """A code printed by `code` is accepted by `verify` with drift 0."""
    code = run("code", "--at", "1700000000", stdin=URI).out.strip()
    result = run("verify", code, "--at", "1700000000", stdin=URI)
    assert (result.status, result.out) == (0, "match: step 56666666, drift 0\n")


def test_verify_drift_and_window(run: RunCli) -> None:
    """A code one step old matches with drift -1, unless --past 0 closes the window."""
    old = run("code", "--at", "1699999960", stdin=URI).out.strip()
    result = run("verify", old, "--at", "1700000000", stdin=URI)
    assert result.out == "match: step 56666665, drift -1\n"
    result = run("verify", old, "--at", "1700000000", "--past", "0", stdin=URI)
    assert (result.status, result.out) == (1, "no match\n")
    late = run("code", "--at", "1700000060", stdin=URI).out.strip()
    assert run("verify", late, "--at", "1700000000", "--future", "2", stdin=URI).status == 0


def test_verify_json(run: RunCli) -> None:
    """--json says whether it matched, the step and drift, or why not."""
    code = run("code", "--at", "59", "--digits", "8", stdin=RFC_KEY_SHA1).out.strip()
    assert run(
        "verify", code, "--json", "--at", "59", "--digits", "8", stdin=RFC_KEY_SHA1
    ).json() == {
        "match": True,
        "drift": 0,
        "type": "totp",
        "at": 59,
        "step": 1,
        "past": 1,
        "future": 1,
        "matched_step": 1,
    }
    result = run("verify", "00000000", "--json", "--at", "59", "--digits", "8", stdin=RFC_KEY_SHA1)
    assert result.status == 1
    assert {key: result.json()[key] for key in ("match", "reason", "step")} == {
        "match": False,
        "reason": "invalid",
        "step": 1,
    }


@pytest.mark.parametrize("code", ["12345", "1234567", "12a456", "\u0661\u0662\u0663456", ""])
def test_verify_malformed_code(run: RunCli, code: str) -> None:
    """A code that cannot be 6 digits is no match (status 1), with the reason, never echoed."""
    result = run("verify", code, "--at", "59", stdin=URI)
    assert (result.status, result.out) == (1, "no match (a code is 6 digits)\n")
    data = run("verify", code, "--at", "59", "--json", stdin=URI).json()
    assert (data["match"], data["reason"]) == (False, "malformed")


def test_verify_accepts_grouped_code(run: RunCli) -> None:
    """The code as apps show it ("123 456") matches."""
    code = TOTP(decode_secret(KEY)).generate(59)
    assert run("verify", f"{code[:3]} {code[3:]}", "--at", "59", stdin=URI).status == 0


def test_verify_uses_the_clock(run: RunCli) -> None:
    """Without --at the runtime's clock decides the step."""
    runtime = cli._Runtime(clock=lambda: 59.0)
    result = run("verify", "94287082", "--digits", "8", stdin=RFC_KEY_SHA1, runtime=runtime)
    assert result.out == "match: step 1, drift 0\n"


def test_verify_hotp(run: RunCli) -> None:
    """HOTP: the URI's counter, --counter, --look-ahead and the next counter to store."""
    assert run("verify", RFC4226_CODES[7], stdin=HOTP_URI).out == "no match\n"
    result = run("verify", RFC4226_CODES[7], "--look-ahead", "3", stdin=HOTP_URI)
    assert (
        result.status,
        result.out,
    ) == (0, "match: counter 7, drift 2 (store 8 as the next counter)\n")
    data = run("verify", RFC4226_CODES[2], "--counter", "0", "--look-ahead", "5", "--json",
               stdin=RFC_KEY_SHA1).json()  # fmt: skip
    assert data == {
        "match": True,
        "drift": 2,
        "type": "hotp",
        "counter": 0,
        "look_ahead": 5,
        "matched_counter": 2,
        "next_counter": 3,
    }
    failed = run("verify", "000000", "--json", stdin=HOTP_URI)
    assert (failed.status, failed.json()["match"], failed.json()["reason"]) == (1, False, "invalid")


@pytest.mark.parametrize(
    ("argv", "stdin", "fragment"),
    [
        (["--past", "2"], HOTP_URI, "--past does not apply to HOTP keys"),
        (["--future", "0"], HOTP_URI, "--future does not apply to HOTP keys"),
        (["--at", "59"], HOTP_URI, "--at does not apply to HOTP keys"),
        (["--look-ahead", "3"], URI, "--look-ahead does not apply to TOTP keys"),
        (["--digits", "8"], URI, "--digits is for a raw secret"),
        ([], "", "stdin is empty"),
    ],
    ids=["past-hotp", "future-hotp", "at-hotp", "look-ahead-totp", "digits-uri", "empty"],
)
def test_verify_errors(run: RunCli, argv: list[str], stdin: str, fragment: str) -> None:
    """Every refusal of verify is one line, status 2, without the code or the secret."""
    result = run("verify", "287082", *argv, stdin=stdin)
    assert_error(result, fragment)
    assert "287082" not in result.err


# --------------------------------------------------------------------------- inspect


def test_inspect_hides_the_secret(run: RunCli) -> None:
    """inspect prints the fields and the key size, and nothing of the secret."""
    result = run("inspect", stdin=URI)
    assert result.status == 0
    assert result.out == (
        "type:        totp\n"
        "issuer:      iSOMS\n"
        "account:     alice@example.com\n"
        "algorithm:   SHA1\n"
        "digits:      6\n"
        "period:      30 s\n"
        "image:       (none)\n"
        "secret:      (hidden: 160 bits; --show-secret prints it)\n"
        "compatibility: no known problem in Google Authenticator, Microsoft Authenticator "
        "or Authy\n"
    )
    assert KEY[:4] not in result.out


def test_inspect_show_secret(run: RunCli) -> None:
    """--show-secret prints the secret in canonical base32."""
    result = run("inspect", "--show-secret", stdin=URI.replace(KEY, KEY.lower()))
    assert f"secret:      {KEY} (160 bits)" in result.out
    assert "spelling:    not canonical (secret-lower-case)" in result.out


def test_inspect_argument_and_file(run: RunCli, tmp_path: Path) -> None:
    """The URI may also come as an argument or from --uri-file, with the same report."""
    (tmp_path / "uri").write_text(URI, encoding="utf-8")
    expected = run("inspect", stdin=URI).out
    assert expected == run("inspect", URI).out
    assert expected == run("inspect", "--uri-file", str(tmp_path / "uri")).out


def test_inspect_hotp_and_findings(run: RunCli) -> None:
    """An HOTP URI shows its counter, and the findings warn about wrong codes."""
    result = run("inspect", stdin=HOTP_URI + "&image=https%3A%2F%2Fexample.com%2Fl.png")
    assert "counter:     5\n" in result.out
    assert "image:       https://example.com/l.png\n" in result.out
    assert "WARNING: Microsoft Authenticator would show WRONG CODES" in result.out
    assert "- warning: Authy: HOTP support is unknown" in result.out


def test_inspect_refusal_findings(run: RunCli) -> None:
    """Refusals and a short legacy key are reported, not errors."""
    padded = encode_secret(b"0123456789abcdef") + "%3D" * 6
    result = run("inspect", stdin=f"otpauth://totp/A:b?secret={padded}&issuer=A&algorithm=sha1")
    assert result.status == 0
    assert "spelling:    not canonical (algorithm-lower-case, secret-padded)" in result.out
    assert (
        "WARNING: Google Authenticator Android and Google Authenticator iOS would refuse to add "
        "the account"
    ) in result.out
    assert "WRONG CODES" not in result.out
    legacy = run("inspect", stdin=f"otpauth://totp/a?secret={LEGACY_KEY}")
    assert "secret:      (hidden: 80 bits; --show-secret prints it)" in legacy.out
    assert "warning:     the secret is shorter than the 128 bits RFC 4226 requires" in legacy.out


def test_inspect_json(run: RunCli) -> None:
    """--json gives the fields, key size, quirks and findings; the secret only if asked."""
    uri = HOTP_URI.replace("iSOMS:", "Other:")
    data = run("inspect", "--json", stdin=uri).json()
    assert {key: value for key, value in data.items() if key != "findings"} == {
        "type": "hotp",
        "issuer": "iSOMS",
        "account": "token",
        "algorithm": "SHA1",
        "digits": 6,
        "counter": 5,
        "image": None,
        "secret_bits": 160,
        "quirks": ["issuer-mismatch"],
        "canonical_uri_differs": True,
    }
    assert [f["rule"] for f in data["findings"]] == ["hotp", "hotp", "issuer-mismatch"]
    shown = run("inspect", "--json", "--show-secret", stdin=URI).json()
    assert (shown["secret"], shown["period"]) == (KEY, 30)


def test_inspect_refuses_a_direction_override(run: RunCli) -> None:
    """A label with a direction override (U+202E) is refused by the parser, not shown."""
    uri = URI.replace("alice@", "alice%E2%80%AE@")
    assert_error(run("inspect", stdin=uri), "stdin: the account contains an invisible")


def test_inspect_escapes_unusual_spaces(run: RunCli) -> None:
    """A label with a character a terminal shows as blank (NBSP) is shown escaped."""
    uri = URI.replace("alice@", "alice%C2%A0@")
    assert "account:     'alice\\xa0@example.com'\n" in run("inspect", stdin=uri).out


@pytest.mark.parametrize(
    ("argv", "stdin", "fragment"),
    [
        ([URI, "--uri-file", "x"], "", "give the URI once"),
        ([], KEY, "stdin: the URI must start with otpauth://"),
        ([URI.replace("iSOMS:", "a:b:")], "", "the URI argument: the label has more than one"),
        ([" "], "", "the URI argument is empty"),
        (["--uri-file", "missing"], "", "cannot read --uri-file: No such file or directory"),
        ([], "", "stdin is empty; expected one otpauth:// URI"),
    ],
    ids=["argument-and-file", "secret-not-uri", "bad-argument", "blank-argument", "missing-file",
         "empty-stdin"],
)  # fmt: skip
def test_inspect_errors(run: RunCli, argv: list[str], stdin: str, fragment: str) -> None:
    """Every refusal of inspect is one line, status 2, without the secret."""
    result = run("inspect", *argv, stdin=stdin)
    assert_error(result, fragment)
    assert KEY not in result.err


# --------------------------------------------------------------------------- entry points


def test_main_module(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m isoms_otp` runs main() and exits with its status."""
    monkeypatch.setattr(sys, "argv", ["isoms-otp", "--version"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("isoms_otp", run_name="__main__")
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"isoms-otp {__version__}\n"


def python_m(*argv: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run ``python -m isoms_otp`` on this checkout's source."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run(
        [sys.executable, "-m", "isoms_otp", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_python_m_round_trip() -> None:
    """`python -m isoms_otp`: enroll --json, then code and verify with the enrolled URI."""
    enrolled = python_m("enroll", "--account", "alice@example.com", "--json")
    assert (enrolled.returncode, enrolled.stderr) == (0, "")
    uri = json.loads(enrolled.stdout)["uri"]
    code = python_m("code", "--at", "1700000000", stdin=uri)
    assert code.returncode == 0
    verified = python_m("verify", code.stdout.strip(), "--at", "1700000000", stdin=uri)
    assert (verified.returncode, verified.stdout) == (0, "match: step 56666666, drift 0\n")
    wrong = python_m("verify", "000000", "--at", "1", stdin=uri)
    assert (wrong.returncode, wrong.stdout) == (1, "no match\n")


def test_python_m_error_has_no_traceback() -> None:
    """A refused input in a real process: status 2, one stderr line, no traceback."""
    result = python_m("code", stdin="otpauth://totp/a?secret=" + KEY + "&digits=9")
    assert result.returncode == 2
    assert result.stderr == "isoms-otp: error: stdin: the digits parameter must be from 6 to 8\n"


def test_python_m_enroll_qr_decodes(decoder: ModuleType) -> None:
    """The QR code a real process prints decodes to the URI it printed."""
    result = python_m("enroll", "--account", "bob", "--issuer", "ACME Co")
    uri = field(result.stdout, "uri")
    assert [uri] == decode_modules(decoder, modules_from_terminal(qr_lines(result.stdout)))


def test_watch_ctrl_c_in_a_real_process(tmp_path: Path, default_sigint: Callable[[], None]) -> None:
    """SIGINT ends a real `code --watch` with status 0, a final newline and no traceback."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    (tmp_path / "key").write_text(KEY, encoding="ascii")
    with (
        (tmp_path / "key").open("rb") as stdin,
        subprocess.Popen(
            [sys.executable, "-m", "isoms_otp", "code", "--watch"],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            preexec_fn=default_sigint,  # noqa: PLW1509 - resets one signal, imports nothing
        ) as process,
    ):
        assert process.stdout is not None
        drawn = b""
        while not drawn.endswith(b"s"):  # one full draw: "\rCODE  [bar]  NNs"
            chunk = process.stdout.read(1)
            assert chunk, "the watch ended before drawing"
            drawn += chunk
        process.send_signal(signal.SIGINT)
        rest, err = process.communicate(timeout=30)
    assert process.returncode == 0
    assert re.fullmatch(rb"\r[0-9]{6}  \[[#-]{20}\]  [ 0-9]{2}s", drawn)
    assert rest.endswith(b"\n")
    assert b"Traceback" not in err


def test_console_script() -> None:
    """The installed `isoms-otp` console script runs (CI installs the package in its venv)."""
    script = shutil.which("isoms-otp", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.fail(
            f"no isoms-otp console script next to {sys.executable}: install the package "
            "(pip install -e '.[test,qr]') into the interpreter that runs the tests"
        )
    result = subprocess.run(
        [script, "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert (0, f"isoms-otp {__version__}\n") == (result.returncode, result.stdout)
    code = subprocess.run(
        [script, "code", "--at", "59", "--digits", "8"],
        input=RFC_KEY_SHA1,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (code.returncode, code.stdout) == (0, "94287082\n")


def test_demo_command_is_wired(run: RunCli) -> None:
    """`isoms-otp demo` is a subcommand writing to the CLI's streams; it refuses a non-loopback
    host before importing Flask."""
    result = run("demo", "--host", "0.0.0.0")  # noqa: S104 - the address being refused
    assert (2, "") == (result.status, result.out)
    assert "not a loopback address" in result.err


@pytest.mark.slow
def test_console_script_serves_the_demo(tmp_path: Path, default_sigint: Callable[[], None]) -> None:
    """The installed `isoms-otp demo` serves the sign-in page on loopback; Ctrl-C stops it."""
    script = shutil.which("isoms-otp", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.fail(f"no isoms-otp console script next to {sys.executable}: install the package")
    with subprocess.Popen(
        [script, "demo", "--port", "0", "--db", str(tmp_path / "demo.sqlite3")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,  # noqa: PLW1509 - resets one signal, imports nothing
    ) as process:  # closes both pipes on the way out, even when an assertion fails
        try:
            assert process.stdout is not None
            banner = ""
            found = None
            while found is None:
                line = process.stdout.readline()
                if not line:
                    break
                banner += line
                found = re.search(r"(http://\S+/)", banner)
            assert found is not None, banner
            with urllib.request.urlopen(found.group(1) + "sign-in", timeout=10) as page:  # noqa: S310
                assert "Sign in" in page.read().decode()
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
    assert 0 == process.returncode
    assert "Traceback" not in err


# --------------------------------------------------------------------------- keys

OLD_KEY = bytes(range(32))
NEW_KEY = bytes(range(32, 64))
OLD_LINE = f"old:{base64.b64encode(OLD_KEY).decode()}"
NEW_LINE = f"new:{base64.b64encode(NEW_KEY).decode()}"
OLD = Keyring.from_string(OLD_LINE)
RING = Keyring.from_string(f"{NEW_LINE},{OLD_LINE}")
NEW_ONLY = Keyring.from_string(NEW_LINE)
SECRET = b"12345678901234567890"
BOTH_KEYS = {"ISOMS_OTP_KEYS": f"{NEW_LINE},{OLD_LINE}"}


def assert_no_key_material(text: str) -> None:
    for key in (OLD_KEY, NEW_KEY):
        assert base64.b64encode(key).decode()[:16] not in text


# --------------------------------------------------------------------------- generate


def test_generate_prints_a_key_line(run: RunCli) -> None:
    """The line reads back as a one-key ring; the id is the date plus a random suffix."""
    result = run("keys", "generate")
    assert 0 == result.status
    (entry,) = result.out.splitlines()
    ring = Keyring.from_string(entry)
    assert re.fullmatch(r"2023-11-14-[0-9a-f]{6}", ring.active)  # the runtime clock's day
    assert "keep the old keys after it" in result.err
    assert entry.split(":")[1] not in result.err
    assert run("keys", "generate").out != result.out


def test_generate_with_an_id(run: RunCli) -> None:
    """--id names the key; an id the library refuses is a usage error."""
    result = run("keys", "generate", "--id", "2026-12")
    assert ("2026-12",) == Keyring.from_string(result.out.strip()).ids
    assert_error(run("keys", "generate", "--id", "a:b"), "--id: ", "letters, digits")


def test_generate_to_a_private_file(run: RunCli, tmp_path: Path) -> None:
    """--file writes the line with mode 0600, says so, and never overwrites."""
    path = tmp_path / "new.key"
    result = run("keys", "generate", "--id", "k1", "--file", str(path))
    assert (0, "") == (result.status, result.out)
    assert f"wrote key 'k1' to {path} (mode 0600)" in result.err
    assert 0o600 == stat.S_IMODE(path.stat().st_mode)
    assert ("k1",) == Keyring.from_string(path.read_text(encoding="ascii")).ids
    assert_error(run("keys", "generate", "--file", str(path)), "it exists")


def test_keys_without_the_crypto_extra(run: RunCli, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without cryptography the keys commands are one error line naming the extra."""
    monkeypatch.delitem(sys.modules, "isoms_otp.sealing")
    for name in [name for name in sys.modules if name.split(".")[0] == "cryptography"]:
        monkeypatch.setitem(sys.modules, name, None)
    assert_error(run("keys", "generate"), "pip install 'isoms-otp[crypto]'")
    assert_error(run("keys", "rewrap", environ=BOTH_KEYS), "pip install 'isoms-otp[crypto]'")


def test_keys_needs_an_action(run: RunCli) -> None:
    """`keys` alone is a usage error listing its actions."""
    assert_error(run("keys"), "required")


# --------------------------------------------------------------------------- rewrap


def rows(*pairs: tuple[str, str]) -> str:
    return "".join(f"{user}\t{token}\n" for user, token in pairs)


def test_rewrap_mixed_input(run: RunCli) -> None:
    """Old tokens are rewrapped, current ones kept, bad lines refused by number, never echoed."""
    old = OLD.seal(SECRET, user="alice")
    current = RING.seal(SECRET, user="bob")
    bobs = RING.seal(b"bob's secret", user="bob")
    lines = [
        f"alice\t{old}\n",  # 1 rewrapped
        f"bob\t{current}\n",  # 2 already current
        f"carol\t{bobs}\n",  # 3 another user's token
        "no tab here\n",  # 4
        "\n",  # 5
        f"dave\t{old[:-3]}\n",  # 6 truncated
        f"erin\t{Keyring({'gone': NEW_KEY}, active='gone').seal(SECRET, user='erin')}\n",  # 7
        "frank\tv1.\xe9\n",  # 8
        f"\t{old}\n",  # 9 no user
        f"alice\t{OLD.seal(SECRET, user='alice')}\r\n",  # 10 rewrapped (CRLF)
    ]
    stdin = "".join(lines).encode() + b"x\t\xff\n"  # 11 not UTF-8
    stdin += f"bob\t{current}".encode()  # 12 current, no final newline
    result = run("keys", "rewrap", stdin=stdin, environ=BOTH_KEYS)
    assert 1 == result.status
    out = result.out.splitlines()
    assert [user for user, _ in (row.split("\t") for row in out)] == [
        "alice",
        "bob",
        "alice",
        "bob",
    ]
    users_tokens = [row.split("\t") for row in out]
    for user, token in users_tokens:
        assert not RING.needs_rewrap(token)
        assert SECRET == NEW_ONLY.open(token, user=user)
    assert current == users_tokens[1][1]
    err = result.err
    assert "sealing under key 'new'; opening with 'new', 'old'" in err
    for number, reason in [
        (3, "not valid for this user or corrupted"),
        (4, "expected user<TAB>token"),
        (5, "expected user<TAB>token"),
        (6, "malformed"),
        (7, "unknown key id 'gone'"),
        (8, "malformed"),
        (9, "no user id before the tab"),
        (11, "not UTF-8"),
    ]:
        (said,) = [text for text in err.splitlines() if f" line {number} refused: " in text]
        assert reason in said
    assert err.endswith(
        "keys rewrap: done, 12 lines: 2 rewrapped, 2 already current, 8 refused "
        "(lines 3, 4, 5, 6, 7, 8, 9, 11)\n"
    )
    for token in (old, current, bobs):
        assert token.split(".")[2][:10] not in err
    assert "no tab here" not in err
    assert_no_key_material(result.out + err)


def test_rewrap_from_a_keys_file(run: RunCli, tmp_path: Path) -> None:
    """--keys-file holds the same text, one entry per line if you like; it wins over the env."""
    path = tmp_path / "ring.keys"
    path.write_text(f"{NEW_LINE}\n{OLD_LINE}\n", encoding="ascii")
    old = OLD.seal(SECRET, user="alice")
    environ = {"ISOMS_OTP_KEYS": OLD_LINE}
    result = run(
        "keys", "rewrap", "--keys-file", str(path), stdin=rows(("alice", old)), environ=environ
    )
    assert 0 == result.status
    user, token = result.out.rstrip("\n").split("\t")
    assert SECRET == NEW_ONLY.open(token, user=user)
    assert result.err.endswith("done, 1 line: 1 rewrapped, 0 already current, 0 refused\n")


def test_rewrap_empty_input(run: RunCli) -> None:
    """No lines is a clean run with zero counts."""
    result = run("keys", "rewrap", environ=BOTH_KEYS)
    assert (0, "") == (result.status, result.out)
    assert "done, 0 lines: 0 rewrapped, 0 already current, 0 refused" in result.err


def test_rewrap_refuses_an_overlong_line_without_reading_it_whole(run: RunCli) -> None:
    """A line past the bound is refused and skipped; the lines after it still run."""
    old = OLD.seal(SECRET, user="alice")
    stdin = ("x" * (3 * cli.MAX_REWRAP_LINE) + "\n" + rows(("alice", old))).encode()
    result = run("keys", "rewrap", stdin=stdin, environ=BOTH_KEYS)
    assert 1 == result.status
    assert f"line 1 refused: longer than {cli.MAX_REWRAP_LINE} bytes" in result.err
    assert 1 == len(result.out.splitlines())
    just_long_enough = "a\t" + "v" * (cli.MAX_REWRAP_LINE - 3) + "\n"
    assert len(just_long_enough) == cli.MAX_REWRAP_LINE
    result = run("keys", "rewrap", stdin=just_long_enough, environ=BOTH_KEYS)
    assert "line 1 refused: malformed sealed secret: longer than 2048" in result.err
    overlong_last = "x" * (cli.MAX_REWRAP_LINE + 1)  # no newline at all
    result = run("keys", "rewrap", stdin=overlong_last, environ=BOTH_KEYS)
    assert "line 1 refused: longer than" in result.err


def test_rewrap_progress_and_refusal_cap(run: RunCli) -> None:
    """Progress lines every N lines; only the first 100 refusals are named one by one."""
    bad = 105
    result = run(
        "keys", "rewrap", "--progress-every", "50", stdin="junk\n" * bad, environ=BOTH_KEYS
    )
    err = result.err
    assert 1 == result.status
    assert "keys rewrap: 50 lines read (0 rewrapped, 0 already current, 50 refused)" in err
    assert "keys rewrap: 100 lines read" in err
    assert cli.LISTED_REFUSALS == err.count(" refused: expected user<TAB>token")
    assert "further refused lines are only counted" in err
    assert err.endswith(f"and {bad - cli.LISTED_REFUSALS} more)\n")
    quiet = run("keys", "rewrap", "--progress-every", "0", stdin="junk\n" * 60, environ=BOTH_KEYS)
    assert "lines read" not in quiet.err


@pytest.mark.parametrize(
    ("argv", "environ", "fragment"),
    [
        ([], {}, "no keys: set ISOMS_OTP_KEYS"),
        ([], {"ISOMS_OTP_KEYS": base64.b64encode(NEW_KEY).decode()}, "ISOMS_OTP_KEYS: key entry 1"),
        ([], {"ISOMS_OTP_KEYS": ""}, "ISOMS_OTP_KEYS: the key text is empty"),
        (["--keys-file", "/nonexistent/ring.keys"], {}, "cannot read --keys-file"),
        (["--progress-every", "-1"], BOTH_KEYS, "--progress-every"),
    ],
)
def test_rewrap_key_errors(
    run: RunCli, argv: list[str], environ: dict[str, str], fragment: str
) -> None:
    """Missing or malformed keys are one error line, status 2, showing no key."""
    result = run("keys", "rewrap", *argv, environ=environ)
    assert_error(result, fragment)
    assert_no_key_material(result.err)


def test_rewrap_keys_file_errors(run: RunCli, tmp_path: Path) -> None:
    """A keys file that is not UTF-8, or holds a bad entry, is refused without showing it."""
    path = tmp_path / "ring.keys"
    path.write_bytes(b"\xff\xfe")
    assert_error(run("keys", "rewrap", "--keys-file", str(path)), "--keys-file is not UTF-8")
    path.write_text(f"{NEW_LINE},{NEW_LINE}", encoding="ascii")
    result = run("keys", "rewrap", "--keys-file", str(path))
    assert_error(result, "--keys-file: key entry 2 repeats the key id 'new'")
    assert_no_key_material(result.err)


def test_rewrap_closed_stdin(run: RunCli) -> None:
    """With stdin closed there is nothing to read: an error."""
    assert_error(run("keys", "rewrap", stdin=None, environ=BOTH_KEYS), "stdin is closed")


# --------------------------------------------------------------------------- a whole rotation


def console_script() -> str:
    script = Path(sys.executable).parent / "isoms-otp"
    if not script.exists():
        pytest.fail(f"the isoms-otp console script is not installed beside {sys.executable}")
    return str(script)


def rewrap_process(stdin: bytes, keys: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "ISOMS_OTP_KEYS": keys}
    return subprocess.run(
        [console_script(), "keys", "rewrap"],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=600,
        check=False,
    )


@pytest.mark.slow
def test_rotation_of_100000_tokens_through_the_console_script() -> None:
    """Seal 100,000 rows under the old key, rotate with the CLI, then drop the old key.

    Every 10,000th row holds another user's token: it is refused by line number and the rest
    carry on. After the rewrap, a ring without the old key opens every row (a second pass finds
    them all current), while the old tokens name the dropped key.
    """
    count = 100_000
    secrets = [os.urandom(20) for _ in range(count)]
    users = [f"user{n}" for n in range(count)]
    tokens = [OLD.seal(secret, user=user) for secret, user in zip(secrets, users, strict=True)]
    swapped = set(range(0, count, 10_000))
    for n in swapped:
        tokens[n] = tokens[n + 1]
    original = "".join(f"{u}\t{t}\n" for u, t in zip(users, tokens, strict=True)).encode()

    first = rewrap_process(original, f"{NEW_LINE},{OLD_LINE}")
    assert 1 == first.returncode
    err = first.stderr.decode()
    listed = ", ".join(str(n + 1) for n in sorted(swapped))
    assert err.endswith(
        f"done, {count} lines: {count - len(swapped)} rewrapped, 0 already current, "
        f"{len(swapped)} refused (lines {listed})\n"
    )
    assert 10 == err.count("lines read")  # progress every 10,000 lines
    assert_no_key_material(err)
    rewrapped = first.stdout.decode().splitlines()
    assert count - len(swapped) == len(rewrapped)
    kept = [n for n in range(count) if n not in swapped]
    for n, row in zip(kept[::997], rewrapped[::997], strict=True):
        user, token = row.split("\t")
        assert (users[n], secrets[n]) == (user, NEW_ONLY.open(token, user=user))

    second = rewrap_process(first.stdout, NEW_LINE)  # the old key is gone now
    assert (0, first.stdout) == (second.returncode, second.stdout)
    assert second.stderr.decode().endswith(
        f"done, {len(kept)} lines: 0 rewrapped, {len(kept)} already current, 0 refused\n"
    )
    stale = rewrap_process(original[: original.index(b"\n", 200) + 1], NEW_LINE)
    assert 1 == stale.returncode
    assert "unknown key id 'old'" in stale.stderr.decode()
