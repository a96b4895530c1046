"""Stores for replay marks and failure counts: one contract (``Store``), four backends.

``MemoryStore`` (one process), ``SQLiteStore`` (one machine, the default), ``SQLStore`` (the
application's PostgreSQL or MySQL/MariaDB; ``pip install 'isoms-otp[sql]'``) and ``RedisStore``
(a fleet; ``pip install 'isoms-otp[redis]'``); the last two are imported only when first used.
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
    from .sql import SQLStore

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
    "SQLStore",
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
    # Lazy, so that `import isoms_otp` works without the optional redis or sql extras.
    if name == "RedisStore":
        from .redis import RedisStore  # noqa: PLC0415

        return RedisStore
    if name == "SQLStore":
        from .sql import SQLStore  # noqa: PLC0415

        return SQLStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
