"""isoms-otp: TOTP/HOTP (RFC 6238 / RFC 4226) for the iSOMS sign-in, with replay protection.

Public names are re-exported here; the modules behind them are private unless documented.
Names that need an optional extra (``RedisStore``, ``SQLStore``, ``Keyring``) are resolved on
first use, so that ``import isoms_otp`` and ``from isoms_otp import *`` work without it. They
are left out of ``__all__`` on purpose: a star import resolves every name in it, and would raise
:class:`MissingExtraError`. Import them by name (``from isoms_otp import RedisStore``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Final

from ._hotp import HOTP
from ._match import Match
from ._secret import decode_secret, encode_secret, generate_secret
from ._totp import TOTP
from .compat import Finding, check_compatibility
from .enrollment import Enrollment, enroll
from .events import Event
from .exceptions import (
    ConfigurationError,
    InvalidRecoveryCodesError,
    InvalidSecretError,
    InvalidURIError,
    MissingExtraError,
    OTPError,
    StoreError,
)
from .recovery import RecoveryCodes
from .stores import Attempt, MemoryStore, Settlement, SQLiteStore, Store, StoreFinding
from .throttle import ThrottlePolicy
from .uri import OTPAuthURI, build_uri, parse_uri
from .verifier import IssuedCodes, Verdict, Verifier

if TYPE_CHECKING:
    from .sealing import Keyring as Keyring
    from .stores.redis import RedisStore as RedisStore
    from .stores.sql import SQLStore as SQLStore

__version__ = "0.1.0"

__all__ = [
    "HOTP",
    "TOTP",
    "Attempt",
    "ConfigurationError",
    "Enrollment",
    "Event",
    "Finding",
    "InvalidRecoveryCodesError",
    "InvalidSecretError",
    "InvalidURIError",
    "IssuedCodes",
    "Match",
    "MemoryStore",
    "MissingExtraError",
    "OTPAuthURI",
    "OTPError",
    "RecoveryCodes",
    "SQLiteStore",
    "Settlement",
    "Store",
    "StoreError",
    "StoreFinding",
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

#: Public names resolved on first use, each with the module that defines it (relative to this
#: package). Not in ``__all__`` (see the module docstring); adding one is one line here.
_LAZY_NAMES: Final[dict[str, str]] = {
    "Keyring": ".sealing",
    "RedisStore": ".stores.redis",
    "SQLStore": ".stores.sql",
}


def __getattr__(name: str) -> object:
    module = _LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY_NAMES})
