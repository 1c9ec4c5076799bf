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
                # ``from .m import x`` imports module m.x when there is one, else m itself.
                found.update(
                    f"{module}.{a.name}" if _is_module(f"{module}.{a.name}") else module
                    for a in node.names
                )
    return found


def _is_module(dotted: str) -> bool:
    path = PACKAGE.joinpath(*dotted.split(".")[1:])
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


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


def test_the_command_line_reads_through_the_api() -> None:
    """The CLI reads and changes a store through tracklite.api (and the search and
    maintenance functions Python users call), never through the store layer's classes; the
    store's documented file names and default location are all it takes from there."""
    reached = {
        module: sorted(name for name in names if name.startswith("tracklite.store"))
        for module, names in _layer("cli").items()
    }
    allowed = {"tracklite.store.layout"}
    assert {m: names for m, names in reached.items() if set(names) - allowed} == {}


_ID_NAMES = {"exp_id", "experiment_id", "rec_id", "recorder_id"}
#: Modules that lay out MLflow's folders (``mlruns/<experiment>/<run>``), not tracklite's.
_MLFLOW_LAYOUT = {"mlflow_io/exporter.py", "mlflow_io/reader.py"}


def _joins_an_id(node: ast.AST) -> bool:
    """``<path> / exp_id`` (or ``/ str(rec_id)``): a store path built by hand."""
    if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)):
        return False
    right = node.right
    if isinstance(right, ast.Call) and isinstance(right.func, ast.Name) and right.args:
        right = right.args[0] if right.func.id == "str" else right
    return isinstance(right, ast.Name) and right.id in _ID_NAMES


def test_store_paths_are_built_in_the_layout_module_only() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = str(path.relative_to(PACKAGE))
        if module == "store/layout.py" or module in _MLFLOW_LAYOUT:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found += [f"{module}:{n.lineno}" for n in ast.walk(tree) if _joins_an_id(n)]
    assert found == []
