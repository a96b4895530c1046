"""An in-process store: a dict behind a lock."""

from __future__ import annotations

import threading

from isoms_otp.throttle import ThrottlePolicy

from ._base import EMPTY, Failure, Kind, Settlement, UserState, decide, removable

__all__ = ["MemoryStore"]


class MemoryStore:
    """A thread-safe store in this process's memory, for tests and single-process services.

    State is lost when the process exits, and two processes never see each other's marks: with
    several worker processes (gunicorn, uWSGI) use :class:`SQLiteStore` or :class:`RedisStore`,
    or a code accepted by one worker can be replayed against another. Call ``prune`` (or
    ``Verifier.prune``) now and then to drop users whose state no longer matters.
    """

    __slots__ = ("_lock", "_users")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users: dict[str, UserState] = {}

    def __repr__(self) -> str:
        return f"MemoryStore(users={len(self._users)})"

    def settle(
        self,
        user: str,
        *,
        now: float,
        kind: Kind,
        step: int | None,
        failure: Failure,
        keep_until: float,
        policy: ThrottlePolicy,
    ) -> Settlement:
        """Decide one verification atomically (see :func:`~isoms_otp.stores.decide`)."""
        with self._lock:
            new, outcome = decide(
                self._users.get(user, EMPTY),
                now=now,
                kind=kind,
                step=step,
                failure=failure,
                keep_until=keep_until,
                policy=policy,
            )
            if new is not None:
                self._users[user] = new
            return outcome

    def mark(self, user: str, kind: Kind) -> int | None:
        """Return the highest accepted step/counter of ``kind`` for ``user`` (``None``: none)."""
        state = self._users.get(user, EMPTY)
        return state.totp if kind == "totp" else state.hotp

    def blocked_until(self, user: str) -> float:
        """Return the Unix time before which ``user``'s attempts are refused (0: never blocked)."""
        return self._users.get(user, EMPTY).blocked_until

    def reset(self, user: str, *, now: float) -> None:
        """Clear ``user``'s failures and lock; the replay marks stay."""
        with self._lock:
            state = self._users.get(user)
            if state is None:
                return
            state = UserState(totp=state.totp, hotp=state.hotp, keep_until=state.keep_until)
            if removable(state, now):
                del self._users[user]
            else:
                self._users[user] = state

    def prune(self, now: float) -> int:
        """Forget every user whose state no longer matters at ``now``; return how many."""
        with self._lock:
            stale = [user for user, state in self._users.items() if removable(state, now)]
            for user in stale:
                del self._users[user]
            return len(stale)

    def close(self) -> None:
        """Do nothing: there is nothing to release."""
