"""Data flows down the layers: what each layer's modules import from tracklite, read from their
source (imports inside functions included)."""

from __future__ import annotations

import ast
from pathlib import Path

import tracklite

PACKAGE = Path(tracklite.__file__).parent


def _imports(path: Path) -> set[str]:
    """Every tracklite module ``path`` imports, as dotted names."""
    package = "tracklite." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("tracklite"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rstrip(".").split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.startswith("tracklite"):
                # ``from . import x`` names a module; ``from .m import f`` names m.
                names = [f"{module}.{a.name}" for a in node.names] if not node.module else []
                found.update(names or [module])
    return found


def _layer(folder: str) -> dict[str, set[str]]:
    return {
        str(path.relative_to(PACKAGE)): _imports(path)
        for path in sorted((PACKAGE / folder).rglob("*.py"))
    }


def test_the_store_layer_imports_nothing_above_it() -> None:
    allowed = ("tracklite.store", "tracklite.errors")
    wrong = {
        module: sorted(name for name in names if not name.startswith(allowed))
        for module, names in _layer("store").items()
    }
    assert {m: names for m, names in wrong.items() if names} == {}
