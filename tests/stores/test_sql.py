"""SQLStore: the contract on PostgreSQL, MariaDB and SQLite (through SQLAlchemy), and faults."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from isoms_otp import SQLStore, Store
from isoms_otp.stores import sql as sql_store
from isoms_otp.testing import StoreContract
from servers import MariaDBServer, PostgresServer

pytestmark = pytest.mark.servers


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
