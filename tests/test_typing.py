"""Run the user-style code of ``typing_check.py`` (mypy checks its types; this checks it works)."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def test_typing_check_runs() -> None:
    """The examples that mypy type-checks also run without error."""
    path = Path(__file__).parent / "typing_check.py"
    spec = importlib.util.spec_from_file_location("typing_check", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main()
