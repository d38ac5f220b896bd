"""Imports point inward: `schema/` ← `engine/` ← `actors/`, `serve_app/`.

`engine/` and `schema/` run and test without Ray, Serve or a web stack, and `schema/` imports
nothing of ours. Two checks: a static one reads every source file with `ast` (so an import inside
a function or behind `TYPE_CHECKING` counts too), and a dynamic one imports every module of a
package in a clean interpreter and looks at what got loaded (so a transitive import counts too).
The outer layers, `actors/` and `serve_app/`, import only the engine's public modules
(`engine.PUBLIC_MODULES`): never a repository, the pool or the steps of the money path.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from engine import PUBLIC_MODULES

ROOT = Path(__file__).resolve().parents[2]

WEB_AND_CLUSTER = frozenset({"ray", "fastapi", "starlette", "actors", "serve_app"})
IO_DRIVERS = frozenset({"asyncpg", "redis", "aiohttp"})
FORBIDDEN: dict[str, frozenset[str]] = {
    "engine": WEB_AND_CLUSTER,
    "schema": WEB_AND_CLUSTER | IO_DRIVERS | {"engine"},
}
OUTER = ("actors", "serve_app")
_DYNAMIC_IMPORTERS = frozenset({"import_module", "__import__"})


def imported_roots(source: str) -> set[str]:
    """Top-level package names a module imports: import statements of any kind, plus
    `importlib.import_module("x")` / `__import__("x")` with a literal name. Relative imports stay
    inside the package and are skipped."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            first = node.args[0]
            if (
                name in _DYNAMIC_IMPORTERS
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
            ):
                roots.add(first.value.split(".")[0])
    return roots


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_scanner_sees_every_kind_of_import() -> None:
    source = """
import ray.serve
from fastapi import FastAPI
from . import sibling
def later() -> None:
    import starlette.requests
    importlib.import_module("redis.asyncio")
    __import__("aiohttp")
"""
    assert imported_roots(source) == {"ray", "fastapi", "starlette", "redis", "aiohttp"}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_sources_never_import_forbidden_modules(package: str) -> None:
    files = sources(package)
    assert files, f"no sources found under {package}/"
    offenders = {
        str(path.relative_to(ROOT)): sorted(found)
        for path in files
        if (found := imported_roots(path.read_text()) & FORBIDDEN[package])
    }
    assert offenders == {}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_importing_package_loads_no_forbidden_module(package: str) -> None:
    """Transitively, too: import every module of `package` in a fresh interpreter."""
    script = (
        "import importlib, pkgutil, sys\n"
        f"import {package} as root\n"
        "for info in pkgutil.walk_packages(root.__path__, root.__name__ + '.'):\n"
        "    importlib.import_module(info.name)\n"
        "print(' '.join(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    result = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded = set(result.stdout.split())
    assert package in loaded
    assert loaded & FORBIDDEN[package] == set()


def engine_modules_imported(source: str) -> set[str]:
    """Dotted names of the `engine` modules a source imports (`from engine.x import y` names
    `engine.x.y` when that is a module itself)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "engine")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "engine":
                continue
            for alias in node.names:
                dotted = f"{node.module}.{alias.name}"
                path = ROOT / Path(*dotted.split("."))
                is_module = path.with_suffix(".py").exists() or (path / "__init__.py").exists()
                found.add(dotted if is_module else node.module)
    return found


def test_the_public_modules_exist_and_hold_no_sql() -> None:
    for module in PUBLIC_MODULES:
        path = ROOT / Path(*module.split(".")).with_suffix(".py")
        assert path.exists(), module
        assert not module.endswith(".repository"), module


@pytest.mark.parametrize("package", OUTER)
def test_outer_layers_import_only_public_engine_modules(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(found)
        for path in sources(package)
        if (found := engine_modules_imported(path.read_text()) - PUBLIC_MODULES)
    }
    assert offenders == {}


def test_the_scanner_resolves_submodule_imports() -> None:
    source = "from engine.db import migrations\nfrom engine.config import Settings\n"
    assert engine_modules_imported(source) == {"engine.db.migrations", "engine.config"}
