"""MLflow's limits and checks for names, values and batches, with MLflow's messages.

Integrations read the constants (``MAX_PARAMS_TAGS_PER_BATCH``, ``MAX_PARAM_VAL_LENGTH``) to size
their calls; the checks raise :class:`~tracklite.mlflow.exceptions.MlflowException` with
``INVALID_PARAMETER_VALUE`` exactly where MLflow's file store does.
"""

from __future__ import annotations

import json
import numbers
import posixpath
import re
from typing import Any

from ..exceptions import INVALID_PARAMETER_VALUE, MlflowException

MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
MAX_DATASETS_PER_BATCH = 1000
MAX_ENTITIES_PER_BATCH = 1000
MAX_BATCH_LOG_REQUEST_SIZE = int(1e6)
MAX_PARAM_VAL_LENGTH = 6000
MAX_TAG_VAL_LENGTH = 8000
MAX_EXPERIMENT_NAME_LENGTH = 500
MAX_EXPERIMENT_TAG_KEY_LENGTH = 250
MAX_EXPERIMENT_TAG_VAL_LENGTH = 20000
MAX_ENTITY_KEY_LENGTH = 250
MAX_EXPERIMENTS_LISTED_PER_PAGE = 50000

_NAME_CHARS = re.compile(r"^[/\w.\- :]*$")
_RUN_ID = re.compile(r"^[a-zA-Z0-9][\w\-]{0,255}$")
_EXPERIMENT_ID = re.compile(r"^[a-zA-Z0-9][\w\-]{0,63}$")
_BAD_CHARACTERS = (
    "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), "
    "colon(:) and slashes (/)."
)


PARAM_VALIDATION_MSG = """

The cause of this error is typically due to repeated calls
to an individual run_id event logging.

Incorrect Example:
---------------------------------------
with mlflow.start_run():
    mlflow.log_param("depth", 3)
    mlflow.log_param("depth", 5)
---------------------------------------

Which will throw an MlflowException for overwriting a
logged parameter.

Correct Example:
---------------------------------------
with mlflow.start_run():
    with mlflow.start_run(nested=True):
        mlflow.log_param("depth", 3)
    with mlflow.start_run(nested=True):
        mlflow.log_param("depth", 5)
---------------------------------------

Which will create a new nested run for each individual
model and prevent parameter key collisions within the
tracking store."""


def _invalid(path: str, value: Any, message: str | None = None) -> MlflowException:
    shown = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    text = f"Invalid value {shown} for parameter '{path}' supplied"
    return MlflowException(f"{text}: {message}" if message else f"{text}.", INVALID_PARAMETER_VALUE)


def _check_name(name: Any, path: str, missing: str) -> None:
    if name is None:
        raise MlflowException(missing, INVALID_PARAMETER_VALUE)
    if not isinstance(name, str) or not _NAME_CHARS.match(name):
        raise _invalid(path, name, _BAD_CHARACTERS)
    norm = posixpath.normpath(name)
    if norm != name or norm == "." or norm.startswith("..") or norm.startswith("/"):
        raise _invalid(
            path,
            name,
            "Names may be treated as files in certain cases, and must not resolve to other names"
            f" when treated as such. This name would resolve to {norm!r}",
        )


def _check_length(entity: str, limit: int, value: str) -> None:
    if len(value) > limit:
        raise MlflowException(
            f"'{entity}' exceeds the maximum length of {limit} characters", INVALID_PARAMETER_VALUE
        )


# Metric names already checked in this process: a training loop logs the same few every step.
_known_metric_names: set[str] = set()


def validate_metric_name(name: Any, path: str = "name") -> None:
    if name in _known_metric_names:
        return
    _check_name(
        name,
        path,
        f"Invalid value null for parameter '{path}' supplied: Metric name cannot be None. "
        "A key name must be provided.",
    )
    _check_length("Metric name", MAX_ENTITY_KEY_LENGTH, name)
    if len(_known_metric_names) > 100_000:
        _known_metric_names.clear()  # keys that vary per call: keep the cache bounded
    _known_metric_names.add(name)


def validate_param_name(name: Any, path: str = "key") -> None:
    _check_name(
        name,
        path,
        f"Invalid value \"\" for parameter '{path}' supplied: A key name must be provided.",
    )
    _check_length("Param key", MAX_ENTITY_KEY_LENGTH, name)


def validate_tag_name(name: Any, path: str = "key") -> None:
    _check_name(name, path, f"Missing value for required parameter '{path}'.")
    _check_length(path, MAX_ENTITY_KEY_LENGTH, name)


def truncated(value: str, limit: int) -> str:
    """A param or tag value cut to MLflow's limit (MLflow truncates these by default)."""
    return value if len(value) <= limit else value[:limit]


def validate_run_id(run_id: Any, path: str = "run_id") -> None:
    if not isinstance(run_id, str) or _RUN_ID.fullmatch(run_id) is None:
        raise _invalid(path, run_id)


def validate_experiment_id(experiment_id: Any) -> None:
    if experiment_id is not None and (
        not isinstance(experiment_id, str) or _EXPERIMENT_ID.fullmatch(experiment_id) is None
    ):
        raise MlflowException(f"Invalid experiment ID: '{experiment_id}'", INVALID_PARAMETER_VALUE)


def validate_experiment_name(name: Any) -> None:
    if name is None or (isinstance(name, str) and not name.strip()):
        raise MlflowException(f"Invalid experiment name: '{name}'", INVALID_PARAMETER_VALUE)
    if not isinstance(name, str):
        raise MlflowException(
            f"Invalid experiment name: {name}. Expects a string.", INVALID_PARAMETER_VALUE
        )
    _check_length("name", MAX_EXPERIMENT_NAME_LENGTH, name)


def validate_metric(key: Any, value: Any, timestamp: Any, step: Any, path: str = "") -> None:
    """MLflow's checks of one metric point (``value`` already converted to float if possible)."""
    prefix = f"{path}." if path else ""
    validate_metric_name(key, f"{prefix}name")
    if type(value) is float and type(step) is int and type(timestamp) is int and timestamp >= 0:
        return  # the common case, without the generic checks below
    if value is None:
        raise MlflowException(
            f"Missing value for required parameter '{prefix}value'.", INVALID_PARAMETER_VALUE
        )
    if isinstance(value, bool) or not isinstance(value, numbers.Number):
        raise _invalid(
            f"{prefix}value",
            value,
            f"(timestamp={timestamp}). Please specify value as a valid double (64-bit floating "
            "point)",
        )
    if not isinstance(timestamp, numbers.Number) or timestamp < 0:  # type: ignore[operator]
        raise _invalid(
            f"{prefix}timestamp",
            timestamp,
            f"metric '{key}' (value={value}). Timestamp must be a nonnegative long (64-bit "
            "integer) ",
        )
    if not isinstance(step, numbers.Number):
        raise _invalid(
            f"{prefix}step",
            step,
            f"metric '{key}' (value={value}). Step must be a valid long (64-bit integer).",
        )
