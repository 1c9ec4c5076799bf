"""Read MLflow file stores (``mlruns`` folders) without MLflow.

PyYAML (the ``mlflow`` extra) reads their meta.yaml files; it is imported when a store is first
read, so importing this package is cheap.
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
