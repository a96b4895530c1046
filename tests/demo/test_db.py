"""The demo's tables: password hashing, TOTP states, challenges and the outbox."""

from __future__ import annotations

import base64
import hashlib
import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from isoms_otp import ConfigurationError, InvalidSecretError, SQLiteStore, StoreError
from isoms_otp.demo.db import (
    KEYS_SUFFIX,
    SCRYPT_N,
    SCRYPT_P,
    SCRYPT_R,
    Challenge,
    DemoDB,
    Message,
    TOTPRecord,
    load_keyring,
)


@contextmanager
def connect(path: str | Path) -> Iterator[sqlite3.Connection]:
    """A plain connection in one transaction, closed afterwards (sqlite3's own ``with`` only
    commits, and Python 3.13 warns about the connection left open)."""
    conn = sqlite3.connect(path)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


PASSWORD = "correct horse battery staple"  # noqa: S105 - the test account's


@pytest.fixture
def db(tmp_path: Path) -> DemoDB:
    database = DemoDB(tmp_path / "demo.sqlite3")
    database.set_user("alice", PASSWORD, phone="+1 555 0100")
    return database


def test_passwords_are_stored_as_salted_scrypt(db: DemoDB, tmp_path: Path) -> None:
    """The table holds scrypt(N=2**14, r=8, p=1) with a 16-byte salt, never the password."""
    db.set_user("bob", PASSWORD, phone="+1 555 0101")
    with connect(tmp_path / "demo.sqlite3") as conn:
        rows = conn.execute(
            "SELECT salt, password_hash FROM demo_users ORDER BY username"
        ).fetchall()
    (alice_salt, alice_hash), (bob_salt, bob_hash) = rows
    assert 16 == len(alice_salt)
    assert alice_salt != bob_salt
    assert alice_hash != bob_hash  # same password, different salts
    expected = hashlib.scrypt(
        PASSWORD.encode(), salt=alice_salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    assert expected == alice_hash
    assert (2**14, 8, 1) == (SCRYPT_N, SCRYPT_R, SCRYPT_P)


@pytest.mark.parametrize(
    ("username", "password", "ok"),
    [("alice", PASSWORD, True), ("alice", PASSWORD + " ", False), ("alice", "", False),
     ("nobody", PASSWORD, False)],
    ids=["right", "trailing-space", "empty", "unknown-user"],
)  # fmt: skip
def test_check_password(db: DemoDB, username: str, password: str, ok: bool) -> None:
    """Only the exact password of an existing user passes."""
    assert ok == (db.check_password(username, password) is not None)


def test_new_password_ends_old_sessions_and_keeps_the_sms_key(db: DemoDB) -> None:
    """set_user on an existing user bumps the session epoch; the SMS key stays."""
    before = db.user("alice")
    db.set_user("alice", "new password", phone="+1 555 0100")
    after = db.user("alice")
    assert before is not None
    assert after is not None
    assert (before.epoch + 1, before.sms_secret) == (after.epoch, after.sms_secret)
    assert db.check_password("alice", PASSWORD) is None


def test_unknown_user_and_challenge_are_none(db: DemoDB) -> None:
    """Lookups of what does not exist return None."""
    assert db.user("nobody") is None
    assert db.totp("nobody") is None
    assert db.challenge("no-such-id") is None


def pending(db: DemoDB, username: str = "alice") -> TOTPRecord:
    record = db.totp(username)
    assert record is not None
    return record


def test_active_secret_is_never_replaced_by_a_pending_one(db: DemoDB) -> None:
    """set_pending leaves an active secret alone; activate needs the pending secret itself."""
    db.set_pending("alice", b"b" * 20)
    replaced = pending(db).sealed
    db.set_pending("alice", b"a" * 20)
    assert not db.activate("alice", replaced, "")
    assert db.activate("alice", pending(db).sealed, "")
    db.set_pending("alice", b"c" * 20)
    record = pending(db)
    assert ("active", b"a" * 20) == (record.state, record.secret)


def test_totp_secrets_are_stored_sealed(db: DemoDB, tmp_path: Path) -> None:
    """The table holds a token bound to the user, opened with the key file beside it."""
    db.set_pending("alice", b"s" * 20)
    with connect(tmp_path / "demo.sqlite3") as conn:
        (stored,) = conn.execute("SELECT secret FROM demo_totp").fetchone()
    assert isinstance(stored, str)
    assert b"s" * 20 not in stored.encode()
    ring = load_keyring(tmp_path / f"demo.sqlite3{KEYS_SUFFIX}")
    assert b"s" * 20 == ring.open(stored, user="alice")
    assert "sealed" not in repr(pending(db))
    assert stored not in repr(pending(db))


def test_the_key_file_is_created_private_once(tmp_path: Path) -> None:
    """First start writes one key, mode 0600, beside the database; later starts reuse it."""
    DemoDB(tmp_path / "demo.sqlite3").set_user("alice", PASSWORD, phone="+1 555 0100")
    keys = tmp_path / f"demo.sqlite3{KEYS_SUFFIX}"
    assert 0o600 == stat.S_IMODE(keys.stat().st_mode)
    text = keys.read_text(encoding="ascii")
    first = DemoDB(tmp_path / "demo.sqlite3")
    first.set_pending("alice", b"k" * 20)
    assert text == keys.read_text(encoding="ascii")
    assert b"k" * 20 == pending(DemoDB(tmp_path / "demo.sqlite3")).secret
    assert ["demo.sqlite3", f"demo.sqlite3{KEYS_SUFFIX}"] == sorted(
        path.name for path in tmp_path.iterdir() if not path.name.endswith(("-wal", "-shm"))
    )  # no temporary file left behind
    assert 1 == len(load_keyring(keys).ids)


def test_a_key_file_others_may_read_is_refused(tmp_path: Path) -> None:
    """A key file with group or other permissions is an error saying to chmod it."""
    DemoDB(tmp_path / "demo.sqlite3")
    keys = tmp_path / f"demo.sqlite3{KEYS_SUFFIX}"
    keys.chmod(0o644)
    with pytest.raises(ConfigurationError, match="mode 0644: other users may read it"):
        DemoDB(tmp_path / "demo.sqlite3")


def test_a_key_file_created_meanwhile_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two first starts at once: the one that links second uses the other's key."""
    keys = tmp_path / "ring.keys"
    other = "other:" + base64.b64encode(bytes(32)).decode() + "\n"
    real_link = os.link

    def late_link(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
        Path(target).write_text(other, encoding="ascii")
        Path(target).chmod(0o600)
        real_link(source, target)

    monkeypatch.setattr(os, "link", late_link)
    assert ("other",) == load_keyring(keys).ids
    assert [keys] == list(tmp_path.iterdir())


def test_rows_from_before_sealing_are_sealed_on_start(tmp_path: Path) -> None:
    """A database whose TOTP rows hold raw secrets has them sealed when the demo starts."""
    path = tmp_path / "demo.sqlite3"
    DemoDB(path).set_user("alice", PASSWORD, phone="+1 555 0100")
    with connect(path) as conn:
        conn.execute(
            "INSERT INTO demo_totp (username, secret, state) VALUES ('alice', ?, 'active')",
            (b"r" * 20,),
        )
    record = pending(DemoDB(path))
    assert ("active", b"r" * 20) == (record.state, record.secret)
    with connect(path) as conn:
        assert "text" == conn.execute("SELECT typeof(secret) FROM demo_totp").fetchone()[0]


def test_a_token_moved_to_another_row_does_not_open(db: DemoDB, tmp_path: Path) -> None:
    """Copying alice's sealed secret into bob's row gives an error, not bob a key."""
    db.set_user("bob", PASSWORD, phone="+1 555 0101")
    db.set_pending("alice", b"a" * 20)
    with connect(tmp_path / "demo.sqlite3") as conn:
        conn.execute(
            "INSERT INTO demo_totp (username, secret, state) "
            "SELECT 'bob', secret, state FROM demo_totp WHERE username = 'alice'"
        )
    with pytest.raises(InvalidSecretError, match="not valid for this user"):
        db.totp("bob")


def test_challenges_expire(db: DemoDB) -> None:
    """remove_challenges drops one by id and every one that began before a time."""
    old = db.add_challenge(Challenge(username="alice", counter=3, sent_at=100.0))
    new = db.add_challenge(Challenge(username="alice", counter=None, sent_at=200.0))
    assert Challenge(username="alice", counter=3, sent_at=100.0) == db.challenge(old)
    assert Challenge(username="alice", counter=None, sent_at=200.0) == db.challenge(new)
    db.remove_challenges(before=150.0)
    assert db.challenge(old) is None
    db.remove_challenges(key=new)
    assert db.challenge(new) is None


def test_outbox_is_newest_first(db: DemoDB) -> None:
    """messages() lists the newest first, up to the limit."""
    for n in range(3):
        db.add_message(Message(sent_at=float(n), recipient="alice", body=f"m{n}"))
    assert ["m2", "m1"] == [m.body for m in db.messages(limit=2)]


def test_repr_shows_the_path_and_no_secrets(db: DemoDB, tmp_path: Path) -> None:
    """repr names the file; user records hide their SMS key."""
    assert f"DemoDB({str(tmp_path / 'demo.sqlite3')!r})" == repr(db)
    user = db.user("alice")
    assert user is not None
    assert user.sms_secret.hex() not in repr(user)
    assert "sms_secret" not in repr(user)


def test_database_and_wal_files_are_private(tmp_path: Path) -> None:
    """Regression: the database (hashes, TOTP secrets) used to be created world-readable.

    The key file beside it is private too.
    """
    path = tmp_path / "private.sqlite3"
    DemoDB(path).set_user("alice", PASSWORD, phone="+1 555 0100")
    store = SQLiteStore(path)
    try:
        store.reset("alice", now=0.0)  # a write: the WAL file exists now
        files = sorted(tmp_path.glob("private.sqlite3*"))
        names = [
            "private.sqlite3",
            f"private.sqlite3{KEYS_SUFFIX}",
            "private.sqlite3-shm",
            "private.sqlite3-wal",
        ]
        expected = dict.fromkeys(names, 0o600)
        assert expected == {file.name: file.stat().st_mode & 0o777 for file in files}
    finally:
        store.close()


def test_a_locked_database_is_a_store_error(tmp_path: Path) -> None:
    """Regression: DemoDB let sqlite3.OperationalError out, which the app's 503 handler never
    saw (a 500). It is now a StoreError, the library's one storage error, caused by SQLite's.
    """
    path = tmp_path / "demo.sqlite3"
    db = DemoDB(path, timeout=0.05)
    db.set_user("alice", "pw", phone="+1 555 0100")
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(
            StoreError, match="the demo database failed: database is locked"
        ) as info:
            db.set_user("alice", "new", phone="+1 555 0100")
        assert isinstance(info.value.__cause__, sqlite3.OperationalError)
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_databases_from_before_recovery_codes_get_the_new_columns(tmp_path: Path) -> None:
    """A database made before recovery codes and the admin account opens, its rows intact."""
    path = tmp_path / "demo.sqlite3"
    with connect(path) as conn:
        conn.executescript(
            "CREATE TABLE demo_users (username TEXT PRIMARY KEY NOT NULL, salt BLOB NOT NULL, "
            "password_hash BLOB NOT NULL, phone TEXT NOT NULL, sms_secret BLOB NOT NULL, "
            "epoch INTEGER NOT NULL DEFAULT 0);"
            "CREATE TABLE demo_totp (username TEXT PRIMARY KEY NOT NULL, secret BLOB NOT NULL, "
            "state TEXT NOT NULL);"
        )
    db = DemoDB(path)
    db.set_user("alice", PASSWORD, phone="+1 555 0100")
    db.set_pending("alice", b"a" * 20)
    user = db.user("alice")
    assert user is not None
    assert (False, None, None) == (user.is_admin, user.last_sign_in, user.last_locked)
    record = pending(db)
    assert (None, None) == (record.recovery, record.replacement)


def test_replacement_waits_beside_the_active_secret(db: DemoDB) -> None:
    """A new phone's secret is kept beside the active one; activating it retires the old."""
    db.set_pending("alice", b"a" * 20)
    assert db.activate("alice", pending(db).sealed, "first")
    db.set_replacement("alice", b"b" * 20)
    record = pending(db)
    assert (b"a" * 20, b"b" * 20, "first") == (record.secret, record.replacement, record.recovery)
    assert record.replacement_sealed is not None
    assert db.activate("alice", record.replacement_sealed, "second")
    record = pending(db)
    assert (b"b" * 20, None, "second") == (record.secret, record.replacement, record.recovery)
    db.set_recovery("alice", "third")
    assert "third" == pending(db).recovery


def test_sign_in_and_lock_times_are_kept(db: DemoDB) -> None:
    """signed_in and locked record their times beside the user."""
    db.signed_in("alice", 10.0)
    db.locked("alice", 20.0)
    user = db.user("alice")
    assert user is not None
    assert (10.0, 20.0) == (user.last_sign_in, user.last_locked)
    assert ["alice"] == db.usernames()
