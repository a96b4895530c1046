"""Property: every store gives the same verdicts as MemoryStore for any sequence of requests."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isoms_otp import (
    HOTP,
    TOTP,
    MemoryStore,
    RedisStore,
    SQLiteStore,
    Store,
    ThrottlePolicy,
    Verdict,
    Verifier,
)
from isoms_otp.stores import Attempt, Settlement
from isoms_otp.testing import FakeClock

SECRET = bytes(range(20))
START = 30 * 56_666_667 + 10
POLICY = ThrottlePolicy(
    max_failures=4, base_delay=1.5, max_delay=5, lock_duration=90, source_max_failures=3,
    source_lock_duration=40,
)  # fmt: skip
TOTP_KEY, HOTP_KEY = TOTP(SECRET), HOTP(SECRET)
OTHER_KEY = TOTP(bytes(range(40, 60)))

users = st.sampled_from(["alice", "bob"])
sources = st.sampled_from([None, "10.0.0.1", "10.0.0.2"])
operations = st.lists(
    st.one_of(
        st.tuples(st.just("advance"), st.integers(-90, 200)),
        st.tuples(st.just("totp"), users, st.integers(-3, 3), sources),
        st.tuples(st.just("both"), users, st.integers(-2, 2), st.booleans()),
        st.tuples(st.just("password"), users, sources),
        st.tuples(st.just("recovery"), users, st.sampled_from(["s1", "s2"]), st.integers(0, 3)),
        st.tuples(st.just("hotp"), users, st.integers(0, 15)),
        st.tuples(st.just("resync"), users, st.integers(0, 15)),
        st.tuples(st.just("junk"), users, st.sampled_from(["000000", "12 34", "", "1234567"])),
        st.tuples(st.just("reset"), users),
        st.tuples(st.just("prune")),
    ),
    max_size=40,
)


def apply(verifier: Verifier, clock: FakeClock, operation: tuple[Any, ...]) -> object:
    """Run one operation; return what it answered."""
    name, *args = operation
    if name == "advance":
        clock.set(max(START, clock() + args[0]))
        return None
    if name == "totp":
        user, steps, source = args
        code = TOTP_KEY.generate(clock() + 30 * steps)
        return verifier.verify(user, TOTP_KEY, code, source=source)
    if name == "both":
        user, steps, other = args
        key = OTHER_KEY if other else TOTP_KEY
        return verifier.verify(user, [TOTP_KEY, OTHER_KEY], key.generate(clock() + 30 * steps))
    if name == "password":
        user, source = args
        return verifier.record_failure(user, source=source)
    if name == "recovery":
        user, set_id, index = args
        attempt = Attempt(
            user=user, now=clock(), kind="recovery", credential=set_id, claim=index,
            policy=POLICY,
        )  # fmt: skip
        return verifier.store.settle(attempt)
    if name == "hotp":
        user, counter = args
        return verifier.verify(user, HOTP_KEY, HOTP_KEY.generate(counter))
    if name == "resync":
        user, counter = args
        codes = HOTP_KEY.generate(counter), HOTP_KEY.generate(counter + 1)
        return verifier.resync(user, HOTP_KEY, *codes)
    if name == "junk":
        user, code = args
        return verifier.verify(user, TOTP_KEY, code)
    if name == "reset":
        verifier.reset(args[0])
        return None
    return verifier.prune()


@settings(max_examples=150, deadline=None)
@given(operations)
def test_memory_and_sqlite_agree(sequence: list[tuple[Any, ...]]) -> None:
    """Every verdict, wait and prune count is the same for both stores."""
    answers: list[list[object]] = []
    for store in (MemoryStore(), SQLiteStore(":memory:")):
        clock = FakeClock(START)
        verifier = Verifier(store, clock=clock, policy=POLICY)
        answers.append([apply(verifier, clock, operation) for operation in sequence])
        store.close()
    assert answers[0] == answers[1]
    accepted = [a for a in answers[0] if isinstance(a, Verdict) and a.ok]
    assert all(a.match is not None for a in accepted)


def run(store: Store, sequence: list[tuple[Any, ...]]) -> list[object]:
    """Apply ``sequence`` to a fresh verifier on ``store``; return its verdicts only."""
    clock = FakeClock(START)
    verifier = Verifier(store, clock=clock, policy=POLICY)
    answers = [apply(verifier, clock, operation) for operation in sequence]
    return [
        answer if isinstance(answer, (Verdict, Settlement, int)) else None for answer in answers
    ]


@pytest.mark.redis
def test_memory_and_redis_agree(redis_url: str) -> None:
    """The Lua script and decide() give the same verdicts and waits (Redis expires on its own)."""
    store = RedisStore.from_url(redis_url)
    prefixes = (f"example-{n}:" for n in itertools.count())

    @settings(max_examples=60, deadline=None)
    @given(operations)
    def agree(sequence: list[tuple[Any, ...]]) -> None:
        redis_store = RedisStore(store._client, prefix=next(prefixes))
        # Pruning forgets old failure counts on the fake clock; Redis expires keys on its own
        # clock (long after this test), so the comparison leaves pruning out.
        sequence = [operation for operation in sequence if operation[0] != "prune"]
        assert run(MemoryStore(), sequence) == run(redis_store, sequence)

    agree()
    store.close()


@pytest.mark.servers
@pytest.mark.parametrize("server", ["postgres", "mariadb"])
def test_memory_and_sql_agree(request: pytest.FixtureRequest, server: str) -> None:
    """SQLStore (PostgreSQL's function, MariaDB's transaction) gives decide()'s verdicts, waits
    and prune counts."""
    import sqlalchemy as sa  # noqa: PLC0415 - the sql extra, needed only here

    from isoms_otp import SQLStore  # noqa: PLC0415
    from isoms_otp.stores import sql as sql_store  # noqa: PLC0415

    url = request.getfixturevalue(f"{server}_session").url
    engine = sa.create_engine(url, pool_timeout=2)
    store = SQLStore(engine)

    @settings(max_examples=40, deadline=None)
    @given(operations)
    def agree(sequence: list[tuple[Any, ...]]) -> None:
        with engine.begin() as conn:
            for table in reversed(sql_store.metadata.sorted_tables):
                conn.execute(table.delete())
        assert run(MemoryStore(), sequence) == run(store, sequence)

    agree()
    engine.dispose()
