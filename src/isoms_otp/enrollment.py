"""The *Activate TOTP* step in one call: a fresh key, its URI, QR codes and a typed-in form.

:func:`enroll` always uses TOTP with SHA1, 6 digits and 30-second steps. No other setting
gives the right codes in Google Authenticator, Microsoft Authenticator and Authy (see
:mod:`isoms_otp.compat`). The enrolment stays *pending* until the user types a valid code from
the app. Check that code with :meth:`Verifier.confirm <isoms_otp.Verifier.confirm>` and the
same ``TOTP`` (``enrolment.otp``), and activate only when the verdict is ``ok``: the Verifier's
store then holds the code's step, so the confirmation code cannot be used again as the first
sign-in code. A bare ``TOTP.verify`` records nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ._secret import generate_secret, grouped_secret
from ._totp import TOTP
from .qr import qr_png, qr_svg, qr_terminal
from .uri import build_uri

if TYPE_CHECKING:
    from .sealing import Keyring

__all__ = ["Enrollment", "enroll"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Enrollment:
    """Everything *Activate TOTP* shows or stores for one user.

    ``secret`` is the key (store it sealed, see :meth:`sealed`, with the enrolment marked
    pending), ``otp`` the
    :class:`TOTP` to verify codes with, ``uri`` the ``otpauth://`` URI, ``manual_key`` the
    secret in groups of four for typing in by hand, and :meth:`qr_svg`, :meth:`qr_png` and
    :meth:`qr_terminal` the QR codes (these need the ``qr`` extra). ``uri``, ``manual_key`` and
    the QR codes all contain the secret: send them only to this user and never log them. The
    ``repr`` shows none of them. Make one with :func:`enroll`.
    """

    account: str
    issuer: str
    secret: bytes = field(repr=False)
    otp: TOTP = field(init=False, compare=False)
    uri: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if type(self.issuer) is not str:
            raise TypeError(f"issuer must be a str, not {type(self.issuer).__name__}")
        otp = TOTP(self.secret)
        object.__setattr__(self, "secret", otp.secret)
        object.__setattr__(self, "otp", otp)
        object.__setattr__(self, "uri", build_uri(otp, account=self.account, issuer=self.issuer))

    @property
    def manual_key(self) -> str:
        """Return the base32 secret in groups of four, such as ``"JBSW Y3DP EHPK 3PXP"``."""
        return grouped_secret(self.secret)

    def sealed(self, keyring: Keyring, *, user: str) -> str:
        """Return the secret sealed for ``user``'s row (see :meth:`Keyring.seal`).

        Store this token rather than :attr:`secret`; ``keyring.open(token, user=user)`` gives
        the secret back. Needs the ``crypto`` extra, through ``keyring``.
        """
        return keyring.seal(self.secret, user=user)

    def qr_svg(self) -> str:
        """Return the QR code as SVG for an HTML page (see :func:`isoms_otp.qr.qr_svg`)."""
        return qr_svg(self.uri)

    def qr_png(self, *, scale: int = 8) -> bytes:
        """Return the QR code as PNG bytes (see :func:`isoms_otp.qr.qr_png`)."""
        return qr_png(self.uri, scale=scale)

    def qr_terminal(self) -> str:
        """Return the QR code as terminal text (see :func:`isoms_otp.qr.qr_terminal`)."""
        return qr_terminal(self.uri)


def enroll(account: str, *, issuer: str, secret: bytes | None = None) -> Enrollment:
    """Start (or show again) the enrolment of ``account`` with a new 160-bit key.

    ``account`` is the user's login name and ``issuer`` the service name the app shows (such as
    ``"iSOMS"``). Neither may be empty, start or end with whitespace, or contain ``:`` or a
    control character (else :class:`InvalidURIError`). Pass the stored ``secret`` of a pending
    enrolment to show the same QR code again rather than a new one; it must be at least 128 bits
    (:class:`InvalidSecretError`).
    """
    return Enrollment(
        account=account, issuer=issuer, secret=generate_secret() if secret is None else secret
    )
