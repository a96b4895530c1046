"""Stores for replay marks and failure counts: one contract (``Store``), four backends.

``MemoryStore`` (one process), ``SQLiteStore`` (one machine, the default), ``SQLStore`` (the
application's PostgreSQL or MySQL/MariaDB; ``pip install 'isoms-otp[sql]'``) and ``RedisStore``
(a fleet; ``pip install 'isoms-otp[redis]'``); the last two are imported only when first used,
and so not in ``__all__``: ``from isoms_otp.stores import *`` must work without the extras.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Final

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
    StoreFinding,
    StoreSeverity,
    blocked_until,
    budget_removable,
    decide,
    mark_removable,
)
from .memory import MemoryStore
from .sqlite import SQLiteStore

if TYPE_CHECKING:
    from .redis import RedisStore as RedisStore
    from .sql import SQLStore as SQLStore

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
    "SQLiteStore",
    "Settlement",
    "Snapshot",
    "Store",
    "StoreFinding",
    "StoreSeverity",
    "blocked_until",
    "budget_removable",
    "decide",
    "mark_removable",
]

#: Stores resolved on first use (their extra may be missing), each with its module relative to
#: this package. Not in ``__all__``, which a star import resolves eagerly.
_LAZY_NAMES: Final[dict[str, str]] = {
    "RedisStore": ".redis",
    "SQLStore": ".sql",
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
