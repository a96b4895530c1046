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
from isoms_otp.stores import Attempt
from isoms_otp.stores import redis as redis_store
from isoms_otp.testing import FakeClock
from isoms_otp.verifier import credential_id

pytestmark = pytest.mark.redis

SECRET = bytes(range(20))
START = 30 * 56_666_667 + 10
POLICY = ThrottlePolicy(max_failures=3, base_delay=0)
#: The user's code budget, and the marks of the SECRET credential.
KEY = "isoms-otp:v2:5{alice}:u"
MARK = f"isoms-otp:v2:5{{alice}}:c:{credential_id(TOTP(SECRET))}"
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
    """A TOTP-only mark's key expires once its mark lies below every window (11 steps)."""
    totp = TOTP(SECRET)
    assert make(store).verify("alice", totp, totp.generate(START))
    ttl = client.pttl(MARK)
    # The step started 10 s before START; it stops mattering 11 periods after its start.
    assert 0 < ttl <= (12 * 30 - 10) * 1000
    assert ttl > (12 * 30 - 10 - 60) * 1000  # set from the script, not some default
    assert 0 == client.exists(KEY)  # an acceptance leaves no budget behind


def test_hotp_persists_and_failures_expire_late(store: RedisStore, client: redis.Redis) -> None:
    """Keys with an HOTP counter never expire; failures keep a key until a lock period after."""
    totp, hotp = TOTP(SECRET), HOTP(SECRET)
    verifier = make(store)
    assert verifier.verify("alice", totp, totp.generate(START))
    assert not verifier.verify("alice", totp, "000000")
    assert 86_340_000 < client.pttl(KEY) <= 86_400_000  # no back-off here; a lock_duration
    verifier.reset("alice")
    assert 0 == client.exists(KEY)
    assert 0 < client.pttl(MARK)
    assert verifier.verify("bob", hotp, hotp.generate(0))
    bob = f"isoms-otp:v2:3{{bob}}:c:{credential_id(hotp)}"
    assert -1 == client.pttl(bob)
    assert not verifier.verify("bob", hotp, "000000")
    verifier.reset("bob")
    assert -1 == client.pttl(bob)
    assert 0 == store.prune(START)


def test_pair_keys_expire_and_reset_clears_them(store: RedisStore, client: redis.Redis) -> None:
    """A (user, source) key expires a lock period after its wait; reset deletes every one."""
    verifier = make(store)
    for source in ("10.0.0.1", "a*b[c]?"):  # glob characters in a source are matched literally
        assert "invalid" == verifier.record_failure("alice", source=source).reason
    keys = sorted(client.keys("isoms-otp:v2:5{alice}:s:*"))
    assert [b"isoms-otp:v2:5{alice}:s:10.0.0.1", b"isoms-otp:v2:5{alice}:s:a*b[c]?"] == keys
    assert all(3_500_000 < client.pttl(key) <= 3_601_000 for key in keys)
    assert "invalid" == verifier.record_failure("alice*", source="x").reason
    verifier.reset("alice")
    assert [] == client.keys("isoms-otp:v2:5{alice}:s:*")
    assert 1 == len(client.keys("isoms-otp:v2:6{alice*}:s:*"))


def test_keys_share_a_slot_and_are_unambiguous(store: RedisStore, client: redis.Redis) -> None:
    """Every key of a user carries the user as its hash tag; users with braces or colons in
    them cannot collide with another user's keys (the length comes first)."""
    verifier = make(store)
    assert "invalid" == verifier.record_failure("a", source="x}:u").reason
    assert "invalid" == verifier.record_failure("a}:s:x", source="y").reason
    assert not verifier.verify("a", TOTP(SECRET), "000000")
    keys = sorted(redis_store._decoded(key) or "" for key in client.keys("*"))
    assert ["isoms-otp:v2:1{a}:s:x}:u", "isoms-otp:v2:1{a}:u", "isoms-otp:v2:6{a}:s:x}:s:y"] == keys
    assert 2 == verifier.verify("a", TOTP(SECRET), "000000").failures


def test_version_1_marks_are_a_floor(store: RedisStore, client: redis.Redis) -> None:
    """During a rolling upgrade the marks of version-1 keys bind every credential."""
    totp, hotp = TOTP(SECRET), HOTP(SECRET)
    step_start = START - START % 30
    client.hset("isoms-otp:user:alice", mapping={"t": str(step_start), "h": "4"})
    verifier = make(store)
    assert "replayed" == verifier.verify("alice", totp, totp.generate(START)).reason
    assert 5 == verifier.next_counter("alice", hotp)
    assert "accepted" == verifier.verify("alice", hotp, hotp.generate(5)).reason
    plain = RedisStore(store._client, legacy_prefix=None)
    assert "accepted" == make(plain).verify("bob", totp, totp.generate(START)).reason


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
        lambda: verifier.next_counter("bob", hotp),
        lambda: verifier.retry_after("bob"),
        lambda: verifier.record_failure("bob", source="x"),
        lambda: store.marks("bob"),
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
    ("key", "field", "value"),
    [
        (KEY, "b", "soon"), (KEY, "f", "many"), (MARK, "t", "12x"), (MARK, "t", "012"),
        (KEY, "k", "later"), (MARK, "k", "later"),
    ],
    ids=["blocked", "failures", "mark", "mark-leading-zero", "keep", "mark-keep"],
)  # fmt: skip
def test_corrupt_hash_fails_closed(
    store: RedisStore, client: redis.Redis, key: str, field: str, value: str
) -> None:
    """A corrupt field raises StoreError, and the script writes nothing before it checks."""
    totp = TOTP(SECRET)
    verifier = make(store)
    assert not verifier.verify("alice", totp, "000000")
    client.hset(MARK, "t", "1")
    client.hset(key, field, value)
    before = {name: client.hgetall(name) for name in (KEY, MARK)}
    code = totp.generate(START)
    with pytest.raises(StoreError):
        verifier.verify("alice", totp, code)
    with pytest.raises(StoreError):
        store.snapshot("alice", credential=credential_id(totp))
    assert before == {name: client.hgetall(name) for name in (KEY, MARK)}


def test_far_future_keeps_key(store: RedisStore, client: redis.Redis) -> None:
    """A TOTP mark whose expiry is beyond what PEXPIRE takes keeps the key instead of failing."""
    now = 10.0**20
    attempt = Attempt(
        user="alice", now=now, kind="totp", credential="c", claim=int(now), keep_until=now * 2,
        policy=POLICY,
    )  # fmt: skip
    assert "accepted" == store.settle(attempt).reason
    assert -1 == client.pttl("isoms-otp:v2:5{alice}:c:c")


def test_corrupt_reads(store: RedisStore, client: redis.Redis) -> None:
    """An HOTP mark, a time or a recovery record that is not what the script writes is a
    StoreError from the plain reads too."""
    hotp = HOTP(SECRET)
    client.hset(f"isoms-otp:v2:5{{alice}}:c:{credential_id(hotp)}", "h", "-3")
    with pytest.raises(StoreError, match="corrupt"):
        make(store).next_counter("alice", hotp)
    client.hset("isoms-otp:v2:3{bob}:u", "b", "soon")
    with pytest.raises(StoreError, match="corrupt"):
        make(store).retry_after("bob")
    client.hset("isoms-otp:v2:3{bob}:u", "b", "inf")
    with pytest.raises(StoreError, match="corrupt"):
        make(store).retry_after("bob")
    client.hset("isoms-otp:v2:5{carol}:u", "f", "x")
    with pytest.raises(StoreError, match="corrupt"):
        make(store).retry_after("carol")
    client.hset("isoms-otp:v2:4{dave}:r", "z", "1")
    with pytest.raises(StoreError, match="corrupt recovery"):
        store.snapshot("dave")


def test_recovery_state_round_trip(store: RedisStore) -> None:
    """Used recovery codes are kept per index; another set id starts afresh."""

    def use(set_id: str, index: int) -> str:
        attempt = Attempt(
            user="erin", now=START, kind="recovery", credential=set_id, claim=index, policy=POLICY
        )
        return store.settle(attempt).reason

    assert ["accepted", "accepted", "replayed"] == [use("s1", 3), use("s1", 99), use("s1", 3)]
    assert (1 << 3 | 1 << 99) == store.snapshot("erin").recovery.used
    assert "accepted" == use("s2", 3)
    assert ("s2", 1 << 3) == (
        store.snapshot("erin").recovery.set_id,
        store.snapshot("erin").recovery.used,
    )


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
    assert 1 == verifier.next_counter("alice", hotp)
    assert [credential_id(totp)] == list(store.marks("alice"))
    assert "invalid" == verifier.record_failure("alice", source="s").reason
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
    [
        ["surprise", "", "0", 0], ["throttled", "-1", "0", 0], ["throttled", "never", "0", 0],
        ["accepted"], ["invalid", "", "x", 0], "invalid",
    ],
    ids=["unknown-reason", "negative-wait", "text-wait", "short", "text-count", "not-a-list"],
)  # fmt: skip
def test_unexpected_reply(store: RedisStore, reply: object) -> None:
    """A reply the script cannot have produced is a StoreError, never a verdict."""
    object.__setattr__(store, "_settle", lambda **_: reply)
    totp = TOTP(SECRET)
    with pytest.raises(StoreError):
        make(store).verify("alice", totp, totp.generate(START))


def test_policy_formatted_once_per_policy(
    store: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: every settle used to format the whole throttle schedule again.

    With max_failures=100 that was 100 repr() calls per verification on the hot path. Now
    it is done once per policy (equal policies share it), and the script still gets both
    schedules, exactly, in the same one call.
    """
    sent: list[list[str]] = []

    def script(*, keys: list[str], args: list[str]) -> list[object]:
        sent.append(args)
        return ["invalid", "", "1", 0]

    formatted: list[float] = []

    def counting_text(value: float) -> str:
        formatted.append(value)
        return repr(float(value))

    object.__setattr__(store, "_settle", script)
    monkeypatch.setattr("isoms_otp.stores.redis._text", counting_text)
    redis_store._policy_args.cache_clear()
    policy = ThrottlePolicy(max_failures=100, base_delay=0.1, max_delay=7.0)
    twin = ThrottlePolicy(max_failures=100, base_delay=0.1, max_delay=7.0)
    per_call = []
    for each in (policy, policy, twin):
        before = len(formatted)
        store.settle(Attempt(user="alice", now=START, kind="totp", policy=each))
        per_call.append(len(formatted) - before)
    assert [2 + 1 + 100 + 10, 2, 2] == per_call  # now and keep_until are per call
    expected = [
        repr(policy.longest_wait), "100", *(repr(delay) for delay in policy.schedule),
        "10", *(repr(delay) for delay in policy.source_schedule),
    ]  # fmt: skip
    assert [expected] * 3 == [args[6:] for args in sent]


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
        ({"prefix": "a{b}:"}, ConfigurationError),
        ({"legacy_prefix": ""}, ConfigurationError),
    ],
    ids=["timeout-str", "timeout-zero", "empty-prefix", "braces", "empty-legacy"],
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
    assert "RedisStore(prefix='isoms-otp:v2:')" == repr(store)


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


def test_snapshot_is_one_round_trip(redis_url: str) -> None:
    """snapshot() (what HOTP verification and retry_after read) sends one pipelined write to
    the server, the version-1 marks included; a HOTP verification is then two in all."""
    from redis.connection import AbstractConnection  # noqa: PLC0415

    from isoms_otp import HOTP  # noqa: PLC0415

    store = RedisStore.from_url(redis_url)
    assert store._legacy is not None  # the default reads the version-1 marks too
    hotp = HOTP(SECRET)
    verifier = make(store)
    verifier.verify("warm-up", hotp, hotp.generate(0))  # loads the script and the connection
    writes = 0
    original: Callable[..., None] = AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        nonlocal writes
        writes += 1
        original(self, command, check_health)

    AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]
    try:
        store.snapshot("trips", source="198.51.100.7", credential="c")
        assert 1 == writes
        writes = 0
        assert "accepted" == verifier.verify("trips", hotp, hotp.generate(0)).reason
        assert 2 == writes
    finally:
        AbstractConnection.send_packed_command = original  # type: ignore[method-assign]
        store.close()
