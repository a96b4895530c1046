"""An in-process store: dicts behind a lock."""

from __future__ import annotations

import threading

from ._base import (
    EMPTY_BUDGET,
    EMPTY_MARK,
    EMPTY_RECOVERY,
    Attempt,
    Budget,
    Mark,
    RecoverySet,
    Settlement,
    Snapshot,
    budget_removable,
    decide,
    mark_removable,
)

__all__ = ["MemoryStore"]


class MemoryStore:
    """A thread-safe store in this process's memory, for tests and single-process services.

    State is lost when the process exits, and two processes never see each other's marks: with
    several worker processes (gunicorn, uWSGI) use :class:`SQLiteStore` or :class:`RedisStore`,
    or a code accepted by one worker can be replayed against another. Call ``prune`` (or
    ``Verifier.prune``) now and then to drop records that no longer matter.
    """

    __slots__ = ("_budgets", "_lock", "_marks", "_pairs", "_recovery")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._budgets: dict[str, Budget] = {}
        self._pairs: dict[tuple[str, str], Budget] = {}
        self._marks: dict[tuple[str, str], Mark] = {}
        self._recovery: dict[str, RecoverySet] = {}

    def __repr__(self) -> str:
        return f"MemoryStore(users={len(self._budgets)}, marks={len(self._marks)})"

    def _read(self, user: str, source: str, credential: str) -> Snapshot:
        return Snapshot(
            budget=self._budgets.get(user, EMPTY_BUDGET),
            pair=self._pairs.get((user, source), EMPTY_BUDGET),
            mark=self._marks.get((user, credential), EMPTY_MARK),
            recovery=self._recovery.get(user, EMPTY_RECOVERY),
        )

    def settle(self, attempt: Attempt) -> Settlement:
        """Decide one attempt atomically (see :func:`~isoms_otp.stores.decide`)."""
        user = attempt.user
        with self._lock:
            decision = decide(attempt, self._read(user, attempt.source, attempt.credential))
            if decision.budget is not None:
                if decision.budget == EMPTY_BUDGET:
                    self._budgets.pop(user, None)
                else:
                    self._budgets[user] = decision.budget
            if decision.pair is not None:
                if decision.pair == EMPTY_BUDGET:
                    self._pairs.pop((user, attempt.source), None)
                else:
                    self._pairs[user, attempt.source] = decision.pair
            if decision.mark is not None:
                self._marks[user, attempt.credential] = decision.mark
            if decision.recovery is not None:
                self._recovery[user] = decision.recovery
            return decision.settlement

    def snapshot(self, user: str, *, source: str = "", credential: str = "") -> Snapshot:
        """Read what :func:`~isoms_otp.stores.decide` would see; nothing changes."""
        with self._lock:
            return self._read(user, source, credential)

    def marks(self, user: str) -> dict[str, Mark]:
        """Return every credential mark kept for ``user``, by credential id."""
        with self._lock:
            return {cred: mark for (name, cred), mark in self._marks.items() if name == user}

    def reset(self, user: str, *, now: float) -> None:
        """Clear ``user``'s OTP budget and every pair budget of ``user``; the marks stay."""
        del now  # nothing here depends on the time: cleared budgets are simply dropped
        with self._lock:
            self._budgets.pop(user, None)
            for key in [key for key in self._pairs if key[0] == user]:
                del self._pairs[key]

    def prune(self, now: float) -> int:
        """Forget every record that changes no decision at ``now``; return how many."""
        with self._lock:
            gone = 0
            for table in (self._budgets, self._pairs):
                stale = [key for key, budget in table.items() if budget_removable(budget, now)]
                for key in stale:
                    del table[key]  # type: ignore[arg-type]
                gone += len(stale)
            marks = [key for key, mark in self._marks.items() if mark_removable(mark, now)]
            for key in marks:
                del self._marks[key]
            return gone + len(marks)

    def close(self) -> None:
        """Do nothing: there is nothing to release."""
