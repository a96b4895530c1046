"""RedisStore beyond the contract: expiry, failing closed, script reloads, the optional extra."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

import isoms_otp
from isoms_otp import (
    HOTP,
    TOTP,
    ConfigurationError,
    RedisStore,
    StoreError,
    ThrottlePolicy,
    Verifier,
)
from isoms_otp.stores import redis as redis_store
from isoms_otp.testing import FakeClock

pytestmark = pytest.mark.redis

SECRET = bytes(range(20))
START = 30 * 56_666_667 + 10
POLICY = ThrottlePolicy(max_failures=3, base_delay=0)
KEY = "isoms-otp:user:alice"
SRC = str(Path(isoms_otp.__file__).resolve().parent.parent)


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url) as conn:
        yield conn


@pytest.fixture
def store(redis_url: str) -> Iterator[RedisStore]:
    store = RedisStore.from_url(redis_url)
    yield store
    store.close()


def make(store: RedisStore, clock: FakeClock | None = None) -> Verifier:
    return Verifier(store, clock=clock or FakeClock(START), policy=POLICY)


def test_totp_only_key_expires(store: RedisStore, client: redis.Redis) -> None:
    """A TOTP-only user's key expires once its mark lies below every window (11 steps)."""
    totp = TOTP(SECRET)
    assert make(store).verify("alice", totp, totp.generate(START))
    ttl = client.pttl(KEY)
    # The step started 10 s before START; it stops mattering 11 periods after its start.
    assert 0 < ttl <= (12 * 30 - 10) * 1000
    assert ttl > (12 * 30 - 10 - 60) * 1000  # set from the script, not some default


def test_hotp_persists_and_failures_expire_late(store: RedisStore, client: redis.Redis) -> None:
    """Keys with an HOTP counter never expire; failures keep a key until a lock period after."""
    totp, hotp = TOTP(SECRET), HOTP(SECRET)
    verifier = make(store)
    assert verifier.verify("alice", totp, totp.generate(START))
    assert not verifier.verify("alice", totp, "000000")
    assert 86_340_000 < client.pttl(KEY) <= 86_400_000  # no back-off here; a lock_duration
    verifier.reset("alice")
    assert 0 < client.pttl(KEY)
    assert verifier.verify("bob", hotp, hotp.generate(0))
    assert -1 == client.pttl("isoms-otp:user:bob")
    assert not verifier.verify("bob", hotp, "000000")
    verifier.reset("bob")
    assert -1 == client.pttl("isoms-otp:user:bob")
    assert 0 == store.prune(START)


def test_reset_drops_state_that_no_longer_matters(store: RedisStore, client: redis.Redis) -> None:
    """A reset deletes a key that no longer matters, and keeps the expiry of one that does."""
    clock, totp = FakeClock(START), TOTP(SECRET)
    verifier = make(store, clock)
    verifier.reset("alice")
    assert 0 == client.exists(KEY)
    assert not verifier.verify("alice", totp, "000000")
    verifier.reset("alice")
    assert 0 < client.pttl(KEY)  # no failures left; it expires with its keep-until time
    assert verifier.verify("alice", totp, totp.generate(START))
    clock.advance(3600)
    verifier.reset("alice")
    assert 0 == client.exists(KEY)


def test_server_stopped_mid_test(own_redis: Any) -> None:
    """Stopping the server gives StoreError for every operation, never a verdict."""
    totp, hotp = TOTP(SECRET), HOTP(SECRET)
    store = RedisStore.from_url(own_redis.url, timeout=1)
    verifier = make(store)
    assert verifier.verify("alice", totp, totp.generate(START))
    own_redis.stop()
    calls: list[Callable[[], object]] = [
        lambda: verifier.verify("bob", totp, totp.generate(START)),
        lambda: verifier.verify("bob", hotp, hotp.generate(0)),
        lambda: verifier.reset("bob"),
        lambda: verifier.next_counter("bob"),
        lambda: verifier.retry_after("bob"),
    ]
    for call in calls:
        with pytest.raises(StoreError, match="Redis store failed"):
            call()
    store.close()


def test_nothing_listening() -> None:
    """A server that is not there is a StoreError from the first verification."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = RedisStore.from_url(f"redis://127.0.0.1:{port}/0", timeout=1)
    totp = TOTP(SECRET)
    with pytest.raises(StoreError):
        make(store).verify("alice", totp, totp.generate(START))


@pytest.mark.parametrize(
    ("field", "value"),
    [("b", "soon"), ("f", "many"), ("t", "12x"), ("t", "012"), ("k", "later")],
    ids=["blocked", "failures", "mark", "mark-leading-zero", "keep"],
)
def test_corrupt_hash_fails_closed(
    store: RedisStore, client: redis.Redis, field: str, value: str
) -> None:
    """A corrupt field raises StoreError, and the script writes nothing before it checks."""
    totp = TOTP(SECRET)
    verifier = make(store)
    assert not verifier.verify("alice", totp, "000000")
    client.hset(KEY, field, value)
    before = client.hgetall(KEY)
    code = totp.generate(START)
    call = (
        (lambda: verifier.reset("alice"))
        if field == "k"
        else (lambda: verifier.verify("alice", totp, code))
    )
    with pytest.raises(StoreError):
        call()
    assert before == client.hgetall(KEY)


def test_far_future_keeps_key(store: RedisStore, client: redis.Redis) -> None:
    """A TOTP mark whose expiry is beyond what PEXPIRE takes keeps the key instead of failing."""
    now = 10.0**20
    for kind in ("settle", "reset"):
        outcome = store.settle(
            "alice", now=now, kind="totp", step=int(now), failure="invalid",
            keep_until=now * 2, policy=POLICY,
        )  # fmt: skip
        if kind == "reset":
            store.reset("alice", now=now)
        assert -1 == client.pttl(KEY)
        client.delete(KEY)
    assert "accepted" == outcome.reason


def test_corrupt_mark_read(store: RedisStore, client: redis.Redis) -> None:
    """An HOTP mark that is not a number raises StoreError."""
    client.hset(KEY, "h", "-3")
    with pytest.raises(StoreError, match="corrupt"):
        make(store).next_counter("alice")


def test_corrupt_blocked_until_read(store: RedisStore, client: redis.Redis) -> None:
    """A blocked-until time that is not a number raises StoreError (retry_after's read)."""
    client.hset(KEY, "b", "soon")
    with pytest.raises(StoreError, match="corrupt"):
        make(store).retry_after("alice")


def test_script_cache_flushed(store: RedisStore, client: redis.Redis) -> None:
    """After SCRIPT FLUSH (a restart, a failover) the script is loaded again transparently."""
    totp = TOTP(SECRET)
    verifier = make(store)
    assert verifier.verify("alice", totp, totp.generate(START))
    client.script_flush()
    assert "replayed" == verifier.verify("alice", totp, totp.generate(START)).reason


def test_decoded_responses_client(redis_url: str) -> None:
    """A client with decode_responses=True works the same."""
    totp, hotp = TOTP(SECRET), HOTP(SECRET)
    store = RedisStore(redis.Redis.from_url(redis_url, decode_responses=True), prefix="p:")
    verifier = make(store)
    assert "accepted" == verifier.verify("alice", totp, totp.generate(START)).reason
    assert "accepted" == verifier.verify("alice", hotp, hotp.generate(0)).reason
    assert 1 == verifier.next_counter("alice")
    assert not verifier.verify("alice", totp, "000000")
    locked = verifier.verify("alice", totp, "000000")
    assert not locked
    assert not verifier.verify("alice", totp, "000000")
    assert ("throttled", 86400.0) == (
        verifier.verify("alice", totp, "000000").reason,
        verifier.verify("alice", totp, "000000").retry_after,
    )
    store.close()


@pytest.mark.parametrize(
    "reply",
    [["surprise", ""], ["throttled", "-1"], ["throttled", "never"], ["accepted"]],
    ids=["unknown-reason", "negative-wait", "text-wait", "short"],
)
def test_unexpected_reply(store: RedisStore, reply: list[str]) -> None:
    """A reply the script cannot have produced is a StoreError, never a verdict."""
    object.__setattr__(store, "_settle", lambda **_: reply)
    totp = TOTP(SECRET)
    with pytest.raises(StoreError):
        make(store).verify("alice", totp, totp.generate(START))


def test_schedule_formatted_once_per_policy(
    store: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: every settle used to format the whole throttle schedule again.

    With max_failures=100 that was 100 repr() calls per verification on the hot path. Now
    it is done once per policy (equal policies share it), and the script still gets the
    schedule, exactly, in the same one call.
    """
    sent: list[list[str]] = []

    def script(*, keys: list[str], args: list[str]) -> list[str]:
        sent.append(args)
        return ["invalid", ""]

    formatted: list[float] = []

    def counting_text(value: float) -> str:
        formatted.append(value)
        return repr(float(value))

    object.__setattr__(store, "_settle", script)
    monkeypatch.setattr("isoms_otp.stores.redis._text", counting_text)
    redis_store._schedule_args.cache_clear()
    policy = ThrottlePolicy(max_failures=100, base_delay=0.1, max_delay=7.0)
    twin = ThrottlePolicy(max_failures=100, base_delay=0.1, max_delay=7.0)
    per_call = []
    for each in (policy, policy, twin):
        before = len(formatted)
        store.settle(
            "alice", now=START, kind="totp", step=None, failure="invalid", keep_until=0,
            policy=each,
        )  # fmt: skip
        per_call.append(len(formatted) - before)
    assert [2 + 100, 2, 2] == per_call  # now and keep_until are per call
    expected = [repr(delay) for delay in policy.schedule]
    assert [expected] * 3 == [args[5:] for args in sent]


def test_bad_url_hides_password() -> None:
    """A malformed URL is a ConfigurationError that does not echo the URL (or its password)."""
    with pytest.raises(ConfigurationError) as caught:
        RedisStore.from_url("http://user:hunter2@example")
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"timeout": "1"}, TypeError),
        ({"timeout": 0}, ConfigurationError),
        ({"prefix": ""}, ConfigurationError),
    ],
    ids=["timeout-str", "timeout-zero", "empty-prefix"],
)
def test_options_validated(redis_url: str, options: dict[str, Any], error: type[Exception]) -> None:
    """from_url refuses nonsense options."""
    with pytest.raises(error):
        RedisStore.from_url(redis_url, **options)


def test_client_type() -> None:
    """A non-client is a TypeError."""
    with pytest.raises(TypeError, match=r"redis\.Redis"):
        RedisStore(object())  # type: ignore[arg-type]


def test_repr(store: RedisStore) -> None:
    """The repr shows the prefix, not the connection (which may hold a password)."""
    assert "RedisStore(prefix='isoms-otp:user:')" == repr(store)


def test_lazy_import_and_missing_extra() -> None:
    """The core imports without redis; RedisStore then raises MissingExtraError naming the extra."""
    script = (
        "import sys; sys.modules['redis'] = None\n"
        "import isoms_otp\n"
        "from isoms_otp import TOTP, Verifier, SQLiteStore\n"
        "try:\n"
        "    isoms_otp.RedisStore\n"
        "except isoms_otp.MissingExtraError as exc:\n"
        "    print(isinstance(exc, ImportError), exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": SRC},
    )
    assert "True RedisStore needs the redis client library: pip install 'isoms-otp[redis]'\n" == (
        done.stdout
    )


def test_unknown_attribute() -> None:
    """Other missing names are still AttributeError."""
    with pytest.raises(AttributeError):
        isoms_otp.NoSuchThing  # noqa: B018
    with pytest.raises(AttributeError):
        isoms_otp.stores.NoSuchThing  # noqa: B018
    assert RedisStore is isoms_otp.stores.RedisStore
