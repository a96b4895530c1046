"""The error tree of isoms-otp.

Every error the library raises on purpose derives from :class:`OTPError`, so callers can catch the
whole family in one place. Errors about bad input or configuration also derive from ``ValueError``.
No message ever contains a secret or a one-time code.

Expected outcomes of verification (a wrong code, a replayed code, a throttled user) are *verdicts*,
not exceptions.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "InvalidRecoveryCodesError",
    "InvalidSecretError",
    "InvalidURIError",
    "MissingExtraError",
    "OTPError",
    "StoreError",
]


class OTPError(Exception):
    """Base class of every isoms-otp error; never raised itself."""


class ConfigurationError(OTPError, ValueError):
    """A parameter is out of range: digits, algorithm, period, window, counter or time."""


class InvalidSecretError(OTPError, ValueError):
    """A secret is empty, malformed, too short or too long; the message never echoes it."""


class InvalidRecoveryCodesError(OTPError, ValueError):
    """Stored recovery codes text or values are malformed; the message never repeats them."""


class InvalidURIError(OTPError, ValueError):
    """An ``otpauth://`` URI is malformed or refused. The message never echoes the secret."""


class StoreError(OTPError):
    """A replay/throttle store failed, timed out or is unreachable; verification fails closed."""


class MissingExtraError(OTPError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""
