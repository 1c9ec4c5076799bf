"""Serve ``tracklite.mlflow`` under the name ``mlflow`` to code that cannot be edited."""

from __future__ import annotations

import importlib
import pkgutil
import sys


def install_as_mlflow() -> None:
    """Make ``import mlflow`` (and ``mlflow.entities``, ``mlflow.tracking``, ...) give this
    package's modules in this process. Every submodule is registered under both names, so
    both spellings share one state (tracking URI, active runs) and one set of classes.

    Refused once MLflow itself is imported: two implementations would share the name.
    """
    import tracklite.mlflow as package

    current = sys.modules.get("mlflow")
    if current is package:
        return
    if current is not None:
        raise RuntimeError(
            "MLflow itself is already imported in this process; call "
            "tracklite.mlflow.install_as_mlflow() before anything imports mlflow"
        )
    for info in pkgutil.walk_packages(package.__path__, prefix="tracklite.mlflow."):
        importlib.import_module(info.name)
    for name, module in list(sys.modules.items()):
        if name == "tracklite.mlflow" or name.startswith("tracklite.mlflow."):
            sys.modules["mlflow" + name[len("tracklite.mlflow") :]] = module
