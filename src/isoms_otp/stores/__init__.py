"""Stores for replay marks and failure counts: one contract (``Store``), three backends.

``MemoryStore`` (one process), ``SQLiteStore`` (one machine, the default) and ``RedisStore``
(several machines; needs ``pip install 'isoms-otp[redis]'``, imported only when first used).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._base import Failure, Kind, Reason, Settlement, Store, UserState, decide, removable
from .memory import MemoryStore
from .sqlite import SQLiteStore

if TYPE_CHECKING:
    from .redis import RedisStore

__all__ = [
    "Failure",
    "Kind",
    "MemoryStore",
    "Reason",
    "RedisStore",
    "SQLiteStore",
    "Settlement",
    "Store",
    "UserState",
    "decide",
    "removable",
]


def __getattr__(name: str) -> object:
    # Lazy, so that `import isoms_otp` works without the optional redis client installed.
    if name == "RedisStore":
        from .redis import RedisStore  # noqa: PLC0415

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
