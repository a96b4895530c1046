"""Verifier events: one per call, from the store's decision; the logging sink; the drift monitor."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import threading
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import isoms_otp
from isoms_otp import (
    HOTP,
    TOTP,
    ConfigurationError,
    Event,
    MemoryStore,
    StoreError,
    ThrottlePolicy,
    Verifier,
    encode_secret,
)
from isoms_otp.events import DriftMonitor, LoggingSink
from isoms_otp.stores import Attempt, Settlement, Snapshot
from isoms_otp.testing import FakeClock

SECRET = bytes(range(20))
OTHER_SECRET = bytes(range(100, 120))
PERIOD = 30
#: Ten seconds into a step, so that +-1 step stays inside the same numbers.
START = PERIOD * 56_666_667 + 10
LENIENT = ThrottlePolicy(max_failures=100, base_delay=0)


def wrong_code(otp: TOTP, at: float) -> str:
    """Return a six-digit code that matches no step in a +-2 window at ``at``."""
    return next(c for c in ("000000", "111111", "222222") if otp.verify(c, at=at, past=2) is None)


class Recorder:
    """An on_event hook that keeps every event."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    @property
    def last(self) -> Event:
        assert self.events
        return self.events[-1]


class FailingStore(MemoryStore):
    """A memory store whose operations raise StoreError while ``failing`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.failing = False

    def settle(self, attempt: Attempt) -> Settlement:
        if self.failing:
            raise StoreError("the store is down")
        return super().settle(attempt)

    def snapshot(self, user: str, *, source: str = "", credential: str = "") -> Snapshot:
        if self.failing:
            raise StoreError("the store is down")
        return super().snapshot(user, source=source, credential=credential)

    def reset(self, user: str, *, now: float) -> None:
        if self.failing:
            raise StoreError("the store is down")
        super().reset(user, now=now)

    def prune(self, now: float) -> int:
        if self.failing:
            raise StoreError("the store is down")
        return super().prune(now)


def make(
    policy: ThrottlePolicy = LENIENT, store: MemoryStore | None = None
) -> tuple[Verifier, Recorder, FakeClock, MemoryStore]:
    clock = FakeClock(START)
    recorder = Recorder()
    used = MemoryStore() if store is None else store
    return Verifier(used, policy=policy, clock=clock, on_event=recorder), recorder, clock, used


# ---- the Event value -------------------------------------------------------------------------


def test_event_is_reexported_frozen_and_slotted() -> None:
    """Event is importable from isoms_otp, cannot be changed and has no __dict__."""
    assert "Event" in isoms_otp.__all__
    event = Event(action="prune", user=None, reason="pruned", removed=3, at=1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.reason = "error"  # type: ignore[misc]
    assert not hasattr(event, "__dict__")
    assert (None, 0, False, None, None, None, None, 0.0) == (
        event.source,
        event.failures,
        event.locked,
        event.retry_after,
        event.kind,
        event.drift,
        event.credential,
        event.latency,
    )


def test_event_never_holds_a_secret_or_a_code() -> None:
    """No field or repr of an event carries the secret, its base32 form, the code or the id."""
    verifier, recorder, clock, store = make()
    otp = TOTP(SECRET)
    code = otp.generate(clock())
    verifier.verify("alice", otp, code, source="10.0.0.1")
    verifier.verify("alice", otp, code, source="10.0.0.1")
    credential = next(iter(store.marks("alice")))
    for event in recorder.events:
        text = repr(event) + str(dataclasses.asdict(event))
        for needle in (code, encode_secret(SECRET), SECRET.hex(), credential):
            assert needle not in text


# ---- one event per call, from the store's settlement ------------------------------------------


def test_accepted_code_event() -> None:
    """An accepted code: reason, drift, credential and kind, the Verifier's clock, a latency."""
    verifier, recorder, clock, _ = make()
    otp = TOTP(SECRET)
    verdict = verifier.verify("alice", otp, otp.generate(clock()))
    assert verdict.ok
    assert 1 == len(recorder.events)
    event = recorder.last
    assert "verify" == event.action
    assert "alice" == event.user
    assert event.source is None
    assert "accepted" == event.reason
    assert (0, False, None) == (event.failures, event.locked, event.retry_after)
    assert ("totp", 0, 0) == (event.kind, event.drift, event.credential)
    assert event.removed is None
    assert clock() == event.at
    assert event.latency >= 0


def test_drift_credential_and_source() -> None:
    """A code of the previous step of the second credential: drift -1, credential 1, source."""
    verifier, recorder, clock, _ = make()
    phone, token = TOTP(OTHER_SECRET), TOTP(SECRET)
    verifier.verify("alice", [phone, token], token.generate(clock() - PERIOD), source="10.0.0.9")
    event = recorder.last
    assert ("accepted", -1, 1, "10.0.0.9") == (
        event.reason,
        event.drift,
        event.credential,
        event.source,
    )


def test_replayed_invalid_and_malformed_events() -> None:
    """Refusals carry the failure count after the decision; only a replay names the match."""
    verifier, recorder, clock, _ = make()
    otp = TOTP(SECRET)
    code = otp.generate(clock())
    verifier.verify("alice", otp, code)
    verifier.verify("alice", otp, code)
    verifier.verify("alice", otp, wrong_code(otp, clock()))
    verifier.verify("alice", otp, "12ab")
    replayed, invalid, malformed = recorder.events[1:]
    assert ("replayed", 1, "totp", 0, 0) == (
        replayed.reason,
        replayed.failures,
        replayed.kind,
        replayed.drift,
        replayed.credential,
    )
    assert ("invalid", 2, None, None, None) == (
        invalid.reason,
        invalid.failures,
        invalid.kind,
        invalid.drift,
        invalid.credential,
    )
    assert ("malformed", 3, None) == (malformed.reason, malformed.failures, malformed.drift)


def test_locked_is_true_exactly_on_the_event_that_started_the_lock() -> None:
    """Three failures under max_failures=3: the third starts the lock, the fourth is throttled."""
    verifier, recorder, clock, _ = make(ThrottlePolicy(max_failures=3, base_delay=0))
    otp = TOTP(SECRET)
    for _ in range(4):
        verifier.verify("alice", otp, wrong_code(otp, clock()))
    assert [False, False, True, False] == [event.locked for event in recorder.events]
    assert [1, 2, 3, 3] == [event.failures for event in recorder.events]
    throttled = recorder.last
    assert "throttled" == throttled.reason
    assert throttled.retry_after is not None
    assert throttled.retry_after > 0
    assert all(event.retry_after is None for event in recorder.events[:3])


def test_confirm_reports_confirm() -> None:
    """confirm is its own action."""
    verifier, recorder, clock, _ = make()
    otp = TOTP(SECRET)
    assert verifier.confirm("alice", otp, otp.generate(clock()))
    assert ("confirm", "accepted") == (recorder.last.action, recorder.last.reason)


def test_record_failure_reports_the_pair_budget() -> None:
    """record_failure: action, source, the pair's count, and the lock of the pair."""
    policy = ThrottlePolicy(base_delay=0, source_max_failures=2)
    verifier, recorder, _, _ = make(policy)
    for _ in range(3):
        verifier.record_failure("alice", source="10.0.0.1")
    assert ["record_failure"] * 3 == [event.action for event in recorder.events]
    assert ["invalid", "invalid", "throttled"] == [event.reason for event in recorder.events]
    assert [1, 2, 2] == [event.failures for event in recorder.events]
    assert [False, True, False] == [event.locked for event in recorder.events]
    assert {"10.0.0.1"} == {event.source for event in recorder.events}


def test_hotp_and_resync_report_verify_with_kind_hotp() -> None:
    """HOTP codes carry the look-ahead drift; a resync is reported as a "verify"."""
    verifier, recorder, _, _ = make()
    otp = HOTP(SECRET)
    verifier.verify("alice", otp, otp.generate(2))
    assert ("verify", "hotp", 2) == (recorder.last.action, recorder.last.kind, recorder.last.drift)
    assert verifier.resync("alice", otp, otp.generate(50), otp.generate(51))
    assert ("verify", "accepted", "hotp") == (
        recorder.last.action,
        recorder.last.reason,
        recorder.last.kind,
    )
    assert 2 == len(recorder.events)


def test_reset_and_prune_events() -> None:
    """reset reports "reset" for its user; prune reports "pruned", no user, and how many."""
    verifier, recorder, clock, _ = make()
    otp = TOTP(SECRET)
    verifier.verify("alice", otp, wrong_code(otp, clock()))
    verifier.reset("alice")
    assert ("reset", "alice", "reset", 0) == (
        recorder.last.action,
        recorder.last.user,
        recorder.last.reason,
        recorder.last.failures,
    )
    verifier.verify("bob", otp, otp.generate(clock()))
    clock.advance(86_400)
    removed = verifier.prune()
    assert 1 == removed
    assert ("prune", None, "pruned", 1) == (
        recorder.last.action,
        recorder.last.user,
        recorder.last.reason,
        recorder.last.removed,
    )
    assert 4 == len(recorder.events)


@pytest.mark.parametrize(
    ("action", "call"),
    [
        ("verify", lambda v: v.verify("alice", TOTP(SECRET), "123456", source="s")),
        ("confirm", lambda v: v.confirm("alice", TOTP(SECRET), "123456", source="s")),
        ("record_failure", lambda v: v.record_failure("alice", source="s")),
        ("verify", lambda v: v.verify("alice", HOTP(SECRET), "123456", source="s")),
        ("verify", lambda v: v.resync("alice", HOTP(SECRET), "123456", "654321", source="s")),
        ("reset", lambda v: v.reset("alice")),
        ("prune", lambda v: v.prune()),
    ],
)
def test_store_error_is_reported_then_raised(
    action: str, call: Callable[[Verifier], object]
) -> None:
    """A failing store gives one "error" event, then its StoreError reaches the caller."""
    store = FailingStore()
    verifier, recorder, clock, _ = make(store=store)
    store.failing = True
    with pytest.raises(StoreError, match="down"):
        call(verifier)
    assert 1 == len(recorder.events)
    event = recorder.last
    assert (action, "error", 0, False) == (event.action, event.reason, event.failures, event.locked)
    assert clock() == event.at
    assert event.latency >= 0
    assert event.source == (None if action in {"reset", "prune"} else "s")


def test_store_error_wins_over_a_raising_hook(caplog: pytest.LogCaptureFixture) -> None:
    """A hook that raises on the "error" event: the caller still gets the StoreError."""

    def hook(event: Event) -> None:
        raise RuntimeError(event.reason)

    store = FailingStore()
    store.failing = True
    verifier = Verifier(store, clock=FakeClock(START), on_event=hook)
    with caplog.at_level(logging.ERROR, logger="isoms_otp.verifier"), pytest.raises(StoreError):
        verifier.verify("alice", HOTP(SECRET), "123456")
    assert 1 == len([r for r in caplog.records if r.name == "isoms_otp.verifier"])


def test_hotp_read_error_without_a_hook_still_raises() -> None:
    """No hook: the failed counter read is a StoreError, as before."""
    store = FailingStore()
    store.failing = True
    with pytest.raises(StoreError):
        Verifier(store).verify("alice", HOTP(SECRET), "123456")


def test_hook_runs_after_the_store_decided() -> None:
    """Inside the hook the store already holds the decision the event reports."""
    store = MemoryStore()
    seen: list[Snapshot] = []
    otp = TOTP(SECRET)

    def hook(event: Event) -> None:
        assert event.user is not None
        seen.append(store.snapshot(event.user))

    clock = FakeClock(START)
    verifier = Verifier(store, policy=LENIENT, clock=clock, on_event=hook)
    verifier.verify("alice", otp, wrong_code(otp, clock()))
    assert 1 == seen[0].budget.failures


def test_a_raising_hook_changes_nothing_and_is_logged_once_per_type(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Verdicts and state stand; each exception type is logged once, with its traceback."""
    errors: list[type[Exception]] = [ValueError, ValueError, KeyError, ValueError]
    calls: list[Event] = []

    def hook(event: Event) -> None:
        calls.append(event)
        raise errors[len(calls) - 1]("sink bug")

    clock = FakeClock(START)
    store = MemoryStore()
    verifier = Verifier(store, policy=LENIENT, clock=clock, on_event=hook)
    otp = TOTP(SECRET)
    code = otp.generate(clock())
    with caplog.at_level(logging.ERROR, logger="isoms_otp.verifier"):
        assert "accepted" == verifier.verify("alice", otp, code).reason
        assert "replayed" == verifier.verify("alice", otp, code).reason
        assert "invalid" == verifier.verify("alice", otp, wrong_code(otp, clock())).reason
        assert "invalid" == verifier.record_failure("alice", source="x").reason
    assert 4 == len(calls)
    assert 2 == store.snapshot("alice").budget.failures
    records = [r for r in caplog.records if r.name == "isoms_otp.verifier"]
    assert 2 == len(records)
    assert "ValueError" in records[0].getMessage()
    assert "KeyError" in records[1].getMessage()
    assert all(record.exc_info is not None for record in records)


def test_without_a_hook_nothing_is_wrapped() -> None:
    """No on_event: no hook object; a non-callable on_event is a TypeError."""
    verifier = Verifier(MemoryStore())
    assert verifier.on_event is None
    otp = TOTP(SECRET)
    assert verifier.verify("alice", otp, otp.generate())
    verifier.reset("alice")
    assert 1 == verifier.prune() + 1
    with pytest.raises(TypeError, match="on_event"):
        Verifier(MemoryStore(), on_event="print")  # type: ignore[arg-type]


def test_exactly_one_event_per_call() -> None:
    """A mix of every action: as many events as calls, in call order."""
    verifier, recorder, clock, _ = make()
    otp, token = TOTP(SECRET), HOTP(OTHER_SECRET)
    verifier.verify("a", otp, otp.generate(clock()))
    verifier.confirm("b", otp, "junk")
    verifier.resync("c", token, "000000", "000000")
    verifier.record_failure("d")
    verifier.reset("e")
    verifier.prune()
    verifier.retry_after("a")  # a read: no event
    verifier.next_counter("c", token)  # a read: no event
    assert ["verify", "confirm", "verify", "record_failure", "reset", "prune"] == [
        event.action for event in recorder.events
    ]


# ---- LoggingSink ------------------------------------------------------------------------------


class JSONFormatter(logging.Formatter):
    """What a structured-logging setup does: every otp_ extra into one JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        fields = {k: v for k, v in vars(record).items() if k.startswith("otp_")}
        return json.dumps({"message": record.getMessage(), **fields})


def test_logging_sink_one_line_per_event_with_every_field(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each Event field is an otp_ extra; INFO normally, WARNING for a lock and a store error."""
    store = FailingStore()
    clock = FakeClock(START)
    sink = LoggingSink()
    assert "LoggingSink('isoms_otp.events')" == repr(sink)
    policy = ThrottlePolicy(max_failures=2, base_delay=0)
    verifier = Verifier(store, policy=policy, clock=clock, on_event=sink)
    otp = TOTP(SECRET)
    with caplog.at_level(logging.INFO, logger="isoms_otp.events"):
        verifier.verify("alice", otp, otp.generate(clock()), source="10.0.0.1")
        verifier.verify("bob", otp, "000000")
        verifier.verify("bob", otp, "000000")
        store.failing = True
        with pytest.raises(StoreError):
            verifier.verify("carol", otp, "000000")
    records = [r for r in caplog.records if r.name == "isoms_otp.events"]
    assert [logging.INFO, logging.INFO, logging.WARNING, logging.WARNING] == [
        r.levelno for r in records
    ]
    first = json.loads(JSONFormatter().format(records[0]))
    expected = {
        f"otp_{name}": value
        for name, value in dataclasses.asdict(
            Event(
                action="verify",
                user="alice",
                source="10.0.0.1",
                reason="accepted",
                kind="totp",
                drift=0,
                credential=0,
                at=clock(),
                latency=first["otp_latency"],
            )
        ).items()
    }
    assert expected == {k: v for k, v in first.items() if k != "message"}
    assert "otp verify accepted user='alice' source='10.0.0.1'" in first["message"]
    assert "locked=True" in records[2].getMessage()
    assert "otp verify error user='carol'" in records[3].getMessage()


def test_logging_sink_given_logger_and_disabled_level() -> None:
    """A disabled level logs nothing (and builds nothing); a non-Logger is a TypeError."""
    logger = logging.getLogger("tests.events.quiet")
    logger.setLevel(logging.ERROR)
    got: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            got.append(record)

    handler = Keep()
    logger.addHandler(handler)
    try:
        sink = LoggingSink(logger)
        sink(Event(action="reset", user="alice", reason="reset", at=1.0))
        sink(Event(action="verify", user="alice", reason="invalid", locked=True, at=1.0))
        assert [] == got
        logger.setLevel(logging.INFO)
        sink(Event(action="reset", user="alice", reason="reset", at=1.0))
        assert ["reset"] == [record.otp_action for record in got]  # type: ignore[attr-defined]
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    with pytest.raises(TypeError, match=r"logging\.Logger"):
        LoggingSink("isoms")  # type: ignore[arg-type]


# ---- DriftMonitor -----------------------------------------------------------------------------


def accepted(user: str | None, drift: int, kind: str = "totp") -> Event:
    return Event(
        action="verify",
        user=user,
        reason="accepted",
        kind=kind,  # type: ignore[arg-type]
        drift=drift,
        credential=0,
        at=1.0,
    )


def test_drift_monitor_flags_a_phone_clock_behind_through_the_verifier() -> None:
    """Three codes in a row from the previous step flag the user; the window never widens."""
    monitor = DriftMonitor()
    clock = FakeClock(START)
    verifier = Verifier(MemoryStore(), policy=LENIENT, clock=clock, on_event=monitor)
    otp = TOTP(SECRET)
    for _ in range(3):
        assert verifier.verify("alice", otp, otp.generate(clock() - PERIOD))
        clock.advance(PERIOD)
    verifier.verify("bob", otp, otp.generate(clock()))
    assert (-1, -1, -1) == monitor.check("alice")
    assert monitor.check("bob") is None
    assert {"alice": (-1, -1, -1)} == monitor.flagged()
    assert 2 == len(monitor)
    # Two steps behind is still outside the window: nothing is accepted, nothing is flagged.
    assert not verifier.verify("carol", otp, otp.generate(clock() - 2 * PERIOD))
    assert monitor.check("carol") is None


def test_drift_monitor_streaks() -> None:
    """Same sign builds the run, the other sign or a centred code restarts it; it stays short."""
    monitor = DriftMonitor(streak=2)
    assert not monitor.observe(accepted("a", 1))
    assert monitor.observe(accepted("a", 1))
    assert monitor.observe(accepted("a", 2))
    assert (1, 2) == monitor.check("a")
    assert not monitor.observe(accepted("a", -1))
    assert monitor.check("a") is None
    assert monitor.observe(accepted("a", -1))
    assert not monitor.observe(accepted("a", 0))
    assert monitor.check("a") is None
    monitor.forget("a")
    monitor.forget("never-seen")
    assert 0 == len(monitor)


def test_drift_monitor_ignores_what_is_no_accepted_totp_code() -> None:
    """Refusals, HOTP look-ahead, recovery codes and user-less events change nothing."""
    monitor = DriftMonitor(streak=1)
    assert not monitor.observe(accepted("a", 3, kind="hotp"))
    assert not monitor.observe(accepted(None, 1))
    assert not monitor.observe(
        Event(action="verify", user="a", reason="replayed", kind="totp", drift=1, at=1.0)
    )
    assert not monitor.observe(Event(action="verify", user="a", reason="accepted", at=1.0))
    monitor(Event(action="prune", user=None, reason="pruned", removed=0, at=1.0))
    assert 0 == len(monitor)
    assert {} == monitor.flagged()


def test_drift_monitor_memory_is_bounded_least_recently_seen_first() -> None:
    """With max_users=2 the least recently seen user is the one forgotten."""
    monitor = DriftMonitor(streak=1, max_users=2)
    monitor(accepted("a", 1))
    monitor(accepted("b", 1))
    monitor(accepted("a", 1))  # a is now the most recent
    monitor(accepted("c", 1))
    assert {"a", "c"} == set(monitor.flagged())
    assert "DriftMonitor(streak=1, max_users=2)" == repr(monitor)


def test_drift_monitor_is_thread_safe() -> None:
    """Many threads feeding many users: the bound holds and every run stays consistent."""
    monitor = DriftMonitor(streak=3, max_users=50)
    barrier = threading.Barrier(8)

    def feed(number: int) -> None:
        barrier.wait()
        for index in range(500):
            monitor(accepted(f"u{(number * 500 + index) % 80}", -1))

    threads = [threading.Thread(target=feed, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(monitor) <= 50
    assert all(run == (-1, -1, -1) for run in monitor.flagged().values())


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"streak": 0}, ConfigurationError),
        ({"streak": 101}, ConfigurationError),
        ({"max_users": 0}, ConfigurationError),
        ({"streak": True}, TypeError),
        ({"max_users": 2.0}, TypeError),
        ({"streak": 10**30}, ConfigurationError),
    ],
)
def test_drift_monitor_refuses_bad_arguments(options: dict[str, object], error: type) -> None:
    """Out of range is a ConfigurationError, a non-int a TypeError."""
    with pytest.raises(error):
        DriftMonitor(**options)  # type: ignore[arg-type]


def test_event_for_throttled_lock_until_reset_has_infinite_wait() -> None:
    """At the 100-failure ceiling retry_after is math.inf on the throttled event."""
    verifier, recorder, clock, _ = make(ThrottlePolicy(max_failures=100, base_delay=0))
    otp = TOTP(SECRET)
    code = wrong_code(otp, clock())
    for _ in range(101):
        verifier.verify("alice", otp, code)
    assert math.inf == recorder.last.retry_after


# ---- property: every event is its call's decision --------------------------------------------

OPERATIONS = st.lists(
    st.sampled_from(
        ["right", "previous", "wrong", "junk", "password", "reset", "prune", "tick", "wait"]
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(operations=OPERATIONS)
def test_each_event_matches_its_verdict(operations: list[str]) -> None:
    """Any sequence of calls: one event per deciding call, saying what its verdict says."""
    policy = ThrottlePolicy(max_failures=4, base_delay=1.0, max_delay=8.0, source_max_failures=3)
    verifier, recorder, clock, _ = make(policy)
    otp = TOTP(SECRET)
    calls = 0
    for operation in operations:
        verdict = None
        if operation in {"tick", "wait"}:
            clock.advance(PERIOD if operation == "tick" else 9)
            continue
        calls += 1
        if operation == "right":
            verdict = verifier.verify("alice", otp, otp.generate(clock()), source="a")
        elif operation == "previous":
            verdict = verifier.verify("alice", otp, otp.generate(clock() - PERIOD), source="b")
        elif operation == "wrong":
            verdict = verifier.verify("alice", otp, wrong_code(otp, clock()))
        elif operation == "junk":
            verdict = verifier.confirm("alice", otp, "not a code", source="a")
        elif operation == "password":
            verdict = verifier.record_failure("alice", source="a")
        elif operation == "reset":
            verifier.reset("alice")
        else:
            verifier.prune()
        assert calls == len(recorder.events)
        event = recorder.last
        assert clock() == event.at
        if verdict is None:
            assert event.reason in {"reset", "pruned"}
            continue
        assert verdict.reason == event.reason
        assert (verdict.failures, verdict.locked, verdict.retry_after) == (
            event.failures,
            event.locked,
            event.retry_after,
        )
        match = verdict.match
        assert (None if match is None else match.drift) == event.drift
        assert (None if match is None else match.credential) == event.credential


def test_the_verifiers_fast_event_is_an_event() -> None:
    """_new_event() (what the Verifier builds per decision, without the frozen dataclass's
    per-field stores) makes an Event equal to Event(...) with the same fields: same type, same
    repr, frozen, hashable; its slots are Event's fields, in order."""
    from isoms_otp.events import _EventFill, _new_event  # noqa: PLC0415

    assert tuple(field.name for field in dataclasses.fields(Event)) == _EventFill.__slots__
    rows = [
        ("verify", "alice", None, "accepted", 0, False, None, "totp", -1, 0, None, 1.5, 0.001),
        ("record_failure", "bob", "203.0.113.9", "throttled", 7, True, math.inf, None, None,
         None, None, 2.0, 0.0),
        ("prune", None, None, "pruned", 0, False, None, None, None, None, 12, 3.0, 0.5),
    ]  # fmt: skip
    for values in rows:
        fast = _new_event(*values)  # type: ignore[arg-type]
        slow = Event(**dict(zip(_EventFill.__slots__, values, strict=True)))  # type: ignore[arg-type]
        assert type(fast) is Event
        assert slow == fast
        assert hash(slow) == hash(fast)
        assert repr(slow) == repr(fast)
        with pytest.raises(dataclasses.FrozenInstanceError):
            fast.user = "mallory"  # type: ignore[misc]


def test_logging_sink_fields_under_their_own_names(caplog: pytest.LogCaptureFixture) -> None:
    """Each Event field is on the record under its own name (record.action, record.user, ...)
    as well as with the otp_ prefix; DriftMonitor takes its streak positionally; an Event's
    user defaults to None (as for prune)."""
    from isoms_otp.events import DriftMonitor, LoggingSink  # noqa: PLC0415

    event = Event(action="verify", user="alice", source="203.0.113.9", reason="invalid",
                  failures=2, at=5.0)  # fmt: skip
    with caplog.at_level(logging.INFO, logger="isoms_otp.events"):
        LoggingSink()(event)
    (record,) = caplog.records
    for field in dataclasses.fields(Event):
        assert getattr(event, field.name) == getattr(record, field.name)
        assert getattr(event, field.name) == getattr(record, f"otp_{field.name}")
    assert 4 == DriftMonitor(4).streak
    assert Event(action="prune", reason="pruned", at=1.0).user is None
