"""QR codes: what is drawn is decoded with a real decoder (zxing-cpp) and must equal the URI.

PNG is decoded directly. There is no SVG rasteriser among the test tools, so the SVG is parsed as
XML and its paths are painted with Pillow by ``_paint_svg`` below. That covers the path commands
segno writes (M/m, h/H, v/V, z; fills and 1-unit strokes), and the result is decoded. The terminal
text is turned back into modules from its colour codes and half blocks, drawn, and decoded.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from types import ModuleType

import pytest
from PIL import Image, ImageDraw

from isoms_otp import (
    TOTP,
    ConfigurationError,
    InvalidURIError,
    MissingExtraError,
    build_uri,
    decode_secret,
    enroll,
)
from isoms_otp.qr import BORDER, MAX_SCALE, qr_png, qr_svg, qr_terminal
from isoms_otp.uri import MAX_URI_LENGTH

B32 = "HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ"
KEY = decode_secret(B32)
PIXELS = 4  # pixels per module when the tests paint SVG and terminal output


@pytest.fixture(scope="module")
def decoder() -> ModuleType:
    """The zxing-cpp module; its absence fails the QR tests (CI installs the test extra)."""
    try:
        import zxingcpp  # noqa: PLC0415 - a missing decoder must fail these tests, not all
    except ImportError:
        pytest.fail("zxing-cpp is needed for the QR tests: pip install -e '.[test]'")
    return zxingcpp


def _longest_uri() -> str:
    base = build_uri(TOTP(KEY), account="a", issuer="iSOMS")
    return build_uri(TOTP(KEY), account="a" * (1 + MAX_URI_LENGTH - len(base)), issuer="iSOMS")


URIS = {
    "short": build_uri(TOTP(KEY), account="a", issuer="X"),
    "typical": build_uri(TOTP(KEY), account="alice.smith@isoms.example.org", issuer="iSOMS"),
    "long-label": build_uri(
        TOTP(KEY),
        account="very.long.account-name+" * 8 + "@example.org",
        issuer=("Long Co " * 6).strip(),
    ),
    "longest": _longest_uri(),
    "issuer-german": build_uri(TOTP(KEY), account="jürgen", issuer="Über GmbH"),
    "issuer-japanese": build_uri(TOTP(KEY), account="山田", issuer="日本銀行"),
    "issuer-arabic": build_uri(TOTP(KEY), account="user", issuer="شركة"),
    "issuer-emoji": build_uri(TOTP(KEY), account="a b", issuer="🔐 Vault"),
    "sha512-hotp-like": build_uri(TOTP(KEY, algorithm="SHA512", digits=8), account="a"),
}


def _decode(decoder: ModuleType, image: Image.Image) -> str:
    results = decoder.read_barcodes(image)
    assert len(results) == 1
    (result,) = results
    assert decoder.BarcodeFormat.QRCode == result.format
    assert result.ec_level in {"M", "Q", "H"}  # level M, or higher where segno could boost it
    text: str = result.text
    assert text.encode("ascii") == result.bytes
    return text


def _paint(rows: list[list[int]]) -> Image.Image:
    """Draw a module matrix (1 = dark) black on white, PIXELS per module."""
    image = Image.new("L", (len(rows[0]) * PIXELS, len(rows) * PIXELS), 255)
    for y, row in enumerate(rows):
        for x, dark in enumerate(row):
            if dark:
                image.paste(0, (x * PIXELS, y * PIXELS, (x + 1) * PIXELS, (y + 1) * PIXELS))
    return image


_COLOURS = {"#000": 0, "#fff": 255}


def _colours(image: Image.Image) -> set[int]:
    """The grey levels present in an "L" image."""
    return {int(colour) for _, colour in image.getcolors(256) or []}  # type: ignore[arg-type]


_PATH_TOKEN = re.compile(r"[MmHhVvZz]|-?[0-9]+(?:\.[0-9]+)?")


def _paint_svg(svg: str) -> Image.Image:
    """Rasterise segno's SVG: fill paths as polygons, 1-unit strokes as bars along each line."""
    root = ET.fromstring(svg)  # noqa: S314 - our own output, parsed in a test
    _, _, width, height = (int(n) for n in root.attrib["viewBox"].split())
    image = Image.new("L", (width * PIXELS, height * PIXELS), 128)  # 128 = never painted
    for path in root.iter("{http://www.w3.org/2000/svg}path"):
        tokens = _PATH_TOKEN.findall(path.attrib["d"])
        x = y = 0.0
        points: list[tuple[float, float]] = []
        bars: list[tuple[float, float, float]] = []
        while tokens:
            command = tokens.pop(0)
            relative = command.islower()
            if command in "Mm":
                dx, dy = float(tokens.pop(0)), float(tokens.pop(0))
                x, y = (x + dx, y + dy) if relative else (dx, dy)
                points.append((x, y))
            elif command in "Hh":
                length = float(tokens.pop(0))
                end = x + length if relative else length
                bars.append((min(x, end), max(x, end), y))
                x = end
                points.append((x, y))
            elif command in "Vv":
                length = float(tokens.pop(0))
                y = y + length if relative else length
                points.append((x, y))
        if "fill" in path.attrib:
            scaled = [(px * PIXELS, py * PIXELS) for px, py in points]
            ImageDraw.Draw(image).polygon(scaled, fill=_COLOURS[path.attrib["fill"]])
        else:
            colour = _COLOURS[path.attrib["stroke"]]
            for left, right, middle in bars:
                box = (
                    round(left * PIXELS),
                    round((middle - 0.5) * PIXELS),
                    round(right * PIXELS),
                    round((middle + 0.5) * PIXELS),
                )
                image.paste(colour, box)
    assert 128 not in _colours(image)  # the light background was painted too: no transparency
    return image


_ANSI = re.compile(r"\x1b\[([0-9]+)m|(\u2580)|(\n)")
_DARK_CODES = {"30": 1, "97": 0}
_BACKGROUND_CODES = {"40": 1, "107": 0}


def _modules_from_terminal(text: str) -> list[list[int]]:
    """Read the modules back from terminal text: every cell must set both colours itself."""
    assert _ANSI.sub("", text) == ""  # nothing but colour codes, half blocks and newlines
    rows: list[list[int]] = [[], []]
    foreground: int | None = None
    background: int | None = None
    for match in _ANSI.finditer(text):
        code, block, newline = match.groups()
        if code == "0":
            foreground = background = None
        elif code in _DARK_CODES:
            foreground = _DARK_CODES[code]
        elif code in _BACKGROUND_CODES:
            background = _BACKGROUND_CODES[code]
        elif block:
            assert foreground is not None
            assert background is not None
            rows[-2].append(foreground)
            rows[-1].append(background)
        elif newline:
            assert foreground is None  # each line ends with a reset
            rows += [[], []]
        else:  # pragma: no cover - an unexpected colour code
            pytest.fail(f"unexpected escape code {code}")
    return rows[:-2]


@pytest.mark.qr
@pytest.mark.parametrize("uri", URIS.values(), ids=URIS.keys())
def test_png_decodes_to_the_uri(decoder: ModuleType, uri: str) -> None:
    """The PNG decodes to exactly the URI."""
    png = qr_png(uri)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert uri == _decode(decoder, Image.open(io.BytesIO(png)))


@pytest.mark.qr
@pytest.mark.parametrize("uri", URIS.values(), ids=URIS.keys())
def test_svg_decodes_to_the_uri(decoder: ModuleType, uri: str) -> None:
    """The SVG, painted from its paths, decodes to exactly the URI."""
    assert uri == _decode(decoder, _paint_svg(qr_svg(uri)))


@pytest.mark.qr
@pytest.mark.parametrize("uri", URIS.values(), ids=URIS.keys())
def test_terminal_text_decodes_to_the_uri(decoder: ModuleType, uri: str) -> None:
    """The terminal text, turned back into modules and drawn, decodes to exactly the URI."""
    assert uri == _decode(decoder, _paint(_modules_from_terminal(qr_terminal(uri))))


@pytest.mark.qr
def test_svg_is_embeddable() -> None:
    """The SVG is one well-formed <svg> element: no XML declaration, a viewBox, no fixed size."""
    svg = qr_svg(URIS["typical"])
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg" ')
    root = ET.fromstring(svg)  # noqa: S314 - our own output, parsed in a test
    assert "width" not in root.attrib
    assert "height" not in root.attrib
    _, _, width, height = (int(n) for n in root.attrib["viewBox"].split())
    assert width == height
    assert (width - 2 * BORDER - 21) % 4 == 0  # a QR version's size plus the quiet zone
    title = root.find("{http://www.w3.org/2000/svg}title")
    assert title is not None
    assert "authenticator" in (title.text or "")
    assert B32 not in svg


@pytest.mark.qr
@pytest.mark.parametrize("scale", [1, 8, MAX_SCALE])
def test_png_scale_and_quiet_zone(scale: int) -> None:
    """The PNG is scale pixels per module, with a white quiet zone of 4 modules."""
    image = Image.open(io.BytesIO(qr_png(URIS["typical"], scale=scale))).convert("L")
    width, height = image.size
    assert width == height
    assert width % scale == 0
    modules = width // scale
    assert (modules - 2 * BORDER - 21) % 4 == 0
    border = BORDER * scale
    for box in [(0, 0, width, border), (0, 0, border, height)]:
        assert {255} == _colours(image.crop(box))
    assert 0 in _colours(image.crop((border, border, width - border, height - border)))


@pytest.mark.qr
def test_terminal_text_shape() -> None:
    """Every line has the same number of cells, starts with colours and ends with a reset."""
    text = qr_terminal(URIS["typical"])
    lines = text.splitlines()
    assert text.endswith("\n")
    widths = {line.count("\u2580") for line in lines}
    assert len(widths) == 1
    (width,) = widths
    assert len(lines) == (width + 1) // 2  # two module rows per line, the last padded
    for line in lines:
        assert line.startswith("\x1b[")
        assert line.endswith("\x1b[0m")


@pytest.mark.parametrize("bad", [0, -1, MAX_SCALE + 1])
def test_png_scale_out_of_range(bad: int) -> None:
    """A scale outside 1-32 is a ConfigurationError (a ValueError) that gives the range."""
    with pytest.raises(ConfigurationError, match="scale must be from 1 to 32"):
        qr_png(URIS["short"], scale=bad)


@pytest.mark.parametrize("bad", [True, 2.0, "8"])
def test_png_scale_wrong_type(bad: object) -> None:
    """A scale that is not an int is a TypeError."""
    with pytest.raises(TypeError, match="scale must be an int"):
        qr_png(URIS["short"], scale=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        pytest.param("otpauth://totp/Über?secret=" + B32, "printable ASCII", id="raw-non-ascii"),
        pytest.param("otpauth://totp/a\n?secret=" + B32, "printable ASCII", id="newline"),
        pytest.param("otpauth://totp/a\x00?secret=" + B32, "printable ASCII", id="nul"),
        pytest.param("o" * (MAX_URI_LENGTH + 1), "the limit is 2048", id="too-long"),
    ],
)
@pytest.mark.parametrize("draw", [qr_svg, qr_png, qr_terminal])
def test_refused_before_drawing(uri: str, message: str, draw: object) -> None:
    """Text that is not a printable ASCII URI within the limit is never drawn."""
    with pytest.raises(InvalidURIError, match=message):
        draw(uri)  # type: ignore[operator]


@pytest.mark.parametrize("draw", [qr_svg, qr_png, qr_terminal])
def test_non_str_is_a_type_error(draw: object) -> None:
    """Bytes are refused with a TypeError."""
    with pytest.raises(TypeError, match="uri must be a str"):
        draw(URIS["short"].encode())  # type: ignore[operator]


@pytest.mark.parametrize("draw", [qr_svg, qr_png, qr_terminal])
def test_missing_segno_names_the_extra(monkeypatch: pytest.MonkeyPatch, draw: object) -> None:
    """Without segno, drawing raises MissingExtraError (an ImportError) naming the extra."""
    monkeypatch.setitem(sys.modules, "segno", None)  # makes `import segno` fail
    with pytest.raises(MissingExtraError, match=re.escape("pip install 'isoms-otp[qr]'")) as info:
        draw(URIS["short"])  # type: ignore[operator]
    assert isinstance(info.value, ImportError)


def test_segno_is_imported_only_to_draw() -> None:
    """Importing the package and isoms_otp.qr does not import segno (it is an optional extra)."""
    script = (
        "import sys, isoms_otp, isoms_otp.qr\n"
        "isoms_otp.enroll('a', issuer='b')\n"
        "assert 'segno' not in sys.modules, 'segno was imported'\n"
        "isoms_otp.qr.qr_svg('otpauth://totp/a')\n"
        "assert 'segno' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)


def test_missing_segno_through_the_enrolment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The enrolment's QR methods raise the same error; the rest of it still works."""
    monkeypatch.setitem(sys.modules, "segno", None)
    enrolment = enroll("alice", issuer="iSOMS")
    assert enrolment.uri.startswith("otpauth://totp/iSOMS:alice?secret=")
    with pytest.raises(MissingExtraError, match="isoms-otp\\[qr\\]"):
        enrolment.qr_svg()
