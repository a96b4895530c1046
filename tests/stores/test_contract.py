"""The store contract (``isoms_otp.testing.StoreContract``), run unchanged on every store."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from isoms_otp import TOTP, MemoryStore, RedisStore, SQLiteStore, Store, ThrottlePolicy, Verifier
from isoms_otp._contract import LENIENT, SECRET, START, THREADS, run_together
from isoms_otp.stores import Attempt, Settlement, decide
from isoms_otp.testing import FakeClock, StoreContract


class RacyStore(MemoryStore):
    """A deliberately broken store: read, then check, then write (what the contract forbids)."""

    __slots__ = ("_barrier",)

    def __init__(self, parties: int) -> None:
        super().__init__()
        self._barrier = threading.Barrier(parties)

    def settle(self, attempt: Attempt) -> Settlement:
        state = self.snapshot(attempt.user, source=attempt.source, credential=attempt.credential)
        self._barrier.wait()  # every request reads before any writes: the race, made certain
        decision = decide(attempt, state)
        if decision.mark is not None:
            self._marks[attempt.user, attempt.credential] = decision.mark
        return decision.settlement


def test_race_harness_catches_check_then_set() -> None:
    """The race tests can fail: a read-check-write store accepts one code many times."""
    clock, totp = FakeClock(START), TOTP(SECRET)
    verifier = Verifier(RacyStore(THREADS), clock=clock, policy=LENIENT)
    code = totp.generate(START)
    reasons = run_together(THREADS, lambda _: verifier.verify("alice", totp, code))
    assert Counter({"accepted": THREADS}) == reasons


def test_contract_is_importable_from_testing() -> None:
    """Users subclass isoms_otp.testing.StoreContract; other names there still fail loudly."""
    import isoms_otp.testing  # noqa: PLC0415

    assert StoreContract is isoms_otp.testing.StoreContract
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        _ = isoms_otp.testing.Nothing


class TestMemoryStore(StoreContract):
    """The contract, against MemoryStore."""

    encodes_any_user = True  # a dict: no encoding step

    @pytest.fixture
    def store(self) -> Iterator[Store]:
        store = MemoryStore()
        yield store
        store.close()


class TestSQLiteStore(StoreContract):
    """The contract, against SQLiteStore on a file."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[Store]:
        store = SQLiteStore(tmp_path / "otp.sqlite3")
        yield store
        store.close()


@pytest.mark.redis
class TestRedisStore(StoreContract):
    """The contract, against RedisStore and a real redis-server."""

    prunes = False  # Redis expires keys on its own clock

    @pytest.fixture
    def store(self, redis_url: str) -> Iterator[Store]:
        store = RedisStore.from_url(redis_url)
        yield store
        store.close()

    def test_failures_are_forgotten_a_lock_period_after_the_wait(
        self, store: Store, clock: FakeClock, totp: TOTP
    ) -> None:
        """Regression: failure-only keys (made-up usernames) used to persist for ever.

        Redis measures expiry with its own clock, so this checks the TTL the script sets: the
        key expires lock_duration after its last wait ends; a key with an HOTP counter persists.
        """
        from isoms_otp import HOTP  # noqa: PLC0415

        policy = ThrottlePolicy(max_failures=2, base_delay=5, max_delay=5, lock_duration=100)
        verifier = Verifier(store, clock=clock, policy=policy)
        self.fail_twice(verifier, clock, totp)  # locked until START + 105, kept until + 205
        client = store._client  # type: ignore[attr-defined]  # the TTL is the point
        # Set at the second failure (START + 5): 200 s, less the real time passed since.
        assert 140_000 < client.pttl("isoms-otp:v2:5{early}:u") <= 200_000
        hotp = HOTP(SECRET)
        assert "accepted" == verifier.verify("counter", hotp, hotp.generate(0)).reason
        assert "invalid" == verifier.verify("counter", hotp, "000000").reason
        keys = client.keys("isoms-otp:v2:7{counter}:c:*")
        assert [-1] == [client.pttl(key) for key in keys]
