"""Read MLflow file stores (``mlruns`` folders) without MLflow or PyYAML.

Only the standard library is imported, so importing this package is cheap.
"""

from .reader import (
    RUN_STATUSES,
    MalformedExperiment,
    MalformedRun,
    MetricColumns,
    MlflowExperiment,
    MlflowFormatError,
    MlflowRun,
    MlrunsStore,
    read_mlruns,
)

__all__ = [
    "RUN_STATUSES",
    "MalformedExperiment",
    "MalformedRun",
    "MetricColumns",
    "MlflowExperiment",
    "MlflowFormatError",
    "MlflowRun",
    "MlrunsStore",
    "read_mlruns",
]
