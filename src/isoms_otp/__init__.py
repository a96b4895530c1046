"""isoms-otp: TOTP/HOTP (RFC 6238 / RFC 4226) for the iSOMS sign-in, with replay protection.

Public names are re-exported here; the modules behind them are private unless documented.
"""

from __future__ import annotations

from ._hotp import HOTP
from ._match import Match
from ._secret import decode_secret, encode_secret, generate_secret
from ._totp import TOTP
from .exceptions import (
    ConfigurationError,
    InvalidSecretError,
    InvalidURIError,
    MissingExtraError,
    OTPError,
    StoreError,
)

__version__ = "0.1.0"

__all__ = [
    "HOTP",
    "TOTP",
    "ConfigurationError",
    "InvalidSecretError",
    "InvalidURIError",
    "Match",
    "MissingExtraError",
    "OTPError",
    "StoreError",
    "__version__",
    "decode_secret",
    "encode_secret",
    "generate_secret",
]
