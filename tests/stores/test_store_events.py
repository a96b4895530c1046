"""Events on every store: the 32-way race, the lock transition under a race, a raising hook."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from isoms_otp import (
    TOTP,
    Event,
    MemoryStore,
    SQLiteStore,
    Store,
    StoreError,
    ThrottlePolicy,
    Verdict,
    Verifier,
)
from isoms_otp.testing import FakeClock

SECRET = bytes(range(20))
START = 30 * 56_666_667 + 10
RACERS = 32


class Recorder:
    """A thread-safe on_event hook that keeps every event."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        with self.lock:
            self.events.append(event)


def wrong_code(otp: TOTP) -> str:
    return next(c for c in ("000000", "111111", "222222") if otp.verify(c, at=START) is None)


def race(count: int, call: Callable[[int], Verdict]) -> list[Verdict]:
    """Run ``call(i)`` in ``count`` threads released together; re-raise the first error."""
    barrier = threading.Barrier(count)
    results: list[Verdict | BaseException] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        barrier.wait()
        try:
            result: Verdict | BaseException = call(index)
        except BaseException as exc:  # noqa: BLE001 - re-raised below, in the main thread
            result = exc
        with lock:
            results.append(result)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [result for result in results if isinstance(result, Verdict)]


def redis_store(url: str, *, timeout: float = 2.0) -> Store:
    """Open a RedisStore (imported here: the redis extra is only needed by Redis tests)."""
    from isoms_otp.stores.redis import RedisStore  # noqa: PLC0415

    return RedisStore.from_url(url, timeout=timeout)


@pytest.fixture(
    params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)],
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """Each store in turn: memory, SQLite in a temporary file, Redis on a real server."""
    made: Store
    if request.param == "memory":
        made = MemoryStore()
    elif request.param == "sqlite":
        made = SQLiteStore(tmp_path / "events.sqlite3")
    else:
        made = redis_store(request.getfixturevalue("redis_url"))
    yield made
    made.close()


def test_parallel_wrong_codes_give_failure_counts_one_to_n(store: Store) -> None:
    """32 parallel wrong codes, no back-off, 100 allowed: 32 events counting exactly 1..32."""
    recorder = Recorder()
    policy = ThrottlePolicy(max_failures=100, base_delay=0)
    verifier = Verifier(store, policy=policy, clock=FakeClock(START), on_event=recorder)
    otp = TOTP(SECRET)
    code = wrong_code(otp)
    verdicts = race(RACERS, lambda _: verifier.verify("alice", otp, code, source="10.0.0.1"))
    assert {"invalid"} == {verdict.reason for verdict in verdicts}
    assert RACERS == len(recorder.events)
    assert list(range(1, RACERS + 1)) == sorted(event.failures for event in recorder.events)
    assert {("verify", "invalid", False)} == {
        (event.action, event.reason, event.locked) for event in recorder.events
    }
    # Each event reports the same decision as its own verdict, never a re-derived one.
    assert sorted(verdict.failures for verdict in verdicts) == sorted(
        event.failures for event in recorder.events
    )


def test_exactly_one_event_starts_the_lock_under_a_race(store: Store) -> None:
    """32 parallel wrong codes against a limit of 10: counts 1..10, one lock, 22 throttled."""
    recorder = Recorder()
    policy = ThrottlePolicy(max_failures=10, base_delay=0)
    verifier = Verifier(store, policy=policy, clock=FakeClock(START), on_event=recorder)
    otp = TOTP(SECRET)
    code = wrong_code(otp)
    race(RACERS, lambda _: verifier.verify("alice", otp, code))
    reasons = Counter(event.reason for event in recorder.events)
    assert {"invalid": 10, "throttled": RACERS - 10} == reasons
    assert list(range(1, 11)) == sorted(
        event.failures for event in recorder.events if event.reason == "invalid"
    )
    locks = [event for event in recorder.events if event.locked]
    assert 1 == len(locks)
    assert (10, "invalid") == (locks[0].failures, locks[0].reason)


def test_a_raising_hook_changes_neither_verdicts_nor_state(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """The hook raises on every event: verdicts, marks and counts are what they would be."""
    calls: list[Event] = []

    def hook(event: Event) -> None:
        calls.append(event)
        raise RuntimeError("sink down")

    clock = FakeClock(START)
    verifier = Verifier(store, clock=clock, on_event=hook)
    otp = TOTP(SECRET)
    code = otp.generate(clock())
    assert "accepted" == verifier.verify("alice", otp, code).reason
    assert "replayed" == verifier.verify("alice", otp, code).reason
    assert 1 == store.snapshot("alice").budget.failures
    assert 1 == len(store.marks("alice"))
    verifier.reset("alice")
    assert 0 == store.snapshot("alice").budget.failures
    assert 0 <= verifier.prune()
    assert ["verify", "verify", "reset", "prune"] == [event.action for event in calls]
    logged = [record for record in caplog.records if record.name == "isoms_otp.verifier"]
    assert 1 == len(logged)
    assert "RuntimeError" in logged[0].getMessage()


@pytest.mark.redis
def test_redis_outage_is_an_error_event(own_redis: Any) -> None:
    """A stopped Redis server: the event says "error" and the StoreError reaches the caller."""
    store = redis_store(own_redis.url, timeout=0.5)
    recorder = Recorder()
    verifier = Verifier(store, clock=FakeClock(START), on_event=recorder)
    otp = TOTP(SECRET)
    try:
        own_redis.stop()
        with pytest.raises(StoreError):
            verifier.verify("alice", otp, otp.generate(START))
    finally:
        store.close()
    assert [("verify", "error")] == [(event.action, event.reason) for event in recorder.events]
