"""Prometheus metrics from Verifier events: ``PrometheusSink`` (needs the ``metrics`` extra).

``pip install 'isoms-otp[metrics]'`` installs ``prometheus_client``; without it, importing this
module raises :class:`~isoms_otp.exceptions.MissingExtraError`. The metric names, labels and
buckets are documented in ``docs/events.md``.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Final
from weakref import WeakKeyDictionary

from .events import Event
from .exceptions import MissingExtraError

try:
    from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
except ImportError:
    raise MissingExtraError(
        "isoms_otp.metrics needs the optional prometheus_client package: "
        "pip install 'isoms-otp[metrics]'"
    ) from None

__all__ = ["SETTLE_BUCKETS", "PrometheusSink"]

#: Histogram buckets of the store call's duration, in seconds: 100 us (memory) to 5 s (a store
#: at its time-out). SQLite with ``synchronous=FULL`` lands in the milliseconds, Redis on a LAN
#: in the hundreds of microseconds.
SETTLE_BUCKETS: Final = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)


class PrometheusSink:
    """Count Verifier events in Prometheus metrics; pass it as ``Verifier(..., on_event=...)``.

    The metrics, registered in ``registry`` (default: ``prometheus_client.REGISTRY``, the one
    ``start_http_server`` and ``make_wsgi_app`` export), are:

    - ``isoms_otp_attempts_total{action, reason}``: every event, by action and reason
      (``"error"`` included);
    - ``isoms_otp_locks_total{action}``: locks started (``"verify"``/``"confirm"``: a person's
      OTP budget; ``"record_failure"``: one ``(user, source)`` pair);
    - ``isoms_otp_store_errors_total{action}``: store calls that raised ``StoreError``;
    - ``isoms_otp_settle_duration_seconds{action}``: a histogram of :attr:`Event.latency`, the
      store call's duration (buckets :data:`SETTLE_BUCKETS`).

    Labels never hold a user, a source or anything else unbounded. Sinks made for the same
    registry share its metrics (a second ``PrometheusSink()`` counts into the same series
    rather than failing on duplicated names), so every Verifier of a process can have its own.
    """

    __slots__ = ("attempts", "duration", "errors", "locks")

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        where = REGISTRY if registry is None else registry
        with _MADE_LOCK:
            made = _MADE.get(where)
            if made is None:
                made = _MADE[where] = _collectors(where)
            else:
                for collector in made:  # put back any that were unregistered since
                    with contextlib.suppress(ValueError):  # registered already: the usual case
                        where.register(collector)
        self.attempts, self.locks, self.errors, self.duration = made

    def __repr__(self) -> str:
        return "PrometheusSink()"

    def __call__(self, event: Event) -> None:
        """Count ``event`` in the metrics."""
        action = event.action
        self.attempts.labels(action, event.reason).inc()
        self.duration.labels(action).observe(event.latency)
        if event.locked:
            self.locks.labels(action).inc()
        if event.reason == "error":
            self.errors.labels(action).inc()


_Collectors = tuple[Counter, Counter, Counter, Histogram]
#: The metrics registered in each registry, by the first sink made for it.
_MADE: Final[WeakKeyDictionary[CollectorRegistry, _Collectors]] = WeakKeyDictionary()
_MADE_LOCK: Final = threading.Lock()


def _collectors(where: CollectorRegistry) -> _Collectors:
    """Register the four metrics in ``where``; return them (attempts, locks, errors, duration)."""
    return (
        Counter(
            "isoms_otp_attempts",
            "Verifier decisions, by action and reason.",
            ("action", "reason"),
            registry=where,
        ),
        Counter(
            "isoms_otp_locks",
            "Locks started (a person's OTP budget, or one user and source pair).",
            ("action",),
            registry=where,
        ),
        Counter(
            "isoms_otp_store_errors",
            "Store calls that raised StoreError (the verification failed closed).",
            ("action",),
            registry=where,
        ),
        Histogram(
            "isoms_otp_settle_duration_seconds",
            "Seconds the store took to decide (settle, reset or prune).",
            ("action",),
            buckets=SETTLE_BUCKETS,
            registry=where,
        ),
    )
