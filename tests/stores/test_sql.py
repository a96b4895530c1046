"""SQLStore: the contract on PostgreSQL, MariaDB and SQLite (through SQLAlchemy), and faults."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import isoms_otp
from isoms_otp import (
    TOTP,
    ConfigurationError,
    SQLStore,
    Store,
    StoreError,
    ThrottlePolicy,
    Verifier,
)
from isoms_otp.stores import sql as sql_store
from isoms_otp.testing import FakeClock, StoreContract
from servers import MariaDBServer, PostgresServer

pytestmark = pytest.mark.servers

SECRET = bytes(range(20))
START = 30 * 56_666_667 + 10
POLICY = ThrottlePolicy(max_failures=100, base_delay=0)
SRC = str(Path(isoms_otp.__file__).resolve().parent.parent)


def empty(engine: sa.Engine) -> None:
    """Delete every row the store keeps (the tables stay: creating them is slow on servers)."""
    with engine.begin() as conn:
        for table in reversed(sql_store.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture(scope="module")
def postgres_engine(postgres_session: PostgresServer) -> Iterator[sa.Engine]:
    engine = sa.create_engine(postgres_session.url, pool_size=20, pool_timeout=2)
    sql_store.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def mariadb_engine(mariadb_session: MariaDBServer) -> Iterator[sa.Engine]:
    engine = sa.create_engine(mariadb_session.url, pool_size=20, pool_timeout=2)
    sql_store.metadata.create_all(engine)
    yield engine
    engine.dispose()


class TestPostgresStore(StoreContract):
    """The contract, against SQLStore on a real PostgreSQL 15 (psycopg 3)."""

    @pytest.fixture
    def store(self, postgres_engine: sa.Engine) -> Store:
        empty(postgres_engine)
        return SQLStore(postgres_engine, create=False)


class TestMariaDBStore(StoreContract):
    """The contract, against SQLStore on a real MariaDB (PyMySQL)."""

    @pytest.fixture
    def store(self, mariadb_engine: sa.Engine) -> Store:
        empty(mariadb_engine)
        return SQLStore(mariadb_engine, create=False)


class TestSQLiteThroughSQLAlchemy(StoreContract):
    """The contract, against SQLStore on a SQLite file through SQLAlchemy."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[Store]:
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'otp.sqlite3'}", pool_timeout=2)
        yield SQLStore(engine)
        engine.dispose()


def test_lazy_import_and_missing_extra() -> None:
    """The core imports without SQLAlchemy; SQLStore then raises MissingExtraError."""
    script = (
        "import sys; sys.modules['sqlalchemy'] = None\n"
        "import isoms_otp\n"
        "from isoms_otp import TOTP, Verifier, SQLiteStore\n"
        "try:\n"
        "    isoms_otp.SQLStore\n"
        "except isoms_otp.MissingExtraError as exc:\n"
        "    print(isinstance(exc, ImportError), exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True,
        env={"PYTHONPATH": SRC},
    )  # fmt: skip
    assert (
        "True SQLStore needs SQLAlchemy and a database driver: pip install 'isoms-otp[sql]'\n"
        == done.stdout
    )
    assert SQLStore is isoms_otp.stores.SQLStore


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[sa.Engine]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'otp.sqlite3'}", pool_timeout=1)
    yield engine
    engine.dispose()


@pytest.mark.parametrize(
    ("options", "error"),
    [({"timeout": "1"}, TypeError), ({"timeout": 0}, ConfigurationError)],
    ids=["timeout-str", "timeout-zero"],
)
def test_options_validated(
    lite: sa.Engine, options: dict[str, Any], error: type[Exception]
) -> None:
    """Nonsense options are refused when the store is made."""
    with pytest.raises(error):
        SQLStore(lite, **options)


def test_repr_names_only_the_dialect(lite: sa.Engine) -> None:
    """The repr shows the dialect, never the URL (which may hold a password)."""
    assert "SQLStore(dialect='sqlite')" == repr(SQLStore(lite))


@pytest.mark.parametrize(
    ("table", "values"),
    [
        ("isoms_otp_budgets", {"failures": -1}),
        ("isoms_otp_budgets", {"blocked_until": float("inf")}),
        ("isoms_otp_marks", {"totp": "12x"}),
        ("isoms_otp_marks", {"keep_until": sa.literal_column("'later'")}),
        ("isoms_otp_recovery", {"used": "-1"}),
    ],
    ids=["negative-failures", "infinite-wait", "mark-not-a-number", "keep-text", "used-negative"],
)
def test_corrupt_rows_fail_closed(lite: sa.Engine, table: str, values: dict[str, Any]) -> None:
    """A row this store would never write raises StoreError and changes nothing."""
    store, totp = SQLStore(lite), TOTP(SECRET)
    verifier = Verifier(store, clock=FakeClock(START), policy=POLICY)
    assert "accepted" == verifier.verify("alice", totp, totp.generate(START)).reason
    assert "invalid" == verifier.verify("alice", totp, "000000").reason
    with lite.begin() as conn:
        conn.execute(
            sa.insert(sql_store.metadata.tables["isoms_otp_recovery"]).values(
                user_id="alice", set_id="s", used="0"
            )
        )
        conn.execute(sa.update(sql_store.metadata.tables[table]).values(values))
    with pytest.raises(StoreError):
        verifier.verify("alice", totp, totp.generate(START + 30))


@pytest.mark.parametrize(
    "row",
    [("surprise", None, 0, False), ("throttled", -1.0, 0, False), ("invalid", None, "1", False)],
    ids=["unknown-reason", "negative-wait", "text-count"],
)
def test_unexpected_function_reply(
    postgres_engine: sa.Engine, monkeypatch: pytest.MonkeyPatch, row: tuple[Any, ...]
) -> None:
    """A reply the PostgreSQL function cannot have produced is a StoreError, never a verdict."""
    store, totp = SQLStore(postgres_engine, create=False), TOTP(SECRET)
    monkeypatch.setattr(sql_store, "_CALL", sa.text(
        "SELECT CAST(:reason AS text), CAST(:retry AS float8), :failures, :locked"
    ).bindparams(reason=row[0], retry=row[1], failures=row[2], locked=row[3]))  # fmt: skip
    with pytest.raises(StoreError, match="unexpected reply"):
        Verifier(store, clock=FakeClock(START), policy=POLICY).verify(
            "alice", totp, totp.generate(START)
        )
