"""The result of a successful verification."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["Match", "new_match"]


@dataclass(frozen=True, slots=True, kw_only=True, init=False)
class Match:
    """Which step (TOTP) or counter (HOTP) a code matched, and how far from the expected one.

    ``drift`` is the matched minus the expected value: ``-past..+future`` for TOTP, or
    ``0..look_ahead`` for HOTP. ``credential`` is the index of the credential that matched when
    a user has several (0 for a single one, as ``TOTP.verify``/``HOTP.verify`` return). A
    ``Match`` is always truthy, even for step or counter 0, so ``if otp.verify(...):`` is safe;
    ``verify`` returns ``None`` when nothing matched. Built by keyword:
    ``Match(step=..., drift=..., credential=0)``.
    """

    step: int
    drift: int
    credential: int = 0

    def __init__(self, *, step: int, drift: int, credential: int = 0) -> None:
        # Written out (rather than generated) so that each field is one slot store: a frozen
        # dataclass's own __init__ goes through object.__setattr__ per field.
        _SET_STEP(self, step)
        _SET_DRIFT(self, drift)
        _SET_CREDENTIAL(self, credential)

    def __bool__(self) -> bool:
        return True


# The slots' own setters: frozen forbids ``self.step = ...``, these write the slot directly.
_SET_STEP: Final = Match.__dict__["step"].__set__
_SET_DRIFT: Final = Match.__dict__["drift"].__set__
_SET_CREDENTIAL: Final = Match.__dict__["credential"].__set__
_NEW: Final = object.__new__


def new_match(step: int, drift: int) -> Match:
    """Return ``Match(step=step, drift=drift, credential=0)`` without the keyword call.

    The verify loops build one per accepted code; this skips ``__init__``'s argument parsing.
    """
    match: Match = _NEW(Match)
    _SET_STEP(match, step)
    _SET_DRIFT(match, drift)
    _SET_CREDENTIAL(match, 0)
    return match
