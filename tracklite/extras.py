"""Optional dependencies: imported on first use, with an error naming the extra that brings them.

tracklite's core needs only pyarrow, pandas, portalocker and cloudpickle. A feature built on
another library imports it through :func:`require`, so ``import tracklite`` stays light and a
missing library is one clear line (``pip install "tracklite[mlflow]"``) instead of a traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import ExtraRequiredError

__all__ = ["require"]


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module`` for ``feature``, or raise :class:`ExtraRequiredError` naming ``extra``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        if exc.name is not None and exc.name.split(".")[0] != top:
            raise  # the library is there but one of its own dependencies is broken: show that
        raise ExtraRequiredError(
            f'{feature} needs {top}, which is not installed: pip install "tracklite[{extra}]"'
        ) from exc
