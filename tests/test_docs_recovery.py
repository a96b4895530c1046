"""The Python examples of docs/recovery.md and of the recovery part of docs/integration.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def blocks(text: str) -> list[str]:
    return _BLOCK.findall(text)


def run_in_order(name: str, found: list[str]) -> None:
    """Run the blocks one after another in one namespace, as a reader would."""
    assert found, f"{name} has no Python example"
    namespace: dict[str, object] = {"__name__": "docs_example"}
    for block in found:
        exec(compile(block, name, "exec"), namespace)  # noqa: S102 - our own documentation


def test_recovery_examples_run(capsys: pytest.CaptureFixture[str]) -> None:
    """Every block of docs/recovery.md runs, top to bottom."""
    run_in_order("docs/recovery.md", blocks((DOCS / "recovery.md").read_text(encoding="utf-8")))
    printed = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"[0-9A-Z]{4}(-[0-9A-Z]{4}){3}", printed[0])
    assert printed[1].startswith("RecoveryCodes(set_id='")


def test_integration_recovery_section_runs() -> None:
    """The example in docs/integration.md's recovery section runs."""
    text = (DOCS / "integration.md").read_text(encoding="utf-8")
    start = text.index("## Recovery codes, a lost phone and the helpdesk")
    section = text[start : text.index("\n## ", start + 1)]
    run_in_order("docs/integration.md", blocks(section))
