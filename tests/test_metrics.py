"""PrometheusSink against a real CollectorRegistry scrape, and the missing-extra error."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from isoms_otp import (
    TOTP,
    Event,
    MemoryStore,
    MissingExtraError,
    StoreError,
    ThrottlePolicy,
    Verifier,
)
from isoms_otp.metrics import SETTLE_BUCKETS, PrometheusSink
from isoms_otp.stores import Attempt, Settlement
from isoms_otp.testing import FakeClock

SECRET = bytes(range(20))
START = 30 * 56_666_667 + 10


class DownStore(MemoryStore):
    """A memory store whose settle raises while ``down`` is set."""

    down = False

    def settle(self, attempt: Attempt) -> Settlement:
        if self.down:
            raise StoreError("the store is down")
        return super().settle(attempt)


def scrape(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Parse the exposition text the registry serves into {(sample, labels): value}."""
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_scrape_counts_attempts_locks_errors_and_latency() -> None:
    """Every event is counted by action and reason; locks, errors and durations too."""
    registry = CollectorRegistry()
    store = DownStore()
    clock = FakeClock(START)
    policy = ThrottlePolicy(max_failures=2, base_delay=0)
    verifier = Verifier(store, policy=policy, clock=clock, on_event=PrometheusSink(registry))
    otp = TOTP(SECRET)
    assert verifier.verify("alice", otp, otp.generate(clock()))
    for _ in range(3):
        verifier.verify("bob", otp, "000000")
    verifier.record_failure("carol", source="10.0.0.1")
    verifier.reset("bob")
    store.down = True
    with pytest.raises(StoreError):
        verifier.verify("dave", otp, "000000")
    samples = scrape(registry)

    def value(name: str, **labels: str) -> float:
        return samples[name, tuple(sorted(labels.items()))]

    assert 1 == value("isoms_otp_attempts_total", action="verify", reason="accepted")
    assert 2 == value("isoms_otp_attempts_total", action="verify", reason="invalid")
    assert 1 == value("isoms_otp_attempts_total", action="verify", reason="throttled")
    assert 1 == value("isoms_otp_attempts_total", action="verify", reason="error")
    assert 1 == value("isoms_otp_attempts_total", action="record_failure", reason="invalid")
    assert 1 == value("isoms_otp_attempts_total", action="reset", reason="reset")
    assert 1 == value("isoms_otp_locks_total", action="verify")
    assert 1 == value("isoms_otp_store_errors_total", action="verify")
    assert 5 == value("isoms_otp_settle_duration_seconds_count", action="verify")
    assert 5 == value("isoms_otp_settle_duration_seconds_bucket", action="verify", le="+Inf")
    assert value("isoms_otp_settle_duration_seconds_sum", action="verify") >= 0
    buckets = {
        float(dict(labels)["le"])
        for name, labels in samples
        if name == "isoms_otp_settle_duration_seconds_bucket"
    }
    assert {*SETTLE_BUCKETS, float("inf")} == buckets


def test_default_registry_and_sinks_sharing_a_registry() -> None:
    """No registry: prometheus_client's default one. A second sink on the same registry shares
    its metrics (no "Duplicated timeseries"); metrics unregistered meanwhile are put back."""
    sink = PrometheusSink()
    try:
        assert "PrometheusSink()" == repr(sink)
        sink(Event(action="prune", user=None, reason="pruned", removed=0, at=1.0))
        assert 1 == REGISTRY.get_sample_value(
            "isoms_otp_attempts_total", {"action": "prune", "reason": "pruned"}
        )
        again = PrometheusSink()
        again(Event(action="prune", reason="pruned", removed=0, at=2.0))
        assert 2 == REGISTRY.get_sample_value(
            "isoms_otp_attempts_total", {"action": "prune", "reason": "pruned"}
        )
        REGISTRY.unregister(sink.attempts)
        PrometheusSink()(Event(action="prune", reason="pruned", removed=0, at=3.0))
        assert 3 == REGISTRY.get_sample_value(
            "isoms_otp_attempts_total", {"action": "prune", "reason": "pruned"}
        )
    finally:
        for metric in (sink.attempts, sink.locks, sink.errors, sink.duration):
            REGISTRY.unregister(metric)
    own = CollectorRegistry()
    PrometheusSink(own)(Event(action="reset", user="a", reason="reset", at=1.0))
    PrometheusSink(own)(Event(action="reset", user="a", reason="reset", at=1.0))
    assert 2 == own.get_sample_value(
        "isoms_otp_attempts_total", {"action": "reset", "reason": "reset"}
    )


def test_missing_prometheus_client_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without prometheus_client, importing isoms_otp.metrics raises MissingExtraError."""
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    monkeypatch.delitem(sys.modules, "isoms_otp.metrics")
    with pytest.raises(MissingExtraError, match=r"isoms-otp\[metrics\]"):
        importlib.import_module("isoms_otp.metrics")


def test_missing_prometheus_client_in_a_fresh_interpreter() -> None:
    """The same in a new process, as an application without the extra would see it."""
    program = (
        "import sys\n"
        "sys.modules['prometheus_client'] = None\n"
        "import isoms_otp\n"
        "try:\n"
        "    import isoms_otp.metrics\n"
        "except isoms_otp.MissingExtraError as error:\n"
        "    print(type(error).__name__, error)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.startswith("MissingExtraError ")
    assert "pip install 'isoms-otp[metrics]'" in result.stdout
