"""The store contract as a pytest suite: ``isoms_otp.testing.StoreContract``.

Subclass :class:`StoreContract` in a test module and give it a ``store`` fixture; every test
then runs against that store. The three stores of this package run it unchanged, and so can an
application's own store. Needs ``pytest`` (imported only when this module is).
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from ._hotp import HOTP
from ._totp import TOTP
from .exceptions import ConfigurationError, StoreError
from .stores._base import Attempt, Mark, Store
from .testing import FakeClock
from .throttle import ThrottlePolicy
from .verifier import Verdict, Verifier, credential_id

__all__ = ["PERIOD", "START", "StoreContract", "run_together"]

SECRET = bytes(range(20))
OTHER_SECRET = bytes(range(100, 120))
#: The TOTP period the contract's keys use.
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
    assert errors == []
    return Counter(result.reason for result in results if isinstance(result, Verdict))


def _wrong(totp: TOTP, at: float, offset: int = 1) -> str:
    return f"{(int(totp.generate(at)) + offset) % 10**6:06d}"


class StoreContract:
    """What every store must do; a subclass only provides the ``store`` fixture.

    Set ``encodes_any_user = True`` on a store that keeps any Python str as a key (lone
    surrogates included), as a dict does.
    """

    #: Whether the backend keeps any Python str as a key (lone surrogates included).
    encodes_any_user = False
    #: Whether ``prune`` forgets records (False for stores that expire them on their own clock).
    prunes = True

    @pytest.fixture
    def store(self) -> Iterator[Store]:
        """The store under test: override this fixture in the subclass."""
        raise NotImplementedError

    @pytest.fixture
    def clock(self) -> FakeClock:
        """A fake clock at :data:`START`."""
        return FakeClock(START)

    @pytest.fixture
    def totp(self) -> TOTP:
        """A TOTP key."""
        return TOTP(SECRET)

    @pytest.fixture
    def hotp(self) -> HOTP:
        """An HOTP key."""
        return HOTP(SECRET)

    @pytest.fixture
    def verifier(self, store: Store, clock: FakeClock) -> Verifier:
        """A verifier on the store with a lenient policy (replay tests)."""
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
        assert (first.reason, first.ok, first.match and first.match.drift) == ("accepted", True, 0)
        assert (second.reason, second.ok) == ("replayed", False)
        assert first.match == second.match

    def test_wrong_and_malformed(self, verifier: Verifier, totp: TOTP) -> None:
        """A wrong code is "invalid"; something that is not a code is "malformed"."""
        codes = (_wrong(totp, START), "12a456", "")
        verdicts = [verifier.verify("alice", totp, code) for code in codes]
        assert [v.reason for v in verdicts] == ["invalid", "malformed", "malformed"]
        assert [v.match for v in verdicts] == [None, None, None]

    def test_previous_step_once_within_window(
        self, verifier: Verifier, totp: TOTP, clock: FakeClock
    ) -> None:
        """A code from the previous step is accepted once inside the window, never after it."""
        late = totp.generate(START - PERIOD)
        clock.advance(PERIOD)  # that code is now two steps old: outside past=1
        assert verifier.verify("bob", totp, late).reason == "invalid"
        clock.set(START)
        previous = totp.generate(START - PERIOD)
        assert verifier.verify("alice", totp, previous).reason == "accepted"
        assert verifier.verify("alice", totp, previous).reason == "replayed"

    def test_lower_step_after_higher_refused(self, verifier: Verifier, totp: TOTP) -> None:
        """Once a future-step code is used, the current step's code counts as replayed."""
        assert verifier.verify("alice", totp, totp.generate(START + PERIOD)).reason == "accepted"
        assert verifier.verify("alice", totp, totp.generate(START)).reason == "replayed"
        assert verifier.verify("alice", totp, totp.generate(START - PERIOD)).reason == "replayed"

    def test_clock_going_backwards(self, verifier: Verifier, totp: TOTP, clock: FakeClock) -> None:
        """Turning the clock back does not reopen steps already used."""
        codes = [totp.generate(START + n * PERIOD) for n in range(3)]
        for n, code in enumerate(codes):
            clock.set(START + n * PERIOD)
            assert verifier.verify("alice", totp, code).reason == "accepted"
        clock.set(START - 10 * PERIOD)
        for n, code in enumerate(codes):
            clock.set(START + n * PERIOD - 5)
            assert verifier.verify("alice", totp, code).reason == "replayed"

    def test_users_are_isolated(self, verifier: Verifier, totp: TOTP) -> None:
        """One user's used code does not affect another user's."""
        code = totp.generate(START)
        assert verifier.verify("alice", totp, code).reason == "accepted"
        assert verifier.verify("bob", totp, code).reason == "accepted"

    def test_new_key_is_a_new_key(self, verifier: Verifier) -> None:
        """A new secret confirmed in the step the old one was used in is accepted.

        Regression: the mark used to belong to the user, so a user who scanned the new QR code
        within 30 s of signing in with the old phone was told the code was already used.
        """
        old, new = TOTP(SECRET), TOTP(OTHER_SECRET)
        assert verifier.verify("alice", old, old.generate(START)).reason == "accepted"
        assert verifier.confirm("alice", new, new.generate(START)).reason == "accepted"
        assert verifier.verify("alice", new, new.generate(START)).reason == "replayed"
        assert verifier.verify("alice", old, old.generate(START)).reason == "replayed"

    def test_same_key_reenrolled_keeps_its_marks(self, verifier: Verifier) -> None:
        """Re-enrolling the same secret (a new object, another period) keeps its marks."""
        first = TOTP(SECRET)
        assert verifier.verify("alice", first, first.generate(START)).reason == "accepted"
        again = TOTP(bytes(SECRET))
        assert verifier.confirm("alice", again, again.generate(START)).reason == "replayed"
        assert credential_id(first) == credential_id(again)
        assert credential_id(first) != credential_id(TOTP(OTHER_SECRET))

    def test_reenrolment_with_longer_period(self, verifier: Verifier, clock: FakeClock) -> None:
        """A new period does not lock the user out: marks are step start times, not numbers."""
        short, long_ = TOTP(SECRET, period=30), TOTP(SECRET, period=60)
        assert verifier.verify("alice", short, short.generate(START)).reason == "accepted"
        clock.advance(60)
        assert verifier.verify("alice", long_, long_.generate(clock())).reason == "accepted"

    def test_marks_of_a_retired_key_expire(
        self, store: Store, verifier: Verifier, clock: FakeClock
    ) -> None:
        """State stays bounded: a retired TOTP key's mark goes once its steps are out of reach."""
        old = TOTP(SECRET)
        assert verifier.verify("alice", old, old.generate(START)).reason == "accepted"
        assert [credential_id(old)] == list(store.marks("alice"))
        clock.advance(3600)
        verifier.prune()
        kept = store.marks("alice")
        if self.prunes:
            assert kept == {}
        else:  # the store expires records on its own clock: the mark must at least be stale
            assert all(mark.keep_until <= clock() for mark in kept.values())

    # -- several credentials ------------------------------------------------------------------

    def test_several_credentials(self, verifier: Verifier, clock: FakeClock) -> None:
        """Any of a user's credentials signs in; match.credential says which; each once."""
        phone, token = TOTP(SECRET), TOTP(OTHER_SECRET)
        both = [phone, token]
        second = verifier.verify("alice", both, token.generate(START))
        assert (second.reason, second.match and second.match.credential) == ("accepted", 1)
        assert verifier.verify("alice", both, token.generate(START)).reason == "replayed"
        first = verifier.verify("alice", both, phone.generate(START))
        assert (first.reason, first.match and first.match.credential) == ("accepted", 0)
        assert verifier.verify("bob", phone, phone.generate(START)).match.credential == 0  # type: ignore[union-attr]
        clock.advance(PERIOD)
        assert verifier.verify("alice", (token,), token.generate(clock())).reason == "accepted"

    def test_several_credentials_cost_one_attempt(
        self, store: Store, clock: FakeClock, totp: TOTP, hotp: HOTP
    ) -> None:
        """A wrong code against a TOTP and an HOTP credential is one failure, not two."""
        verifier = Verifier(store, clock=clock, policy=ThrottlePolicy(base_delay=0))
        verdict = verifier.verify("alice", [totp, hotp], "000000")
        assert (verdict.reason, verdict.failures) == ("invalid", 1)
        mixed = verifier.verify("alice", [totp, hotp], hotp.generate(2))
        assert (
            mixed.reason, mixed.match and mixed.match.credential, mixed.match and mixed.match.step
        ) == ("accepted", 1, 2)  # fmt: skip
        assert verifier.next_counter("alice", hotp) == 3

    def test_malformed_only_when_no_credential_takes_it(
        self, verifier: Verifier, totp: TOTP
    ) -> None:
        """An 8-digit string is malformed for a 6-digit key, a code for an 8-digit one."""
        long_ = TOTP(OTHER_SECRET, digits=8)
        assert verifier.verify("alice", totp, "12345678").reason == "malformed"
        assert verifier.verify("bob", [totp, long_], "12345678").reason == "invalid"
        code = long_.generate(START)
        accepted = verifier.verify("carol", [totp, long_], code)
        assert (accepted.reason, accepted.match and accepted.match.credential) == ("accepted", 1)

    # -- HOTP ---------------------------------------------------------------------------------

    def test_hotp_counter_moves_forward(self, verifier: Verifier, hotp: HOTP) -> None:
        """A match moves the counter past it; codes at or below it never match again.

        A used HOTP code is "invalid" (the window starts past it); "replayed" is what a parallel
        request that computed its match before the counter moved gets.
        """
        assert verifier.next_counter("carol", hotp) == 0
        assert verifier.verify("carol", hotp, hotp.generate(0)).reason == "accepted"
        assert verifier.verify("carol", hotp, hotp.generate(0)).reason == "invalid"
        verdict = verifier.verify("carol", hotp, hotp.generate(4))
        assert (verdict.reason, verdict.match.step, verdict.match.drift) == ("accepted", 4, 3)  # type: ignore[union-attr]
        assert verifier.next_counter("carol", hotp) == 5
        skipped = [verifier.verify("carol", hotp, hotp.generate(n)).reason for n in (2, 3, 4)]
        assert skipped == ["invalid", "invalid", "invalid"]
        assert verifier.next_counter("carol", HOTP(OTHER_SECRET)) == 0

    def test_hotp_look_ahead_bound(self, verifier: Verifier, hotp: HOTP) -> None:
        """A code beyond look_ahead (5) does not match."""
        assert verifier.verify("carol", hotp, hotp.generate(6)).reason == "invalid"
        assert verifier.verify("carol", hotp, hotp.generate(5)).reason == "accepted"

    def test_hotp_and_totp_marks_are_separate(
        self, verifier: Verifier, hotp: HOTP, totp: TOTP
    ) -> None:
        """A TOTP mark (a Unix time) never blocks HOTP counters, and the other way round."""
        assert verifier.verify("dave", totp, totp.generate(START)).reason == "accepted"
        assert verifier.verify("dave", hotp, hotp.generate(0)).reason == "accepted"
        assert verifier.next_counter("dave", hotp) == 1

    def test_resync(self, verifier: Verifier, hotp: HOTP) -> None:
        """Two consecutive codes far ahead resynchronise; both counters are then used."""
        verdict = verifier.resync("erin", hotp, hotp.generate(700), hotp.generate(701))
        assert (verdict.reason, verdict.match.step, verdict.match.drift) == ("accepted", 701, 701)  # type: ignore[union-attr]
        assert verifier.next_counter("erin", hotp) == 702
        assert verifier.verify("erin", hotp, hotp.generate(701)).reason == "invalid"
        assert verifier.verify("erin", hotp, hotp.generate(702)).reason == "accepted"

    def test_resync_refusals(self, verifier: Verifier, hotp: HOTP) -> None:
        """Non-consecutive, out-of-range, malformed or used codes do not resynchronise."""
        verdicts = [
            verifier.resync("erin", hotp, hotp.generate(10), hotp.generate(12)),
            verifier.resync("erin", hotp, hotp.generate(11), hotp.generate(10)),
            verifier.resync("erin", hotp, hotp.generate(1000), hotp.generate(1001)),
            verifier.resync("erin", hotp, "12345", hotp.generate(1)),
        ]
        assert [v.reason for v in verdicts] == ["invalid", "invalid", "invalid", "malformed"]
        first = verifier.resync("erin", hotp, hotp.generate(3), hotp.generate(4))
        assert first.reason == "accepted"
        again = verifier.resync("erin", hotp, hotp.generate(3), hotp.generate(4))
        assert again.reason == "invalid"  # below the counter now: outside the search

    def test_marks_beyond_double_precision(self, store: Store) -> None:
        """Counters above 2**53 compare exactly (Lua numbers and floats would not)."""
        big = 2**53 + 2

        def settle(claim: int) -> str:
            attempt = Attempt(
                user="frank", now=START, kind="hotp", credential="c1", claim=claim, policy=LENIENT
            )
            return store.settle(attempt).reason

        assert settle(big) == "accepted"
        assert settle(big - 1) == "replayed"
        assert settle(big + 1) == "accepted"
        assert settle(2**64 - 2) == "accepted"
        assert settle(2**64 - 3) == "replayed"
        assert store.snapshot("frank", credential="c1").mark.hotp_counter == 2**64 - 2
        assert settle(2**64 - 1) == "accepted"
        assert Mark(hotp_counter=2**64 - 1) == store.marks("frank")["c1"]

    def test_exhausted_hotp_counter(self, verifier: Verifier, store: Store, hotp: HOTP) -> None:
        """After counter 2**64-1 nothing matches any more, and nothing raises."""
        store.settle(
            Attempt(
                user="gina", now=START, kind="hotp", credential=credential_id(hotp),
                claim=2**64 - 1, policy=LENIENT,
            )
        )  # fmt: skip
        assert verifier.verify("gina", hotp, hotp.generate(2**64 - 1)).reason == "invalid"
        assert verifier.resync("gina", hotp, hotp.generate(0), hotp.generate(1)).reason == "invalid"

    # -- throttling ---------------------------------------------------------------------------

    def test_backoff_schedule(self, store: Store, clock: FakeClock, totp: TOTP) -> None:
        """Each failure doubles the wait from base_delay up to max_delay; waits are exact."""
        policy = ThrottlePolicy(max_failures=6, base_delay=2, max_delay=10, lock_duration=1000)
        verifier = Verifier(store, clock=clock, policy=policy)
        waits = []
        for _ in range(6):
            assert verifier.verify("alice", totp, "000000").reason == "invalid"
            refused = verifier.verify("alice", totp, totp.generate(clock()))
            assert (refused.reason, refused.match) == ("throttled", None)
            assert refused.retry_after is not None
            waits.append(refused.retry_after)
            clock.advance(refused.retry_after)
        assert waits == [2.0, 4.0, 8.0, 10.0, 10.0, 1000.0]

    def test_throttled_refuses_correct_code(
        self, store: Store, clock: FakeClock, totp: TOTP
    ) -> None:
        """While backing off, even the right code is refused, and nothing is learned from it."""
        verifier = Verifier(store, clock=clock, policy=ThrottlePolicy(base_delay=5))
        assert verifier.verify("alice", totp, "000000").reason == "invalid"
        clock.advance(2)
        right = verifier.verify("alice", totp, totp.generate(clock()))
        wrong = verifier.verify("alice", totp, "111111")
        assert right == wrong == Verdict(reason="throttled", retry_after=3.0, failures=1)
        clock.advance(3)
        assert verifier.verify("alice", totp, totp.generate(clock())).reason == "accepted"

    def test_lock_after_max_failures(self, store: Store, clock: FakeClock, totp: TOTP) -> None:
        """max_failures failures lock; each failure after the lock expires locks again."""
        policy = ThrottlePolicy(max_failures=3, base_delay=0, lock_duration=600)
        verifier = Verifier(store, clock=clock, policy=policy)
        verdicts = [verifier.verify("alice", totp, "000000") for _ in range(4)]
        assert [v.reason for v in verdicts] == ["invalid", "invalid", "invalid", "throttled"]
        assert [v.failures for v in verdicts] == [1, 2, 3, 3]
        assert [v.locked for v in verdicts] == [False, False, True, False]
        clock.advance(600)
        relock = verifier.verify("alice", totp, "000000")
        assert (relock.reason, relock.failures, relock.locked) == ("invalid", 4, True)
        locked = verifier.verify("alice", totp, totp.generate(clock()))
        assert (locked.reason, locked.retry_after) == ("throttled", 600.0)
        clock.advance(600)
        assert verifier.verify("alice", totp, totp.generate(clock())).reason == "accepted"
        assert verifier.verify("alice", totp, "000000").reason == "invalid"  # count was reset

    def test_success_resets_count(self, store: Store, clock: FakeClock, totp: TOTP) -> None:
        """Failures must be consecutive: a success in between starts the count again."""
        policy = ThrottlePolicy(max_failures=2, base_delay=0)
        verifier = Verifier(store, clock=clock, policy=policy)
        for _ in range(3):
            assert verifier.verify("alice", totp, "000000").reason == "invalid"
            clock.advance(PERIOD)
            accepted = verifier.verify("alice", totp, totp.generate(clock()))
            assert (accepted.reason, accepted.failures) == ("accepted", 0)

    def test_replayed_and_malformed_count(self, store: Store, clock: FakeClock, totp: TOTP) -> None:
        """Replayed and malformed codes are failures too."""
        verifier = Verifier(store, clock=clock, policy=ThrottlePolicy(max_failures=3, base_delay=0))
        code = totp.generate(START)
        reasons = [verifier.verify("alice", totp, c).reason for c in (code, code, "x", "", code)]
        assert reasons == ["accepted", "replayed", "malformed", "malformed", "throttled"]

    def test_reset_unlocks_but_keeps_marks(
        self, store: Store, clock: FakeClock, totp: TOTP, hotp: HOTP
    ) -> None:
        """reset(user) clears the lock and count, never the replay marks."""
        verifier = Verifier(store, clock=clock, policy=ThrottlePolicy(max_failures=1))
        code = totp.generate(START)
        assert verifier.verify("alice", totp, code).reason == "accepted"
        assert verifier.verify("alice", hotp, hotp.generate(0)).reason == "accepted"
        assert verifier.verify("alice", totp, code).reason == "replayed"
        assert verifier.verify("alice", totp, code).reason == "throttled"
        verifier.reset("alice")
        assert verifier.verify("alice", totp, code).reason == "replayed"
        verifier.reset("alice")
        assert verifier.verify("alice", hotp, hotp.generate(0)).reason == "invalid"
        verifier.reset("alice")
        verifier.reset("nobody")  # unknown users are fine
        assert verifier.next_counter("alice", hotp) == 1

    def test_reset_of_totp_only_user(self, store: Store, clock: FakeClock, totp: TOTP) -> None:
        """A reset keeps a TOTP mark while it matters, even for a user without HOTP."""
        verifier = Verifier(store, clock=clock, policy=ThrottlePolicy(max_failures=1))
        code = totp.generate(START)
        assert verifier.verify("alice", totp, code).reason == "accepted"
        assert verifier.verify("alice", totp, "000000").reason == "invalid"
        verifier.reset("alice")
        assert verifier.verify("alice", totp, code).reason == "replayed"
        clock.advance(3600)
        verifier.reset("alice")  # the mark no longer matters; state may go
        assert verifier.verify("alice", totp, totp.generate(clock())).reason == "accepted"

    def test_retry_after_reads_the_wait_without_counting(
        self, store: Store, clock: FakeClock, totp: TOTP
    ) -> None:
        """retry_after is None until a failure, then the wait left; reading it counts nothing."""
        policy = ThrottlePolicy(max_failures=2, base_delay=4, lock_duration=600)
        verifier = Verifier(store, clock=clock, policy=policy)
        assert None is verifier.retry_after("alice")
        assert verifier.verify("alice", totp, "000000").reason == "invalid"
        clock.advance(1.5)
        assert [verifier.retry_after("alice") for _ in range(2)] == [2.5, 2.5]
        assert verifier.retry_after("alice", source="10.0.0.1") == 2.5
        clock.advance(2.5)
        assert None is verifier.retry_after("alice")
        assert verifier.verify("alice", totp, "000000").reason == "invalid"
        assert verifier.retry_after("alice") == 600.0
        verifier.reset("alice")
        assert None is verifier.retry_after("alice")
        assert None is verifier.retry_after("nobody")

    def test_one_users_lock_spares_others(self, store: Store, clock: FakeClock, totp: TOTP) -> None:
        """Per-user isolation: a locked user does not throttle anyone else."""
        verifier = Verifier(store, clock=clock, policy=ThrottlePolicy(max_failures=1))
        assert verifier.verify("mallory", totp, "000000").reason == "invalid"
        assert verifier.verify("mallory", totp, "000000").reason == "throttled"
        assert verifier.verify("alice", totp, totp.generate(START)).reason == "accepted"

    def test_prune_keeps_what_matters(
        self, store: Store, clock: FakeClock, totp: TOTP, hotp: HOTP
    ) -> None:
        """Pruning never drops an HOTP counter, a failure count or a live TOTP mark."""
        verifier = Verifier(store, clock=clock, policy=ThrottlePolicy(max_failures=1))
        assert verifier.verify("totp-user", totp, totp.generate(START)).reason == "accepted"
        assert verifier.verify("hotp-user", hotp, hotp.generate(3)).reason == "accepted"
        assert verifier.verify("locked", totp, "000000").reason == "invalid"
        verifier.prune()
        assert verifier.verify("totp-user", totp, totp.generate(START)).reason == "replayed"
        clock.advance(10 * 365 * 24 * 3600)
        verifier.prune()
        assert verifier.next_counter("hotp-user", hotp) == 4
        assert verifier.verify("locked", totp, "000000").reason == "invalid"
        assert verifier.verify("locked", totp, totp.generate(clock())).reason == "throttled"

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
        assert verifier.prune() == 0
        assert verifier.verify("early", totp, "000000").reason == "invalid"
        assert verifier.retry_after("early") == 100.0  # the count was kept: locked again
        clock.advance(1)
        assert verifier.prune() == 1
        assert verifier.verify("late", totp, "000000").reason == "invalid"
        assert verifier.retry_after("late") == 5.0  # counted as a first failure

    @staticmethod
    def fail_twice(verifier: Verifier, clock: FakeClock, totp: TOTP) -> None:
        """Give "early" and "late" two failures each, 5 s apart (the second locks)."""
        for _ in range(2):
            for user in ("early", "late"):
                assert verifier.verify(user, totp, "000000").reason == "invalid"
            clock.advance(5)

    def test_wait_never_outlasts_the_policy(
        self, store: Store, clock: FakeClock, totp: TOTP
    ) -> None:
        """Regression: a lock set while the clock ran ten years ahead lasted ten years.

        A stored wait is clamped, when read, to the policy's longest wait from now.
        """
        policy = ThrottlePolicy(max_failures=1, lock_duration=600, source_lock_duration=60)
        verifier = Verifier(store, clock=clock, policy=policy)
        clock.advance(10 * 365 * 24 * 3600)
        assert verifier.verify("alice", totp, "000000").reason == "invalid"
        assert verifier.record_failure("bob", source="10.0.0.1").reason == "invalid"
        clock.set(START)
        assert verifier.retry_after("alice") == 600.0
        assert verifier.retry_after("bob", source="10.0.0.1") == 600.0
        refused = verifier.verify("alice", totp, totp.generate(clock()))
        assert (refused.reason, refused.retry_after) == ("throttled", 600.0)
        assert verifier.record_failure("bob", source="10.0.0.1").reason == "throttled"
        clock.advance(600)  # the first refusal fixed the clamped wait: it ends now
        assert None is verifier.retry_after("alice")
        assert None is verifier.retry_after("bob", source="10.0.0.1")
        assert verifier.verify("alice", totp, totp.generate(clock())).reason == "accepted"

    # -- two budgets ---------------------------------------------------------------------------

    def test_strangers_cannot_lock_a_person_out(
        self, store: Store, clock: FakeClock, totp: TOTP
    ) -> None:
        """1,000 instant wrong passwords from one source: at most 10 examined; alice is fine.

        Regression: wrong passwords used to share the code budget, so anyone who knew a
        username locked its owner out for a day with ten of them.
        """
        verifier = Verifier(store, clock=clock)
        reasons = Counter(
            verifier.record_failure("alice", source="203.0.113.9").reason for _ in range(1000)
        )
        assert reasons["invalid"] <= 10
        assert reasons["invalid"] + reasons["throttled"] == 1000
        verdict = verifier.verify("alice", totp, totp.generate(START), source="198.51.100.7")
        assert (verdict.reason, verdict.ok) == ("accepted", True)

    def test_a_locked_pair_is_refused_even_with_the_right_code(
        self, store: Store, clock: FakeClock, totp: TOTP
    ) -> None:
        """A (user, source) pair locks after source_max_failures wrong passwords.

        Then everything from it is refused, the right password and code included, and nothing
        else is touched.
        """
        policy = ThrottlePolicy(base_delay=0, source_max_failures=3, source_lock_duration=900)
        verifier = Verifier(store, clock=clock, policy=policy)
        verdicts = [verifier.record_failure("alice", source="evil") for _ in range(4)]
        assert [v.reason for v in verdicts] == ["invalid"] * 3 + ["throttled"]
        assert [v.failures for v in verdicts] == [1, 2, 3, 3]
        assert [v.locked for v in verdicts] == [False, False, True, False]
        refused = verifier.verify("alice", totp, totp.generate(START), source="evil")
        assert (refused.reason, refused.retry_after) == ("throttled", 900.0)
        assert verifier.verify("alice", totp, totp.generate(START)).reason == "accepted"
        assert verifier.record_failure("alice", source="home").reason == "invalid"
        assert verifier.record_failure("bob", source="evil").reason == "invalid"
        clock.advance(900)
        assert verifier.record_failure("alice", source="evil").reason == "invalid"  # relocks
        assert verifier.retry_after("alice", source="evil") == 900.0
        verifier.reset("alice")
        assert None is verifier.retry_after("alice", source="evil")

    def test_success_clears_the_pair(self, store: Store, clock: FakeClock, totp: TOTP) -> None:
        """A full sign-in from a source clears that source's wrong-password count."""
        policy = ThrottlePolicy(base_delay=0, source_max_failures=2)
        verifier = Verifier(store, clock=clock, policy=policy)
        assert verifier.record_failure("alice", source="home").failures == 1
        assert verifier.verify("alice", totp, totp.generate(START), source="home").ok
        assert verifier.record_failure("alice", source="home").failures == 1

    def test_a_wrong_password_while_the_user_is_locked_says_throttled(
        self, store: Store, clock: FakeClock, totp: TOTP
    ) -> None:
        """While the user's code budget is locked, a wrong password is "throttled" too.

        So the answer does not tell which password was right.
        """
        verifier = Verifier(store, clock=clock, policy=ThrottlePolicy(max_failures=1))
        assert verifier.verify("alice", totp, "000000", source="a").reason == "invalid"
        assert verifier.record_failure("alice", source="b").reason == "throttled"
        assert (
            verifier.verify("alice", totp, totp.generate(START), source="b").reason == "throttled"
        )

    def test_the_guess_bound_holds_across_sources(
        self, store: Store, clock: FakeClock, totp: TOTP
    ) -> None:
        """An attacker rotating through 200 sources gets max_failures examined codes per lock."""
        policy = ThrottlePolicy(max_failures=10, base_delay=0, lock_duration=3600)
        verifier = Verifier(store, clock=clock, policy=policy)
        verdicts = [
            verifier.verify("alice", totp, _wrong(totp, START, 1 + n), source=f"10.0.{n}.1")
            for n in range(200)
        ]
        assert Counter({"invalid": 10, "throttled": 190}) == Counter(v.reason for v in verdicts)
        right = verifier.verify("alice", totp, totp.generate(START), source="192.0.2.1")
        assert (right.reason, right.retry_after) == ("throttled", 3600.0)
        verifier.reset("alice")
        assert verifier.verify("alice", totp, totp.generate(START)).reason == "accepted"

    def test_at_most_100_consecutive_failures_ever(
        self, store: Store, clock: FakeClock, totp: TOTP
    ) -> None:
        """NIST SP 800-63B: after 100 consecutive failed codes, only a reset unlocks."""
        policy = ThrottlePolicy(max_failures=10, base_delay=0, lock_duration=60)
        verifier = Verifier(store, clock=clock, policy=policy)
        examined = 0
        for _ in range(300):
            verdict = verifier.verify("alice", totp, "000000")
            examined += verdict.reason == "invalid"
            if verdict.reason == "throttled":
                clock.advance(60)
        assert examined == 100
        locked = verifier.verify("alice", totp, totp.generate(clock()))
        assert ("throttled", math.inf) == (locked.reason, locked.retry_after)
        assert math.inf == verifier.retry_after("alice")
        clock.advance(10 * 365 * 24 * 3600)
        verifier.prune()
        assert verifier.verify("alice", totp, totp.generate(clock())).reason == "throttled"
        verifier.reset("alice")
        assert verifier.verify("alice", totp, totp.generate(clock())).reason == "accepted"

    # -- races --------------------------------------------------------------------------------

    def test_race_same_code_threads(self, verifier: Verifier, totp: TOTP) -> None:
        """N threads submit the same valid code at once: exactly one is accepted."""
        code = totp.generate(START)
        reasons = run_together(
            THREADS, lambda i: verifier.verify("alice", totp, code, source=f"s{i % 3}")
        )
        assert Counter({"accepted": 1, "replayed": THREADS - 1}) == reasons

    def test_race_same_hotp_code_threads(self, verifier: Verifier, hotp: HOTP) -> None:
        """N threads submit the same HOTP code at once: exactly one is accepted.

        The others are "replayed" (their window was read before the counter moved) or "invalid"
        (read after): which, depends on the interleaving.
        """
        code = hotp.generate(2)
        reasons = run_together(THREADS, lambda _: verifier.verify("carol", hotp, code))
        assert reasons.pop("accepted") == 1
        assert reasons.total() == THREADS - 1
        assert set() == set(reasons) - {"replayed", "invalid"}

    def test_race_guesses_threads(self, store: Store, clock: FakeClock, totp: TOTP) -> None:
        """N parallel wrong guesses from N sources against a limit of k: exactly k examined."""
        limit = 5
        policy = ThrottlePolicy(max_failures=limit, base_delay=0)
        verifier = Verifier(store, clock=clock, policy=policy)
        guesses = [_wrong(totp, START, 1 + n) for n in range(THREADS)]
        reasons = run_together(
            THREADS, lambda i: verifier.verify("alice", totp, guesses[i], source=f"10.1.{i}.1")
        )
        assert Counter({"invalid": limit, "throttled": THREADS - limit}) == reasons

    def test_race_wrong_passwords_threads(self, store: Store, clock: FakeClock) -> None:
        """N parallel wrong passwords from one source: exactly source_max_failures counted."""
        policy = ThrottlePolicy(base_delay=0, source_max_failures=4)
        verifier = Verifier(store, clock=clock, policy=policy)
        reasons = run_together(THREADS, lambda _: verifier.record_failure("alice", source="x"))
        assert Counter({"invalid": 4, "throttled": THREADS - 4}) == reasons

    def test_race_failure_counts_are_exact(
        self, store: Store, clock: FakeClock, totp: TOTP
    ) -> None:
        """32 parallel wrong codes without back-off: failure counts are exactly 1..32."""
        verifier = Verifier(store, clock=clock, policy=LENIENT)
        counts: list[int] = []
        lock = threading.Lock()

        def guess(index: int) -> Verdict:
            verdict = verifier.verify("alice", totp, _wrong(totp, START, 1 + index))
            with lock:
                counts.append(verdict.failures)
            return verdict

        assert Counter({"invalid": 32}) == run_together(32, guess)
        assert list(range(1, 33)) == sorted(counts)

    # -- user ids -----------------------------------------------------------------------------

    @pytest.mark.parametrize("user", ["alice\ud800", "alice\nbob", "alice\x85"],
                             ids=["surrogate", "newline", "c1"])  # fmt: skip
    def test_verifier_refuses_bad_user_before_the_store(
        self, verifier: Verifier, store: Store, totp: TOTP, user: str
    ) -> None:
        """A user id with a lone surrogate or control character is a ConfigurationError.

        Regression: it used to reach the store, where SQLite and Redis failed to encode it
        (a StoreError that looked like an outage). Sources are checked the same way.
        """
        with pytest.raises(ConfigurationError, match="user contains"):
            verifier.verify(user, totp, totp.generate(START))
        with pytest.raises(ConfigurationError, match="source contains"):
            verifier.record_failure("alice", source=user)
        assert store.marks("alice") == {}

    def test_unencodable_user_fails_closed(self, store: Store) -> None:
        """Called directly with a key it cannot encode, a store raises StoreError or copes.

        Regression: RedisStore.mark and reset caught only RedisError, so the client's
        UnicodeEncodeError escaped them (settle already failed closed).
        """
        user = "alice\ud800"
        calls: list[Callable[[], object]] = [
            lambda: store.settle(Attempt(user=user, now=START, kind="totp", policy=LENIENT)),
            lambda: store.settle(
                Attempt(user="a", source=user, now=START, kind="first_factor", policy=LENIENT)
            ),
            lambda: store.snapshot(user),
            lambda: store.marks(user),
            lambda: store.reset(user, now=START),
        ]
        for call in calls:
            if self.encodes_any_user:
                call()
            else:
                with pytest.raises(StoreError):
                    call()
