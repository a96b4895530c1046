"""django-otp's ``verify_token`` on the benchmark's own databases, in a minimal Django project.

bench_service.py imports this module only to time django-otp (the bench extra installs Django
and django-otp; the library itself never imports either). :func:`configure` sets Django up
in-process with one database alias per shared database (PostgreSQL through psycopg 3, MariaDB
through PyMySQL standing in for mysqlclient, SQLite in a file) and runs the migrations of
``contenttypes``, ``auth`` and ``django_otp.plugins.otp_totp`` on each. The tables go into the
same databases as the isoms-otp tables (``auth_user``, ``otp_totp_totpdevice``, ... beside
``isoms_otp_*``): literally the same database.

A :class:`Devices` is one timed row: each call is one ``django_otp.verify_token(user,
device.persistent_id, token)`` in Django's default autocommit (``verify_token`` opens its own
``transaction.atomic()`` and loads the device with ``select_for_update``), on a user and a
``TOTPDevice`` made for that call alone. They are made in bulk by ``prepare`` before each timed
run (outside the timing), which also works out the code for the current time step: django-otp
reads ``time.time()`` itself, so the codes must be right for the real clock, not a fixed one.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any

import _harness as h

from isoms_otp import TOTP

#: The database aliases, by the bench_service variant they sit beside.
ALIASES = {
    "SQLiteStore": "sqlite",
    "SQLStore-PostgreSQL": "postgresql",
    "SQLStore-MariaDB": "mariadb",
}
STEP = 30
_names = count()


def _server(engine: str, url: str) -> dict[str, Any]:
    import sqlalchemy as sa  # noqa: PLC0415 - the sql extra, like the stores

    parts = sa.make_url(url)
    return {
        "ENGINE": engine,
        "NAME": parts.database,
        "USER": parts.username,
        "PASSWORD": parts.password,
        "HOST": parts.host,
        "PORT": str(parts.port),
    }


def configure(urls: dict[str, str], sqlite_path: Path) -> None:
    """Set up Django with one alias per database and migrate each.

    ``urls`` holds the SQLAlchemy URLs of bench_service's servers (``postgres``, ``mariadb``).
    The ``default`` alias is Django's dummy backend: :meth:`Devices.prepare` points ``default``
    at the row's database, since ``verify_token`` always works on ``default``.
    """
    found = h.require({"django": "django", "django_otp": "django-otp", "pymysql": "pymysql"})
    # Django's MySQL backend is written for mysqlclient; PyMySQL stands in for it (and reports
    # a mysqlclient version, 2.2.8 in PyMySQL 1.2.4, that passes Django's >= 1.4.3 check).
    found["pymysql"].install_as_MySQLdb()
    from django.conf import settings  # noqa: PLC0415 - only once Django is known to be there

    settings.configure(
        DEBUG=False,
        SECRET_KEY="isoms-otp benchmark, not a secret",  # noqa: S106 - never serves a request
        USE_TZ=True,
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django_otp",
            "django_otp.plugins.otp_totp",
        ],
        DATABASES={
            "default": {},
            "postgresql": _server("django.db.backends.postgresql", urls["postgres"]),
            "mariadb": _server("django.db.backends.mysql", urls["mariadb"]),
            # The journal SQLiteStore keeps (WAL, synchronous=FULL), so that both pay the same
            # commit; Django's own default (a rollback journal) costs more per commit here.
            "sqlite": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(sqlite_path),
                "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL"},
            },
        },
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    )
    found["django"].setup()
    from django.core.management import call_command  # noqa: PLC0415

    for alias in ALIASES.values():
        call_command("migrate", database=alias, verbosity=0)


@dataclass(slots=True, kw_only=True)
class Devices:
    """One row: ``verify_token`` with an accepted, a wrong or a replayed code, a fresh device each.

    ``kind`` is ``accepted`` (the code of the current step, device never used), ``wrong`` (a
    code of none of the steps django-otp's tolerance of 1 looks at; the device's first failure)
    or ``replayed`` (the code of the step the device last accepted, which django-otp's
    ``last_t`` then refuses; its first failure too). A fresh device for every wrong and replayed
    call keeps django-otp's throttle out of it: with ``OTP_TOTP_THROTTLE_FACTOR`` 1 a second
    failure within a second is refused without looking at the code, which is cheaper than the
    refusal the row is about.
    """

    alias: str
    kind: str
    key: bytes
    queue: collections.deque[tuple[Any, str, str]] = field(default_factory=collections.deque)
    verify: Any = None  # django_otp.verify_token, once Django is set up

    def prepare(self, number: int) -> None:
        """Make ``number`` users with a device each, and their codes, for the next timed run."""
        from django.contrib.auth.models import User  # noqa: PLC0415 - needs configure() first
        from django.db import connections  # noqa: PLC0415
        from django_otp import verify_token  # noqa: PLC0415
        from django_otp.plugins.otp_totp.models import TOTPDevice  # noqa: PLC0415

        self.verify = verify_token
        # verify_token works on the "default" alias; for this row that is the row's database.
        connections["default"] = connections[self.alias]
        step = int(time.time()) // STEP
        totp = TOTP(self.key)
        codes = [totp.generate(float(STEP * s)) for s in range(step - 1, step + 3)]
        if self.kind == "wrong":
            code = next(c for c in ("000000", "111111", "222222", "333333") if c not in codes)
        else:
            code = codes[1]
        self.queue.clear()
        users = User.objects.using(self.alias).bulk_create(
            [User(username=f"{self.kind[0]}{next(_names)}-{self.alias}") for _ in range(number)]
        )
        devices = TOTPDevice.objects.using(self.alias).bulk_create(
            [
                TOTPDevice(
                    user=user,
                    name="phone",
                    confirmed=True,
                    key=self.key.hex(),
                    step=STEP,
                    t0=0,
                    digits=6,
                    tolerance=1,
                    drift=0,
                    last_t=step if self.kind == "replayed" else -1,
                )
                for user in users
            ]
        )
        h.check(all(d.pk is not None for d in devices), f"{self.alias}: bulk_create gave ids")
        self.queue.extend((d.user, d.persistent_id, code) for d in devices)

    def __call__(self) -> None:
        """One ``verify_token``, the timed statement; stops the run on a wrong verdict."""
        user, device_id, token = self.queue.popleft()
        verdict = self.verify(user, device_id, token)
        h.check((verdict is not None) == (self.kind == "accepted"), f"{self.alias}: {self.kind}")

    def statements(self) -> list[str]:
        """Name the SQL statements of one more call, e.g. ``SELECT ... FOR UPDATE`` (untimed).

        Django's ``CaptureQueriesContext`` logs them for that one call; the timed calls run with
        ``DEBUG`` off and log nothing.
        """
        from django.db import connections  # noqa: PLC0415
        from django.test.utils import CaptureQueriesContext  # noqa: PLC0415

        self.prepare(1)
        with CaptureQueriesContext(connections[self.alias]) as captured:
            self()
        names = []
        for query in captured.captured_queries:
            sql = str(query["sql"])
            locks = " ... FOR UPDATE" if "FOR UPDATE" in sql else ""
            names.append(sql.split(maxsplit=1)[0] + locks)
        return names
