"""The result of a successful verification."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Match"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Match:
    """Which step (TOTP) or counter (HOTP) a code matched, and how far from the expected one.

    ``drift`` is the matched minus the expected value: ``-past..+future`` for TOTP, or
    ``0..look_ahead`` for HOTP. ``credential`` is the index of the credential that matched
    when ``Verifier.verify`` was given several (0 for a single one). A ``Match`` is always
    truthy, even for step or counter 0, so ``if otp.verify(...):`` is safe; ``verify``
    returns ``None`` when nothing matched.
    """

    step: int
    drift: int
    credential: int = 0

    def __bool__(self) -> bool:
        return True
