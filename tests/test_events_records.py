"""LoggingSink builds the very record ``logger.makeRecord`` would, on every supported Python.

The sink fills a copy of a per-level template instead of running ``LogRecord.__init__`` per
line. These tests hold that fast record to ``logging``'s own: the same attributes in the same
order with the same values (the clock frozen for both), formatted the same, with the thread,
process and asyncio task read per line, and ``logging`` building the record itself whenever an
application changed how records are made.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from isoms_otp import Event
from isoms_otp import events as events_module
from isoms_otp.events import LoggingSink

SUPPORTED = (3, 10) <= sys.version_info[:2] <= (3, 13)
#: A format that prints every attribute LogRecord.__init__ sets.
EVERYTHING = (
    "%(asctime)s|%(created)f|%(msecs)d|%(relativeCreated)f|%(name)s|%(levelname)s|%(levelno)d|"
    "%(pathname)s|%(filename)s|%(module)s|%(lineno)d|%(funcName)s|%(thread)d|%(threadName)s|"
    "%(process)d|%(processName)s|%(message)s"
)
EVENTS = (
    Event(
        action="verify",
        user="alice",
        source="198.51.100.7",
        reason="accepted",
        kind="totp",
        drift=-1,
        credential=0,
        at=1_700_000_000.0,
        latency=0.002,
    ),
    Event(action="verify", user="bob", reason="invalid", failures=10, locked=True, at=1.5),
    Event(action="confirm", user="carol", reason="error", at=2.0, latency=0.5),
    Event(action="prune", reason="pruned", removed=12, at=3.0),
)


class Keep(logging.Handler):
    """Keep every record it handles."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def kept(name: str) -> Iterator[Keep]:
    """Keep the records of the INFO logger called ``name``."""
    logger = logging.getLogger(name)
    handler = Keep()
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def logging_own_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    """A record factory that is not LogRecord itself: the sink then lets makeRecord build."""
    return logging.LogRecord(*args, **kwargs)


@contextmanager
def frozen_clock(seconds_ns: int) -> Iterator[None]:
    """Make ``time.time``/``time.time_ns`` return one moment (for logging and the sink alike)."""
    with (
        mock.patch.object(time, "time", return_value=seconds_ns / 1e9),
        mock.patch.object(time, "time_ns", return_value=seconds_ns),
    ):
        yield


def refused(*args: object, **kwargs: object) -> logging.LogRecord:
    raise AssertionError("the sink asked logging to build this record")


@contextmanager
def record_factory(factory: Callable[..., logging.LogRecord]) -> Iterator[None]:
    before = logging.getLogRecordFactory()
    logging.setLogRecordFactory(factory)
    try:
        yield
    finally:
        logging.setLogRecordFactory(before)


def both_records(event: Event, name: str) -> tuple[logging.LogRecord, logging.LogRecord]:
    """The sink's record of ``event`` and the one logging itself builds for the same line."""
    logger = logging.getLogger(name)
    with kept(name) as handler:
        sink = LoggingSink(logger)
        assert sink._fast is SUPPORTED
        with mock.patch.object(LoggingSink, "_made", refused):
            sink(event)  # built by the sink, never by makeRecord
        with record_factory(logging_own_factory), mock.patch.object(LoggingSink, "_built", refused):
            sink(event)  # built by makeRecord
    fast, made = handler.records
    return fast, made


def test_the_fast_path_runs_on_every_supported_python() -> None:
    """On 3.10-3.13 the sink builds records itself (else this file would test nothing)."""
    assert SUPPORTED is LoggingSink()._fast
    if not SUPPORTED:
        pytest.skip("an unchecked Python: every record comes from logger.makeRecord")


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: f"{e.action}-{e.reason}")
def test_the_record_is_the_one_make_record_builds(event: Event) -> None:
    """Same attributes, same order, same values, same formatted line: the clock frozen."""
    with frozen_clock(1_700_000_123_456_789_012):
        fast, made = both_records(event, "tests.records.same")
    assert type(made) is type(fast) is logging.LogRecord
    assert list(vars(made)) == list(vars(fast))
    assert vars(made) == vars(fast)
    formatter = logging.Formatter(EVERYTHING)
    assert formatter.format(made) == formatter.format(fast)
    assert fast.otp_user == fast.user == event.user  # type: ignore[attr-defined]
    assert fast.levelno == (logging.WARNING if event.locked or event.reason == "error" else 20)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.integers(min_value=0, max_value=2**62),
        # the last nanoseconds of a second, where ns to float seconds can round up
        st.integers(min_value=1, max_value=2**32).map(lambda s: s * 10**9 - 1),
        st.integers(min_value=1, max_value=2**32).map(lambda s: s * 10**9 - 100),
    )
)
def test_the_times_are_logging_own_at_any_moment(moment_ns: int) -> None:
    """created, msecs and relativeCreated are computed as this Python's LogRecord does."""
    with frozen_clock(moment_ns):
        fast, made = both_records(EVENTS[0], "tests.records.times")
    assert (made.created, made.msecs, made.relativeCreated) == (
        fast.created,
        fast.msecs,
        fast.relativeCreated,
    )


def test_thread_and_process_are_read_per_line() -> None:
    """A named thread and a renamed process show on the lines logged while they were so."""
    got: dict[str, logging.LogRecord] = {}
    with kept("tests.records.threads") as handler:
        sink = LoggingSink(logging.getLogger("tests.records.threads"))
        worker = threading.Thread(target=sink, args=(EVENTS[0],), name="signin-worker-7")
        worker.start()
        worker.join()
        got["thread"] = handler.records[-1]
        process = multiprocessing.current_process()
        before = process.name
        process.name = "gunicorn-worker-3"
        try:
            sink(EVENTS[0])
        finally:
            process.name = before
        got["process"] = handler.records[-1]
        sink(EVENTS[0])
        got["after"] = handler.records[-1]
    assert "signin-worker-7" == got["thread"].threadName
    assert worker.ident == got["thread"].thread
    assert "gunicorn-worker-3" == got["process"].processName
    assert before == got["after"].processName
    assert threading.get_ident() == got["after"].thread


def test_the_asyncio_task_is_read_per_line() -> None:
    """3.12+: taskName is the running task's name, None outside one; before 3.12 there is none."""
    with kept("tests.records.tasks") as handler:
        sink = LoggingSink(logging.getLogger("tests.records.tasks"))

        async def sign_in() -> None:
            sink(EVENTS[0])

        async def main() -> None:
            await asyncio.create_task(sign_in(), name="sign-in-alice")

        asyncio.run(main())
        sink(EVENTS[0])
    inside, outside = handler.records
    if sys.version_info >= (3, 12):
        assert "sign-in-alice" == inside.taskName  # type: ignore[attr-defined]
        assert outside.taskName is None  # type: ignore[attr-defined]
    else:
        assert not hasattr(inside, "taskName")
        assert not hasattr(outside, "taskName")


def test_an_application_record_factory_is_used() -> None:
    """A factory set with setLogRecordFactory builds every record (its additions show)."""

    def tagged(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = logging.LogRecord(*args, **kwargs)
        record.request_id = "req-42"
        return record

    with kept("tests.records.factory") as handler, record_factory(tagged):
        LoggingSink(logging.getLogger("tests.records.factory"))(EVENTS[0])
    (record,) = handler.records
    assert "req-42" == record.request_id  # type: ignore[attr-defined]
    assert "accepted" == record.otp_reason  # type: ignore[attr-defined]


def test_a_logger_class_with_its_own_make_record_builds_every_record() -> None:
    """A Logger subclass that overrides makeRecord is never bypassed."""

    class Stamping(logging.Logger):
        def makeRecord(self, *args: Any, **kwargs: Any) -> logging.LogRecord:  # noqa: N802
            record = super().makeRecord(*args, **kwargs)
            record.tenant = "hospital-a"
            return record

    logger = Stamping("tests.records.subclass", logging.INFO)
    handler = Keep()
    logger.addHandler(handler)
    sink = LoggingSink(logger)
    sink(EVENTS[1])
    (record,) = handler.records
    assert "hospital-a" == record.tenant  # type: ignore[attr-defined]
    assert logging.WARNING == record.levelno
    assert record.otp_locked is True  # type: ignore[attr-defined]


@pytest.mark.parametrize("switch", ["logThreads", "logProcesses", "logMultiprocessing"])
def test_logging_switches_turned_off_are_honoured(switch: str) -> None:
    """With logging.logThreads (or the others) off, the record is makeRecord's: None there."""
    attribute = {"logThreads": "thread", "logProcesses": "process"}.get(switch, "processName")
    with kept(f"tests.records.{switch}") as handler, mock.patch.object(logging, switch, False):
        LoggingSink(logging.getLogger(f"tests.records.{switch}"))(EVENTS[0])
    (record,) = handler.records
    assert getattr(record, attribute) is None


def test_an_unchecked_python_gets_logging_own_records() -> None:
    """On a Python these lines were not checked against, makeRecord builds every record."""
    with mock.patch.object(events_module, "_PYTHON", 0):
        sink = LoggingSink(logging.getLogger("tests.records.unchecked"))
    assert not sink._fast
    with kept("tests.records.unchecked") as handler:
        sink(EVENTS[2])
    (record,) = handler.records
    assert "error" == record.reason  # type: ignore[attr-defined]
    assert "otp confirm error user='carol'" in record.getMessage()


def test_a_factory_set_when_the_sink_was_made_leaves_nothing_behind() -> None:
    """The sink's template comes from LogRecord itself: a factory's changes do not stick."""

    def rewriting(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = logging.LogRecord(*args, **kwargs)
        record.pathname = "elsewhere.py"
        return record

    with record_factory(rewriting):
        sink = LoggingSink(logging.getLogger("tests.records.later"))
    with frozen_clock(1_800_000_000_000_000_000), kept("tests.records.later") as handler:
        sink(EVENTS[0])
        with record_factory(logging_own_factory):
            sink(EVENTS[0])
    fast, made = handler.records
    assert vars(made) == vars(fast)
    assert events_module.__file__ == fast.pathname


def test_a_make_record_set_on_the_logger_itself_builds_every_record() -> None:
    """makeRecord replaced on one logger instance is used, as Logger.log would use it."""
    logger = logging.getLogger("tests.records.instance")
    made = logger.makeRecord

    def stamping(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = made(*args, **kwargs)
        record.tenant = "hospital-b"
        return record

    with (
        kept("tests.records.instance") as handler,
        mock.patch.object(logger, "makeRecord", stamping),
    ):
        sink = LoggingSink(logger)
        sink(EVENTS[0])
    (record,) = handler.records
    assert "hospital-b" == record.tenant  # type: ignore[attr-defined]


def test_changes_made_after_the_sink_are_honoured() -> None:
    """The logger's makeRecord set, sink.logger replaced, Logger.makeRecord or LogRecord patched
    after the sink was made: each line after the change is logging's own record."""

    class Stamping(logging.Logger):
        def makeRecord(self, *args: Any, **kwargs: Any) -> logging.LogRecord:  # noqa: N802
            record = super().makeRecord(*args, **kwargs)
            record.tenant = "class"
            return record

    def stamped(made: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
        def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = made(*args, **kwargs)
            record.tenant = "patched"
            return record

        return make

    original_init = logging.LogRecord.__init__

    def init(record: logging.LogRecord, *args: Any, **kwargs: Any) -> None:
        original_init(record, *args, **kwargs)
        record.tenant = "init"

    logger = logging.getLogger("tests.records.after")
    with kept("tests.records.after") as handler:
        sink = LoggingSink(logger)
        with mock.patch.object(logger, "makeRecord", stamped(logger.makeRecord)):
            sink(EVENTS[0])
        with mock.patch.object(logging.Logger, "makeRecord", stamped(logging.Logger.makeRecord)):
            sink(EVENTS[0])
        with mock.patch.object(logging.LogRecord, "__init__", init):
            sink(EVENTS[0])
        sink(EVENTS[0])
        subclassed = Stamping("tests.records.after.class", logging.INFO)
        subclassed.addHandler(handler)
        sink.logger = subclassed
        sink(EVENTS[0])
    tenants = [getattr(record, "tenant", None) for record in handler.records]
    assert ["patched", "patched", "init", None, "class"] == tenants


def test_what_logging_looks_up_per_record_is_looked_up_per_line() -> None:
    """A patched threading.get_ident, os.getpid, getLevelName or a moved logging._startTime
    shows on the sink's records as on logging's own."""
    logger = logging.getLogger("tests.records.patched")
    with kept("tests.records.patched") as handler:
        sink = LoggingSink(logger)
        with (
            mock.patch.object(threading, "get_ident", return_value=12345),
            # (current_thread() patched too: for an unknown ident it would make a dummy thread)
            mock.patch.object(
                threading, "current_thread", return_value=SimpleNamespace(name="patched-thread")
            ),
            mock.patch("os.getpid", return_value=4242),
            mock.patch.object(logging, "getLevelName", return_value="AUDIT"),
            mock.patch.object(logging, "_startTime", logging._startTime - 1),  # type: ignore[attr-defined]
            frozen_clock(1_700_000_000_000_000_000),
        ):
            with mock.patch.object(LoggingSink, "_made", refused):
                sink(EVENTS[0])
            with record_factory(logging_own_factory):
                sink(EVENTS[0])
    fast, made = handler.records
    assert (12345, 4242, "AUDIT") == (fast.thread, fast.process, fast.levelname)
    assert "patched-thread" == fast.threadName
    assert vars(made) == vars(fast)
