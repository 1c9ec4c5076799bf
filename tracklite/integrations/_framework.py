"""Importing a training framework for an integration, with an error naming it when missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import TrackliteError


class FrameworkRequiredError(TrackliteError, ImportError):
    """An integration was used without its framework installed."""


def require(module: str, framework: str, package: str) -> ModuleType:
    """Import ``module`` or raise :class:`FrameworkRequiredError` naming ``framework``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name is not None and exc.name.split(".")[0] != module.split(".")[0]:
            raise  # the framework is there but one of its own dependencies is broken: show that
        raise FrameworkRequiredError(
            f"tracklite's {framework} integration needs {framework}, which is not installed "
            f"here: `pip install {package}`"
        ) from exc
