"""The store contract: one suite, run unchanged against MemoryStore, SQLiteStore and RedisStore."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from isoms_otp import (
    HOTP,
    TOTP,
    ConfigurationError,
    MemoryStore,
    RedisStore,
    SQLiteStore,
    Store,
    StoreError,
    ThrottlePolicy,
    Verdict,
    Verifier,
)
from isoms_otp.stores import Settlement, decide
from isoms_otp.stores._base import EMPTY
from isoms_otp.testing import FakeClock

SECRET = bytes(range(20))
OTHER_SECRET = bytes(range(100, 120))
PERIOD = 30
#: Ten seconds into a step, so that +-1 step stays inside the same numbers.
START = PERIOD * 56_666_667 + 10
#: No back-off, a lock only after many failures: what tests of replay want.
LENIENT = ThrottlePolicy(max_failures=100, base_delay=0)
THREADS = 16


def run_together(count: int, call: Callable[[int], Verdict]) -> Counter[str]:
    """Run ``call(i)`` in ``count`` threads released at once; count the verdict reasons."""
    barrier = threading.Barrier(count)
    results: list[Verdict | BaseException] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        barrier.wait()
        try:
            verdict: Verdict | BaseException = call(index)
        except BaseException as exc:  # noqa: BLE001 - reported below, in the main thread
            verdict = exc
        with lock:
            results.append(verdict)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    errors = [result for result in results if isinstance(result, BaseException)]
    assert [] == errors
    return Counter(result.reason for result in results if isinstance(result, Verdict))


class StoreContract:
    """What every store must do; subclasses only provide the ``store`` fixture."""

    #: Whether the backend keeps any Python str as a key (lone surrogates included).
    encodes_any_user = False

    @pytest.fixture
    def store(self) -> Iterator[Store]:
        raise NotImplementedError

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock(START)

    @pytest.fixture
    def totp(self) -> TOTP:
        return TOTP(SECRET)

    @pytest.fixture
    def hotp(self) -> HOTP:
        return HOTP(SECRET)

    @pytest.fixture
    def verifier(self, store: Store, clock: FakeClock) -> Verifier:
        return Verifier(store, clock=clock, policy=LENIENT)

    def test_is_a_store(self, store: Store) -> None:
        """The backend satisfies the Store protocol."""
        assert isinstance(store, Store)

    # -- replay -------------------------------------------------------------------------------

    def test_current_code_accepted_once(self, verifier: Verifier, totp: TOTP) -> None:
        """The current code is accepted, then the same code is "replayed"."""
        code = totp.generate(START)
        first = verifier.verify("alice", totp, code)
        second = verifier.verify("alice", totp, code)
        assert ("accepted", True, 0) == (first.reason, first.ok, first.match and first.match.drift)
        assert ("replayed", False) == (second.reason, second.ok)
        assert first.match == second.match

    def test_wrong_and_malformed(self, verifier: Verifier, totp: TOTP) -> None:
        """A wrong code is "invalid"; something that is not a code is "malformed"."""
        wrong = f"{(int(totp.generate(START)) + 1) % 10**6:06d}"
        verdicts = [verifier.verify("alice", totp, code) for code in (wrong, "12a456", "")]
        assert ["invalid", "malformed", "malformed"] == [v.reason for v in verdicts]
        assert [None, None, None] == [v.match for v in verdicts]

    def test_previous_step_once_within_window(
        self, verifier: Verifier, totp: TOTP, clock: FakeClock
    ) -> None:
        """A code from the previous step is accepted once inside the window, never after it."""
        late = totp.generate(START - PERIOD)
        clock.advance(PERIOD)  # that code is now two steps old: outside past=1
        assert "invalid" == verifier.verify("bob", totp, late).reason
        clock.set(START)
        previous = totp.generate(START - PERIOD)
        assert "accepted" == verifier.verify("alice", totp, previous).reason
        assert "replayed" == verifier.verify("alice", totp, previous).reason

    def test_lower_step_after_higher_refused(self, verifier: Verifier, totp: TOTP) -> None:
        """Once a future-step code is used, the current step's code counts as replayed."""
        assert "accepted" == verifier.verify("alice", totp, totp.generate(START + PERIOD)).reason
        assert "replayed" == verifier.verify("alice", totp, totp.generate(START)).reason
        assert "replayed" == verifier.verify("alice", totp, totp.generate(START - PERIOD)).reason

    def test_clock_going_backwards(self, verifier: Verifier, totp: TOTP, clock: FakeClock) -> None:
        """Turning the clock back does not reopen steps already used."""
        codes = [totp.generate(START + n * PERIOD) for n in range(3)]
        for n, code in enumerate(codes):
            clock.set(START + n * PERIOD)
            assert "accepted" == verifier.verify("alice", totp, code).reason
        clock.set(START - 10 * PERIOD)
        for n, code in enumerate(codes):
            clock.set(START + n * PERIOD - 5)
            assert "replayed" == verifier.verify("alice", totp, code).reason

    def test_users_are_isolated(self, verifier: Verifier, totp: TOTP) -> None:
        """One user's used code does not affect another user's."""
        code = totp.generate(START)
        assert "accepted" == verifier.verify("alice", totp, code).reason
        assert "accepted" == verifier.verify("bob", totp, code).reason

    def test_reenrolment_keeps_the_mark(self, verifier: Verifier, clock: FakeClock) -> None:
        """The confirmation code is claimed; a new secret cannot reopen codes of used steps."""
        old, new = TOTP(SECRET), TOTP(OTHER_SECRET)
        assert "accepted" == verifier.confirm("alice", old, old.generate(START)).reason
        assert "replayed" == verifier.verify("alice", old, old.generate(START)).reason
        # Re-enrolment in the same step: the new secret's code for a used step is refused too.
        assert "replayed" == verifier.confirm("alice", new, new.generate(START)).reason
        clock.advance(PERIOD)
        assert "accepted" == verifier.confirm("alice", new, new.generate(clock())).reason
        assert "replayed" == verifier.verify("alice", new, new.generate(clock())).reason

    def test_reenrolment_with_longer_period(self, verifier: Verifier, clock: FakeClock) -> None:
        """A new period does not lock the user out: marks are step start times, not numbers."""
        short, long_ = TOTP(SECRET, period=30), TOTP(OTHER_SECRET, period=60)
        assert "accepted" == verifier.verify("alice", short, short.generate(START)).reason
        clock.advance(60)
        assert "accepted" == verifier.verify("alice", long_, long_.generate(clock())).reason

    # -- HOTP ---------------------------------------------------------------------------------

    def test_hotp_counter_moves_forward(self, verifier: Verifier, hotp: HOTP) -> None:
        """A match moves the counter past it; codes at or below it never match again.

        A used HOTP code is "invalid" (the window starts past it); "replayed" is what a parallel
        request that computed its match before the counter moved gets.
        """
        assert 0 == verifier.next_counter("carol")
        assert "accepted" == verifier.verify("carol", hotp, hotp.generate(0)).reason
        assert "invalid" == verifier.verify("carol", hotp, hotp.generate(0)).reason
        verdict = verifier.verify("carol", hotp, hotp.generate(4))
        assert ("accepted", 4, 3) == (verdict.reason, verdict.match.step, verdict.match.drift)  # type: ignore[union-attr]
        assert 5 == verifier.next_counter("carol")
        skipped = [verifier.verify("carol", hotp, hotp.generate(n)).reason for n in (2, 3, 4)]
        assert ["invalid", "invalid", "invalid"] == skipped

    def test_hotp_look_ahead_bound(self, verifier: Verifier, hotp: HOTP) -> None:
        """A code beyond look_ahead (5) does not match."""
        assert "invalid" == verifier.verify("carol", hotp, hotp.generate(6)).reason
        assert "accepted" == verifier.verify("carol", hotp, hotp.generate(5)).reason

    def test_hotp_and_totp_marks_are_separate(
        self, verifier: Verifier, hotp: HOTP, totp: TOTP
    ) -> None:
        """A TOTP mark (a Unix time) never blocks HOTP counters, and the other way round."""
        assert "accepted" == verifier.verify("dave", totp, totp.generate(START)).reason
        assert "accepted" == verifier.verify("dave", hotp, hotp.generate(0)).reason
        assert 1 == verifier.next_counter("dave")

    def test_resync(self, verifier: Verifier, hotp: HOTP) -> None:
        """Two consecutive codes far ahead resynchronise; both counters are then used."""
        verdict = verifier.resync("erin", hotp, hotp.generate(700), hotp.generate(701))
        assert ("accepted", 701, 701) == (verdict.reason, verdict.match.step, verdict.match.drift)  # type: ignore[union-attr]
        assert 702 == verifier.next_counter("erin")
        assert "invalid" == verifier.verify("erin", hotp, hotp.generate(701)).reason
        assert "accepted" == verifier.verify("erin", hotp, hotp.generate(702)).reason

    def test_resync_refusals(self, verifier: Verifier, hotp: HOTP) -> None:
        """Non-consecutive, out-of-range, malformed or used codes do not resynchronise."""
        verdicts = [
            verifier.resync("erin", hotp, hotp.generate(10), hotp.generate(12)),
            verifier.resync("erin", hotp, hotp.generate(11), hotp.generate(10)),
            verifier.resync("erin", hotp, hotp.generate(1000), hotp.generate(1001)),
            verifier.resync("erin", hotp, "12345", hotp.generate(1)),
        ]
        assert ["invalid", "invalid", "invalid", "malformed"] == [v.reason for v in verdicts]
        assert (
            "accepted" == verifier.resync("erin", hotp, hotp.generate(3), hotp.generate(4)).reason
        )
        again = verifier.resync("erin", hotp, hotp.generate(3), hotp.generate(4))
        assert "invalid" == again.reason  # below the counter now: outside the search

    def test_marks_beyond_double_precision(self, store: Store) -> None:
        """Counters above 2**53 compare exactly (Lua numbers and floats would not)."""
        policy = LENIENT
        big = 2**53 + 2

        def settle(step: int) -> str:
            return store.settle(
                "frank",
                now=START,
                kind="hotp",
                step=step,
                failure="invalid",
                keep_until=0,
                policy=policy,
            ).reason

        assert "accepted" == settle(big)
        assert "replayed" == settle(big - 1)
        assert "accepted" == settle(big + 1)
        assert "accepted" == settle(2**64 - 2)
        assert "replayed" == settle(2**64 - 3)
        assert 2**64 - 2 == store.mark("frank", "hotp")
        assert "accepted" == settle(2**64 - 1)

    def test_exhausted_hotp_counter(self, verifier: Verifier, store: Store, hotp: HOTP) -> None:
        """After counter 2**64-1 nothing matches any more, and nothing raises."""
        store.settle(
            "gina", now=START, kind="hotp", step=2**64 - 1, failure="invalid", keep_until=0,
            policy=LENIENT,
        )  # fmt: skip
        assert "invalid" == verifier.verify("gina", hotp, hotp.generate(2**64 - 1)).reason
        assert "invalid" == verifier.resync("gina", hotp, hotp.generate(0), hotp.generate(1)).reason

    # -- throttling ---------------------------------------------------------------------------

    def test_backoff_schedule(self, store: Store, clock: FakeClock, totp: TOTP) -> None:
        """Each failure doubles the wait from base_delay up to max_delay; waits are exact."""
        policy = ThrottlePolicy(max_failures=6, base_delay=2, max_delay=10, lock_duration=1000)
        verifier = Verifier(store, clock=clock, policy=policy)
        waits = []
        for _ in range(6):
            assert "invalid" == verifier.verify("alice", totp, "000000").reason
            refused = verifier.verify("alice", totp, totp.generate(clock()))
            assert ("throttled", None) == (refused.reason, refused.match)
            assert refused.retry_after is not None
            waits.append(refused.retry_after)
            clock.advance(refused.retry_after)
        assert [2.0, 4.0, 8.0, 10.0, 10.0, 1000.0] == waits

    def test_throttled_refuses_correct_code(
        self, store: Store, clock: FakeClock, totp: TOTP
    ) -> None:
        """While backing off, even the right code is refused, and nothing is learned from it."""
        verifier = Verifier(store, clock=clock, policy=ThrottlePolicy(base_delay=5))
        assert "invalid" == verifier.verify("alice", totp, "000000").reason
        clock.advance(2)
        right = verifier.verify("alice", totp, totp.generate(clock()))
        wrong = verifier.verify("alice", totp, "111111")
        assert right == wrong == Verdict(reason="throttled", retry_after=3.0)
        clock.advance(3)
        assert "accepted" == verifier.verify("alice", totp, totp.generate(clock())).reason

    def test_lock_after_max_failures(self, store: Store, clock: FakeClock, totp: TOTP) -> None:
        """max_failures failures lock; each failure after the lock expires locks again."""
        policy = ThrottlePolicy(max_failures=3, base_delay=0, lock_duration=600)
        verifier = Verifier(store, clock=clock, policy=policy)
        reasons = [verifier.verify("alice", totp, "000000").reason for _ in range(4)]
        assert ["invalid", "invalid", "invalid", "throttled"] == reasons
        clock.advance(600)
        assert "invalid" == verifier.verify("alice", totp, "000000").reason
        locked = verifier.verify("alice", totp, totp.generate(clock()))
        assert ("throttled", 600.0) == (locked.reason, locked.retry_after)
        clock.advance(600)
        assert "accepted" == verifier.verify("alice", totp, totp.generate(clock())).reason
        assert "invalid" == verifier.verify("alice", totp, "000000").reason  # count was reset

    def test_success_resets_count(self, store: Store, clock: FakeClock, totp: TOTP) -> None:
        """Failures must be consecutive: a success in between starts the count again."""
        policy = ThrottlePolicy(max_failures=2, base_delay=0)
        verifier = Verifier(store, clock=clock, policy=policy)
        for _ in range(3):
            assert "invalid" == verifier.verify("alice", totp, "000000").reason
            clock.advance(PERIOD)
            assert "accepted" == verifier.verify("alice", totp, totp.generate(clock())).reason

    def test_replayed_and_malformed_count(self, store: Store, clock: FakeClock, totp: TOTP) -> None:
        """Replayed and malformed codes are failures too."""
        verifier = Verifier(store, clock=clock, policy=ThrottlePolicy(max_failures=3, base_delay=0))
        code = totp.generate(START)
        reasons = [verifier.verify("alice", totp, c).reason for c in (code, code, "x", "", code)]
        assert ["accepted", "replayed", "malformed", "malformed", "throttled"] == reasons

    def test_reset_unlocks_but_keeps_marks(
        self, store: Store, clock: FakeClock, totp: TOTP, hotp: HOTP
    ) -> None:
        """reset(user) clears the lock and count, never the replay marks."""
        verifier = Verifier(store, clock=clock, policy=ThrottlePolicy(max_failures=1))
        code = totp.generate(START)
        assert "accepted" == verifier.verify("alice", totp, code).reason
        assert "accepted" == verifier.verify("alice", hotp, hotp.generate(0)).reason
        assert "replayed" == verifier.verify("alice", totp, code).reason
        assert "throttled" == verifier.verify("alice", totp, code).reason
        verifier.reset("alice")
        assert "replayed" == verifier.verify("alice", totp, code).reason
        verifier.reset("alice")
        assert "invalid" == verifier.verify("alice", hotp, hotp.generate(0)).reason
        verifier.reset("alice")
        verifier.reset("nobody")  # unknown users are fine
        assert 1 == verifier.next_counter("alice")

    def test_reset_of_totp_only_user(self, store: Store, clock: FakeClock, totp: TOTP) -> None:
        """A reset keeps a TOTP mark while it matters, even for a user without HOTP."""
        verifier = Verifier(store, clock=clock, policy=ThrottlePolicy(max_failures=1))
        code = totp.generate(START)
        assert "accepted" == verifier.verify("alice", totp, code).reason
        assert "invalid" == verifier.verify("alice", totp, "000000").reason
        verifier.reset("alice")
        assert "replayed" == verifier.verify("alice", totp, code).reason
        clock.advance(3600)
        verifier.reset("alice")  # the mark no longer matters; state may go
        assert "accepted" == verifier.verify("alice", totp, totp.generate(clock())).reason

    def test_retry_after_reads_the_wait_without_counting(
        self, store: Store, clock: FakeClock, totp: TOTP
    ) -> None:
        """retry_after is None until a failure, then the wait left; reading it counts nothing."""
        policy = ThrottlePolicy(max_failures=2, base_delay=4, lock_duration=600)
        verifier = Verifier(store, clock=clock, policy=policy)
        assert None is verifier.retry_after("alice")
        assert "invalid" == verifier.verify("alice", totp, "000000").reason
        clock.advance(1.5)
        assert [2.5, 2.5] == [verifier.retry_after("alice") for _ in range(2)]
        clock.advance(2.5)
        assert None is verifier.retry_after("alice")
        assert "invalid" == verifier.verify("alice", totp, "000000").reason
        assert 600.0 == verifier.retry_after("alice")
        verifier.reset("alice")
        assert None is verifier.retry_after("alice")
        assert None is verifier.retry_after("nobody")

    def test_one_users_lock_spares_others(self, store: Store, clock: FakeClock, totp: TOTP) -> None:
        """Per-user isolation: a locked user does not throttle anyone else."""
        verifier = Verifier(store, clock=clock, policy=ThrottlePolicy(max_failures=1))
        assert "invalid" == verifier.verify("mallory", totp, "000000").reason
        assert "throttled" == verifier.verify("mallory", totp, "000000").reason
        assert "accepted" == verifier.verify("alice", totp, totp.generate(START)).reason

    def test_prune_keeps_what_matters(
        self, store: Store, clock: FakeClock, totp: TOTP, hotp: HOTP
    ) -> None:
        """Pruning never drops an HOTP counter, a failure count or a live TOTP mark."""
        verifier = Verifier(store, clock=clock, policy=ThrottlePolicy(max_failures=1))
        assert "accepted" == verifier.verify("totp-user", totp, totp.generate(START)).reason
        assert "accepted" == verifier.verify("hotp-user", hotp, hotp.generate(3)).reason
        assert "invalid" == verifier.verify("locked", totp, "000000").reason
        verifier.prune()
        assert "replayed" == verifier.verify("totp-user", totp, totp.generate(START)).reason
        clock.advance(10 * 365 * 24 * 3600)
        verifier.prune()
        assert 4 == verifier.next_counter("hotp-user")
        assert "invalid" == verifier.verify("locked", totp, "000000").reason
        assert "throttled" == verifier.verify("locked", totp, totp.generate(clock())).reason

    def test_failures_are_forgotten_a_lock_period_after_the_wait(
        self, store: Store, clock: FakeClock, totp: TOTP
    ) -> None:
        """Regression: failure-only records (made-up usernames) used to be kept for ever.

        Such a record goes lock_duration after its last wait ended, and not a second earlier.
        """
        policy = ThrottlePolicy(max_failures=2, base_delay=5, max_delay=5, lock_duration=100)
        verifier = Verifier(store, clock=clock, policy=policy)
        self.fail_twice(verifier, clock, totp)  # locked until START + 105, kept until + 205
        clock.advance(194)
        assert 0 == verifier.prune()
        assert "invalid" == verifier.verify("early", totp, "000000").reason
        assert 100.0 == verifier.retry_after("early")  # the count was kept: locked again
        clock.advance(1)
        assert 1 == verifier.prune()
        assert "invalid" == verifier.verify("late", totp, "000000").reason
        assert 5.0 == verifier.retry_after("late")  # counted as a first failure

    @staticmethod
    def fail_twice(verifier: Verifier, clock: FakeClock, totp: TOTP) -> None:
        """Give "early" and "late" two failures each, 5 s apart (the second locks)."""
        for _ in range(2):
            for user in ("early", "late"):
                assert "invalid" == verifier.verify(user, totp, "000000").reason
            clock.advance(5)

    # -- races --------------------------------------------------------------------------------

    def test_race_same_code_threads(self, verifier: Verifier, totp: TOTP) -> None:
        """N threads submit the same valid code at once: exactly one is accepted."""
        code = totp.generate(START)
        reasons = run_together(THREADS, lambda _: verifier.verify("alice", totp, code))
        assert Counter({"accepted": 1, "replayed": THREADS - 1}) == reasons

    def test_race_same_hotp_code_threads(self, verifier: Verifier, hotp: HOTP) -> None:
        """N threads submit the same HOTP code at once: exactly one is accepted.

        The others are "replayed" (their window was read before the counter moved) or "invalid"
        (read after): which, depends on the interleaving.
        """
        code = hotp.generate(2)
        reasons = run_together(THREADS, lambda _: verifier.verify("carol", hotp, code))
        assert 1 == reasons.pop("accepted")
        assert THREADS - 1 == reasons.total()
        assert set() == set(reasons) - {"replayed", "invalid"}

    def test_race_guesses_threads(self, store: Store, clock: FakeClock, totp: TOTP) -> None:
        """N parallel wrong guesses against a limit of k: exactly k are looked at."""
        limit = 5
        policy = ThrottlePolicy(max_failures=limit, base_delay=0)
        verifier = Verifier(store, clock=clock, policy=policy)
        right = int(totp.generate(START))
        guesses = [f"{(right + 1 + n) % 10**6:06d}" for n in range(THREADS)]
        reasons = run_together(THREADS, lambda i: verifier.verify("alice", totp, guesses[i]))
        assert Counter({"invalid": limit, "throttled": THREADS - limit}) == reasons

    # -- user ids -----------------------------------------------------------------------------

    @pytest.mark.parametrize("user", ["alice\ud800", "alice\nbob", "alice\x85"],
                             ids=["surrogate", "newline", "c1"])  # fmt: skip
    def test_verifier_refuses_bad_user_before_the_store(
        self, verifier: Verifier, store: Store, totp: TOTP, user: str
    ) -> None:
        """A user id with a lone surrogate or control character is a ConfigurationError.

        Regression: it used to reach the store, where SQLite and Redis failed to encode it
        (a StoreError that looked like an outage).
        """
        with pytest.raises(ConfigurationError, match="user contains"):
            verifier.verify(user, totp, totp.generate(START))
        assert None is store.mark("alice", "totp")

    def test_unencodable_user_fails_closed(self, store: Store) -> None:
        """Called directly with a key it cannot encode, a store raises StoreError or copes.

        Regression: RedisStore.mark and reset caught only RedisError, so the client's
        UnicodeEncodeError escaped them (settle already failed closed).
        """
        user = "alice\ud800"
        calls: list[Callable[[], object]] = [
            lambda: store.settle(
                user,
                now=START,
                kind="totp",
                step=None,
                failure="invalid",
                keep_until=0,
                policy=LENIENT,
            ),
            lambda: store.mark(user, "totp"),
            lambda: store.blocked_until(user),
            lambda: store.reset(user, now=START),
        ]
        for call in calls:
            if self.encodes_any_user:
                call()
            else:
                with pytest.raises(StoreError):
                    call()


class RacyStore(MemoryStore):
    """A deliberately broken store: read, then check, then write (what the contract forbids)."""

    __slots__ = ("_barrier",)

    def __init__(self, parties: int) -> None:
        super().__init__()
        self._barrier = threading.Barrier(parties)

    def settle(self, user: str, **kwargs: Any) -> Settlement:
        state = self._users.get(user, EMPTY)
        self._barrier.wait()  # every request reads before any writes: the race, made certain
        new, outcome = decide(state, **kwargs)
        if new is not None:
            self._users[user] = new
        return outcome


def test_race_harness_catches_check_then_set() -> None:
    """The race tests can fail: a read-check-write store accepts one code many times."""
    clock, totp = FakeClock(START), TOTP(SECRET)
    verifier = Verifier(RacyStore(THREADS), clock=clock, policy=LENIENT)
    code = totp.generate(START)
    reasons = run_together(THREADS, lambda _: verifier.verify("alice", totp, code))
    assert Counter({"accepted": THREADS}) == reasons


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
        policy = ThrottlePolicy(max_failures=2, base_delay=5, max_delay=5, lock_duration=100)
        verifier = Verifier(store, clock=clock, policy=policy)
        self.fail_twice(verifier, clock, totp)  # locked until START + 105, kept until + 205
        client = store._client  # type: ignore[attr-defined]  # the TTL is the point
        # Set at the second failure (START + 5): 200 s, less the real time passed since.
        assert 140_000 < client.pttl("isoms-otp:user:early") <= 200_000
        hotp = HOTP(SECRET)
        assert "accepted" == verifier.verify("counter", hotp, hotp.generate(0)).reason
        assert "invalid" == verifier.verify("counter", hotp, "000000").reason
        assert -1 == client.pttl("isoms-otp:user:counter")
