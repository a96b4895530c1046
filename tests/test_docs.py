"""The documentation runs: doctests in src/, the Python blocks of the docs, the examples.

Rules for the Markdown files (README.md and docs/*.md; also in docs/testing.md):

* Every fenced block that opens with `` ```python `` is executed. The blocks of one file run in
  order in one namespace (a later block may use what an earlier one defined), in a temporary
  working directory. A block whose first line starts with ``>>>`` is run as a doctest in that
  namespace, so its shown output is checked.
* An HTML comment ``<!-- given: STATEMENTS -->`` on the line right before a block runs
  ``STATEMENTS`` first, in the same namespace: it stands for what the surrounding application
  provides (a user id, the code a form posted) and is invisible in the rendered page.
* An HTML comment ``<!-- not-run: REASON -->`` on the line right before a block skips it. Keep
  these rare; each must say why (``signatures, not code``, a dependency the library lacks).
* Absolute paths under ``/var/lib/isoms/``, the deployment path the guides show, are read as
  paths in the temporary directory.
"""

from __future__ import annotations

import doctest
import importlib
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import isoms_otp
from isoms_otp import Store, Verifier

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
DEPLOYMENT_DIR = "/var/lib/isoms/"

# A python fence, with the HTML comment on the line before it (if any).
_BLOCK = re.compile(
    r"(?:^<!--[ \t]*(?P<marker>given|not-run):(?P<text>.*?)-->[ \t]*\n)?"
    r"^```python[ \t]*\n(?P<code>.*?)^```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)


def python_blocks(text: str) -> list[tuple[int, str | None, str, str]]:
    """Return (line, marker, marker text, code) for each python block of a Markdown text."""
    blocks = []
    for found in _BLOCK.finditer(text):
        line = text.count("\n", 0, found.start("code"))  # the fence's line, counted from 1
        blocks.append(
            (line, found.group("marker"), (found.group("text") or "").strip(), found["code"])
        )
    return blocks


def run_block(code: str, namespace: dict[str, object], where: str) -> None:
    """Execute one block (or check it as a doctest when it is an interactive session)."""
    if code.lstrip().startswith(">>>"):
        test = doctest.DocTestParser().get_doctest(code, namespace, where, where, 0)
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
        runner.run(test, clear_globs=False)
        assert 0 == runner.failures, f"{where}: the shown output differs (see the report above)"
        return
    exec(compile(code, where, "exec"), namespace)  # noqa: S102 - our own documentation


@pytest.mark.parametrize("document", DOCUMENTS, ids=[path.name for path in DOCUMENTS])
def test_python_blocks_run(document: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every python block of the document runs, in order, as the module docstring describes."""
    monkeypatch.chdir(tmp_path)
    deployment = f"{tmp_path}{os.sep}"
    namespace: dict[str, object] = {"__name__": f"docs:{document.name}"}
    opened: list[Store] = []
    for line, marker, text, code in python_blocks(document.read_text(encoding="utf-8")):
        where = f"{document.name}:{line}"
        if marker == "not-run":
            assert text, f"{where}: a not-run marker must give its reason"
            continue
        if marker == "given":
            exec(compile(text, f"{where} (given)", "exec"), namespace)  # noqa: S102
        run_block(code.replace(DEPLOYMENT_DIR, deployment), namespace, where)
        opened.extend(stores_in(namespace))
    for store in opened:
        store.close()


def stores_in(namespace: dict[str, object]) -> list[Store]:
    """Return the stores a block left in ``namespace``, to close once the document has run.

    Readers of the docs keep theirs for the process, but Python 3.13 warns about a SQLite
    connection left to the garbage collector (a later block may rebind the name), and the
    warning then fails whichever later test happens to be running.
    """
    found = []
    for value in list(namespace.values()):
        store = value.store if isinstance(value, Verifier) else value
        if isinstance(store, Store) and not isinstance(store, type):
            found.append(store)
    return found


def test_block_rules_are_followed() -> None:
    """The markers are few and explained; a typo in a marker would silently run the block."""
    not_run = []
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        for line, marker, reason, _ in python_blocks(text):
            if marker == "not-run":
                not_run.append(f"{document.name}:{line}: {reason}")
        markers = re.findall(r"<!--[ \t]*([a-z-]+):", text)
        assert set(markers) <= {"given", "not-run"}, f"{document.name}: unknown marker"
    assert len(not_run) <= 7, not_run  # deployment examples that name real servers


def test_the_block_reader() -> None:
    """The reader finds blocks, their markers and their lines, and ignores other fences."""
    text = (
        "intro\n```python\na = 1\n```\n```console\n$ ls\n```\n"
        "<!-- given: b = a -->\n```python\nc = b\n```\n"
        "<!-- not-run: signatures -->\n```python\nf(x) -> y\n```\n"
    )
    assert [
        (2, None, "", "a = 1\n"),
        (9, "given", "b = a", "c = b\n"),
        (13, "not-run", "signatures", "f(x) -> y\n"),
    ] == python_blocks(text)


def test_interactive_blocks_are_checked() -> None:
    """A block of >>> lines fails when its shown output is wrong, not only when it raises."""
    run_block(">>> 1 + 1\n2\n", {}, "ok")
    with pytest.raises(AssertionError, match="shown output differs"):
        run_block(">>> 1 + 1\n3\n", {}, "wrong")


def _modules() -> list[ModuleType]:
    """Every module of the package, imported ("__main__" modules run a program: left out)."""
    names = [
        info.name
        for info in pkgutil.walk_packages(isoms_otp.__path__, "isoms_otp.")
        if not info.name.endswith("__main__")
    ]
    return [isoms_otp, *(importlib.import_module(name) for name in names)]


def test_doctests_in_src() -> None:
    """The >>> examples in the docstrings of src/ run and show what they say (FakeClock's too)."""
    attempted: dict[str, int] = {}
    failures = []
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for module in _modules():
        for test in finder.find(module, module.__name__):
            result = runner.run(test)
            attempted[module.__name__] = attempted.get(module.__name__, 0) + result.attempted
            if result.failed:
                failures.append(test.name)
    assert [] == failures
    assert attempted.get("isoms_otp.testing", 0) >= 3  # the FakeClock example ran


@pytest.mark.parametrize("script", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_examples_run(script: Path, tmp_path: Path) -> None:
    """Each script in examples/ runs to completion with this checkout's package."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(ROOT / "src"), env.get("PYTHONPATH", "")) if part
    )
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )
    assert 0 == result.returncode, result.stderr
    assert result.stdout


# ---- docs/api.md names the public API -----------------------------------------------------------


def api_index() -> list[str]:
    """The names in backticks in the bullet list at the top of docs/api.md (its index)."""
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    index = text.split("\n## ", 1)[0]
    bullets = re.findall(r"^- \[.*?(?=^- \[|\Z)", index, re.MULTILINE | re.DOTALL)
    return [name for bullet in bullets for name in re.findall(r"`([A-Za-z_][\w.]*)`", bullet)]


def test_api_md_names_exactly_the_public_api() -> None:
    """docs/api.md's index names exactly ``isoms_otp.__all__`` plus the lazily resolved names.

    The rule: the index is the bullet list before the first ``##`` heading; each name in
    backticks there is public. Names without a dot must be exactly the union of
    ``isoms_otp.__all__`` and the names the package resolves on first use (``_LAZY_NAMES``,
    left out of ``__all__`` because they need an extra), each listed once. Dotted names
    (``isoms_otp.qr``, ``isoms_otp.testing.FakeClock``) must resolve. Every name must also be
    described below the index, in backticks.
    """
    names = api_index()
    plain = [name for name in names if "." not in name]
    lazy: dict[str, str] = isoms_otp._LAZY_NAMES
    assert sorted(set(isoms_otp.__all__) | set(lazy)) == sorted(plain)
    assert len(plain) == len(set(plain)), "a name is listed twice"
    body = (ROOT / "docs" / "api.md").read_text(encoding="utf-8").split("\n## ", 1)[1]
    spans = " ".join(re.findall(r"`[^`]+`", body))
    assert [] == [name for name in names if not re.search(rf"\b{re.escape(name)}\b", spans)]
    for dotted in (name for name in names if "." in name):
        module_name, _, attribute = dotted.rpartition(".")
        try:
            importlib.import_module(dotted)
        except ImportError:
            assert hasattr(importlib.import_module(module_name), attribute), dotted
