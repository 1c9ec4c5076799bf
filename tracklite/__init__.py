"""tracklite: experiment tracking in a plain folder, a drop-in for qlib's ``R``.

>>> from tracklite import R
>>> with R.start(experiment_name="demo"):            # doctest: +SKIP
...     R.log_params(lr=0.1)
...     R.log_metrics(step=0, loss=0.5)

Stores are folders of JSON metadata and Parquet metric segments (``docs/format.md``), readable
with pandas alone. pandas and pyarrow are imported only when first needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .api.experiment import Experiment
from .api.manager import ExpManager
from .api.qlib_r import QlibRecorder
from .api.recorder import Recorder
from .errors import (
    CorruptMetadataError,
    CorruptMetadataWarning,
    ExpAlreadyExistError,
    ExtraRequiredError,
    LoadObjectError,
    LockTimeoutError,
    MetricPermissionError,
    MetricWriteError,
    NotFoundError,
    RecorderInitializationError,
    StoreError,
    StorePermissionError,
    TrackliteError,
    TrackliteWarning,
    UnsafeLinkError,
    UsageError,
)

# Everything else is loaded on first use (PEP 562), so ``import tracklite`` stays cheap for the
# training scripts that only need ``R``; type checkers see the real imports.
if TYPE_CHECKING:
    from .api.catalog import Catalog
    from .api.qlib_r import R
    from .maintenance.check import check
    from .metrics.compaction import compact
    from .metrics.writer import configure
    from .mlflow_io.exporter import export_mlflow, export_table
    from .mlflow_io.importer import import_mlflow
    from .online import OnlineToolR
    from .search.dataset import dataset
    from .search.history import load_metrics
    from .search.listing import search_records
    from .templates import (
        ACRecordTemp,
        HFSignalRecord,
        MultiPassPortAnaRecord,
        MultiSegRecord,
        PortAnaRecord,
        QlibRequiredError,
        RecordTemp,
        SigAnaRecord,
        SignalMseRecord,
        SignalRecord,
    )
    from .ui.report import report

_LAZY = {
    "Catalog": "api.catalog",
    "check": "maintenance.check",
    "compact": "metrics.compaction",
    "load_metrics": "search.history",
    "configure": "metrics.writer",
    "export_mlflow": "mlflow_io.exporter",
    "export_table": "mlflow_io.exporter",
    "import_mlflow": "mlflow_io.importer",
    "OnlineToolR": "online",
    "dataset": "search.dataset",
    "search_records": "search.listing",
    "report": "ui.report",
    "ACRecordTemp": "templates",
    "HFSignalRecord": "templates",
    "MultiPassPortAnaRecord": "templates",
    "MultiSegRecord": "templates",
    "PortAnaRecord": "templates",
    "QlibRequiredError": "templates",
    "RecordTemp": "templates",
    "SigAnaRecord": "templates",
    "SignalMseRecord": "templates",
    "SignalRecord": "templates",
}


def __getattr__(name: str) -> Any:
    if name == "R":
        # Asking for tracklite's R (``from tracklite import R``) also makes qlib's R this R,
        # once qlib is loaded (``docs/qlib.md``); without qlib this costs no import.
        from .api import qlib_hook
        from .api.qlib_r import R

        qlib_hook.arm()
        globals()["R"] = R
        return R
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tracklite' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "ACRecordTemp",
    "Catalog",
    "CorruptMetadataError",
    "CorruptMetadataWarning",
    "ExpAlreadyExistError",
    "ExpManager",
    "Experiment",
    "ExtraRequiredError",
    "HFSignalRecord",
    "LoadObjectError",
    "LockTimeoutError",
    "MetricPermissionError",
    "MetricWriteError",
    "MultiPassPortAnaRecord",
    "MultiSegRecord",
    "NotFoundError",
    "OnlineToolR",
    "PortAnaRecord",
    "QlibRecorder",
    "QlibRequiredError",
    "R",
    "RecordTemp",
    "Recorder",
    "RecorderInitializationError",
    "SigAnaRecord",
    "SignalMseRecord",
    "SignalRecord",
    "StoreError",
    "StorePermissionError",
    "TrackliteError",
    "TrackliteWarning",
    "UnsafeLinkError",
    "UsageError",
    "__version__",
    "check",
    "compact",
    "configure",
    "dataset",
    "export_mlflow",
    "export_table",
    "import_mlflow",
    "load_metrics",
    "report",
    "search_records",
]
