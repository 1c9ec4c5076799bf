"""The few places where tracklite hands work to qlib, found lazily.

Nothing here imports qlib at module import time: ``import tracklite`` must stay free of qlib and
MLflow. qlib is imported only when a caller asks for something that only qlib can do (a backtest,
an update from market data), and then an absent qlib is a clear :class:`QlibRequiredError`.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

from ..errors import LoadObjectError, TrackliteError


class QlibRequiredError(TrackliteError, ImportError):
    """The feature needs qlib itself (its market data, backtest or dataset machinery)."""


def require_qlib(module: str, feature: str) -> ModuleType:
    """Import ``module`` from qlib for ``feature``, or raise :class:`QlibRequiredError`."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name is not None and exc.name.split(".")[0] != "qlib":
            raise  # qlib is there but one of its own dependencies is broken: show that
        raise QlibRequiredError(
            f"{feature} needs qlib (it runs qlib's own code on qlib's market data); install it "
            "with `pip install pyqlib` (or `pip install tracklite[qlib]`) and call qlib.init(...)"
        ) from exc


def loaded(module: str) -> ModuleType | None:
    """``module`` if the process has already imported it, else None (never imports)."""
    return sys.modules.get(module)


def load_errors() -> tuple[type[BaseException], ...]:
    """The exception types a recorder's ``load_object`` raises for a missing artifact.

    tracklite's own, plus qlib's when qlib is loaded: a template may be handed a recorder of
    qlib's MLflow manager, whose errors are not tracklite's.
    """
    qlib_exceptions = loaded("qlib.utils.exceptions")
    if qlib_exceptions is None:
        return (LoadObjectError,)
    return (LoadObjectError, qlib_exceptions.LoadObjectError)
