"""``from tracklite import R`` makes qlib's ``R`` the same ``R``, as soon as qlib is loaded.

qlib's own code (``LGBModel.fit``, the trainers, the record templates) logs, saves and loads
through ``qlib.workflow.R``. Once a program has asked for tracklite's ``R``, that name is made to
hand every call to tracklite's ``R`` (see :mod:`tracklite.qlib.bridge`): right away if
``qlib.workflow`` is already imported, else the moment it is imported, by a one-shot finder on
``sys.meta_path`` that runs after the module. Nothing here imports qlib: without qlib the finder
just waits, at no cost.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

_TARGET = "qlib.workflow"


def arm() -> None:
    """Bridge qlib's ``R`` now if ``qlib.workflow`` is loaded, else when it gets loaded."""
    loaded = sys.modules.get(_TARGET)
    if loaded is not None and getattr(loaded, "R", None) is not None:
        _bridge(loaded)
    elif not any(isinstance(finder, _AfterImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport())


def _bridge(workflow: ModuleType) -> None:
    from ..qlib import bridge  # imports qlib: only ever called once qlib.workflow is loaded

    bridge.install(workflow)


class _AfterImport(importlib.abc.MetaPathFinder):
    """Finds ``qlib.workflow`` with the other finders, then bridges right after it ran."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _TARGET:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _BridgingLoader(spec.loader, self)
                return spec
        return None


class _BridgingLoader(importlib.abc.Loader):
    """qlib's own loader for ``qlib.workflow``, followed by the bridge."""

    def __init__(self, loader: importlib.abc.Loader, finder: _AfterImport) -> None:
        self._loader = loader
        self._finder = finder

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._loader.exec_module(module)
        if self._finder in sys.meta_path:
            sys.meta_path.remove(self._finder)
        _bridge(module)

    def __getattr__(self, name: str) -> Any:
        # Anything else a loader offers (resource readers, get_source, ...) is qlib's loader's.
        return getattr(self._loader, name)
