"""What an on_event hook costs: Verifier.verify with LoggingSink or PrometheusSink beside none.

Run from the repository root (a ``redis-server`` binary on PATH, or ``--redis-url``)::

    PYTHONPATH=src python benchmarks/bench_events.py          # about two minutes
    PYTHONPATH=src python benchmarks/bench_events.py --quick  # seconds; only checks the script

For each store (memory, SQLite, Redis) the floor is a Verifier without a hook; the other rows
add a hook that does nothing (the Verifier's own cost: two timer reads and one Event); a hook
that hands one ready-made record to the formatting handler below (what the handler alone costs,
with no sink code); ``LoggingSink`` writing every line through a formatting ``StreamHandler``
to ``os.devnull`` (what a real log costs, minus the disk); ``LoggingSink`` on a logger disabled
for INFO; ``LoggingSink`` on a logger whose one handler is a ``NullHandler`` (the sink's own
part: its record is built and handed to ``logging``, which writes nothing); and
``PrometheusSink`` on its own ``CollectorRegistry``. Every verification is a right code for a
new user, as at the morning login peak. The target (issue 15): LoggingSink at most 1.10x no
hook; the ratios are paired per round (see ``_harness.py``).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _harness as h
from bench_verifier import AT, KEY, redis_server

import isoms_otp
from isoms_otp import TOTP, MemoryStore, SQLiteStore, ThrottlePolicy, Verifier
from isoms_otp.events import LoggingSink

NO_HOOK = "Verifier.verify, no hook"
LOGGING_ROW = "Verifier.verify + LoggingSink (formatted, to os.devnull)"
QUIET_ROW = "Verifier.verify + LoggingSink (logger disabled for INFO)"
NULL_ROW = "Verifier.verify + LoggingSink (to a NullHandler: the record, no line)"
PROMETHEUS_ROW = "Verifier.verify + PrometheusSink"
NOOP_ROW = "Verifier.verify + a hook that does nothing"
HANDLER_ROW = "Verifier.verify + the formatting handler alone (a ready record, no sink)"
LIMIT = 1.10
SAMPLE_SECONDS = 0.05
STORES = ("MemoryStore", "SQLiteStore", "RedisStore")


def parse_extra(argv: list[str] | None) -> tuple[list[str], str | None]:
    """Split off ``--redis-url URL``."""
    rest = list(sys.argv[1:] if argv is None else argv)
    url = None
    if "--redis-url" in rest:
        at = rest.index("--redis-url")
        if at + 1 >= len(rest):
            raise SystemExit("--redis-url needs a URL, such as redis://127.0.0.1:6379/15")
        url = rest[at + 1]
        del rest[at : at + 2]
    return rest, url


def loggers(
    closing: list[Callable[[], object]],
) -> tuple[logging.Logger, logging.Logger, logging.Logger]:
    """A logger that formats every line to os.devnull, one disabled for INFO, and one whose
    only handler is a NullHandler (the sink's record is built and handled, nothing written)."""
    sink = open(os.devnull, "w", encoding="utf-8")  # noqa: PTH123, SIM115 - closed at the end
    closing.append(sink.close)
    handler = logging.StreamHandler(sink)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    loud = logging.getLogger("bench.events.loud")
    loud.setLevel(logging.INFO)
    loud.addHandler(handler)
    loud.propagate = False
    quiet = logging.getLogger("bench.events.quiet")
    quiet.setLevel(logging.WARNING)
    quiet.propagate = False
    null = logging.getLogger("bench.events.null")
    null.setLevel(logging.INFO)
    null.addHandler(logging.NullHandler())
    null.propagate = False
    return loud, quiet, null


def noop(event: object) -> None:
    """The cheapest hook: what the Verifier itself adds (timing, the Event, the guard)."""


def handler_alone(logger: logging.Logger, otp: TOTP) -> Callable[[object], None]:
    """A hook that hands one ready-made LoggingSink record to ``logger``'s handlers.

    No sink code runs per call: this row is what the formatting handler itself costs (format,
    time, locked write and flush), the part of a log line no sink can make cheaper.
    """
    kept: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            kept.append(record)

    keep = Keep()
    logger.addHandler(keep)
    try:
        verifier = Verifier(MemoryStore(), clock=lambda: AT, on_event=LoggingSink(logger))
        verifier.verify("handler-alone", otp, otp.generate(AT))
    finally:
        logger.removeHandler(keep)
    (record,) = kept
    handlers = tuple(logger.handlers)

    def hook(event: object) -> None:  # noqa: ARG001 - the same record every call
        for handler in handlers:
            handler.handle(record)

    return hook


def cases(workdir: Path, url: str, otp: TOTP, closing: list[Callable[[], object]]) -> list[h.Case]:
    """Seven rows per store: no hook (the floor), a no-op hook, the formatting handler alone,
    LoggingSink loud, quiet and to a NullHandler, and PrometheusSink."""
    from prometheus_client import CollectorRegistry  # noqa: PLC0415 - the metrics extra

    from isoms_otp.metrics import PrometheusSink  # noqa: PLC0415
    from isoms_otp.stores.redis import RedisStore  # noqa: PLC0415

    loud, quiet, null = loggers(closing)
    policy = ThrottlePolicy()
    right = otp.generate(AT)
    stores: dict[str, Any] = {
        "MemoryStore": MemoryStore(),
        "SQLiteStore": SQLiteStore(workdir / "events.sqlite3"),
        "RedisStore": RedisStore.from_url(url),
    }
    closing += [store.close for store in stores.values()]
    out = []
    for variant, store in stores.items():
        hooks: dict[str, Any] = {
            NO_HOOK: None,
            NOOP_ROW: noop,
            HANDLER_ROW: handler_alone(loud, otp),
            LOGGING_ROW: LoggingSink(loud),
            QUIET_ROW: LoggingSink(quiet),
            NULL_ROW: LoggingSink(null),
            PROMETHEUS_ROW: PrometheusSink(CollectorRegistry()),
        }
        for row, hook in hooks.items():
            verifier = Verifier(store, policy=policy, clock=lambda: AT, on_event=hook)
            h.check(verifier.verify(f"check-{variant}-{row}", otp, right).ok, f"{variant}: {row}")
            env = {"names": itertools.count(), "verifier": verifier, "otp": otp, "right": right}
            tag = "nohlqzp"[list(hooks).index(row)]
            out.append(
                h.Case(
                    section="events",
                    variant=variant,
                    implementation=row,
                    stmt=f"verifier.verify(f'{tag}{{next(names)}}', otp, right)",
                    env=env,
                    floor=hook is None,
                )
            )
    return out


def main(argv: list[str] | None = None) -> int:
    rest, url = parse_extra(argv)
    settings = h.parse_args(__doc__.splitlines()[0], "events", rest)
    if not settings.quick:
        # A SQLite verification with synchronous=FULL takes milliseconds: samples ten times the
        # harness default hold several calls each, so one slow fsync does not make a sample.
        settings = dataclasses.replace(settings, sample_seconds=SAMPLE_SECONDS)
    otp = TOTP(KEY)
    with tempfile.TemporaryDirectory(prefix="isoms-otp-bench-") as tmp:
        workdir = Path(tmp)
        with redis_server(url, workdir) as redis_url:
            closing: list[Callable[[], object]] = []
            try:
                timed = cases(workdir, redis_url, otp, closing)
                print(f"timing {len(timed)} cases in {settings.rounds} interleaved rounds ...")
                results = h.measure(timed, settings)
            finally:
                for close in reversed(closing):
                    close()
    for variant in STORES:
        h.print_section(f"{variant}: ns per verification", results, "events", variant, ours=NO_HOOK)
    goals: list[dict[str, Any]] = []
    for variant in STORES:
        floor = results[f"events|{variant}|{NO_HOOK}"]
        rows = (
            (NOOP_ROW, None),
            (HANDLER_ROW, None),
            (LOGGING_ROW, LIMIT),
            (QUIET_ROW, LIMIT),
            (NULL_ROW, None),
            (PROMETHEUS_ROW, None),
        )
        for row, limit in rows:
            ratio = h.paired_ratio(results[f"events|{variant}|{row}"], floor)
            goals.append(
                {
                    "target": f"{variant}: {row[len('Verifier.verify + ') :]} / no hook",
                    "value": round(ratio, 3),
                    "comparison": "<=",
                    "limit": limit,
                    "met": None if limit is None else ratio <= limit,
                }
            )
    print("\ntargets (ratios from this run)")
    for goal in goals:
        verdict = {True: "met", False: "MISSED", None: "-"}[goal["met"]]
        limit = "" if goal["limit"] is None else f"<= {goal['limit']}"
        print(f"  {goal['target']:70s} {goal['value']:6.2f} {limit:7s} {verdict}")
    h.write_json(
        settings.json_path,
        {
            "benchmark": "events",
            "isoms_otp": isoms_otp.__version__,
            "machine": h.machine(["isoms-otp", "redis", "prometheus-client"]),
            "settings": {
                "quick": settings.quick,
                "rounds": settings.rounds,
                "sample_seconds": settings.sample_seconds,
                "redis": "given by --redis-url" if url is not None else "started on loopback",
                "statistic": "median of per-round samples, ns per operation",
            },
            "results": h.rows(results),
            "targets": goals,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
