"""The verification service: single use, throttling and fail-closed stores, per user."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from hmac import compare_digest
from time import perf_counter
from typing import Final

from ._code import normalize_code
from ._hotp import HOTP
from ._limits import (
    MAX_CLOCK,
    MAX_COUNTER,
    MAX_CREDENTIALS,
    MAX_RESYNC_WINDOW,
    MAX_TOTP_WINDOW,
    MAX_USER_LENGTH,
    check_look_ahead,
    integer_in,
)
from ._match import Match
from ._totp import TOTP, check_window
from .events import Action, Event, EventHook, _Hook, _new_event
from .exceptions import ConfigurationError, StoreError
from .recovery import DEFAULT_COUNT, RecoveryCodes, normalize_recovery_code
from .stores._base import Attempt, Kind, Reason, Settlement, Store, blocked_until
from .throttle import ThrottlePolicy

__all__ = [
    "MAX_CLOCK",
    "MAX_CREDENTIALS",
    "MAX_RESYNC_WINDOW",
    "MAX_USER_LENGTH",
    "Credentials",
    "IssuedCodes",
    "Verdict",
    "Verifier",
    "credential_id",
]

# MAX_USER_LENGTH, MAX_CLOCK, MAX_RESYNC_WINDOW and MAX_CREDENTIALS are defined (and
# documented) in _limits with every other bound, and re-exported here as before.

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


@dataclass(frozen=True, slots=True, kw_only=True)
class IssuedCodes:
    """What :meth:`Verifier.activate` and :meth:`Verifier.regenerate` decided and issued.

    ``verdict`` is the verdict of the code that authorised the change. Only when it is ``ok``
    are ``codes`` (the new recovery codes: show them once, never store them) and ``recovery``
    (the :class:`RecoveryCodes` to store, replacing any earlier set) set; otherwise ``codes``
    is empty and ``recovery`` is ``None``. ``ok`` is ``verdict.ok``, and the object is truthy
    exactly then; ``repr`` never shows the codes.
    """

    verdict: Verdict
    codes: tuple[str, ...] = field(default=(), repr=False)
    recovery: RecoveryCodes | None = None

    @property
    def ok(self) -> bool:
        """Whether the change was authorised (and codes were issued)."""
        return self.verdict.ok

    def __bool__(self) -> bool:
        return self.verdict.ok


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


_MATCHED: Final = frozenset({"accepted", "replayed"})


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

    ``on_event`` (default ``None``) is called with one :class:`~isoms_otp.events.Event` per call
    of ``verify``, ``confirm``, ``resync``, ``record_failure``, ``reset`` and ``prune``, after
    the store decided, in the calling thread; it reports the store's own decision (and a
    ``"error"`` event before a ``StoreError`` propagates). Its exceptions are caught and logged
    once per type on the ``isoms_otp.verifier`` logger: a failing hook never changes a verdict
    or the stored state. Keep it quick (it delays the answer), or hand events to a queue.
    """

    store: Store
    _: KW_ONLY
    policy: ThrottlePolicy = _DEFAULT_POLICY
    clock: Callable[[], float] = time.time
    past: int = 1
    future: int = 1
    look_ahead: int = 5
    resync_window: int = 1000
    on_event: EventHook | None = None
    _hook: _Hook | None = field(default=None, init=False, repr=False, compare=False)

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
        check_look_ahead(self.look_ahead)
        integer_in(self.resync_window, "resync_window", 1, MAX_RESYNC_WINDOW)
        if self.on_event is not None:
            if not callable(self.on_event):
                raise TypeError("on_event must be a callable taking one Event, or None")
            # Frozen: the wrapper that keeps the hook's errors in is set once, here.
            object.__setattr__(self, "_hook", _Hook(self.on_event))

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

    def _settle(self, action: Action, attempt: Attempt, match: Match | None) -> Verdict:
        """Settle ``attempt`` in the store and report it to the hook as ``action``.

        The one place a verifying method calls ``store.settle``: a new method (such as
        ``verify_recovery``, action ``"recovery"``) ends with ``return self._settle(...)``.
        """
        hook = self._hook
        if hook is None:
            return self._verdict(self.store.settle(attempt), match)
        started = perf_counter()
        try:
            outcome = self.store.settle(attempt)
        except StoreError:
            self._emit_error(hook, action, attempt, latency=_since(started))
            raise
        latency = perf_counter() - started
        verdict = self._verdict(outcome, match)
        reason = outcome.reason
        kind: Kind | None = None
        drift = credential = None
        if match is not None and reason in _MATCHED:
            kind, drift, credential = attempt.kind, match.drift, match.credential
        # _new_event() is Event(...) with these fields, filled without the frozen dataclass's
        # per-field object.__setattr__ (a tenth of a verification in memory otherwise).
        hook(
            _new_event(
                action,
                attempt.user,
                attempt.source or None,
                reason,
                outcome.failures,
                outcome.locked,
                outcome.retry_after if reason == "throttled" else None,
                kind,
                drift,
                credential,
                None,
                attempt.now,
                latency,
            )
        )
        return verdict

    @staticmethod
    def _emit_error(hook: _Hook, action: Action, attempt: Attempt, *, latency: float) -> None:
        """Hand the hook the event of a store call that raised."""
        hook(
            Event(
                action=action,
                user=attempt.user,
                source=attempt.source or None,
                reason="error",
                at=attempt.now,
                latency=latency,
            )
        )

    def _read_counter(
        self, action: Action, user: str, source: str, credential: str, now: float
    ) -> int:
        """Read the next HOTP counter for a verification; a store error is reported first."""
        started = perf_counter()
        try:
            return self._counter(user, credential)
        except StoreError:
            hook = self._hook
            if hook is not None:
                attempt = Attempt(
                    user=user, source=source, now=now, kind="hotp", policy=self.policy
                )
                self._emit_error(hook, action, attempt, latency=_since(started))
            raise

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
        return self._verify("verify", user, otp, code, source)

    def _verify(
        self, action: Action, user: str, otp: Credentials, code: str, source: str | None
    ) -> Verdict:
        _check_user(user)
        where = _check_source(source)
        credentials = _credentials(otp)
        now = self._now()
        return self._settle_code(action, user, where, credentials, code=code, now=now)

    def _settle_code(
        self,
        action: Action,
        user: str,
        source: str,
        credentials: tuple[OTP, ...],
        *,
        code: str,
        now: float,
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
                counter = self._read_counter(action, user, source, ident, now)
                if counter > MAX_COUNTER:
                    continue
                match = otp.verify(wanted, counter=counter, look_ahead=self.look_ahead)
                if match is not None and found is None:
                    found = Match(step=match.step, drift=match.drift, credential=index)
                    kind = "hotp"
                    credential = ident
                    claim = match.step
                    keep_until = 0.0
        attempt = Attempt(
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
        return self._settle(action, attempt, found)

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
        return self._verify("confirm", user, otp, code, source)

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
        attempt = Attempt(user=user, source=where, now=now, kind="first_factor", policy=self.policy)
        return self._settle("record_failure", attempt, None)

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
        counter = self._read_counter("verify", user, where, ident, now)
        found = -1
        if first is not None and second is not None and counter < MAX_COUNTER:
            last = min(counter + self.resync_window, MAX_COUNTER)
            codes = [otp.generate(value) for value in range(counter, last + 1)]
            for offset in range(len(codes) - 1):
                # `&` rather than `and`: both comparisons run for every pair (uniform work).
                if compare_digest(codes[offset], first) & compare_digest(codes[offset + 1], second):
                    found = counter + offset + 1
        match = None if found < 0 else Match(step=found, drift=found - counter)
        attempt = Attempt(
            user=user,
            source=where,
            now=now,
            kind="hotp",
            credential=ident if match is not None else "",
            claim=None if match is None else found,
            failure="invalid" if first is not None and second is not None else "malformed",
            policy=self.policy,
        )
        # A resync is a code check that spends the user's budget: reported as "verify".
        return self._settle("verify", attempt, match)

    def verify_recovery(
        self, user: str, codes: RecoveryCodes, code: str, *, source: str | None = None
    ) -> Verdict:
        """Verify a recovery ``code`` of ``user``'s set ``codes`` and settle it atomically.

        Each code of a set is accepted at most once, ever, however many processes try it at the
        same moment: ``"replayed"`` for a used one, ``"invalid"`` for a code not in the set,
        ``"malformed"`` for text that is no code (see :func:`normalize_recovery_code`). Every
        failure spends the same per-user budget as a wrong TOTP code, so recovery codes add no
        guesses; a throttled user is refused before the code is looked at. Uniform work: one
        hash, then a comparison with every code of the set. On ``"accepted"`` and
        ``"replayed"`` ``match.step`` is the index of the code in the set. The first code used
        from a new set makes the store forget the old set's used codes. ``user``/``source`` as
        for :meth:`verify`; ``TypeError`` for a non-``str`` code or ``codes`` that is not a
        :class:`RecoveryCodes`.
        """
        _check_user(user)
        where = _check_source(source)
        _check_codes(codes)
        now = self._now()
        return self._settle_recovery(user, where, codes, code, now)

    def _settle_recovery(
        self, user: str, source: str, codes: RecoveryCodes, code: str, now: float
    ) -> Verdict:
        wanted = normalize_recovery_code(code)
        index = None if wanted is None else codes.index(wanted)
        attempt = Attempt(
            user=user,
            source=source,
            now=now,
            kind="recovery",
            credential="" if index is None else codes.set_id,
            claim=index,
            failure="invalid" if wanted is not None else "malformed",
            policy=self.policy,
        )
        return self._settle(
            "recovery", attempt, None if index is None else Match(step=index, drift=0)
        )

    def recovery_remaining(self, user: str, codes: RecoveryCodes) -> int:
        """Return how many codes of ``user``'s set ``codes`` are not used yet (read-only).

        A set the store has no record of (a new set, or the store still holds an older set's
        record) has all its codes left. Prompt the person to regenerate when few remain.
        """
        _check_user(user)
        _check_codes(codes)
        recovery = self.store.snapshot(user).recovery
        if recovery.set_id != codes.set_id:
            return codes.count
        return codes.count - (recovery.used & ((1 << codes.count) - 1)).bit_count()

    def step_up(
        self,
        user: str,
        otp: Credentials,
        code: str,
        *,
        codes: RecoveryCodes | None = None,
        source: str | None = None,
    ) -> Verdict:
        """Check a fresh proof before a sensitive change: a current code or a recovery code.

        Deactivating the second factor, regenerating recovery codes and replacing the phone
        must each be authorised by this verdict in the same request. ``code`` may be a code of
        ``otp`` (as for :meth:`verify`) or, when ``codes`` is given, one of the recovery codes
        (as for :meth:`verify_recovery`, and used up by it); which one is told by its shape (a
        recovery code is 16 symbols, an OTP code 6-8 digits). It is one attempt against the
        user's budget either way. A code already used to sign in is ``"replayed"``: the person
        waits for the next one.
        """
        _check_user(user)
        where = _check_source(source)
        credentials = _credentials(otp)
        if codes is not None:
            _check_codes(codes)
        now = self._now()
        if codes is not None and normalize_recovery_code(code) is not None:
            return self._settle_recovery(user, where, codes, code, now)
        return self._settle_code("verify", user, where, credentials, code=code, now=now)

    def activate(
        self,
        user: str,
        pending: TOTP | HOTP,
        code: str,
        *,
        count: int = DEFAULT_COUNT,
        source: str | None = None,
    ) -> IssuedCodes:
        """Confirm the ``pending`` secret with its first ``code`` and issue recovery codes.

        :meth:`confirm`, then, only if it is ``ok``, a new set of ``count`` recovery codes
        (1 to 100; checked before the code is). Store the pending secret and
        ``result.recovery.to_string()`` together, in one write that also drops any old secret
        and old set, and show ``result.codes`` once. Replacing a phone is activating again
        after a :meth:`step_up`: the old secret keeps working until the new one is confirmed.
        """
        shown, recovery = RecoveryCodes.generate(count)
        verdict = self.confirm(user, pending, code, source=source)
        if not verdict.ok:
            return IssuedCodes(verdict=verdict)
        return IssuedCodes(verdict=verdict, codes=shown, recovery=recovery)

    def regenerate(
        self,
        user: str,
        otp: Credentials,
        code: str,
        *,
        codes: RecoveryCodes | None = None,
        count: int = DEFAULT_COUNT,
        source: str | None = None,
    ) -> IssuedCodes:
        """Issue a new set of recovery codes, authorised by a :meth:`step_up` with ``code``.

        Store ``result.recovery.to_string()`` in place of the old set only when the result is
        ``ok``: from then on no code of the old set matches, and the first code used from the
        new set makes the store forget the old one's state.
        """
        shown, recovery = RecoveryCodes.generate(count)
        verdict = self.step_up(user, otp, code, codes=codes, source=source)
        if not verdict.ok:
            return IssuedCodes(verdict=verdict)
        return IssuedCodes(verdict=verdict, codes=shown, recovery=recovery)

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
        now = self._now()
        hook = self._hook
        if hook is None:
            self.store.reset(user, now=now)
            return
        started = perf_counter()
        try:
            self.store.reset(user, now=now)
        except StoreError:
            hook(Event(action="reset", user=user, reason="error", at=now, latency=_since(started)))
            raise
        hook(Event(action="reset", user=user, reason="reset", at=now, latency=_since(started)))

    def prune(self) -> int:
        """Drop state that no longer matters (run it from a periodic job); return how many.

        SQLite and memory stores need this to stay small; Redis expires keys by itself.
        """
        now = self._now()
        hook = self._hook
        if hook is None:
            return self.store.prune(now)
        started = perf_counter()
        try:
            removed = self.store.prune(now)
        except StoreError:
            hook(Event(action="prune", user=None, reason="error", at=now, latency=_since(started)))
            raise
        hook(
            Event(
                action="prune",
                user=None,
                reason="pruned",
                removed=removed,
                at=now,
                latency=_since(started),
            )
        )
        return removed


def _since(started: float) -> float:
    return perf_counter() - started


def _check_codes(codes: object) -> None:
    if not isinstance(codes, RecoveryCodes):
        raise TypeError(
            f"codes must be RecoveryCodes (RecoveryCodes.from_string), not {type(codes).__name__}"
        )


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
