"""Log the training loops of LightGBM, XGBoost, PyTorch Lightning and transformers into tracklite.

Each integration lives in its own module and imports its framework only when used:

- ``tracklite.integrations.lightgbm.LightGBMCallback``
- ``tracklite.integrations.xgboost.XGBoostCallback``
- ``tracklite.integrations.lightning.LightningLogger``
- ``tracklite.integrations.transformers.TransformersCallback``

The names are also attributes of this package, loaded on first use. Using one without its
framework installed raises :class:`FrameworkRequiredError` naming the framework. Where each
writes (``R``'s active run, else a run of its own) is described in ``docs/integrations.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._framework import FrameworkRequiredError

if TYPE_CHECKING:
    from .lightgbm import LightGBMCallback
    from .lightning import LightningLogger
    from .transformers import TransformersCallback
    from .xgboost import XGBoostCallback

_LAZY = {
    "LightGBMCallback": "lightgbm",
    "LightningLogger": "lightning",
    "TransformersCallback": "transformers",
    "XGBoostCallback": "xgboost",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tracklite.integrations' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "FrameworkRequiredError",
    "LightGBMCallback",
    "LightningLogger",
    "TransformersCallback",
    "XGBoostCallback",
]
