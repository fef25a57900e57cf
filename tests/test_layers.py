"""Imports inside ``project`` point one way: down the layers, never up."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent / "project"

# Lowest first. A module may import its own layer and the layers before it; layers that
# share a rank (schemas, repositories) may not import each other. The longest matching
# prefix places a module: core.tasks runs jobs with the bound extension objects, so it
# sits above them while the rest of core sits below.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("core",),
    ("extensions",),
    ("models",),
    ("schemas", "repositories"),
    ("services",),
    ("api",),
    ("cli",),
    ("factory",),
)
PLACES: dict[str, str] = {
    "project.core": "core",
    "project.compat": "core",
    "project.extensions": "extensions",
    "project.core.tasks": "extensions",
    "project.models": "models",
    "project.schemas": "schemas",
    "project.repositories": "repositories",
    "project.services": "services",
    "project.api": "api",
    "project.cli": "cli",
    "project": "factory",
}
RANK = {layer: rank for rank, layers in enumerate(LAYERS) for layer in layers}


def layer_of(module: str) -> str:
    """The layer of a ``project`` module, by its longest placed prefix."""
    prefixes = [p for p in PLACES if module == p or module.startswith(p + ".")]
    return PLACES[max(prefixes, key=len)]


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> Iterator[tuple[int, str]]:
    """Every ``project`` module a file imports, anywhere in it (functions and
    TYPE_CHECKING blocks included), with the line."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            # ``from project import api`` imports the submodule project.api.
            names = (
                [f"{target}.{alias.name}" for alias in node.names]
                if target == "project"
                else [target]
            )
        else:
            continue
        for name in names:
            if name == "project" or name.startswith("project."):
                yield node.lineno, name


def upward_imports(path: Path) -> list[str]:
    source = layer_of(module_name(path))
    found = []
    for line, name in imported(path):
        target = layer_of(name)
        if target == source:
            continue
        if RANK[target] >= RANK[source]:
            found.append(
                f"{path.relative_to(PROJECT.parent)}:{line} imports {name} "
                f"({source} may not import {target})"
            )
    return found


MODULES = sorted(PROJECT.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PROJECT.parent)))
def test_imports_point_down_the_layers(path: Path) -> None:
    assert upward_imports(path) == []


def test_every_module_has_a_place() -> None:
    unplaced = [m for m in map(module_name, MODULES) if m != "project" and layer_of(m) == "factory"]
    assert unplaced == []


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("project/schemas/x.py", "from project.services.sessions import LogoutScope\n", 1),
        ("project/models/x.py", "def f():\n    from project.api import errors\n", 1),
        (
            "project/repositories/x.py",
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from project.schemas import users\n",
            1,
        ),
        ("project/core/x.py", "from project import extensions\n", 1),
        ("project/extensions.py", "from project.api.openapi import Api\n", 1),
        ("project/services/x.py", "from project.models import User\nfrom . import audit\n", 0),
        ("project/api/x.py", "from ..services import auth\n", 0),
    ],
)
def test_the_check_finds_upward_imports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str, source: str, expected: int
) -> None:
    monkeypatch.setattr(f"{__name__}.PROJECT", tmp_path / "project")
    path = tmp_path / module
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)
    found = upward_imports(path)
    assert len(found) == expected, found
    if expected:
        assert found[0].startswith(module + ":")
