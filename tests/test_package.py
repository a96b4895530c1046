"""The package as users import it: star imports, lazily resolved names, missing extras."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import isoms_otp
import isoms_otp.stores

ROOT = Path(__file__).resolve().parent.parent

# A sitecustomize that makes `redis` unimportable, as on a machine without the redis extra.
# A meta path finder that refuses the name is what a missing package looks like to `import`.
BLOCK_REDIS = textwrap.dedent(
    """
    import sys

    class _NoRedis:
        def find_spec(self, name, path=None, target=None):
            if name == "redis" or name.startswith("redis."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, _NoRedis())
    """
)


def run_without_redis(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter in which ``import redis`` fails."""
    (tmp_path / "sitecustomize.py").write_text(BLOCK_REDIS, encoding="utf-8")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(tmp_path), str(ROOT / "src"), env.get("PYTHONPATH", "")) if part
    )
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_star_import_works_without_redis(tmp_path: Path) -> None:
    """Regression: ``from isoms_otp import *`` raised MissingExtraError without the redis extra.

    RedisStore was in ``__all__``, and a star import resolves every name in it through the
    module's ``__getattr__``, which imports the redis client. It is resolved lazily and left out
    of ``__all__`` now; the attribute still raises the helpful error when it is used.
    """
    result = run_without_redis(
        tmp_path,
        """
        import sys
        try:
            import redis
        except ImportError:
            pass
        else:
            raise SystemExit("the import hook did not block redis")
        from isoms_otp import *
        from isoms_otp.stores import *
        assert "TOTP" in dir() and "SQLiteStore" in dir() and "MemoryStore" in dir()
        assert "RedisStore" not in dir()
        assert "redis" not in sys.modules
        import isoms_otp
        from isoms_otp.exceptions import MissingExtraError
        try:
            isoms_otp.RedisStore
        except MissingExtraError as exc:
            assert "isoms-otp[redis]" in str(exc), exc
        else:
            raise SystemExit("RedisStore resolved without redis")
        print("ok")
        """,
    )
    assert 0 == result.returncode, result.stderr
    assert "ok\n" == result.stdout


@pytest.mark.parametrize("package", [isoms_otp, isoms_otp.stores], ids=["isoms_otp", "stores"])
def test_lazy_names_stay_out_of_all_and_resolve(package: object) -> None:
    """Every lazily resolved name is missing from ``__all__`` but listed by dir() and resolvable.

    ``_LAZY_NAMES`` maps each name to the module defining it; adding one is one line.
    """
    lazy: dict[str, str] = package._LAZY_NAMES  # type: ignore[attr-defined]
    assert "RedisStore" in lazy
    assert not set(lazy) & set(package.__all__)  # type: ignore[attr-defined]
    assert set(lazy) <= set(dir(package))
    from isoms_otp.stores.redis import RedisStore  # noqa: PLC0415

    assert RedisStore is package.RedisStore  # type: ignore[attr-defined]


def test_unknown_attribute_is_an_attribute_error() -> None:
    """A name that is neither defined nor lazy raises AttributeError (so hasattr() works)."""
    assert not hasattr(isoms_otp, "NoSuchName")
    assert not hasattr(isoms_otp.stores, "NoSuchName")


def test_star_import_names_are_all() -> None:
    """A star import gives exactly ``__all__``: every listed name exists."""
    namespace: dict[str, object] = {}
    exec("from isoms_otp import *", namespace)  # noqa: S102 - a fixed statement
    assert set(isoms_otp.__all__) == set(namespace) - {"__builtins__"}
