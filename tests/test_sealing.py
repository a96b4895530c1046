"""Secrets at rest: Keyring seal/open round trips, every refusal, rotation, the text form."""

from __future__ import annotations

import base64
import contextlib
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import isoms_otp
from isoms_otp import ConfigurationError, InvalidSecretError, enroll
from isoms_otp.sealing import (
    KEY_BYTES,
    MAX_KEY_ID_LENGTH,
    MAX_KEYS,
    MAX_SEALED_BYTES,
    MAX_TOKEN_LENGTH,
    MAX_USER_BYTES,
    Keyring,
)

SRC = Path(__file__).resolve().parent.parent / "src"
OLD_KEY = bytes(range(32))
NEW_KEY = bytes(range(32, 64))
SECRET = b"12345678901234567890"
OLD = Keyring({"old": OLD_KEY}, active="old")
RING = Keyring({"new": NEW_KEY, "old": OLD_KEY}, active="new")
# The three kinds of refusal open() reports, and nothing else.
KINDS = ("unknown key id", "not valid for this user or corrupted", "malformed")

users = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)


def line(key_id: str, key: bytes) -> str:
    return f"{key_id}:{base64.b64encode(key).decode()}"


def refusal(token: str, user: str = "alice", ring: Keyring = RING) -> str:
    """Open ``token`` expecting a refusal; return its message after checking its kind."""
    with pytest.raises(InvalidSecretError) as caught:
        ring.open(token, user=user)
    message = str(caught.value)
    assert any(kind in message for kind in KINDS), message
    return message


# --------------------------------------------------------------------------- round trips


@given(secret=st.binary(max_size=MAX_SEALED_BYTES), user=users)
@settings(max_examples=200, deadline=None)
def test_round_trip(secret: bytes, user: str) -> None:
    """What seal() makes for a user, open() gives back to that user."""
    token = RING.seal(secret, user=user)
    assert secret == RING.open(token, user=user)
    assert len(token) <= MAX_TOKEN_LENGTH
    assert token.isascii()


def test_every_seal_uses_a_fresh_nonce() -> None:
    """Sealing the same secret twice gives two tokens (a repeated nonce would break GCM)."""
    tokens = {RING.seal(SECRET, user="alice") for _ in range(100)}
    assert 100 == len(tokens)


def test_token_names_its_key_and_version() -> None:
    """A token is v1.<base64url key id>.<data>: split on dots whatever the id's length."""
    long_id = "a.b-c_" * 10
    ring = Keyring({long_id: NEW_KEY}, active=long_id)
    version, key_id, _data = ring.seal(SECRET, user="alice").split(".")
    assert ("v1", long_id) == (version, base64.urlsafe_b64decode(key_id + "==").decode())


def test_longest_user_and_secret_fit_the_token_bound() -> None:
    """The largest inputs seal() accepts make a token open() will read."""
    long_id = "k" * MAX_KEY_ID_LENGTH
    ring = Keyring({long_id: NEW_KEY}, active=long_id)
    user = "u" * MAX_USER_BYTES
    token = ring.seal(b"s" * MAX_SEALED_BYTES, user=user)
    assert len(token) <= MAX_TOKEN_LENGTH
    assert b"s" * MAX_SEALED_BYTES == ring.open(token, user=user)


def test_empty_user_and_secret_round_trip() -> None:
    """The empty user id and the empty secret seal and open like any other (a round trip over
    all texts and byte strings holds)."""
    assert b"" == RING.open(RING.seal(b"", user=""), user="")
    assert SECRET == RING.open(RING.seal(SECRET, user=""), user="")
    assert "not valid for this user" in refusal(RING.seal(SECRET, user=""), user="a")
    assert "not valid for this user" in refusal(RING.seal(SECRET, user="a"), user="")


def test_enrollment_sealed() -> None:
    """Enrollment.sealed(keyring, user=...) seals the enrolment's secret for that user."""
    enrolment = enroll("alice", issuer="iSOMS")
    token = enrolment.sealed(RING, user="alice")
    assert enrolment.secret == RING.open(token, user="alice")


# --------------------------------------------------------------------------- refusals


def test_every_single_character_change_is_refused() -> None:
    """Changing any one character of a token to any other makes it refuse to open."""
    token = RING.seal(SECRET, user="alice")
    alphabet = "".join(chr(c) for c in range(32, 127)) + "\u00e9\x00"
    for position, original in enumerate(token):
        for replacement in alphabet:
            if replacement != original:
                refusal(token[:position] + replacement + token[position + 1 :])


def test_every_truncation_and_deletion_is_refused() -> None:
    """A token cut short at any length, or missing any one character, does not open; cut or
    lengthened, it is "malformed" (its data no longer matches the length it carries), never
    "corrupted"."""
    for secret in (SECRET, b"s" * 37, b""):
        token = RING.seal(secret, user="alice")
        for length in range(len(token)):
            assert "malformed" in refusal(token[:length])
        for position in range(len(token)):
            refusal(token[:position] + token[position + 1 :])
        for extra in ("A", "AAAA", "AAAAAAAA"):
            assert "malformed" in refusal(token + extra)


def test_tokens_swapped_between_users_are_refused() -> None:
    """A token copied into another user's row does not open for that user."""
    alice = RING.seal(SECRET, user="alice")
    bob = RING.seal(SECRET, user="bob")
    assert "not valid for this user or corrupted" in refusal(alice, user="bob")
    assert "not valid for this user or corrupted" in refusal(bob, user="alice")
    refusal(alice, user="alice ")
    refusal(alice, user="Alice")


def test_a_wrong_key_under_the_same_id_is_refused() -> None:
    """Another ring's key of the same id does not open the token."""
    other = Keyring({"new": OLD_KEY}, active="new")
    message = refusal(RING.seal(SECRET, user="alice"), ring=other)
    assert "not valid for this user or corrupted" in message


def test_a_token_under_a_dropped_key_names_the_id() -> None:
    """After the old key leaves the ring, its tokens fail with "unknown key id 'old'"."""
    token = OLD.seal(SECRET, user="alice")
    ring = Keyring({"new": NEW_KEY}, active="new")
    assert "unknown key id 'old'" in refusal(token, ring=ring)
    assert ring.needs_rewrap(token)
    with pytest.raises(InvalidSecretError, match="unknown key id 'old'"):
        ring.rewrap(token, user="alice")


@pytest.mark.parametrize(
    ("token", "fragment"),
    [
        ("", "expected v1.<key id>.<data>"),
        ("v1..", "expected v1.<key id>.<data>"),
        ("v2.bmV3.AAAA", "unknown version v2"),
        ("v1.bmV3.AAAA", "truncated"),
        ("v1.bmV3." + "A" * 38, "truncated"),
        ("v1.bmV3=.AAAA", "expected v1.<key id>.<data>"),
        ("v1.bmV.AAAA", "not base64url"),  # an unused low bit set: not the canonical spelling
        ("v1.A.AAAA", "not base64url"),  # one symbol cannot hold a byte
        ("v1." + base64.urlsafe_b64encode(b"a:b").decode() + ".AAAA", "not a valid id"),
        ("v1." + base64.urlsafe_b64encode(b"\xff").decode().rstrip("=") + ".AAAA", "valid id"),
        ("v1.bmV3." + "A" * (MAX_TOKEN_LENGTH), f"longer than {MAX_TOKEN_LENGTH}"),
        ("v1.bmV3." + "A" * 44, "does not match its length"),  # says 0 bytes, carries 3
        (" " + RING.seal(SECRET, user="alice"), "expected"),
        (RING.seal(SECRET, user="alice") + "\n", "expected"),
    ],
)
def test_malformed_tokens(token: str, fragment: str) -> None:
    """Anything that is not a whole v1 token is "malformed", saying how."""
    message = refusal(token)
    assert "malformed" in message
    assert fragment in message


@given(junk=st.text(max_size=2000))
@settings(max_examples=500, deadline=None)
def test_junk_text_raises_only_our_error(junk: str) -> None:
    """Any str is opened or refused with InvalidSecretError; nothing else escapes."""
    with pytest.raises(InvalidSecretError):
        RING.open(junk, user="alice")
    with contextlib.suppress(InvalidSecretError):
        RING.needs_rewrap(junk)


@given(
    junk=st.text(alphabet="v1.AbmV3-_=", max_size=120)
    | st.builds("v1.{}.{}".format, st.text("bmV3A-_", max_size=8), st.text("A-_z", max_size=80))
)
@settings(max_examples=500, deadline=None)
def test_near_tokens_raise_only_our_error(junk: str) -> None:
    """Strings close to the token shape reach every check and still raise only our error."""
    with pytest.raises(InvalidSecretError):
        RING.open(junk, user="alice")


@given(junk=st.none() | st.integers() | st.binary() | st.lists(st.text()) | st.floats())
def test_non_str_tokens_are_type_errors(junk: object) -> None:
    """A token must be a str: bytes, numbers and the like are a TypeError, before any work."""
    with pytest.raises(TypeError, match="token must be a str"):
        RING.open(junk, user="alice")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="token must be a str"):
        RING.needs_rewrap(junk)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("user", "error", "fragment"),
    [
        (None, TypeError, "user must be a str"),
        (b"alice", TypeError, "user must be a str"),
        ("\u00e9" * 513, ConfigurationError, "got 1026"),
        ("a\ud800", ConfigurationError, "lone surrogate"),
    ],
)
def test_bad_users(user: object, error: type[Exception], fragment: str) -> None:
    """The user id is a str of at most 1024 bytes of UTF-8, for seal() and open() alike."""
    with pytest.raises(error, match=fragment):
        RING.seal(SECRET, user=user)  # type: ignore[arg-type]
    with pytest.raises(error, match=fragment):
        RING.open(RING.seal(SECRET, user="a"), user=user)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("secret", "error"),
    [
        (b"x" * (MAX_SEALED_BYTES + 1), InvalidSecretError),
        ("secret", TypeError),
        (bytearray(SECRET), TypeError),
    ],
)
def test_bad_secrets(secret: object, error: type[Exception]) -> None:
    """A secret is 0 to 1024 bytes; a str or bytearray is a TypeError."""
    with pytest.raises(error):
        RING.seal(secret, user="alice")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- rotation


def test_rotation_step_by_step() -> None:
    """Add a new active key, rewrap at leisure, drop the old key: every row still opens."""
    rows = {f"user{n}": OLD.seal(bytes([n]) * 20, user=f"user{n}") for n in range(20)}
    assert not any(OLD.needs_rewrap(token) for token in rows.values())
    assert all(RING.needs_rewrap(token) for token in rows.values())
    for user, token in rows.items():  # old tokens still open during the rotation
        assert RING.open(token, user=user) == OLD.open(token, user=user)
    rewrapped = {user: RING.rewrap(token, user=user) for user, token in rows.items()}
    assert not any(RING.needs_rewrap(token) for token in rewrapped.values())
    assert rewrapped == {user: RING.rewrap(token, user=user) for user, token in rewrapped.items()}
    done = Keyring({"new": NEW_KEY}, active="new")
    for n in range(20):
        assert bytes([n]) * 20 == done.open(rewrapped[f"user{n}"], user=f"user{n}")


def test_rewrap_checks_the_user() -> None:
    """Rewrapping opens the token first: another user's token is refused, even a current one."""
    with pytest.raises(InvalidSecretError, match="not valid for this user"):
        RING.rewrap(OLD.seal(SECRET, user="alice"), user="bob")
    with pytest.raises(InvalidSecretError, match="not valid for this user"):
        RING.rewrap(RING.seal(SECRET, user="alice"), user="bob")


# --------------------------------------------------------------------------- the key ring


def test_generate_key() -> None:
    """generate_key() gives 32 fresh random bytes each time."""
    keys = {Keyring.generate_key() for _ in range(10)}
    assert 10 == len(keys)
    assert {KEY_BYTES} == {len(key) for key in keys}


def test_repr_shows_ids_only() -> None:
    """repr names the key ids (active first) and never shows a key."""
    assert "Keyring(ids=['new', 'old'], active='new')" == repr(RING)
    ring = Keyring({"b": OLD_KEY, "a": NEW_KEY}, active="a")
    assert ("a", "b") == ring.ids
    assert "a" == ring.active
    for key in (OLD_KEY, NEW_KEY):
        for shown in (repr(RING), str(RING)):
            assert key.hex() not in shown
            assert base64.b64encode(key).decode() not in shown
            assert repr(key) not in shown


def test_keyring_is_immutable_and_not_picklable() -> None:
    """No attribute can be set or deleted, and a pickle (which would carry the keys) is refused."""
    with pytest.raises(AttributeError):
        RING._active = "old"
    with pytest.raises(AttributeError):
        del RING._active
    with pytest.raises(TypeError, match="not picklable"):
        pickle.dumps(RING)


@pytest.mark.parametrize(
    ("keys", "active", "error", "fragment"),
    [
        ({}, "a", ConfigurationError, "1 to 64 keys"),
        ({f"k{n}": OLD_KEY for n in range(MAX_KEYS + 1)}, "k0", ConfigurationError, "1 to 64"),
        ({"a": OLD_KEY[:31]}, "a", ConfigurationError, "31 bytes"),
        ({"a": OLD_KEY + b"x"}, "a", ConfigurationError, "33 bytes"),
        ({"a": bytearray(OLD_KEY)}, "a", TypeError, "must be bytes"),
        ({"a": OLD_KEY.hex()}, "a", TypeError, "must be bytes"),
        ({"a:b": OLD_KEY}, "a:b", ConfigurationError, "letters, digits"),
        ({"": OLD_KEY}, "", ConfigurationError, "letters, digits"),
        ({"k" * (MAX_KEY_ID_LENGTH + 1): OLD_KEY}, "k", ConfigurationError, "letters, digits"),
        ({"\u00e9": OLD_KEY}, "\u00e9", ConfigurationError, "letters, digits"),
        ({1: OLD_KEY}, "a", TypeError, "key id must be a str"),
        ({"a": OLD_KEY}, "b", ConfigurationError, "active key 'b' is not in the key ring"),
        ({"a": OLD_KEY}, None, TypeError, "active must be a str"),
        ([("a", OLD_KEY)], "a", TypeError, "mapping"),
    ],
)
def test_keyring_validation(
    keys: object, active: object, error: type[Exception], fragment: str
) -> None:
    """Bad ids, key lengths or types, an empty ring or an unknown active id are refused."""
    with pytest.raises(error, match=fragment) as caught:
        Keyring(keys, active=active)  # type: ignore[arg-type]
    assert OLD_KEY.hex() not in str(caught.value)
    assert repr(OLD_KEY) not in str(caught.value)


def test_from_string() -> None:
    """The text form lists id:base64key entries (commas or lines); the first is active."""
    ring = Keyring.from_string(f" {line('new', NEW_KEY)} ,\n {line('old', OLD_KEY)}\n")
    assert ("new", "old") == ring.ids
    lines = Keyring.from_string(f"{line('new', NEW_KEY)}\r\n{line('old', OLD_KEY)}\n")
    assert ("new", "old") == lines.ids
    token = OLD.seal(SECRET, user="alice")
    assert SECRET == ring.open(token, user="alice")
    assert SECRET == Keyring.from_string(line("old", OLD_KEY)).open(token, user="alice")


KEY_TEXT = base64.b64encode(NEW_KEY).decode()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        (" \n", "empty"),
        (KEY_TEXT, "entry 1 has no ':'"),
        (f"{KEY_TEXT}:new", "the id of key entry 1 must be"),
        (f"new:{KEY_TEXT},", "entry 2 is empty"),
        (f"new:{KEY_TEXT},,old:{KEY_TEXT}", "entry 2 is empty"),
        (f"new:{KEY_TEXT},new:{base64.b64encode(OLD_KEY).decode()}", "repeats the key id 'new'"),
        (f"new:{KEY_TEXT[:-1]}", "entry 1 ('new') is not base64"),
        (f"new:{KEY_TEXT.replace('=', '')}", "not base64"),
        (f"new:{base64.urlsafe_b64encode(bytes([251]) * 32).decode()}", "not base64"),
        (f"new:{base64.b64encode(NEW_KEY[:16]).decode()}", "is 16 bytes"),
        (f"new:{KEY_TEXT[:-2]}{KEY_TEXT[-2:]} x", "not base64"),
        (f"n w:{KEY_TEXT}", "must be 1 to 255 letters"),
        (":" + KEY_TEXT, "must be 1 to 255 letters"),
        ("x" * 9000, "longer than 8192"),
    ],
)
def test_from_string_refusals(text: str, fragment: str) -> None:
    """Every malformed key text is a ConfigurationError naming the entry, never the key."""
    with pytest.raises(ConfigurationError, match=re.escape(fragment)) as caught:
        Keyring.from_string(text)
    message = str(caught.value)
    assert KEY_TEXT not in message
    assert KEY_TEXT[:20] not in message
    assert isinstance(caught.value, ValueError)


def test_from_string_type() -> None:
    """The key text is a str."""
    with pytest.raises(TypeError, match="must be a str"):
        Keyring.from_string(KEY_TEXT.encode())  # type: ignore[arg-type]


def test_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """from_env() reads ISOMS_OTP_KEYS (or the name given); unset or bad text says which."""
    monkeypatch.setenv("ISOMS_OTP_KEYS", f"{line('new', NEW_KEY)},{line('old', OLD_KEY)}")
    assert ("new", "old") == Keyring.from_env().ids
    monkeypatch.setenv("OTHER_KEYS", line("old", OLD_KEY))
    assert ("old",) == Keyring.from_env("OTHER_KEYS").ids
    monkeypatch.delenv("OTHER_KEYS")
    with pytest.raises(ConfigurationError, match="OTHER_KEYS is not set"):
        Keyring.from_env("OTHER_KEYS")
    monkeypatch.setenv("ISOMS_OTP_KEYS", KEY_TEXT)
    with pytest.raises(ConfigurationError, match=r"^ISOMS_OTP_KEYS: key entry 1") as caught:
        Keyring.from_env()
    assert KEY_TEXT not in str(caught.value)


def test_no_secret_in_any_error() -> None:
    """No refusal message shows the secret, the key or the token's data."""
    token = RING.seal(SECRET, user="alice")
    messages = [refusal(token, user="bob"), refusal(token[:-1]), refusal(token[:-4] + "AAAA")]
    for message in messages:
        assert SECRET.decode() not in message
        assert token.rsplit(".", 1)[1][:12] not in message


# --------------------------------------------------------------------------- the extra


def test_keyring_is_exported_lazily() -> None:
    """isoms_otp.Keyring is the sealing module's class, resolved on first use."""
    assert Keyring is isoms_otp.Keyring
    assert "Keyring" not in isoms_otp.__all__  # `import *` must not need the crypto extra


def test_without_cryptography_the_module_names_the_extra() -> None:
    """The core and the CLI import without cryptography; sealing raises MissingExtraError."""
    script = (
        "import sys; sys.modules['cryptography'] = None\n"
        "import isoms_otp\n"
        "import isoms_otp.cli  # the CLI and its demo command import without it too\n"
        "from isoms_otp import enroll\n"
        "enroll('alice', issuer='iSOMS')\n"
        "try:\n"
        "    import isoms_otp.sealing\n"
        "except isoms_otp.MissingExtraError as exc:\n"
        "    assert isinstance(exc, ImportError)\n"
        "    print(exc)\n"
        "try:\n"
        "    isoms_otp.Keyring\n"
        "except isoms_otp.MissingExtraError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=False,
        env={"PYTHONPATH": str(SRC)},
    )
    assert "" == done.stderr
    lines = done.stdout.splitlines()
    assert 2 == len(lines)
    for found in lines:
        assert "pip install 'isoms-otp[crypto]'" in found
