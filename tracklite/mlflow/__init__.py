"""MLflow's tracking API over a tracklite store: ``import tracklite.mlflow as mlflow``.

The fluent functions (``start_run``, ``log_metric``, ``search_runs``, ...), ``MlflowClient``,
``entities`` and ``exceptions`` have MLflow's names, arguments and errors; runs and experiments
are tracklite recorders and experiments, in a plain folder (``docs/migrate-from-mlflow.md``).
Neither MLflow nor a server is needed; ``import tracklite`` does not import this module.
"""

from __future__ import annotations

from . import entities, exceptions, tracking, utils
from ._alias import install_as_mlflow
from .entities import Experiment, Run, RunStatus, ViewType
from .exceptions import MlflowException
from .tracking import MlflowClient
from .tracking.client import RunOperations
from .tracking.fluent import (
    ActiveRun,
    active_run,
    create_experiment,
    delete_experiment,
    delete_run,
    delete_tag,
    end_run,
    flush_async_logging,
    get_artifact_uri,
    get_experiment,
    get_experiment_by_name,
    get_parent_run,
    get_run,
    get_tracking_uri,
    is_tracking_uri_set,
    last_active_run,
    log_artifact,
    log_artifacts,
    log_dict,
    log_figure,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    log_text,
    restore_experiment,
    restore_run,
    search_experiments,
    search_runs,
    set_experiment,
    set_experiment_tag,
    set_tag,
    set_tags,
    set_tracking_uri,
    start_run,
)

#: The MLflow API version this module follows (integrations compare it to enable features).
__version__ = "3.0.0"

__all__ = [
    "ActiveRun",
    "Experiment",
    "MlflowClient",
    "MlflowException",
    "Run",
    "RunOperations",
    "RunStatus",
    "ViewType",
    "__version__",
    "active_run",
    "create_experiment",
    "delete_experiment",
    "delete_run",
    "delete_tag",
    "end_run",
    "entities",
    "exceptions",
    "flush_async_logging",
    "get_artifact_uri",
    "get_experiment",
    "get_experiment_by_name",
    "get_parent_run",
    "get_run",
    "get_tracking_uri",
    "install_as_mlflow",
    "is_tracking_uri_set",
    "last_active_run",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_figure",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "log_text",
    "restore_experiment",
    "restore_run",
    "search_experiments",
    "search_runs",
    "set_experiment",
    "set_experiment_tag",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
    "tracking",
    "utils",
]
