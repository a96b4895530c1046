"""DESIGN.md's one-way import rules, read from the source with ``ast`` (nothing is imported).

Data flows input -> core -> verdict: the core never reads a store, stores never compute codes,
and the enrolment edges (uri, qr, compat) know nothing of stores or the Verifier. Every import
statement counts, wherever it is: inside functions and ``if TYPE_CHECKING:`` blocks too, since a
deferred import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "isoms_otp"

#: The pure core: it may import only itself (and the standard library). A module added later
#: is outside the core until it is listed here, so the core cannot start depending on it.
CORE = frozenset(
    {
        "isoms_otp._hotp",
        "isoms_otp._totp",
        "isoms_otp._secret",
        "isoms_otp._code",
        "isoms_otp._hmac",
        "isoms_otp._match",
        "isoms_otp._limits",
        "isoms_otp.exceptions",
    }
)
#: The modules that compute codes: stores never import them (the Verifier joins the two).
CODE_COMPUTING = frozenset({"isoms_otp._hotp", "isoms_otp._totp", "isoms_otp._hmac"})
#: What sits above the stores and the enrolment edges.
VERIFIER_AND_EDGES = ("isoms_otp.verifier", "isoms_otp.cli", "isoms_otp.demo")
ENROLMENT_EDGES = frozenset({"isoms_otp.uri", "isoms_otp.qr", "isoms_otp.compat"})


def module_name(path: Path) -> str:
    """Return the dotted name of a source file (``stores/__init__.py`` is ``isoms_otp.stores``)."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str) -> bool:
    """Whether ``name`` is a module or package of this source tree."""
    base = SRC.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports_of(name: str, source: str, *, is_package: bool = False) -> set[str]:
    """Return every ``isoms_otp`` module that the module ``name`` with ``source`` imports.

    Relative imports are resolved against the module's package; ``from .x import y`` counts as
    an import of ``x.y`` when that is a module, else of ``x``.
    """
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                found.add(candidate if is_module(candidate) else target)
    return {module for module in found if module == "isoms_otp" or module.startswith("isoms_otp.")}


def within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def violations(name: str, imported: set[str]) -> list[str]:
    """Return the broken rules for module ``name`` importing ``imported``, one line each."""
    broken: list[str] = []
    if name in CORE:
        broken += [f"core module {name} imports {m} (outside the core)" for m in imported - CORE]
    if within(name, "isoms_otp.stores"):
        broken += [
            f"store {name} imports {m}, which computes codes" for m in imported & CODE_COMPUTING
        ]
    if within(name, "isoms_otp.stores") or name in ENROLMENT_EDGES:
        broken += [
            f"{name} imports {m}, a layer above it"
            for m in imported
            for upper in VERIFIER_AND_EDGES
            if within(m, upper)
        ]
    if name in ENROLMENT_EDGES:
        broken += [
            f"{name} imports {m} (the enrolment edges know no stores)"
            for m in imported
            if within(m, "isoms_otp.stores")
        ]
    return broken


def source_files() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_the_rules_hold() -> None:
    """No module of src/isoms_otp breaks a one-way import rule of DESIGN.md."""
    broken: list[str] = []
    for path in source_files():
        name = module_name(path)
        source = path.read_text(encoding="utf-8")
        broken += violations(name, imports_of(name, source, is_package=path.name == "__init__.py"))
    assert [] == broken


def test_every_listed_module_exists() -> None:
    """The layer lists name real modules (a rename must update this file, not void a rule)."""
    listed = CORE | CODE_COMPUTING | ENROLMENT_EDGES | set(VERIFIER_AND_EDGES)
    assert [] == sorted(name for name in listed if not is_module(name))


@pytest.mark.parametrize(
    ("name", "source", "expected"),
    [
        pytest.param(
            "isoms_otp._totp",
            "from .stores import MemoryStore",
            ["core module isoms_otp._totp imports isoms_otp.stores (outside the core)"],
            id="core-imports-a-store",
        ),
        pytest.param(
            "isoms_otp._hotp",
            "def f():\n    from isoms_otp import verifier\n",
            ["core module isoms_otp._hotp imports isoms_otp.verifier (outside the core)"],
            id="core-deferred-import",
        ),
        pytest.param(
            "isoms_otp._limits",
            "if TYPE_CHECKING:\n    from .uri import OTPAuthURI\n",
            ["core module isoms_otp._limits imports isoms_otp.uri (outside the core)"],
            id="core-type-checking-import",
        ),
        pytest.param(
            "isoms_otp.stores.sqlite",
            "from .._hmac import hmac_states",
            ["store isoms_otp.stores.sqlite imports isoms_otp._hmac, which computes codes"],
            id="store-computes-codes",
        ),
        pytest.param(
            "isoms_otp.stores.memory",
            "import isoms_otp.verifier",
            ["isoms_otp.stores.memory imports isoms_otp.verifier, a layer above it"],
            id="store-imports-verifier",
        ),
        pytest.param(
            "isoms_otp.qr",
            "from .stores.redis import RedisStore",
            ["isoms_otp.qr imports isoms_otp.stores.redis (the enrolment edges know no stores)"],
            id="edge-imports-a-store",
        ),
        pytest.param(
            "isoms_otp.compat",
            "from . import verifier",
            ["isoms_otp.compat imports isoms_otp.verifier, a layer above it"],
            id="edge-imports-verifier",
        ),
        pytest.param("isoms_otp._totp", "from ._hotp import HOTP\nimport hmac", [], id="allowed"),
    ],
)
def test_the_checker_sees_violations(name: str, source: str, expected: list[str]) -> None:
    """The checker itself: each kind of forbidden import is reported (so a pass means something)."""
    assert expected == violations(name, imports_of(name, source))
