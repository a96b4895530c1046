"""Events of the recovery-code methods: exactly one per call, from the store's own decision."""

from __future__ import annotations

from isoms_otp import TOTP, Event, MemoryStore, RecoveryCodes, ThrottlePolicy, Verifier
from isoms_otp.testing import FakeClock

SECRET = bytes(range(20))
START = 30 * 56_666_667 + 10


def make() -> tuple[Verifier, list[Event]]:
    events: list[Event] = []
    verifier = Verifier(
        MemoryStore(), clock=FakeClock(START), policy=ThrottlePolicy(base_delay=0),
        on_event=events.append,
    )  # fmt: skip
    return verifier, events


def test_verify_recovery_reports_one_recovery_event() -> None:
    """A used, a reused and a wrong recovery code: three "recovery" events with their reasons."""
    verifier, events = make()
    shown, codes = RecoveryCodes.generate(3)
    verifier.verify_recovery("alice", codes, shown[1], source="10.0.0.1")
    verifier.verify_recovery("alice", codes, shown[1])
    verifier.verify_recovery("alice", codes, "0000-0000-0000-0000")
    expected = [
        ("recovery", "accepted", 0),
        ("recovery", "replayed", 1),
        ("recovery", "invalid", 2),
    ]
    assert expected == [(e.action, e.reason, e.failures) for e in events]
    assert "10.0.0.1" == events[0].source
    assert all(shown[1] not in repr(event) for event in events)


def test_step_up_activate_and_regenerate_report_once() -> None:
    """Each lifecycle helper is one attempt, so one event: no double reports."""
    verifier, events = make()
    totp = TOTP(SECRET)
    issued = verifier.activate("alice", totp, totp.generate(START))
    assert issued.ok
    assert [("confirm", "accepted")] == [(e.action, e.reason) for e in events]
    assert issued.recovery is not None
    again = verifier.regenerate("alice", totp, issued.codes[0], codes=issued.recovery)
    assert again.ok
    assert ("recovery", "accepted") == (events[-1].action, events[-1].reason)
    verifier.step_up("alice", totp, "000000", codes=issued.recovery)
    assert 3 == len(events)
    assert ("verify", "invalid") == (events[-1].action, events[-1].reason)
