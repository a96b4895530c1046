"""benchmarks/bench_events.py runs end to end in its tiny mode (no timing is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.redis
def test_events_benchmark_quick(tmp_path: Path) -> None:
    """--quick exits 0 and writes every store's seven rows and the eighteen targets."""
    out = tmp_path / "events.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(ROOT / "src"), env.get("PYTHONPATH", "")) if part
    )
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_events.py"),
            "--quick",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    assert 0 == result.returncode, result.stderr
    document = json.loads(out.read_text(encoding="utf-8"))
    assert {"benchmark", "isoms_otp", "machine", "settings", "results", "targets"} == set(document)
    assert "events" == document["benchmark"]
    assert {"MemoryStore", "SQLiteStore", "RedisStore"} == {
        row["variant"] for row in document["results"]
    }
    assert 21 == len(document["results"])
    assert 18 == len(document["targets"])
    assert "targets (ratios from this run)" in result.stdout
