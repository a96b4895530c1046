"""Stores for replay marks and failure counts: one contract (``Store``), three backends.

``MemoryStore`` (one process), ``SQLiteStore`` (one machine, the default) and ``RedisStore``
(several machines; needs ``pip install 'isoms-otp[redis]'``, imported only when first used).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._base import (
    Attempt,
    Budget,
    Decision,
    Failure,
    Kind,
    Mark,
    Reason,
    RecoverySet,
    Settlement,
    Snapshot,
    Store,
    blocked_until,
    budget_removable,
    decide,
    mark_removable,
)
from .memory import MemoryStore
from .sqlite import SQLiteStore

if TYPE_CHECKING:
    from .redis import RedisStore

__all__ = [
    "Attempt",
    "Budget",
    "Decision",
    "Failure",
    "Kind",
    "Mark",
    "MemoryStore",
    "Reason",
    "RecoverySet",
    "RedisStore",
    "SQLiteStore",
    "Settlement",
    "Snapshot",
    "Store",
    "blocked_until",
    "budget_removable",
    "decide",
    "mark_removable",
]


def __getattr__(name: str) -> object:
    # Lazy, so that `import isoms_otp` works without the optional redis client installed.
    if name == "RedisStore":
        from .redis import RedisStore  # noqa: PLC0415

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
