"""The relational store: PostgreSQL, MySQL/MariaDB or SQLite through SQLAlchemy Core.

Optional extra ``isoms-otp[sql]`` (SQLAlchemy 2, psycopg 3, PyMySQL). The tables are
:data:`metadata`, so an application can add them to its own migrations (Alembic).
"""

from __future__ import annotations

import functools
import math
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, Final, TypeVar

from isoms_otp._limits import check_store_timeout
from isoms_otp.exceptions import ConfigurationError, MissingExtraError, StoreError

from ._base import (
    EMPTY_BUDGET,
    EMPTY_MARK,
    EMPTY_RECOVERY,
    Attempt,
    Budget,
    Mark,
    RecoverySet,
    Settlement,
    Snapshot,
    decide,
)

try:
    import sqlalchemy as sa
    from sqlalchemy.dialects import mysql, postgresql
    from sqlalchemy.dialects import sqlite as sqlite_dialect
    from sqlalchemy.engine import Connection, Dialect, Engine
    from sqlalchemy.pool import StaticPool
    from sqlalchemy.types import TypeDecorator
except ImportError as exc:  # pragma: no cover - exercised in a subprocess without sqlalchemy
    raise MissingExtraError(
        "SQLStore needs SQLAlchemy and a database driver: pip install 'isoms-otp[sql]'"
    ) from exc

__all__ = ["POSTGRESQL_FUNCTION", "SCHEMA_VERSION", "SUPPORTED_DIALECTS", "SQLStore", "metadata"]

_T = TypeVar("_T")

#: The table layout's version (the same rows as SQLiteStore's schema 2).
SCHEMA_VERSION: Final = 2
#: The SQLAlchemy dialect names this store runs on; any other engine is refused.
SUPPORTED_DIALECTS: Final = ("postgresql", "mysql", "mariadb", "sqlite")
#: Longest text key: user and source are at most 256 characters, 4 bytes each in UTF-8.
_KEY_BYTES: Final = 1024
_MYSQL: Final = frozenset({"mysql", "mariadb"})


class _Key(TypeDecorator[str]):
    """Text compared exactly, byte for byte, on every dialect.

    MySQL and MariaDB collations fold case and ignore trailing spaces (``'Alice' = 'alice '``),
    which would merge two users' records; there the key is stored as VARBINARY UTF-8 bytes.
    """

    impl = sa.String(_KEY_BYTES)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in _MYSQL:
            return dialect.type_descriptor(mysql.VARBINARY(_KEY_BYTES))
        return dialect.type_descriptor(sa.String(_KEY_BYTES))

    def process_bind_param(self, value: str | None, dialect: Dialect) -> Any:
        if value is not None and dialect.name in _MYSQL:
            return value.encode("utf-8")  # a lone surrogate raises: StoreError, fail closed
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        del dialect  # bytes come only from the MySQL/MariaDB VARBINARY column
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value).decode("utf-8")
        return value  # type: ignore[no-any-return]


class _Counter(TypeDecorator[int]):
    """A replay mark: 0 to 2**64-1 exactly (NUMERIC(20), or decimal TEXT on SQLite)."""

    impl = sa.Numeric(20, 0)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":  # SQLite integers stop at 2**63-1
            return dialect.type_descriptor(sa.String(20))
        return dialect.type_descriptor(sa.Numeric(20, 0, asdecimal=True))

    def process_bind_param(self, value: int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        return str(value) if dialect.name == "sqlite" else Decimal(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        del dialect
        return _decimal(value)


def _decimal(value: object) -> int | None:
    """Read a stored mark, refusing anything this module would not have written."""
    if value is None:
        return None
    whole = isinstance(value, Decimal) and value.is_finite() and value % 1 == 0
    digits = isinstance(value, str) and value.isascii() and value.isdigit()
    if whole or digits or type(value) is int:
        number: int = int(value)  # type: ignore[call-overload]
    else:
        raise ValueError("a stored replay mark is not a whole number")
    if number < 0:
        raise ValueError("a stored replay mark is negative")
    return number


#: The tables, for ``metadata.create_all(engine)`` or an Alembic migration.
metadata: Final = sa.MetaData()

budgets: Final = sa.Table(
    "isoms_otp_budgets",
    metadata,
    sa.Column("user_id", _Key(), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("blocked_until", sa.Double, nullable=False),
    sa.Column("keep_until", sa.Double, nullable=False),
    comment="isoms-otp: one OTP failure budget per user (also each user's row lock)",
    mysql_engine="InnoDB",  # row locks and transactions; MyISAM has neither
)
sources: Final = sa.Table(
    "isoms_otp_sources",
    metadata,
    sa.Column("user_id", _Key(), primary_key=True),
    sa.Column("source", _Key(), primary_key=True),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("blocked_until", sa.Double, nullable=False),
    sa.Column("keep_until", sa.Double, nullable=False),
    comment="isoms-otp: one first-factor failure budget per (user, source)",
    mysql_engine="InnoDB",
)
marks: Final = sa.Table(
    "isoms_otp_marks",
    metadata,
    sa.Column("user_id", _Key(), primary_key=True),
    sa.Column("credential", _Key(), primary_key=True),
    sa.Column("totp", _Counter(), nullable=True),
    sa.Column("hotp", _Counter(), nullable=True),
    sa.Column("keep_until", sa.Double, nullable=False),
    comment="isoms-otp: replay high-water marks per (user, credential)",
    mysql_engine="InnoDB",
)
recovery: Final = sa.Table(
    "isoms_otp_recovery",
    metadata,
    sa.Column("user_id", _Key(), primary_key=True),
    sa.Column("set_id", _Key(), nullable=False),
    sa.Column("used", sa.Text, nullable=False),
    comment="isoms-otp: which codes of the user's recovery-code set were used",
    mysql_engine="InnoDB",
)

#: The rules of ``decide`` as one PostgreSQL function, so that a settle is one statement (one
#: round trip in autocommit). It locks the user's budget row first, as the other dialects do,
#: and every statement after the lock reads the latest committed rows (READ COMMITTED takes a
#: snapshot per statement inside a function). A hypothesis test holds it to ``decide``.
POSTGRESQL_FUNCTION: Final = """
CREATE OR REPLACE FUNCTION isoms_otp_settle_2(
    p_user varchar, p_source varchar, p_credential varchar, p_kind text, p_claim numeric,
    p_failure text, p_now float8, p_keep float8, p_longest float8,
    p_schedule float8[], p_max int, p_lock float8,
    p_pair_schedule float8[], p_pair_max int, p_pair_lock float8, p_lock_timeout text,
    OUT reason text, OUT retry_after float8, OUT failures int, OUT locked boolean)
LANGUAGE plpgsql AS $isoms$
#variable_conflict use_column
DECLARE
    b record;
    s_failures int := 0; s_blocked float8 := 0; s_keep float8 := 0;
    m_totp numeric; m_hotp numeric; r_set varchar; r_used text;
    has_s boolean; has_m boolean; has_r boolean;
    ub float8; pb float8; until_ float8; delay float8; v_used numeric; v_bit numeric;
BEGIN
    PERFORM set_config('lock_timeout', p_lock_timeout, true);
    -- The user's row lock: DO UPDATE ... WHERE false locks an existing row without writing.
    INSERT INTO isoms_otp_budgets (user_id, failures, blocked_until, keep_until)
        VALUES (p_user, 0, 0, 0)
        ON CONFLICT (user_id) DO UPDATE SET failures = EXCLUDED.failures WHERE false;
    SELECT * INTO STRICT b FROM isoms_otp_budgets WHERE user_id = p_user;
    SELECT failures, blocked_until, keep_until INTO s_failures, s_blocked, s_keep
        FROM isoms_otp_sources WHERE user_id = p_user AND source = p_source;
    has_s := FOUND;
    IF NOT has_s THEN s_failures := 0; s_blocked := 0; s_keep := 0; END IF;
    -- 1. throttled while either budget waits (the user's for ever at 100 failures)
    ub := CASE WHEN b.failures >= 100 THEN 'Infinity'::float8
               ELSE LEAST(b.blocked_until, p_now + p_longest) END;
    pb := LEAST(s_blocked, p_now + p_longest);
    until_ := GREATEST(ub, pb);
    IF until_ > p_now THEN
        IF b.blocked_until > p_now + p_longest THEN
            UPDATE isoms_otp_budgets SET blocked_until = p_now + p_longest,
                keep_until = LEAST(keep_until, p_now + p_longest + p_longest)
                WHERE user_id = p_user;
        END IF;
        IF has_s AND s_blocked > p_now + p_longest THEN
            UPDATE isoms_otp_sources SET blocked_until = p_now + p_longest,
                keep_until = LEAST(keep_until, p_now + p_longest + p_longest)
                WHERE user_id = p_user AND source = p_source;
        END IF;
        reason := 'throttled'; retry_after := until_ - p_now; locked := false;
        failures := CASE WHEN p_kind = 'first_factor' THEN s_failures ELSE b.failures END;
        RETURN;
    END IF;
    -- 2. a first-factor failure spends the (user, source) pair's budget
    IF p_kind = 'first_factor' THEN
        s_failures := s_failures + 1;
        failures := s_failures;
        delay := p_pair_schedule[LEAST(s_failures, p_pair_max)];
        s_keep := GREATEST(LEAST(s_keep, p_now + p_pair_lock + p_pair_lock),
                                 p_now + delay + p_pair_lock);
        s_blocked := CASE WHEN delay > 0 THEN p_now + delay ELSE 0 END;
        IF has_s THEN
            UPDATE isoms_otp_sources SET failures = s_failures,
                blocked_until = s_blocked, keep_until = s_keep
                WHERE user_id = p_user AND source = p_source;
        ELSE
            INSERT INTO isoms_otp_sources VALUES
                (p_user, p_source, s_failures, s_blocked, s_keep);
        END IF;
        reason := 'invalid'; locked := s_failures >= p_pair_max;
        RETURN;
    END IF;
    -- 3. a claim above the credential's mark (a recovery code not used yet) is accepted
    IF p_claim IS NOT NULL THEN
        IF p_kind = 'recovery' THEN
            SELECT set_id, used INTO r_set, r_used FROM isoms_otp_recovery WHERE user_id = p_user;
            has_r := FOUND;
            v_used := CASE WHEN has_r AND r_set = p_credential THEN r_used::numeric ELSE 0 END;
            v_bit := round(power(2::numeric, p_claim));  -- power() keeps 16 decimals
            IF mod(div(v_used, v_bit), 2) = 0 THEN
                IF has_r THEN
                    UPDATE isoms_otp_recovery
                        SET set_id = p_credential, used = (v_used + v_bit)::text
                        WHERE user_id = p_user;
                ELSE
                    INSERT INTO isoms_otp_recovery
                        VALUES (p_user, p_credential, (v_used + v_bit)::text);
                END IF;
                reason := 'accepted';
            END IF;
        ELSE
            SELECT totp, hotp INTO m_totp, m_hotp FROM isoms_otp_marks
                WHERE user_id = p_user AND credential = p_credential;
            has_m := FOUND;
            IF p_kind = 'totp' AND (m_totp IS NULL OR p_claim > m_totp) THEN
                IF has_m THEN
                    UPDATE isoms_otp_marks SET totp = p_claim,
                        keep_until = GREATEST(keep_until, p_keep)
                        WHERE user_id = p_user AND credential = p_credential;
                ELSE
                    INSERT INTO isoms_otp_marks VALUES
                        (p_user, p_credential, p_claim, NULL, GREATEST(0, p_keep));
                END IF;
                reason := 'accepted';
            ELSIF p_kind = 'hotp' AND (m_hotp IS NULL OR p_claim > m_hotp) THEN
                IF has_m THEN
                    UPDATE isoms_otp_marks SET hotp = p_claim
                        WHERE user_id = p_user AND credential = p_credential;
                ELSE
                    INSERT INTO isoms_otp_marks VALUES (p_user, p_credential, NULL, p_claim, 0);
                END IF;
                reason := 'accepted';
            END IF;
        END IF;
        IF reason = 'accepted' THEN
            IF b.failures <> 0 OR b.blocked_until <> 0 OR b.keep_until <> 0 THEN
                UPDATE isoms_otp_budgets SET failures = 0, blocked_until = 0, keep_until = 0
                    WHERE user_id = p_user;
            END IF;
            IF has_s THEN
                DELETE FROM isoms_otp_sources WHERE user_id = p_user AND source = p_source;
            END IF;
            failures := 0; locked := false;
            RETURN;
        END IF;
    END IF;
    -- 4. anything else spends the user's OTP budget
    failures := b.failures + 1;
    delay := p_schedule[LEAST(failures, p_max)];
    UPDATE isoms_otp_budgets SET failures = failures + 1,
        blocked_until = CASE WHEN delay > 0 THEN p_now + delay ELSE 0 END,
        keep_until = GREATEST(LEAST(keep_until, p_now + p_lock + p_lock), p_now + delay + p_lock)
        WHERE user_id = p_user;
    reason := CASE WHEN p_claim IS NOT NULL THEN 'replayed' ELSE p_failure END;
    locked := failures >= p_max;
END
$isoms$
"""
_CALL: Final = sa.text(
    "SELECT reason, retry_after, failures, locked FROM isoms_otp_settle_2("
    "CAST(:user AS varchar), CAST(:source AS varchar), CAST(:credential AS varchar), "
    "CAST(:kind AS text), CAST(:claim AS numeric), CAST(:failure AS text), "
    "CAST(:now AS float8), CAST(:keep AS float8), CAST(:longest AS float8), "
    "CAST(:schedule AS float8[]), CAST(:max AS int), CAST(:lock AS float8), "
    "CAST(:pair_schedule AS float8[]), CAST(:pair_max AS int), CAST(:pair_lock AS float8), "
    "CAST(:lock_timeout AS text))"
)
# DDL, not exec_driver_sql: it doubles the % of %ROWTYPE for psycopg's paramstyle.
# The database-wide locks that make processes creating the tables together take turns: a
# PostgreSQL advisory lock key (the ASCII of "isomsotp" as a number, halved to fit a bigint) and a
# MySQL/MariaDB
# GET_LOCK name.
_CREATION_LOCK_KEY: Final = int.from_bytes(b"isomsotp", "big") >> 1
_CREATION_LOCK_NAME: Final = "isoms_otp.create"
_FUNCTION_DDL: Final = sa.DDL(POSTGRESQL_FUNCTION)  # type: ignore[no-untyped-call]
sa.event.listen(metadata, "after_create", _FUNCTION_DDL.execute_if(dialect="postgresql"))

# One read of everything decide() needs, driven by a one-row constant so that it works whether
# or not the user's budget row exists.
_key = sa.select(sa.bindparam("user", type_=_Key()).label("user_id")).subquery("k")
_b, _s, _m, _r = budgets.alias("b"), sources.alias("s"), marks.alias("m"), recovery.alias("r")
_READ: Final = sa.select(
    _b.c.user_id, _b.c.failures, _b.c.blocked_until, _b.c.keep_until,
    _s.c.user_id, _s.c.failures, _s.c.blocked_until, _s.c.keep_until,
    _m.c.user_id, _m.c.totp, _m.c.hotp, _m.c.keep_until,
    _r.c.user_id, _r.c.set_id, _r.c.used,
).select_from(
    _key.outerjoin(_b, _b.c.user_id == _key.c.user_id)
    .outerjoin(
        _s, sa.and_(_s.c.user_id == _key.c.user_id, _s.c.source == sa.bindparam("source"))
    )
    .outerjoin(
        _m, sa.and_(_m.c.user_id == _key.c.user_id, _m.c.credential == sa.bindparam("credential"))
    )
    .outerjoin(_r, _r.c.user_id == _key.c.user_id)
)  # fmt: skip


def _budget(exists: object, failures: object, blocked: object, keep: object) -> Budget:
    if exists is None:
        return EMPTY_BUDGET
    if type(failures) is not int or failures < 0:
        raise ValueError("a stored failure count is not a non-negative integer")
    blocked, keep = float(blocked), float(keep)  # type: ignore[arg-type]
    if not (math.isfinite(blocked) and math.isfinite(keep)):
        raise ValueError("a stored time is not finite")
    return Budget(failures=failures, blocked_until=blocked, keep_until=keep)


def _snapshot(row: Any) -> tuple[Snapshot, tuple[bool, bool, bool]]:
    """Turn the read into a Snapshot, and say which of pair, mark and recovery rows exist."""
    values = tuple(row)
    mark = EMPTY_MARK
    if values[8] is not None:
        keep = float(values[11])
        if not math.isfinite(keep):
            raise ValueError("a stored time is not finite")
        mark = Mark(totp_start=values[9], hotp_counter=values[10], keep_until=keep)
    found = EMPTY_RECOVERY
    if values[12] is not None:
        used = _decimal(values[14])
        found = RecoverySet(set_id=values[13], used=used or 0)
    state = Snapshot(
        budget=_budget(*values[0:4]), pair=_budget(*values[4:8]), mark=mark, recovery=found
    )
    return state, (values[4] is not None, values[8] is not None, values[12] is not None)


@functools.lru_cache(maxsize=64)
def _mysql_lock(seconds: int) -> sa.TextClause:
    """Return the MySQL/MariaDB lock statement (on MariaDB, ``seconds > 0``, with its lock wait).

    One text clause per wait, built once, so SQLAlchemy's statement cache keeps it compiled.
    """
    sql = (
        "INSERT INTO isoms_otp_budgets (user_id, failures, blocked_until, keep_until) "
        "VALUES (:user, 0, 0, 0) ON DUPLICATE KEY UPDATE user_id = user_id"
    )
    if seconds:
        sql = f"SET STATEMENT innodb_lock_wait_timeout={seconds} FOR {sql}"
    return sa.text(sql).bindparams(sa.bindparam("user", type_=_Key()))


class _Retry(Exception):  # noqa: N818 - a signal, not an error a caller sees
    """The transaction met a row that moved under it; run it again."""


_REASONS: Final = frozenset({"accepted", "invalid", "malformed", "replayed", "throttled"})
#: Server errors that mean "run the transaction again": PostgreSQL serialization failure and
#: deadlock; MySQL/MariaDB deadlock and snapshot-isolation conflict (1020); SQLite busy.
_PG_RETRY: Final = frozenset({"40001", "40P01"})
_MYSQL_RETRY: Final = frozenset({1213, 1020})


def _retryable(exc: BaseException, dialect: str) -> bool:
    if isinstance(exc, _Retry):
        return True
    if not isinstance(exc, sa.exc.DBAPIError) or exc.connection_invalidated:
        return False
    orig = exc.orig
    if dialect == "postgresql":
        return getattr(orig, "sqlstate", None) in _PG_RETRY
    if dialect in _MYSQL:
        code = orig.args[0] if orig is not None and orig.args else None
        return code in _MYSQL_RETRY
    text = str(orig).lower()
    return "locked" in text or "busy" in text


class SQLStore:
    """A store in the application's own PostgreSQL, MySQL/MariaDB or SQLite database.

    ``engine`` is the SQLAlchemy ``Engine`` the application already has (PostgreSQL through
    psycopg 3, MySQL 8 or MariaDB through PyMySQL, or SQLite; other dialects are refused).
    ``create=True`` creates the tables of :data:`metadata` when missing; pass ``False`` when a
    migration tool owns them.

    Each operation is one transaction. A settle first locks the user's budget row (creating it
    when missing), so every attempt of one user is serialised on that row whatever the
    isolation level; then it reads the user's budget, the ``(user, source)`` pair, the
    credential's mark and the recovery state, applies the rules of
    :func:`~isoms_otp.stores.decide` and writes what changed. On PostgreSQL that is one call of
    a function the store creates (``isoms_otp_settle_2``, :data:`POSTGRESQL_FUNCTION`), sent in
    autocommit: one round trip. On MySQL/MariaDB and SQLite it is ``decide`` itself between a
    locking statement, one read and the writes: 3 or 4 statements and a COMMIT. Deadlocks and
    serialisation failures are retried until ``timeout`` seconds have passed; then, and for
    every other database error, :class:`StoreError` (fail closed). A call whose reply was lost
    is not retried: an accepted code is then spent.

    Every call ends within ``timeout`` plus what the driver adds: row-lock waits are bounded on
    the server (PostgreSQL ``lock_timeout``; MySQL/MariaDB ``innodb_lock_wait_timeout``, whole
    seconds, so up to one second more; SQLite ``busy_timeout``), and a pool with a checkout
    wait longer than ``timeout`` is refused. Give the driver a connect timeout too
    (``connect_timeout`` in the URL).
    """

    __slots__ = ("_dialect", "_engine", "_own_engine", "_serial", "_timeout")

    def __init__(self, engine: Engine, *, timeout: float = 5.0, create: bool = True) -> None:
        if not isinstance(engine, Engine):
            raise TypeError(f"engine must be a sqlalchemy Engine, not {type(engine).__name__}")
        timeout = check_store_timeout(timeout)
        name = engine.dialect.name
        if name not in SUPPORTED_DIALECTS:
            raise ConfigurationError(
                f"SQLStore supports PostgreSQL, MySQL/MariaDB and SQLite, not {name!r}; use "
                "one of those, or RedisStore or SQLiteStore"
            )
        own = False
        serial = None
        if name == "sqlite" and engine.url.database in (None, "", ":memory:"):
            # The default pool gives every thread its own empty in-memory database, so threads
            # would not share marks. One connection shared by all (StaticPool) is one database;
            # the store then runs one operation at a time on it.
            if not isinstance(engine.pool, StaticPool):
                if not create:
                    raise ConfigurationError(
                        "an in-memory SQLite engine gives every thread its own empty database: "
                        "with create=False pass one made with poolclass=StaticPool (and "
                        "connect_args={'check_same_thread': False}), or use a file"
                    )
                engine = sa.create_engine(
                    "sqlite://",
                    poolclass=StaticPool,
                    connect_args={"check_same_thread": False},
                )
                own = True
            serial = threading.Lock()
        else:
            checkout = getattr(engine.pool, "timeout", None)
            if callable(checkout) and checkout() > timeout:
                # The pool would wait longer for a free connection than a call may take (the
                # default pool_timeout is 30 s): the store keeps its own copy of the pool, with
                # the same connection settings and events, whose wait is bounded by timeout.
                pool = engine.pool.recreate()
                pool._timeout = float(timeout)  # type: ignore[attr-defined]  # QueuePool's wait
                engine = sa.create_engine(engine.url, pool=pool)
                own = True
        self._engine = engine
        self._own_engine = own
        self._serial = serial
        self._dialect = name
        self._timeout = float(timeout)
        if create:
            self._create()

    def __repr__(self) -> str:
        return f"SQLStore(dialect={self._dialect!r})"

    def _create(self) -> None:
        """Create the tables (and PostgreSQL's function) when missing, retried to the deadline.

        Processes that start together each run this: a lock of the database's own (PostgreSQL
        ``pg_advisory_xact_lock``, MySQL/MariaDB ``GET_LOCK``) makes them take turns, since two
        concurrent ``CREATE OR REPLACE FUNCTION`` fail with "tuple concurrently updated" and two
        ``CREATE TABLE`` with "already exists". Whatever still fails is retried until
        ``timeout``, then a :class:`StoreError` that says the tables could not be created.
        """
        deadline = time.monotonic() + self._timeout
        pause = 0.01
        while True:
            try:
                self._create_once(deadline)
            except sa.exc.SQLAlchemyError as exc:  # noqa: PERF203 - retry loop
                if deadline - time.monotonic() <= pause:
                    raise StoreError(
                        f"the SQL store ({self._dialect}) could not create its tables "
                        f"({type(exc).__name__}); nothing was verified"
                    ) from exc
                time.sleep(pause * (0.5 + random.random()))  # noqa: S311 - jitter
                pause = min(pause * 2, 0.2)
            else:
                return

    def _create_once(self, deadline: float) -> None:
        wait = max(deadline - time.monotonic(), 0.001)
        with self._connect(deadline) as conn:
            if self._dialect in _MYSQL:
                got = conn.execute(
                    sa.text("SELECT GET_LOCK(:name, :wait)"),
                    {"name": _CREATION_LOCK_NAME, "wait": max(1, math.ceil(wait))},
                ).scalar()
                if got != 1:
                    raise sa.exc.OperationalError("GET_LOCK", {}, TimeoutError("lock wait"))
                try:
                    metadata.create_all(conn, checkfirst=True)
                    conn.commit()
                finally:
                    conn.execute(
                        sa.text("SELECT RELEASE_LOCK(:name)"), {"name": _CREATION_LOCK_NAME}
                    )
                    conn.commit()
                return
            with conn.begin():
                if self._dialect == "postgresql":
                    ms = f"{max(1, math.ceil(wait * 1000))}ms"
                    conn.execute(
                        sa.text("SELECT set_config('lock_timeout', :ms, true)"), {"ms": ms}
                    )
                    conn.execute(
                        sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CREATION_LOCK_KEY}
                    )
                metadata.create_all(conn, checkfirst=True)
                if self._dialect == "postgresql":  # after_create runs only for new tables
                    conn.execute(_FUNCTION_DDL)

    def _fail(self, exc: BaseException) -> StoreError:
        return StoreError(
            f"the SQL store ({self._dialect}) failed ({type(exc).__name__}); "
            "the verification was refused"
        )

    def _run(self, work: Callable[[Connection, float], _T]) -> _T:
        """Run ``work(connection, deadline)`` in one transaction, retried until the deadline."""
        deadline = time.monotonic() + self._timeout
        pause = 0.002
        while True:
            try:
                with self._connect(deadline) as conn:
                    if self._dialect == "postgresql":
                        conn.execution_options(isolation_level="READ COMMITTED")
                    with conn.begin():
                        return work(conn, deadline)
            except (sa.exc.SQLAlchemyError, _Retry) as exc:  # noqa: PERF203 - retry loop
                left = deadline - time.monotonic()
                if not _retryable(exc, self._dialect) or left <= pause:
                    raise self._fail(exc) from exc
                time.sleep(pause * (0.5 + random.random()))  # noqa: S311 - jitter
                pause = min(pause * 2, 0.05)
            except (ValueError, TypeError, UnicodeError, OverflowError) as exc:
                raise self._fail(exc) from exc

    @property
    def _mariadb(self) -> bool:
        # Known only once the dialect has met the server (after the first connection).
        return bool(getattr(self._engine.dialect, "is_mariadb", False))

    def _bound_waits(self, conn: Connection, deadline: float) -> None:
        """Bound this transaction's lock waits by what is left of the deadline."""
        left = max(deadline - time.monotonic(), 0.001)
        if self._dialect == "postgresql":
            ms = str(max(1, math.ceil(left * 1000)))
            conn.execute(sa.text("SELECT set_config('lock_timeout', :ms, true)"), {"ms": ms + "ms"})
        elif self._dialect == "sqlite":
            conn.exec_driver_sql(f"PRAGMA busy_timeout = {max(1, math.ceil(left * 1000))}")
        elif not self._mariadb:  # MariaDB bounds it per statement in _lock
            conn.exec_driver_sql(f"SET SESSION innodb_lock_wait_timeout = {math.ceil(left)}")

    def _lock(self, conn: Connection, user: str, deadline: float) -> None:
        """Lock ``user``'s budget row, creating an empty one when missing."""
        values = {"user_id": user, "failures": 0, "blocked_until": 0.0, "keep_until": 0.0}
        if self._dialect == "postgresql":
            # DO UPDATE ... WHERE false writes nothing but still locks the existing row.
            pg = postgresql.insert(budgets).values(values)
            conn.execute(
                pg.on_conflict_do_update(
                    index_elements=[budgets.c.user_id],
                    set_={"failures": pg.excluded.failures},
                    where=sa.false(),
                )
            )
        elif self._dialect == "sqlite":
            # Any write takes SQLite's one write lock, held to COMMIT.
            lite = sqlite_dialect.insert(budgets).values(values)
            conn.execute(lite.on_conflict_do_nothing(index_elements=[budgets.c.user_id]))
        else:
            seconds = max(1, math.ceil(deadline - time.monotonic()))
            conn.execute(_mysql_lock(seconds if self._mariadb else 0), {"user": user})

    def _write(
        self,
        conn: Connection,
        table: sa.Table,
        where: dict[str, str],
        values: dict[str, Any] | None,
        exists: bool,
    ) -> None:
        """Insert, update or (``values=None``) delete one row; a row gone meanwhile retries."""
        condition = sa.and_(*(table.c[name] == value for name, value in where.items()))
        if values is None:
            if exists:
                conn.execute(table.delete().where(condition))
        elif exists:
            if conn.execute(table.update().where(condition).values(values)).rowcount != 1:
                raise _Retry  # pruned between the read and this write
        else:
            conn.execute(table.insert().values({**where, **values}))

    def _settle_postgresql(self, attempt: Attempt) -> Settlement:
        """Settle with the store's function: one statement in autocommit, one round trip."""
        policy = attempt.policy
        params = {
            "user": attempt.user,
            "source": attempt.source,
            "credential": attempt.credential,
            "kind": attempt.kind,
            "claim": attempt.claim,
            "failure": attempt.failure,
            "now": float(attempt.now),
            "keep": float(attempt.keep_until),
            "longest": float(policy.longest_wait),
            "schedule": list(policy.schedule),
            "max": policy.max_failures,
            "lock": float(policy.lock_duration),
            "pair_schedule": list(policy.source_schedule),
            "pair_max": policy.source_max_failures,
            "pair_lock": float(policy.source_lock_duration),
        }
        deadline = time.monotonic() + self._timeout
        pause = 0.002
        while True:
            left = max(deadline - time.monotonic(), 0.001)
            params["lock_timeout"] = f"{max(1, math.ceil(left * 1000))}ms"
            try:
                with self._connect(deadline) as conn:
                    conn.execution_options(isolation_level="AUTOCOMMIT")
                    row = conn.execute(_CALL, params).one()
                break
            except sa.exc.SQLAlchemyError as exc:
                if not _retryable(exc, self._dialect) or deadline - time.monotonic() <= pause:
                    raise self._fail(exc) from exc
                time.sleep(pause * (0.5 + random.random()))  # noqa: S311 - jitter
                pause = min(pause * 2, 0.05)
            except (ValueError, TypeError, UnicodeError, OverflowError) as exc:
                raise self._fail(exc) from exc
        reason, retry, failures, locked = row
        if reason not in _REASONS or type(failures) is not int or type(locked) is not bool:
            raise StoreError("the SQL store gave an unexpected reply; the verification was refused")
        if reason == "throttled" and not (isinstance(retry, float) and retry > 0):
            raise StoreError("the SQL store gave an unexpected reply; the verification was refused")
        return Settlement(
            reason=reason,
            retry_after=retry if reason == "throttled" else None,
            failures=failures,
            locked=locked,
        )

    def settle(self, attempt: Attempt) -> Settlement:
        """Decide one attempt in one transaction (see ``decide``); one statement on PostgreSQL."""
        if self._dialect == "postgresql":
            return self._settle_postgresql(attempt)
        user, source, credential = attempt.user, attempt.source, attempt.credential

        def work(conn: Connection, deadline: float) -> Settlement:
            self._bound_waits(conn, deadline)
            self._lock(conn, user, deadline)
            row = conn.execute(
                _READ, {"user": user, "source": source, "credential": credential}
            ).one()
            state, (has_pair, has_mark, has_recovery) = _snapshot(row)
            decision = decide(attempt, state)
            me = {"user_id": user}
            if decision.budget is not None:
                kept = None if decision.budget == EMPTY_BUDGET else _budget_values(decision.budget)
                self._write(conn, budgets, me, kept, exists=True)
            if decision.pair is not None:
                pair = None if decision.pair == EMPTY_BUDGET else _budget_values(decision.pair)
                self._write(conn, sources, {**me, "source": source}, pair, exists=has_pair)
            if decision.mark is not None:
                mark = decision.mark
                values = {
                    "totp": mark.totp_start,
                    "hotp": mark.hotp_counter,
                    "keep_until": float(mark.keep_until),
                }
                where = {**me, "credential": credential}
                self._write(conn, marks, where, values, exists=has_mark)
            if decision.recovery is not None:
                used = {"set_id": decision.recovery.set_id, "used": str(decision.recovery.used)}
                self._write(conn, recovery, me, used, exists=has_recovery)
            return decision.settlement

        return self._run(work)

    def snapshot(self, user: str, *, source: str = "", credential: str = "") -> Snapshot:
        """Read what ``decide`` would see for these keys (one query, no lock)."""

        def work(conn: Connection, deadline: float) -> Snapshot:
            del deadline  # a plain read waits for no lock
            params = {"user": user, "source": source, "credential": credential}
            return _snapshot(conn.execute(_READ, params).one())[0]

        return self._run(work)

    def marks(self, user: str) -> dict[str, Mark]:
        """Return every credential mark kept for ``user``."""

        def work(conn: Connection, deadline: float) -> dict[str, Mark]:
            del deadline
            rows = conn.execute(
                sa.select(marks.c.credential, marks.c.totp, marks.c.hotp, marks.c.keep_until)
                .where(marks.c.user_id == user)
            ).all()  # fmt: skip
            return {
                credential: Mark(totp_start=totp, hotp_counter=hotp, keep_until=float(keep))
                for credential, totp, hotp, keep in rows
            }

        return self._run(work)

    def reset(self, user: str, *, now: float) -> None:
        """Clear ``user``'s OTP budget and every pair budget of ``user``; the marks stay."""
        del now  # cleared budgets are deleted outright

        def work(conn: Connection, deadline: float) -> None:
            self._bound_waits(conn, deadline)
            self._lock(conn, user, deadline)
            conn.execute(budgets.delete().where(budgets.c.user_id == user))
            conn.execute(sources.delete().where(sources.c.user_id == user))

        self._run(work)

    def prune(self, now: float) -> int:
        """Forget every record that changes no decision at ``now``; return how many."""

        def work(conn: Connection, deadline: float) -> int:
            self._bound_waits(conn, deadline)
            # Empty budget rows are only the per-user lock a settle left; not counted.
            conn.execute(
                budgets.delete().where(
                    budgets.c.failures == 0,
                    budgets.c.blocked_until == 0,
                    budgets.c.keep_until == 0,
                )
            )
            statements = (
                budgets.delete().where(
                    budgets.c.failures < 100,
                    budgets.c.keep_until <= now,
                    budgets.c.blocked_until <= now,
                ),
                sources.delete().where(sources.c.keep_until <= now, sources.c.blocked_until <= now),
                marks.delete().where(marks.c.hotp.is_(None), marks.c.keep_until <= now),
            )
            return sum(conn.execute(statement).rowcount for statement in statements)

        return self._run(work)

    def close(self) -> None:
        """Close the store's own pool, if it made one; the application's engine stays open."""
        if self._own_engine:
            self._engine.dispose()

    @contextmanager
    def _connect(self, deadline: float) -> Iterator[Connection]:
        """Open a connection (on a shared in-memory SQLite one, once the earlier call is done)."""
        serial = self._serial
        if serial is None:
            with self._engine.connect() as conn:
                yield conn
            return
        if not serial.acquire(timeout=max(deadline - time.monotonic(), 0.001)):
            raise sa.exc.TimeoutError("the in-memory database is busy")
        try:
            with self._engine.connect() as conn:
                yield conn
        finally:
            serial.release()


def _budget_values(budget: Budget) -> dict[str, Any]:
    return {
        "failures": budget.failures,
        "blocked_until": float(budget.blocked_until),
        "keep_until": float(budget.keep_until),
    }
