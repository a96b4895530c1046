"""Audit events: one :class:`Event` per Verifier decision, a logging sink and a clock-skew monitor.

Pass a callable as ``Verifier(..., on_event=...)``: it gets exactly one :class:`Event` per call of
``verify``, ``confirm``, ``resync``, ``record_failure``, ``reset`` and ``prune``, built from the
store's own :class:`~isoms_otp.stores.Settlement` after the store decided (never re-derived from
the verdict, so races cannot make two events claim the same failure count). A hook that raises
changes nothing: the verdict and the stored state stand, and the error is logged once per
exception type. See ``docs/events.md``.

:class:`LoggingSink` writes each event as one log line with the fields as ``extra``;
:class:`DriftMonitor` flags users whose phone clock is off; ``isoms_otp.metrics.PrometheusSink``
(extra ``metrics``) counts events for a dashboard.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Final, Literal

from ._limits import integer_in
from .stores._base import Kind

__all__ = [
    "Action",
    "DriftMonitor",
    "Event",
    "EventHook",
    "EventReason",
    "LoggingSink",
]

#: What the application asked the Verifier to do. ``"verify"`` covers ``verify`` and ``resync``.
Action = Literal["verify", "confirm", "recovery", "record_failure", "reset", "prune"]
#: The verdict's reason; ``"reset"``/``"pruned"`` for the admin actions; ``"error"``: the store
#: failed (the call raised :class:`~isoms_otp.exceptions.StoreError`).
EventReason = Literal[
    "accepted", "invalid", "malformed", "replayed", "throttled", "reset", "pruned", "error"
]
#: What ``on_event`` accepts: any callable taking one :class:`Event`; its result is ignored.
EventHook = Callable[["Event"], object]


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One decision of a :class:`~isoms_otp.Verifier`, as the store made it.

    ``action`` is the method called (``resync`` reports ``"verify"``); ``user`` the user key
    (``None`` for ``"prune"``); ``source`` the attempt's source (``None`` when none was given);
    ``reason`` the verdict's reason, ``"reset"`` or ``"pruned"`` for the admin actions, and
    ``"error"`` when the store raised (the call then raises the ``StoreError``). ``failures``
    is the count of the budget the attempt spent, after the decision (0 after an acceptance, a
    reset, a prune or an error); ``locked`` is true exactly on the event whose decision started
    a lock; ``retry_after`` the seconds to wait for ``"throttled"`` (``math.inf``: until an
    admin reset), else ``None``. ``kind`` (``"totp"``, ``"hotp"``, ``"recovery"``), ``drift``
    (the matched step or counter minus the expected one) and ``credential`` (the index of the
    matched credential) are set for ``"accepted"`` and ``"replayed"`` codes only, else ``None``.
    ``removed`` is how many records ``"prune"`` dropped (``None`` for other actions). ``at`` is
    the Verifier's clock for the call (Unix seconds); ``latency`` the seconds the store call
    took, on a monotonic timer (``time.perf_counter``).

    No field ever holds a secret, a code or a credential id.
    """

    action: Action
    user: str | None = None
    source: str | None = None
    reason: EventReason
    failures: int = 0
    locked: bool = False
    retry_after: float | None = None
    kind: Kind | None = None
    drift: int | None = None
    credential: int | None = None
    removed: int | None = None
    at: float
    latency: float = 0.0


class _EventFill:
    """Event's slots in a plain class, so that :func:`_new_event` can fill them with plain stores.

    A frozen dataclass's ``__init__`` writes each of the 13 fields through
    ``object.__setattr__``: about eight times the cost of filling this instance and giving it
    the class ``Event`` (same slots, same layout), which is what the Verifier does per decision.
    """

    __slots__ = Event.__slots__  # the same names in the same order: the same layout
    action: Action
    user: str | None
    source: str | None
    reason: EventReason
    failures: int
    locked: bool
    retry_after: float | None
    kind: Kind | None
    drift: int | None
    credential: int | None
    removed: int | None
    at: float
    latency: float


_NEW: Final = object.__new__


def _new_event(  # noqa: PLR0917 - positional: one per field, in the order of Event's fields
    action: Action,
    user: str | None,
    source: str | None,
    reason: EventReason,
    failures: int,
    locked: bool,
    retry_after: float | None,
    kind: Kind | None,
    drift: int | None,
    credential: int | None,
    removed: int | None,
    at: float,
    latency: float,
) -> Event:
    """Return ``Event(action=action, ...)`` for the Verifier's own, already valid, values."""
    made = _NEW(_EventFill)
    made.action = action
    made.user = user
    made.source = source
    made.reason = reason
    made.failures = failures
    made.locked = locked
    made.retry_after = retry_after
    made.kind = kind
    made.drift = drift
    made.credential = credential
    made.removed = removed
    made.at = at
    made.latency = latency
    made.__class__ = Event  # type: ignore[assignment]  # same slots: it is an Event now
    return made  # type: ignore[return-value]


#: Where a hook's own failures are reported (once per exception type and Verifier).
_HOOK_LOGGER: Final = logging.getLogger("isoms_otp.verifier")


class _Hook:
    """An ``on_event`` callable that never lets its exceptions out, and reports each type once."""

    __slots__ = ("_call", "_lock", "_seen")

    def __init__(self, call: EventHook) -> None:
        self._call = call
        self._lock = threading.Lock()
        self._seen: set[type[BaseException]] = set()

    def __call__(self, event: Event) -> None:
        try:
            self._call(event)
        except Exception as error:  # a sink's failure must never change a verdict
            kind = type(error)
            with self._lock:
                if kind in self._seen:
                    return
                self._seen.add(kind)
            # The event itself holds no secret or code; the traceback shows the sink's bug.
            _HOOK_LOGGER.exception(
                "on_event hook %r raised %s (further %s errors of this hook are not logged)",
                self._call,
                kind.__name__,
                kind.__name__,
            )


#: The message of every LoggingSink line (``record.msg``; the event's main fields are its args).
_MESSAGE: Final = "otp %s %s user=%r source=%r failures=%d locked=%s retry_after=%s drift=%s"
#: The names each event field is set under on the record: its own, and with the otp_ prefix.
_FIELDS: Final = tuple(f.name for f in fields(Event))
_FIELD_KEYS: Final = (*_FIELDS, *(f"otp_{name}" for name in _FIELDS))
_RECORD: Final = logging.LogRecord
#: The attributes ``LogRecord.__init__`` sets, in its order, by ``_python_kind()``.
_BASE_KEYS: Final = (
    "name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module",
    "exc_info", "exc_text", "stack_info", "lineno", "funcName", "created", "msecs",
    "relativeCreated", "thread", "threadName", "processName", "process",
)  # fmt: skip
_RECORD_KEYS: Final = {10: _BASE_KEYS, 12: (*_BASE_KEYS, "taskName"), 13: (*_BASE_KEYS, "taskName")}
#: The originals, so that an application's replacement of either sends records to makeRecord.
_RECORD_INIT: Final = logging.LogRecord.__init__
_MAKE_RECORD: Final = logging.Logger.makeRecord
_PATHNAME: Final = __file__
_FUNC_NAME: Final = "LoggingSink"
# Everything LogRecord.__init__ reads per record is looked up per line, on its module, as it
# looks it up (time.time, threading.get_ident, os.getpid, logging._startTime, ...): a
# library that patches one of them (gevent, a test's frozen clock) sees the same effect here.


def _python_kind() -> int:
    """Which ``LogRecord.__init__`` this Python has: 13 (3.13), 12 (3.12), 10 (3.10/3.11), or 0.

    0 is a Python these lines were not checked against, or whose records do not compute
    ``msecs`` and ``relativeCreated`` as they do (before gh-89047, 3.10.x ``msecs`` had a
    fraction): every record then comes from ``logger.makeRecord``.
    """
    version = sys.version_info[:2]
    start = getattr(logging, "_startTime", None)
    if version == (3, 13) and type(start) is int:
        return 13  # time.time_ns(), _startTime in ns, taskName
    if not ((3, 10) <= version <= (3, 12) and type(start) is float):
        return 0
    # time.time(), _startTime in seconds: check this patch release's arithmetic on a record.
    probe = logging.LogRecord("probe", logging.INFO, __file__, 0, "", (), None)
    ct = probe.created
    if probe.msecs != int((ct - int(ct)) * 1000) + 0.0 or probe.relativeCreated != (
        (ct - start) * 1000
    ):
        return 0
    return 12 if version == (3, 12) else 10  # 3.12 records have a taskName, 3.10-3.11 none


_PYTHON: Final = _python_kind()


class LoggingSink:
    """Write each event as one ``logging`` line, with every field in ``extra``.

    ``logger`` defaults to ``logging.getLogger("isoms_otp.events")``. The level is ``WARNING``
    for an event that started a lock or reports a store error, ``INFO`` otherwise. Every
    :class:`Event` field is set on the record as ``extra`` is, twice: under its own name
    (``record.action``, ``record.user``, ``record.reason``, ...; none clashes with a
    ``LogRecord`` attribute) and prefixed with ``otp_`` (``otp_action``, ``otp_user``, ...), a
    prefix structured (JSON) formatters can select on; the message repeats the main ones for
    plain-text logs. A call costs little when the logger is disabled for the level (one
    ``isEnabledFor`` check).

    The record is the one ``logger.makeRecord`` would make: the same attributes in the same
    order, with the clock, thread, process and asyncio task read per line as
    ``LogRecord.__init__`` reads them (through their modules, so a patched ``time.time`` or
    ``threading.get_ident`` applies). The rest is copied from a ``LogRecord`` made when the sink
    was, where ``LogRecord.__init__`` re-derives the file and module names from the path on
    every line. ``logging`` itself builds the record, checked on every line, for a logger whose
    class or instance overrides ``makeRecord``, when ``Logger.makeRecord`` or
    ``LogRecord.__init__`` has been replaced, under a factory set with
    ``logging.setLogRecordFactory``, and with ``logging.logThreads``, ``logProcesses`` or
    ``logMultiprocessing`` turned off; and on Pythons other than 3.10-3.13 (or a patch release
    whose ``msecs`` arithmetic differs).
    """

    __slots__ = ("_fast", "_templates", "logger")

    def __init__(self, logger: logging.Logger | None = None) -> None:
        if logger is not None and not isinstance(logger, logging.Logger):
            raise TypeError(f"logger must be a logging.Logger, not {type(logger).__name__}")
        self.logger = logging.getLogger("isoms_otp.events") if logger is None else logger
        # A LogRecord per level, made by the class itself (not by whatever record factory is set
        # now): what stays the same from line to line is copied from it, _built writes the rest.
        name = self.logger.name
        self._templates = {
            level: {
                **vars(_RECORD(name, level, _PATHNAME, 0, _MESSAGE, (), None, _FUNC_NAME)),
                **dict.fromkeys(_FIELD_KEYS),
            }
            for level in (logging.INFO, logging.WARNING)
        }
        # What can be known now; __call__ checks the rest (the logger may be replaced, and its
        # class, the record factory and logging's switches may change) on every line.
        self._fast = (
            _PYTHON != 0
            and _RECORD.__init__ is _RECORD_INIT
            and _RECORD_KEYS[_PYTHON] == tuple(self._templates[logging.INFO])[: -len(_FIELD_KEYS)]
        )

    def __repr__(self) -> str:
        return f"LoggingSink({self.logger.name!r})"

    def __call__(self, event: Event) -> None:
        """Log ``event`` (see the class docstring for the level and the ``extra`` keys)."""
        level = logging.WARNING if event.locked or event.reason == "error" else logging.INFO
        logger = self.logger
        if not logger.isEnabledFor(level):
            return
        if (
            self._fast
            and type(logger).makeRecord is _MAKE_RECORD
            and "makeRecord" not in vars(logger)
            and logging.getLogRecordFactory() is _RECORD
            and _RECORD.__init__ is _RECORD_INIT
            and logging.logThreads
            and logging.logProcesses
            and logging.logMultiprocessing
        ):
            logger.handle(self._built(level, event))
        else:
            logger.handle(self._made(level, event))

    def _made(self, level: int, event: Event) -> logging.LogRecord:
        """Return the record of ``event`` as ``logger.makeRecord`` builds it."""
        logger = self.logger
        record = logger.makeRecord(
            logger.name, level, _PATHNAME, 0, _MESSAGE, _args(event), None, _FUNC_NAME
        )
        # None of the names is a LogRecord attribute, so (unlike makeRecord's ``extra``, which
        # checks each key against the record one by one) they go into its __dict__ as they are.
        values = [getattr(event, name) for name in _FIELDS]
        record.__dict__.update(zip(_FIELD_KEYS, values + values, strict=True))
        return record

    def _built(self, level: int, event: Event) -> logging.LogRecord:
        """Return the record ``_made`` would, built from the level's template in one copy.

        What ``LogRecord.__init__`` reads per record is read here in its order (see
        ``logging/__init__.py``); a copied dict whose values are replaced in place costs a third
        of building one of 46 or 47 keys.
        """
        values = self._templates[level].copy()
        values["name"] = self.logger.name
        values["args"] = _args(event)
        values["levelname"] = logging.getLevelName(level)
        if _PYTHON == 13:
            ct = time.time_ns()
            created = ct / 1e9
            msecs = (ct % 1_000_000_000) // 1_000_000 + 0.0
            if msecs == 999.0 and int(created) != ct // 1_000_000_000:
                msecs = 0.0  # the division rounded up to the next second
            values["created"] = created
            values["msecs"] = msecs
            values["relativeCreated"] = (ct - logging._startTime) / 1e6  # type: ignore[attr-defined]
        else:
            created = time.time()
            values["created"] = created
            values["msecs"] = int((created - int(created)) * 1000) + 0.0
            values["relativeCreated"] = (created - logging._startTime) * 1000  # type: ignore[attr-defined]
        values["thread"] = threading.get_ident()
        values["threadName"] = threading.current_thread().name
        values["processName"] = _process_name()
        values["process"] = os.getpid()
        if _PYTHON >= 12:
            values["taskName"] = _task_name()
        # Each field twice: under its own name, and with the otp_ prefix a JSON formatter can
        # select on (k.startswith("otp_")).
        values["action"] = values["otp_action"] = event.action
        values["user"] = values["otp_user"] = event.user
        values["source"] = values["otp_source"] = event.source
        values["reason"] = values["otp_reason"] = event.reason
        values["failures"] = values["otp_failures"] = event.failures
        values["locked"] = values["otp_locked"] = event.locked
        values["retry_after"] = values["otp_retry_after"] = event.retry_after
        values["kind"] = values["otp_kind"] = event.kind
        values["drift"] = values["otp_drift"] = event.drift
        values["credential"] = values["otp_credential"] = event.credential
        values["removed"] = values["otp_removed"] = event.removed
        values["at"] = values["otp_at"] = event.at
        values["latency"] = values["otp_latency"] = event.latency
        record: logging.LogRecord = _NEW(_RECORD)
        record.__dict__ = values
        return record


def _args(event: Event) -> tuple[object, ...]:
    """Return the message's arguments: the event's main fields."""
    return (
        event.action,
        event.reason,
        event.user,
        event.source,
        event.failures,
        event.locked,
        event.retry_after,
        event.drift,
    )


def _process_name() -> str:
    """``LogRecord.processName``: multiprocessing's name for this process, if it is loaded."""
    mp = sys.modules.get("multiprocessing")
    if mp is None:
        return "MainProcess"
    try:
        name: str = mp.current_process().name
    except Exception:  # noqa: BLE001 - as LogRecord: multiprocessing half-loaded
        return "MainProcess"
    return name


def _task_name() -> str | None:
    """``LogRecord.taskName`` (Python 3.12+): the running asyncio task's name, else ``None``."""
    asyncio = sys.modules.get("asyncio")
    if not asyncio or not getattr(logging, "logAsyncioTasks", True):
        return None
    try:
        name: str = asyncio.current_task().get_name()
    except Exception:  # noqa: BLE001 - as LogRecord: no running loop
        return None
    return name


#: The most users a :class:`DriftMonitor` may be asked to track (memory stays bounded anyway).
MAX_TRACKED_USERS: Final = 10_000_000


class DriftMonitor:
    """Flag users whose last ``streak`` accepted TOTP codes all matched off-centre, one way.

    A code from the previous step (``drift == -1``) now and then is normal; every code from the
    same side means the phone's clock is off (negative: the phone is behind, positive: ahead).
    The Verifier's window stays as it is: this only tells a helpdesk whom to ask to turn on the
    phone's automatic time. Use it as an ``on_event`` hook, alone or called from your own hook
    (``monitor(event)``), or feed it events with :meth:`observe`. Only accepted TOTP codes count
    (HOTP drift is a counter that ran ahead, not a clock); a centred code (drift 0) or one from
    the other side starts the count again.

    ``streak`` (1-100, default 3) is how many codes in a row it takes; ``max_users`` (default
    10,000) bounds memory: the least recently seen user is forgotten first. Thread-safe.
    :class:`ConfigurationError` for out-of-range arguments, ``TypeError`` for non-int ones.
    """

    __slots__ = ("_lock", "_users", "max_users", "streak")

    def __init__(self, streak: int = 3, *, max_users: int = 10_000) -> None:
        self.streak = _positive(streak, "streak", 100)
        self.max_users = _positive(max_users, "max_users", MAX_TRACKED_USERS)
        self._lock = threading.Lock()
        # user -> the drifts of the current run (all the same sign, at most `streak` long)
        self._users: OrderedDict[str, tuple[int, ...]] = OrderedDict()

    def __repr__(self) -> str:
        return f"DriftMonitor(streak={self.streak}, max_users={self.max_users})"

    def __len__(self) -> int:
        """Return how many users are tracked now."""
        with self._lock:
            return len(self._users)

    def __call__(self, event: Event) -> None:
        """Observe ``event`` (an ``on_event`` hook's signature)."""
        self.observe(event)

    def observe(self, event: Event) -> bool:
        """Take ``event`` into account; return whether its user is flagged afterwards.

        Events other than accepted TOTP codes change nothing (and return ``False``).
        """
        user = event.user
        drift = event.drift
        if event.reason != "accepted" or event.kind != "totp" or user is None or drift is None:
            return False
        with self._lock:
            run = self._users.pop(user, ())
            if drift == 0:
                run = ()
            elif run and (run[0] > 0) == (drift > 0):
                run = (*run, drift)[-self.streak :]
            else:
                run = (drift,)
            self._users[user] = run
            if len(self._users) > self.max_users:
                self._users.popitem(last=False)
            return len(run) == self.streak

    def check(self, user: str) -> tuple[int, ...] | None:
        """Return the drifts (in steps, oldest first) that flag ``user``, or ``None``.

        ``(-1, -1, -1)`` means the last three codes were each one step (30 s) behind.
        """
        with self._lock:
            run = self._users.get(user, ())
        return run if len(run) == self.streak else None

    def flagged(self) -> dict[str, tuple[int, ...]]:
        """Return every flagged user with the drifts that flag them (a copy)."""
        with self._lock:
            return {user: run for user, run in self._users.items() if len(run) == self.streak}

    def forget(self, user: str) -> None:
        """Stop tracking ``user`` (for example once the helpdesk has told them)."""
        with self._lock:
            self._users.pop(user, None)


def _positive(value: object, name: str, high: int) -> int:
    return integer_in(value, name, 1, high)
