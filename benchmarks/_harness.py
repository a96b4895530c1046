"""Shared machinery of the benchmark scripts: interleaved timing, machine facts, table, JSON.

Method: every case is calibrated once, then timed in rounds; each round runs every case once.
Within a round the tables come in a shuffled order and the rows of one table run back to back,
also shuffled (a seeded generator), so that a noisy neighbour or a CPU frequency change on a
shared machine lands on a row and its floor alike rather than on whichever ran at that moment.
A case's figure is the median of its per-round samples, in nanoseconds per operation. A ratio
is the median over rounds of the two cases' per-round quotient (paired samples, timed moments
apart), always against a floor measured in the same run, never against a number from elsewhere.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import platform
import random
import ssl
import statistics
import sys
import time
import timeit
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "RESULTS_DIR",
    "Case",
    "Measured",
    "Settings",
    "check",
    "floors",
    "machine",
    "measure",
    "paired_ratio",
    "parse_args",
    "print_section",
    "require",
    "rows",
    "write_json",
]

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """How long to measure: rounds, the wall time one sample aims at, where the JSON goes."""

    quick: bool
    rounds: int
    sample_seconds: float
    json_path: Path
    seed: int = 20260601


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    """One timed statement: ``stmt`` runs in namespace ``env`` (timeit compiles it inline).

    ``section`` groups the rows of one table, ``variant`` separates the tables of one section
    (a hash, a window size), ``implementation`` labels the row. ``floor`` marks the reference
    the other rows of the same section and variant are divided by. ``prepare``, when given, is
    called with the loop count before every timed run of the statement, outside the timing: for
    statements that use up state (a fresh account per call) and must find it made beforehand.
    """

    section: str
    variant: str
    implementation: str
    stmt: str
    env: Mapping[str, Any]
    floor: bool = False
    note: str = ""
    prepare: Callable[[int], object] | None = None

    @property
    def key(self) -> str:
        return f"{self.section}|{self.variant}|{self.implementation}"


@dataclass(slots=True, kw_only=True)
class Measured:
    """The samples of one case and the loop count each sample ran."""

    case: Case
    number: int
    samples: list[float] = field(default_factory=list)

    @property
    def ns(self) -> float:
        return statistics.median(self.samples)


def parse_args(description: str, name: str, argv: list[str] | None = None) -> Settings:
    """Parse the options every script shares: ``--quick``, ``--rounds``, ``--json``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick", action="store_true", help="a tiny run (seconds) that only checks the script"
    )
    parser.add_argument(
        "--rounds", type=int, default=None, help="timed rounds (default 51; 3 with --quick)"
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help=f"where to write the results (default benchmarks/results/{name}-<UTC time>.json)",
    )
    args = parser.parse_args(argv)
    rounds = args.rounds if args.rounds is not None else (3 if args.quick else 51)
    if rounds < 1:
        parser.error("--rounds must be at least 1")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = args.json if args.json is not None else RESULTS_DIR / f"{name}-{stamp}.json"
    return Settings(
        quick=args.quick,
        rounds=rounds,
        sample_seconds=0.0005 if args.quick else 0.005,
        json_path=path,
    )


def _timed(timer: timeit.Timer, case: Case, number: int) -> float:
    """Run the statement ``number`` times and return the seconds, after its untimed prepare."""
    if case.prepare is not None:
        case.prepare(number)
    return timer.timeit(number)


def _calibrate(timer: timeit.Timer, case: Case, seconds: float) -> int:
    """Return a loop count whose run takes about ``seconds`` (warming the case up on the way)."""
    number = 1
    while True:
        elapsed = _timed(timer, case, number)
        if elapsed >= seconds / 4 or number >= 10**7:
            return max(1, round(number * seconds / max(elapsed, 1e-9)))
        number *= 4


def measure(cases: Iterable[Case], settings: Settings) -> dict[str, Measured]:
    """Time every case once per round for ``settings.rounds`` rounds; return them by key.

    Within a round the tables run one after another, in a shuffled order, and the rows of one
    table run back to back, also shuffled: a row and its floor are timed moments apart, so the
    per-round ratio between them is what the noise of a shared machine disturbs least.
    """
    groups: dict[tuple[str, str], list[tuple[timeit.Timer, Measured]]] = {}
    results: dict[str, Measured] = {}  # in the order the cases were given, for the tables
    for case in cases:
        if case.key in results:
            raise ValueError(f"two cases share the key {case.key!r}")
        timer = timeit.Timer(case.stmt, globals=dict(case.env))
        measured = Measured(case=case, number=_calibrate(timer, case, settings.sample_seconds))
        results[case.key] = measured
        groups.setdefault((case.section, case.variant), []).append((timer, measured))
    shuffler = random.Random(settings.seed)
    order = list(groups)
    for _ in range(settings.rounds):
        shuffler.shuffle(order)
        for where in order:
            group = groups[where]
            shuffler.shuffle(group)
            for timer, measured in group:
                elapsed = _timed(timer, measured.case, measured.number)
                measured.samples.append(elapsed / measured.number * 1e9)
    return results


def paired_ratio(top: Measured, bottom: Measured) -> float:
    """Return the median over rounds of ``top``'s sample divided by ``bottom``'s of that round."""
    return statistics.median(a / b for a, b in zip(top.samples, bottom.samples, strict=True))


def floors(results: Mapping[str, Measured]) -> dict[tuple[str, str], Measured]:
    """Return the floor case of each (section, variant)."""
    found: dict[tuple[str, str], Measured] = {}
    for measured in results.values():
        case = measured.case
        if case.floor:
            where = (case.section, case.variant)
            if where in found:
                raise ValueError(f"two floors for {where}")
            found[where] = measured
    return found


def rows(results: Mapping[str, Measured]) -> list[dict[str, Any]]:
    """Return the JSON rows: each figure in ns/op and as a ratio to its floor."""
    bottom = floors(results)
    out = []
    for measured in results.values():
        case = measured.case
        floor = bottom.get((case.section, case.variant))
        out.append(
            {
                "section": case.section,
                "variant": case.variant,
                "implementation": case.implementation,
                "ns_per_op": round(measured.ns, 1),
                "ops_per_second": round(1e9 / measured.ns),
                "floor": None if floor is None else floor.case.implementation,
                "ratio_to_floor": None
                if floor is None
                else round(paired_ratio(measured, floor), 3),
                "is_floor": case.floor,
                "samples": len(measured.samples),
                "loops_per_sample": measured.number,
                "spread_ns": [round(min(measured.samples)), round(max(measured.samples))],
                "note": case.note,
            }
        )
    return out


def print_section(
    title: str,
    results: Mapping[str, Measured],
    section: str,
    variant: str,
    *,
    ours: str,
) -> None:
    """Print one table: ns/op, ratio to the floor, and how many times faster ``ours`` is."""
    chosen = [m for m in results.values() if (m.case.section, m.case.variant) == (section, variant)]
    floor = next((m for m in chosen if m.case.floor), None)
    mine = next((m for m in chosen if m.case.implementation == ours), None)
    print(f"\n{title}")
    if floor is not None:
        print(f"  reference: {floor.case.implementation} = {floor.ns:,.0f} ns")
    print(f"  {'implementation':52s} {'ns/op':>9s} {'x floor':>8s} {'ours is':>9s}")
    for measured in chosen:
        ratio = f"{paired_ratio(measured, floor):8.2f}" if floor is not None else f"{'':8s}"
        faster = f"{paired_ratio(measured, mine):8.2f}x" if mine is not None else ""
        label = measured.case.implementation + (" *" if measured.case.note else "")
        print(f"  {label:52s} {measured.ns:9,.0f} {ratio} {faster:>9s}")
    for measured in chosen:
        if measured.case.note:
            print(f"    * {measured.case.implementation}: {measured.case.note}")


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor() or "unknown"
    for line in text.splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or "unknown"


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def machine(distributions: Iterable[str] = ()) -> dict[str, Any]:
    """Describe where the run happened, so a table is never read without its machine."""
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu_model": _cpu_model(),
        "nproc": len(cpus) if cpus is not None else os.cpu_count(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "openssl": ssl.OPENSSL_VERSION,
        "platform": platform.platform(),
        "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "packages": {name: _version(name) for name in distributions},
    }


def write_json(path: Path, document: Mapping[str, Any]) -> None:
    """Write ``document`` to ``path`` (making its directory) and say where it went."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    print(f"\nresults written to {path}")


def require(modules: Mapping[str, str]) -> dict[str, Any]:
    """Import the peer libraries, or exit with the install command (they are the bench extra)."""
    missing = [
        distribution
        for module, distribution in modules.items()
        if importlib.util.find_spec(module.partition(".")[0]) is None
    ]
    if missing:
        raise SystemExit(
            f"the benchmark needs {', '.join(missing)}: pip install 'isoms-otp[bench]'"
        )
    return {module: importlib.import_module(module) for module in modules}


def check(condition: bool, message: str) -> None:
    """Stop the run when a peer gives a wrong answer: timing a broken call would mislead."""
    if not condition:
        raise SystemExit(f"sanity check failed: {message}")
