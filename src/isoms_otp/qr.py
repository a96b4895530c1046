"""QR codes of ``otpauth://`` URIs as SVG, PNG and terminal text (the ``qr`` extra: segno).

segno is imported when a QR code is drawn, not when this module is imported. Without it, every
function raises :class:`MissingExtraError`, whose message says ``pip install 'isoms-otp[qr]'``.

Two choices apply to all three outputs:

* Error correction level M (15 % of the code can be lost). Every URI up to
  :data:`MAX_URI_LENGTH` (2048 characters) fits in one level M code (2331 bytes at most), and
  level Q would not hold it (1663). segno raises the level further when that needs no extra
  modules.
* A quiet zone of 4 modules, the width the QR standard (ISO/IEC 18004) requires. Phone
  cameras lose codes drawn tight against other content.

The drawings contain the secret. Send them only to the user who is enrolling, over HTTPS with
``Cache-Control: no-store``, and never log them.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Final

from ._limits import MAX_QR_SCALE, check_qr_scale
from .exceptions import InvalidURIError, MissingExtraError
from .uri import MAX_URI_LENGTH

if TYPE_CHECKING:
    import segno

__all__ = ["BORDER", "ERROR_LEVEL", "MAX_SCALE", "qr_png", "qr_svg", "qr_terminal"]

#: Error correction level: the lowest level at which every URI up to MAX_URI_LENGTH still fits.
ERROR_LEVEL: Final = "M"
#: Quiet zone in modules, as ISO/IEC 18004 requires for QR codes.
BORDER: Final = 4
#: Largest PNG scale (pixels per module); a 2048-character URI then makes a 5920-pixel image.
MAX_SCALE: Final = MAX_QR_SCALE

# Terminal colours are explicit (black on bright white) rather than the terminal's own, so the
# code scans the same on dark and light themes. Each character cell holds two modules: the
# upper half block is drawn in the top module's colour on the bottom module's colour. Cells
# are about twice as tall as wide, so the modules come out square.
_FOREGROUND: Final = ("\x1b[97m", "\x1b[30m")  # light, dark
_BACKGROUND: Final = ("\x1b[107m", "\x1b[40m")
_UPPER_HALF: Final = "\u2580"
_RESET: Final = "\x1b[0m"


def _make(uri: str) -> segno.QRCode:
    if not isinstance(uri, str):
        raise TypeError(f"uri must be a str, not {type(uri).__name__}")
    # build_uri() percent-encodes everything, so its output is ASCII. Raw non-ASCII would leave
    # the byte encoding (UTF-8 or ISO 8859-1) to the decoder's guess.
    if not uri.isascii() or not uri.isprintable():
        raise InvalidURIError(
            "a QR code is drawn only for a printable ASCII URI: percent-encode it (build_uri does)"
        )
    if len(uri) > MAX_URI_LENGTH:
        raise InvalidURIError(f"the URI is {len(uri)} characters; the limit is {MAX_URI_LENGTH}")
    try:
        import segno  # noqa: PLC0415 - optional extra, imported only when a code is drawn
    except ImportError:
        raise MissingExtraError(
            "drawing QR codes needs the optional segno package: pip install 'isoms-otp[qr]'"
        ) from None
    return segno.make_qr(uri, error=ERROR_LEVEL, mode="byte")


def qr_svg(uri: str) -> str:
    """Return an SVG QR code of ``uri`` to embed in an HTML page.

    The ``<svg>`` element has a ``viewBox`` but no width or height, so it scales to its
    container: give it a CSS width (200 px or more). The light modules are painted white, so
    the code scans on dark pages too. Raises :class:`InvalidURIError` for a URI that is not
    printable ASCII or is over :data:`MAX_URI_LENGTH`, and :class:`MissingExtraError` without
    segno.
    """
    out = io.BytesIO()
    _make(uri).save(
        out,
        kind="svg",
        border=BORDER,
        dark="#000",
        light="#fff",
        xmldecl=False,
        svgns=True,
        omitsize=True,
        title="QR code for your authenticator app",
        nl=False,
    )
    return out.getvalue().decode("utf-8")


def qr_png(uri: str, *, scale: int = 8) -> bytes:
    """Return a PNG QR code of ``uri``, black on white, ``scale`` pixels per module (1 to 32).

    The default of 8 gives about 500 x 500 pixels for an enrolment URI. Raises as
    :func:`qr_svg` does, plus ``TypeError``/:class:`ConfigurationError` for a bad ``scale``.
    """
    check_qr_scale(scale)
    out = io.BytesIO()
    _make(uri).save(out, kind="png", scale=scale, border=BORDER, dark="#000", light="#fff")
    return out.getvalue()


def qr_terminal(uri: str) -> str:
    """Return the QR code of ``uri`` as lines of text with ANSI colours, for a terminal.

    Print it as is: the colours are fixed (black on white), so it scans on dark and light
    terminal themes. The terminal must support ANSI colours and the character U+2580. The
    text holds the secret: do not log it. Raises as :func:`qr_svg` does.
    """
    rows = [list(row) for row in _make(uri).matrix_iter(scale=1, border=BORDER)]
    # A QR code is 4 * version + 17 modules wide, plus two quiet zones: always an odd number of
    # rows. The last line of cells has no bottom row, so one more light row widens the quiet zone.
    rows.append([0] * len(rows[0]))
    lines = []
    for top, bottom in zip(rows[::2], rows[1::2], strict=True):
        cells = []
        previous = (-1, -1)
        for pair in zip(top, bottom, strict=True):
            if pair != previous:
                cells.append(_FOREGROUND[pair[0]] + _BACKGROUND[pair[1]])
                previous = pair
            cells.append(_UPPER_HALF)
        cells.append(_RESET)
        lines.append("".join(cells))
    return "\n".join(lines) + "\n"
