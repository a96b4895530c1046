"""The benchmark scripts run end to end in their tiny mode, so they never rot.

No timing is asserted (these machines are shared and noisy); only that each script exits as
documented and writes the JSON keys that docs/performance.md and readers rely on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"


def run(script: str, json_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """Run a benchmark script with this interpreter and this checkout's ``src`` first."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(ROOT / "src"), env.get("PYTHONPATH", "")) if part
    )
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", "--json", str(json_path), *options],
        capture_output=True,
        text=True,
        env=env,
        timeout=450,
        check=False,
    )


def load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


ROW_KEYS = {
    "section",
    "variant",
    "implementation",
    "ns_per_op",
    "ops_per_second",
    "floor",
    "ratio_to_floor",
    "is_floor",
    "samples",
    "loops_per_sample",
    "spread_ns",
    "note",
}


def test_core_benchmark_quick(tmp_path: Path) -> None:
    """bench_core.py --quick exits 0 and writes every section, the memory rows and the targets."""
    out = tmp_path / "core.json"
    result = run("bench_core.py", out)
    assert 0 == result.returncode, result.stderr
    document = load(out)
    assert {"benchmark", "isoms_otp", "machine", "settings", "results", "memory", "targets"} == set(
        document
    )
    assert "core" == document["benchmark"]
    assert {"cpu_model", "nproc", "python"} <= set(document["machine"])
    assert {"generate", "verify-wrong", "verify-right", "cold", "window", "hash"} == {
        row["section"] for row in document["results"]
    }
    for row in document["results"]:
        assert ROW_KEYS == set(row)
    assert 5 == len(document["targets"])
    assert {"verifications", "net_bytes", "peak_above_start_bytes", "implementation"} == set(
        document["memory"][0]
    )
    assert "targets (ratios from this run)" in result.stdout


@pytest.mark.redis
def test_verifier_benchmark_bare_quick(tmp_path: Path) -> None:
    """bench_verifier.py --quick --bare-only measures the store floors on a real redis-server."""
    out = tmp_path / "bare.json"
    result = run("bench_verifier.py", out, "--bare-only")
    assert 0 == result.returncode, result.stderr
    document = load(out)
    assert {
        "benchmark",
        "isoms_otp",
        "machine",
        "settings",
        "results",
        "round_trips",
        "targets",
    } == set(document)
    assert document["settings"]["bare_only"] is True
    assert {"MemoryStore", "SQLiteStore", "RedisStore"} == {
        row["variant"] for row in document["results"]
    }


@pytest.mark.redis
def test_verifier_benchmark_quick(tmp_path: Path) -> None:
    """bench_verifier.py --quick measures Verifier.verify beside each store's own operation."""
    out = tmp_path / "verifier.json"
    result = run("bench_verifier.py", out)
    assert 0 == result.returncode, result.stderr
    document = load(out)
    assert {
        "verifications",
        "client_writes_per_verification",
        "server_reads_per_verification",
    } == set(document["round_trips"])
    implementations = {row["implementation"] for row in document["results"]}
    assert "Verifier.verify, right code (accepted)" in implementations
    assert 5 == len(document["targets"])


@pytest.mark.servers
@pytest.mark.slow
# About 45 s on a quiet machine (four servers, then 28 spawned worker processes); a loaded CI
# machine took more than the suite's 120 s, so this one test gets a bounded margin of its own.
@pytest.mark.timeout(480)
def test_service_benchmark_quick(tmp_path: Path) -> None:
    """bench_service.py --quick times every store on real servers and writes its targets."""
    out = tmp_path / "service.json"
    result = run("bench_service.py", out)
    assert 0 == result.returncode, result.stderr
    document = load(out)
    keys = {"benchmark", "isoms_otp", "machine", "settings", "results", "throughput", "targets"}
    assert keys == set(document)
    variants = {"MemoryStore", "SQLiteStore", "SQLStore-PostgreSQL", "SQLStore-MariaDB"}
    assert variants | {"RedisStore"} == {row["variant"] for row in document["results"]}
    for row in document["results"]:
        assert ROW_KEYS == set(row)
    assert {"1", "2", "4"} == set(document["throughput"]["SQLStore-PostgreSQL"])
    django = {
        "django-otp verify_token, accepted",
        "django-otp verify_token, wrong code",
        "django-otp verify_token, replayed",
    }
    for variant in ("SQLiteStore", "SQLStore-PostgreSQL", "SQLStore-MariaDB"):
        names = {row["implementation"] for row in document["results"] if row["variant"] == variant}
        assert django <= names, variant
    assert "not_measured" not in document["settings"]
    assert 9 == len(document["targets"])
    ratios = [goal for goal in document["targets"] if "django-otp" in goal["target"]]
    assert 3 == len(ratios)
    assert all(">=" == goal["comparison"] and 4 == goal["limit"] for goal in ratios)
