"""isoms-otp: TOTP/HOTP (RFC 6238 / RFC 4226) for the iSOMS sign-in, with replay protection.

Public names are re-exported here; the modules behind them are private unless documented.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._hotp import HOTP
from ._match import Match
from ._secret import decode_secret, encode_secret, generate_secret
from ._totp import TOTP
from .compat import Finding, check_compatibility
from .enrollment import Enrollment, enroll
from .exceptions import (
    ConfigurationError,
    InvalidSecretError,
    InvalidURIError,
    MissingExtraError,
    OTPError,
    StoreError,
)
from .stores import Attempt, MemoryStore, Settlement, SQLiteStore, Store
from .throttle import ThrottlePolicy
from .uri import OTPAuthURI, build_uri, parse_uri
from .verifier import Verdict, Verifier

if TYPE_CHECKING:
    from .stores.redis import RedisStore
    from .stores.sql import SQLStore

__version__ = "0.1.0"

__all__ = [
    "HOTP",
    "TOTP",
    "Attempt",
    "ConfigurationError",
    "Enrollment",
    "Finding",
    "InvalidSecretError",
    "InvalidURIError",
    "Match",
    "MemoryStore",
    "MissingExtraError",
    "OTPAuthURI",
    "OTPError",
    "RedisStore",
    "SQLStore",
    "SQLiteStore",
    "Settlement",
    "Store",
    "StoreError",
    "ThrottlePolicy",
    "Verdict",
    "Verifier",
    "__version__",
    "build_uri",
    "check_compatibility",
    "decode_secret",
    "encode_secret",
    "enroll",
    "generate_secret",
    "parse_uri",
]


def __getattr__(name: str) -> object:
    # RedisStore and SQLStore are resolved on first use, so that the core imports without
    # their optional extras.
    if name == "RedisStore":
        from .stores.redis import RedisStore  # noqa: PLC0415

        return RedisStore
    if name == "SQLStore":
        from .stores.sql import SQLStore  # noqa: PLC0415

        return SQLStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
