"""The verification service: single use, throttling and fail-closed stores, per user."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from hmac import compare_digest
from typing import Final

from ._code import normalize_code
from ._hotp import HOTP
from ._limits import MAX_COUNTER, MAX_LOOK_AHEAD, MAX_TOTP_WINDOW, shown
from ._match import Match
from ._totp import TOTP, check_window
from .exceptions import ConfigurationError
from .stores._base import Kind, Reason, Store
from .throttle import ThrottlePolicy

__all__ = ["MAX_CLOCK", "MAX_RESYNC_WINDOW", "MAX_USER_LENGTH", "Verdict", "Verifier"]

#: The longest user key a store will track (characters). Usernames and e-mail addresses fit.
MAX_USER_LENGTH: Final = 256
#: The latest time a clock may return (Unix seconds, about 285 million years from 1970): every
#: second up to it is exact as a float, and stores can add lock durations to it safely.
MAX_CLOCK: Final = 2**53
#: The widest HOTP resynchronisation search (RFC 4226 section 7.4 asks for a bound).
MAX_RESYNC_WINDOW: Final = 10_000

#: C0 and C1 control characters (DEL included) and lone surrogates.
_BAD_USER_CHARACTER: Final = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_REASONS: Final = frozenset({"accepted", "invalid", "malformed", "replayed", "throttled"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """The outcome of one verification; ``ok`` is true only for ``reason == "accepted"``.

    ``reason`` is ``"accepted"``, ``"invalid"`` (no match), ``"malformed"`` (not a code at all),
    ``"replayed"`` (it matched a step or counter already used) or ``"throttled"`` (refused
    unexamined: the user is backing off or locked; ``retry_after`` says for how many seconds).
    ``match`` is the :class:`Match` for ``"accepted"`` and ``"replayed"``, else ``None``. A
    ``Verdict`` is truthy exactly when ``ok``. Show users one message for every refusal except
    ``"throttled"``, and log the reason.
    """

    reason: Reason
    match: Match | None = None
    retry_after: float | None = None
    ok: bool = field(init=False)

    def __post_init__(self) -> None:
        if self.reason not in _REASONS:
            raise ConfigurationError(f"reason must be one of {sorted(_REASONS)}")
        object.__setattr__(self, "ok", self.reason == "accepted")

    def __bool__(self) -> bool:
        return self.ok


_PLAIN: Final = {reason: Verdict(reason=reason) for reason in ("invalid", "malformed", "replayed")}
_DEFAULT_POLICY: Final = ThrottlePolicy()


def _check_range(value: object, name: str, low: int, high: int) -> int:
    if type(value) is not int:
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise ConfigurationError(f"{name} must be from {low} to {high} (got {shown(value)})")
    return value


@dataclass(frozen=True, slots=True)
class Verifier:
    """Verify codes for users: each code at most once, guessing throttled, state in ``store``.

    ``store`` is a :class:`~isoms_otp.stores.Store` (``SQLiteStore`` on one machine,
    ``RedisStore`` for several, ``MemoryStore`` in one process). ``policy`` is the
    :class:`ThrottlePolicy`; ``clock`` returns Unix seconds (0 to :data:`MAX_CLOCK`, 2**53; else
    :class:`ConfigurationError`) and is read once per call (pass an
    :class:`~isoms_otp.testing.FakeClock` in tests). ``past``/``future`` are the TOTP window
    (0-10 steps each; default one each way), ``look_ahead`` the HOTP window (0-100 counters past
    the next unused one; default 5), ``resync_window`` how far :meth:`resync` searches
    (1-10000; default 1000). Raises :class:`ConfigurationError` (``TypeError`` for wrong types).
    Every method may raise :class:`StoreError`: the store failed, and nothing was accepted.
    """

    store: Store
    _: KW_ONLY
    policy: ThrottlePolicy = _DEFAULT_POLICY
    clock: Callable[[], float] = time.time
    past: int = 1
    future: int = 1
    look_ahead: int = 5
    resync_window: int = 1000

    def __post_init__(self) -> None:
        if not isinstance(self.store, Store):
            raise TypeError(
                "store must implement the Store protocol (MemoryStore, SQLiteStore, RedisStore)"
            )
        if not isinstance(self.policy, ThrottlePolicy):
            raise TypeError(f"policy must be a ThrottlePolicy, not {type(self.policy).__name__}")
        if not callable(self.clock):
            raise TypeError("clock must be a callable returning Unix seconds, such as time.time")
        check_window(self.past, "past")
        check_window(self.future, "future")
        _check_range(self.look_ahead, "look_ahead", 0, MAX_LOOK_AHEAD)
        _check_range(self.resync_window, "resync_window", 1, MAX_RESYNC_WINDOW)

    def _now(self) -> float:
        now = self.clock()
        if type(now) is not float and type(now) is not int:
            raise TypeError(f"clock must return Unix seconds, not {type(now).__name__}")
        if not 0 <= now <= MAX_CLOCK:
            # Past 2**53 floats lose whole seconds and stores' float arithmetic overflows;
            # a huge int's repr could be thousands of digits, so it is not printed.
            got = "a number beyond 2**64" if abs(now) > 2**64 else repr(now)
            raise ConfigurationError(
                f"clock returned {got}; it must be Unix seconds from 0 to 2**53"
            )
        return now

    def _verdict(self, reason: Reason, retry_after: float | None, match: Match | None) -> Verdict:
        if reason in {"accepted", "replayed"}:
            return Verdict(reason=reason, match=match)
        if reason == "throttled":
            return Verdict(reason=reason, retry_after=retry_after)
        return _PLAIN[reason]

    def _next_counter(self, user: str) -> int:
        # A plain read: settle re-checks the mark atomically, so a stale read can make a code
        # fail, never make a used counter match again.
        mark = self.store.mark(user, "hotp")
        return 0 if mark is None else mark + 1

    def verify(self, user: str, otp: TOTP | HOTP, code: str) -> Verdict:
        """Verify ``code`` for ``user`` against ``otp`` and settle it in the store atomically.

        TOTP: a code is accepted if it matches a step in the window and that step starts later
        than the user's last accepted one. HOTP: the window runs ``look_ahead`` counters past the
        next unused counter; a match uses up every counter up to it. Wrong, malformed and replayed
        codes count as failures for the :class:`ThrottlePolicy`; a throttled user is refused
        before the code is looked at. ``user`` is a non-empty str of at most 256 characters,
        without control characters or lone surrogates (``ConfigurationError``); ``code`` must
        be a str (``TypeError`` otherwise).
        """
        _check_user(user)
        if not isinstance(otp, (TOTP, HOTP)):
            raise TypeError(f"otp must be a TOTP or HOTP, not {type(otp).__name__}")
        now = self._now()
        wanted = normalize_code(code, otp.digits)
        match: Match | None = None
        kind: Kind
        if isinstance(otp, TOTP):
            kind = "totp"
            if wanted is not None:
                match = otp.verify(wanted, at=now, past=self.past, future=self.future)
            # The TOTP mark is the Unix time the step starts, not the step number, so that a
            # re-enrolment with another period or t0 neither locks the user out nor reopens codes.
            start = None if match is None else otp.t0 + match.step * otp.period
            keep_until = 0 if start is None else start + (MAX_TOTP_WINDOW + 1) * otp.period
        else:
            kind = "hotp"
            counter = self._next_counter(user)
            if wanted is not None and counter <= MAX_COUNTER:
                match = otp.verify(wanted, counter=counter, look_ahead=self.look_ahead)
            start = None if match is None else match.step
            keep_until = 0
        outcome = self.store.settle(
            user,
            now=now,
            kind=kind,
            step=start,
            failure="invalid" if wanted is not None else "malformed",
            keep_until=keep_until,
            policy=self.policy,
        )
        return self._verdict(outcome.reason, outcome.retry_after, match)

    def confirm(self, user: str, otp: TOTP | HOTP, code: str) -> Verdict:
        """Verify the code that confirms a new (pending) secret; exactly :meth:`verify`.

        The confirmation code is claimed like any login code, so it can never be reused as the
        first login code, and the user's replay mark survives the re-enrolment: codes already
        used stay used. Save the new secret only when the verdict is ``ok``. For HOTP, enrol the
        token at :meth:`next_counter`, or its first codes lie below the stored counter.
        """
        return self.verify(user, otp, code)

    def resync(self, user: str, otp: HOTP, code1: str, code2: str) -> Verdict:
        """Resynchronise an HOTP token whose counter ran far ahead (RFC 4226 section 7.4).

        ``code1`` and ``code2`` must be two consecutive codes from the token. The search runs
        ``resync_window`` counters past the next unused counter and does the same work whatever
        it finds; on success both counters are used up (``match.step`` is the second). It is
        one attempt for the throttle: a failure counts like a wrong code. ``TypeError`` for a
        TOTP (a clock needs no resynchronisation) or non-``str`` codes.
        """
        _check_user(user)
        if not isinstance(otp, HOTP):
            raise TypeError(f"resync needs an HOTP, not {type(otp).__name__}")
        now = self._now()
        first = normalize_code(code1, otp.digits)
        second = normalize_code(code2, otp.digits)
        counter = self._next_counter(user)
        found = -1
        if first is not None and second is not None and counter < MAX_COUNTER:
            last = min(counter + self.resync_window, MAX_COUNTER)
            codes = [otp.generate(value) for value in range(counter, last + 1)]
            for offset in range(len(codes) - 1):
                # `&` rather than `and`: both comparisons run for every pair (uniform work).
                if compare_digest(codes[offset], first) & compare_digest(codes[offset + 1], second):
                    found = counter + offset + 1
        match = None if found < 0 else Match(step=found, drift=found - counter)
        outcome = self.store.settle(
            user,
            now=now,
            kind="hotp",
            step=None if match is None else found,
            failure="invalid" if first is not None and second is not None else "malformed",
            keep_until=0,
            policy=self.policy,
        )
        return self._verdict(outcome.reason, outcome.retry_after, match)

    def next_counter(self, user: str) -> int:
        """Return ``user``'s next unused HOTP counter: the ``counter`` for a (re-)enrolment URI."""
        _check_user(user)
        return self._next_counter(user)

    def retry_after(self, user: str) -> float | None:
        """Return the seconds ``user`` must still wait before a code is looked at, or ``None``.

        Read-only: nothing is counted or changed. Check it before an action that is no code
        check, such as sending a text message, so a throttled user gets nothing either.
        """
        _check_user(user)
        now = self._now()
        blocked = self.store.blocked_until(user)
        return blocked - now if blocked > now else None

    def reset(self, user: str) -> None:
        """Unlock ``user``: clear the failure count and any back-off or lock (an admin action).

        Replay marks stay, so no used code becomes valid again. Call it only after checking the
        person's identity another way; otherwise it hands an attacker a fresh set of guesses.
        """
        _check_user(user)
        self.store.reset(user, now=self._now())

    def prune(self) -> int:
        """Drop state that no longer matters (run it from a periodic job); return how many users.

        SQLite and memory stores need this to stay small; Redis expires keys by itself.
        """
        return self.store.prune(self._now())


def _check_user(user: object) -> None:
    if type(user) is not str:
        raise TypeError(f"user must be a str, not {type(user).__name__}")
    if not 0 < len(user) <= MAX_USER_LENGTH:
        raise ConfigurationError(
            f"user must be 1 to {MAX_USER_LENGTH} characters (got {len(user)}); "
            "use a stable account id"
        )
    # A lone surrogate cannot be encoded for SQLite or Redis: it would surface as a StoreError,
    # which looks like an outage. Control characters in a key end up in logs and admin tools.
    bad = _BAD_USER_CHARACTER.search(user)
    if bad is not None:
        what = "a lone surrogate" if bad.group() >= "\ud800" else "a control character"
        raise ConfigurationError(
            f"user contains {what} at position {bad.start()}; use a stable account id "
            "(printable text)"
        )
