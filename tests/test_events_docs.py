"""The Python examples of docs/events.md run as written; its exporter output is what they make."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "events.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def blocks(language: str) -> list[str]:
    return [
        body for lang, body in BLOCK.findall(DOC.read_text(encoding="utf-8")) if lang == language
    ]


def test_the_doc_has_examples() -> None:
    """The page has Python examples and one captured exposition (so the tests below test)."""
    assert len(blocks("python")) >= 5
    assert 1 == len(blocks("text"))


@pytest.mark.parametrize("number", range(len(blocks("python"))))
def test_python_block_runs(number: int) -> None:
    """Each Python block runs on its own, in a fresh namespace, and its asserts hold."""
    code = compile(blocks("python")[number], f"{DOC.name}:block{number}", "exec")
    exec(code, {"__name__": f"events_doc_{number}"})  # noqa: S102 - our own documentation


def test_captured_exposition_matches_the_example() -> None:
    """Every counter line the page shows is what the example's registry serves today."""
    namespace: dict[str, object] = {"__name__": "events_doc_prometheus"}
    example = next(block for block in blocks("python") if "generate_latest" in block)
    exec(compile(example, "prometheus", "exec"), namespace)  # noqa: S102
    served = str(namespace["exposition"]).splitlines()
    shown = blocks("text")[0].splitlines()
    counters = [line for line in shown if "_total" in line]
    assert len(counters) >= 8
    for line in counters:
        assert line in served
    # The histogram lines shown exist with the same labels (their values are timings).
    for line in shown:
        if line.startswith("isoms_otp_settle_duration_seconds"):
            assert any(s.startswith(line.rsplit(" ", 1)[0] + " ") for s in served), line
