"""The verification service: single use, throttling and fail-closed stores, per user."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from hmac import compare_digest
from typing import Final

from ._code import normalize_code
from ._hotp import HOTP
from ._limits import MAX_COUNTER, MAX_LOOK_AHEAD, MAX_TOTP_WINDOW, shown
from ._match import Match
from ._totp import TOTP, check_window
from .exceptions import ConfigurationError
from .stores._base import Attempt, Kind, Reason, Settlement, Store, blocked_until
from .throttle import ThrottlePolicy

__all__ = [
    "MAX_CLOCK",
    "MAX_CREDENTIALS",
    "MAX_RESYNC_WINDOW",
    "MAX_USER_LENGTH",
    "Credentials",
    "Verdict",
    "Verifier",
    "credential_id",
]

#: The longest user key a store will track (characters). Usernames and e-mail addresses fit.
MAX_USER_LENGTH: Final = 256
#: The latest time a clock may return (Unix seconds, about 285 million years from 1970): every
#: second up to it is exact as a float, and stores can add lock durations to it safely.
MAX_CLOCK: Final = 2**53
#: The widest HOTP resynchronisation search (RFC 4226 section 7.4 asks for a bound).
MAX_RESYNC_WINDOW: Final = 10_000
#: The most credentials one ``verify`` checks (each one adds to the odds of a guess).
MAX_CREDENTIALS: Final = 16

#: C0 and C1 control characters (DEL included) and lone surrogates.
_BAD_USER_CHARACTER: Final = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_REASONS: Final = frozenset({"accepted", "invalid", "malformed", "replayed", "throttled"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """The outcome of one attempt; ``ok`` is true only for ``reason == "accepted"``.

    ``reason`` is ``"accepted"``, ``"invalid"`` (no match, or a first-factor failure recorded),
    ``"malformed"`` (not a code at all), ``"replayed"`` (it matched a step, counter or recovery
    code already used) or ``"throttled"`` (refused unexamined: the user or this source is
    backing off or locked; ``retry_after`` says for how many seconds, ``math.inf`` when only an
    admin ``reset`` unlocks). ``match`` is the :class:`Match` for ``"accepted"`` and
    ``"replayed"``, else ``None``. ``failures`` is the count of the budget the attempt spent
    after the decision (the ``(user, source)`` pair's for :meth:`Verifier.record_failure`, else
    the user's) and ``locked`` is true exactly when this attempt started a lock. A ``Verdict``
    is truthy exactly when ``ok``. Show users one message for every refusal except
    ``"throttled"``, and log the reason.
    """

    reason: Reason
    match: Match | None = None
    retry_after: float | None = None
    failures: int = 0
    locked: bool = False
    ok: bool = field(init=False)

    def __post_init__(self) -> None:
        if self.reason not in _REASONS:
            raise ConfigurationError(f"reason must be one of {sorted(_REASONS)}")
        object.__setattr__(self, "ok", self.reason == "accepted")

    def __bool__(self) -> bool:
        return self.ok


_DEFAULT_POLICY: Final = ThrottlePolicy()
#: What a credential id is an HMAC of, keyed by the secret: one-way, and never the secret.
_CREDENTIAL_LABEL: Final = b"isoms-otp credential id v1"

OTP = TOTP | HOTP
#: One credential, or several of one person (a phone and a hardware token): ``verify`` accepts
#: a code from any of them at the cost of one attempt.
Credentials = OTP | Sequence[OTP]


def credential_id(otp: OTP) -> str:
    """Return the id a store keeps ``otp``'s replay marks under: one-way, derived from the key.

    An HMAC-SHA256 keyed by the secret over a fixed label, truncated to 128 bits as hex: the
    same secret always has the same id (re-enrolling it keeps its marks), another secret a
    different one (a new phone starts clean), and the id reveals nothing about the secret.
    """
    return hmac.new(otp.secret, _CREDENTIAL_LABEL, hashlib.sha256).hexdigest()[:32]


def _check_range(value: object, name: str, low: int, high: int) -> int:
    if type(value) is not int:
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise ConfigurationError(f"{name} must be from {low} to {high} (got {shown(value)})")
    return value


def _credentials(otp: object) -> tuple[OTP, ...]:
    if isinstance(otp, (TOTP, HOTP)):
        return (otp,)
    if isinstance(otp, (str, bytes)) or not isinstance(otp, Sequence):
        raise TypeError(
            f"otp must be a TOTP or HOTP or a sequence of them, not {type(otp).__name__}"
        )
    found = tuple(otp)
    if not found:
        raise ConfigurationError("otp is an empty sequence; pass at least one TOTP or HOTP")
    if len(found) > MAX_CREDENTIALS:
        raise ConfigurationError(
            f"otp holds {len(found)} credentials; at most {MAX_CREDENTIALS} per user"
        )
    for one in found:
        if not isinstance(one, (TOTP, HOTP)):
            raise TypeError(f"otp must hold TOTP or HOTP objects, not {type(one).__name__}")
    return found


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

    Every attempt may name a ``source`` (the client address, or any key the application
    chooses; ``None``: unknown): wrong passwords are throttled per ``(user, source)`` and never
    lock the person, while failed codes share one budget per user across all sources.
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

    @staticmethod
    def _verdict(outcome: Settlement, match: Match | None) -> Verdict:
        reason = outcome.reason
        return Verdict(
            reason=reason,
            match=match if reason in {"accepted", "replayed"} else None,
            retry_after=outcome.retry_after if reason == "throttled" else None,
            failures=outcome.failures,
            locked=outcome.locked,
        )

    def _counter(self, user: str, credential: str) -> int:
        # A plain read: settle re-checks the mark atomically, so a stale read can make a code
        # fail, never make a used counter match again.
        mark = self.store.snapshot(user, credential=credential).mark.hotp_counter
        return 0 if mark is None else mark + 1

    def verify(
        self, user: str, otp: Credentials, code: str, *, source: str | None = None
    ) -> Verdict:
        """Verify ``code`` for ``user`` against ``otp`` and settle it in the store atomically.

        ``otp`` is one TOTP/HOTP or a sequence of the user's credentials (at most 16): every one
        is checked (uniform work) at the cost of one attempt, and ``match.credential`` says
        which matched (its index; 0 for a single OTP). TOTP: a code is accepted if it matches a
        step in the window and that step starts later than the credential's last accepted one.
        HOTP: the window runs ``look_ahead`` counters past the next unused counter; a match
        uses up every counter up to it. Wrong, malformed and replayed codes spend the user's
        budget (:class:`ThrottlePolicy`); a throttled user or source is refused before the code
        is looked at. ``user`` and ``source`` are non-empty str of at most 256 characters,
        without control characters or lone surrogates (``ConfigurationError``); ``code`` must
        be a str (``TypeError`` otherwise).
        """
        _check_user(user)
        where = _check_source(source)
        credentials = _credentials(otp)
        now = self._now()
        return self._settle_code(user, where, credentials, code, now)

    def _settle_code(
        self, user: str, source: str, credentials: tuple[OTP, ...], code: str, now: float
    ) -> Verdict:
        found: Match | None = None
        kind: Kind = "totp"
        credential = ""
        claim: int | None = None
        keep_until = 0.0
        shaped = False
        for index, otp in enumerate(credentials):
            wanted = normalize_code(code, otp.digits)
            if isinstance(otp, TOTP):
                if wanted is None:
                    continue
                shaped = True
                match = otp.verify(wanted, at=now, past=self.past, future=self.future)
                if match is not None and found is None:
                    found = Match(step=match.step, drift=match.drift, credential=index)
                    kind = "totp"
                    credential = credential_id(otp)
                    # The TOTP mark is the Unix time the step starts, not the step number, so
                    # a re-enrolment with another period or t0 neither locks out nor reopens.
                    claim = otp.t0 + match.step * otp.period
                    keep_until = float(claim + (MAX_TOTP_WINDOW + 1) * otp.period)
            else:
                ident = credential_id(otp)
                if wanted is None:
                    continue
                shaped = True
                counter = self._counter(user, ident)
                if counter > MAX_COUNTER:
                    continue
                match = otp.verify(wanted, counter=counter, look_ahead=self.look_ahead)
                if match is not None and found is None:
                    found = Match(step=match.step, drift=match.drift, credential=index)
                    kind = "hotp"
                    credential = ident
                    claim = match.step
                    keep_until = 0.0
        outcome = self.store.settle(
            Attempt(
                user=user,
                source=source,
                now=now,
                kind=kind,
                credential=credential,
                claim=claim,
                failure="invalid" if shaped else "malformed",
                keep_until=keep_until,
                policy=self.policy,
            )
        )
        return self._verdict(outcome, found)

    def confirm(
        self, user: str, otp: TOTP | HOTP, code: str, *, source: str | None = None
    ) -> Verdict:
        """Verify the code that confirms a new (pending) secret; exactly :meth:`verify`.

        The confirmation code is claimed like any login code, so it can never be reused as the
        first login code. Marks belong to the secret: a new secret starts with none (its code
        is accepted even in the step in which the old secret was used), the same secret
        re-enrolled keeps its marks. Save the new secret only when the verdict is ``ok``, and
        retire the old one then.
        """
        if not isinstance(otp, (TOTP, HOTP)):
            raise TypeError(f"otp must be a TOTP or HOTP, not {type(otp).__name__}")
        return self.verify(user, otp, code, source=source)

    def record_failure(self, user: str, *, source: str | None = None) -> Verdict:
        """Count a first-factor failure (a wrong password) for ``user`` from ``source``.

        It spends the ``(user, source)`` pair's budget: back-off, then a lock of that pair after
        ``policy.source_max_failures`` failures; the person is never locked by it, so strangers
        who know a username cannot lock its owner out (give each client its own ``source``).
        Returns ``"invalid"`` when counted, ``"throttled"`` (nothing counted) while the pair or
        the user is waiting or locked: then refuse the sign-in whatever the password was.
        """
        _check_user(user)
        where = _check_source(source)
        now = self._now()
        outcome = self.store.settle(
            Attempt(user=user, source=where, now=now, kind="first_factor", policy=self.policy)
        )
        return self._verdict(outcome, None)

    def resync(
        self, user: str, otp: HOTP, code1: str, code2: str, *, source: str | None = None
    ) -> Verdict:
        """Resynchronise an HOTP token whose counter ran far ahead (RFC 4226 section 7.4).

        ``code1`` and ``code2`` must be two consecutive codes from the token. The search runs
        ``resync_window`` counters past the next unused counter and does the same work whatever
        it finds; on success both counters are used up (``match.step`` is the second). It is
        one attempt for the throttle: a failure counts like a wrong code. ``TypeError`` for a
        TOTP (a clock needs no resynchronisation) or non-``str`` codes.
        """
        _check_user(user)
        where = _check_source(source)
        if not isinstance(otp, HOTP):
            raise TypeError(f"resync needs an HOTP, not {type(otp).__name__}")
        now = self._now()
        first = normalize_code(code1, otp.digits)
        second = normalize_code(code2, otp.digits)
        ident = credential_id(otp)
        counter = self._counter(user, ident)
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
            Attempt(
                user=user,
                source=where,
                now=now,
                kind="hotp",
                credential=ident if match is not None else "",
                claim=None if match is None else found,
                failure="invalid" if first is not None and second is not None else "malformed",
                policy=self.policy,
            )
        )
        return self._verdict(outcome, match)

    def next_counter(self, user: str, otp: HOTP) -> int:
        """Return the next unused counter of ``user``'s HOTP token ``otp`` (0 for a new token)."""
        _check_user(user)
        if not isinstance(otp, HOTP):
            raise TypeError(f"next_counter needs an HOTP, not {type(otp).__name__}")
        return self._counter(user, credential_id(otp))

    def retry_after(self, user: str, *, source: str | None = None) -> float | None:
        """Return the seconds ``user`` (from ``source``) must still wait, or ``None``.

        Read-only: nothing is counted or changed. Check it before an action that is no code
        check, such as sending a text message, so a throttled user gets nothing either.
        ``math.inf`` means locked until an admin :meth:`reset`.
        """
        _check_user(user)
        where = _check_source(source)
        now = self._now()
        until = blocked_until(self.store.snapshot(user, source=where), now, self.policy)
        return until - now if until > now else None

    def reset(self, user: str) -> None:
        """Unlock ``user``: clear the code failures and every source's back-off or lock.

        An admin action. Replay marks stay, so no used code becomes valid again. Call it only
        after checking the person's identity another way; otherwise it hands an attacker a
        fresh set of guesses.
        """
        _check_user(user)
        self.store.reset(user, now=self._now())

    def prune(self) -> int:
        """Drop state that no longer matters (run it from a periodic job); return how many.

        SQLite and memory stores need this to stay small; Redis expires keys by itself.
        """
        return self.store.prune(self._now())


def _check_source(source: object) -> str:
    if source is None:
        return ""
    if type(source) is not str:
        raise TypeError(f"source must be a str or None, not {type(source).__name__}")
    _check_key(source, "source", "the client address or another stable key")
    return source


def _check_user(user: object) -> None:
    if type(user) is not str:
        raise TypeError(f"user must be a str, not {type(user).__name__}")
    _check_key(user, "user", "a stable account id")


def _check_key(user: str, name: str, advice: str) -> None:
    if not 0 < len(user) <= MAX_USER_LENGTH:
        raise ConfigurationError(
            f"{name} must be 1 to {MAX_USER_LENGTH} characters (got {len(user)}); use {advice}"
        )
    # A lone surrogate cannot be encoded for SQLite or Redis: it would surface as a StoreError,
    # which looks like an outage. Control characters in a key end up in logs and admin tools.
    bad = _BAD_USER_CHARACTER.search(user)
    if bad is not None:
        what = "a lone surrogate" if bad.group() >= "\ud800" else "a control character"
        raise ConfigurationError(
            f"{name} contains {what} at position {bad.start()}; use {advice} (printable text)"
        )
