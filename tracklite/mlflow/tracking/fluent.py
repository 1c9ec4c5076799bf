"""MLflow's fluent API (``mlflow.start_run``, ``mlflow.log_metric``, ...) over a tracklite store.

State is MLflow's: a current tracking URI, an active experiment, and a stack of active runs per
thread (nested runs on top). ``log_metric`` on the active run appends to the metric writer's
buffer, like ``R.log_metrics``: the point is written in the background and read back at once by
this process.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any, Literal

from ...api import exit_hooks
from ...api.stores import store_for
from ...metrics.writer import RecorderBuffer, get_writer
from ...store import artifacts
from ...store.clock import now_ms
from ...store.ref import RecorderRef
from ...store.root import Store
from .. import _backend as backend
from ..entities import (
    Experiment,
    LifecycleStage,
    Metric,
    Param,
    Run,
    RunStatus,
    RunTag,
    ViewType,
)
from ..exceptions import INVALID_PARAMETER_VALUE, RESOURCE_DOES_NOT_EXIST, MlflowException
from ..utils import validation
from ..utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME, MLFLOW_RUN_NOTE
from .client import MlflowClient, RunOperations, search_run_entities

#: ``mlflow.search_runs``' default cap on the number of runs returned.
SEARCH_MAX_RESULTS_PANDAS = 100000


class ActiveRun(Run):
    """The run ``start_run`` returned: a :class:`Run` and a context manager that ends it
    FINISHED, or FAILED when the block raises."""

    def __init__(self, run: Run, ref: RecorderRef, buf: RecorderBuffer) -> None:
        super().__init__(run.info, run.data, run.inputs, run.outputs)
        self._ref = ref
        self._buf = buf
        self._pid = os.getpid()  # a forked child must not end its parent's run at its exit

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled as the plain Run it describes (the writer's buffer stays in this process).
        return (Run, (self.info, self.data))

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> bool:
        if any(r.info.run_id == self.info.run_id for r in _stack()):
            end_run("FINISHED" if exc_type is None else "FAILED")
        return exc_type is None


# ------------------------------------------------------------------------------ state


class _State(threading.local):
    stack: list[ActiveRun]

    def __init__(self) -> None:
        self.stack = []
        _all_stacks.append(self.stack)  # each thread's stack, for the exit hook


_all_stacks: list[list[ActiveRun]] = []
_local = _State()
_active_experiment_id: str | None = None
_last_active_run_id: str | None = None


def _stack() -> list[ActiveRun]:
    return _local.stack


def _client() -> MlflowClient:
    return MlflowClient()


# ------------------------------------------------------------------------------ tracking URI


def set_tracking_uri(uri: str | os.PathLike[str]) -> None:
    """Use the store at ``uri`` (a folder path or ``file:`` URI). URIs that need a server or a
    database (``http:``, ``databricks``, ``sqlite:``, ...) are refused."""
    backend.set_tracking_uri(uri)


def get_tracking_uri() -> str:
    """The tracking URI in use: ``set_tracking_uri``'s, else ``$MLFLOW_TRACKING_URI``, else
    tracklite's default store (``$TRACKLITE_URI`` or ``./tracklite-store``) as a file URI."""
    return backend.tracking_uri()


def is_tracking_uri_set() -> bool:
    return backend.is_tracking_uri_set()


# ------------------------------------------------------------------------------ experiments


def _get_experiment_id() -> str:
    """The experiment new runs go to: ``set_experiment``'s, else ``$MLFLOW_EXPERIMENT_NAME`` /
    ``$MLFLOW_EXPERIMENT_ID``, else MLflow's ``Default`` (id ``0``)."""
    if _active_experiment_id is not None:
        return _active_experiment_id
    name = os.environ.get("MLFLOW_EXPERIMENT_NAME")
    if name:
        found = get_experiment_by_name(name)
        return str(found.experiment_id) if found is not None else create_experiment(name)
    exp_id = os.environ.get("MLFLOW_EXPERIMENT_ID")
    if exp_id:
        return exp_id
    return backend.default_experiment_id(_client()._store)


def set_experiment(
    experiment_name: str | None = None, experiment_id: str | None = None
) -> Experiment:
    """Make an experiment the active one (by name, created if missing; or by id)."""
    global _active_experiment_id
    if (experiment_name is None) == (experiment_id is None):
        raise MlflowException(
            "Must specify exactly one of: `experiment_id` or `experiment_name`.",
            INVALID_PARAMETER_VALUE,
        )
    client = _client()
    if experiment_id is None:
        assert experiment_name is not None
        experiment = client.get_experiment_by_name(experiment_name)
        if experiment is None:
            try:
                new_id = client.create_experiment(experiment_name)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
                found = client.get_experiment_by_name(experiment_name)
                assert found is not None
                new_id = found.experiment_id
            experiment = client.get_experiment(new_id)
    else:
        try:
            experiment = client.get_experiment(str(experiment_id))
        except MlflowException as exc:
            raise MlflowException(
                f"Experiment with ID '{experiment_id}' does not exist.", RESOURCE_DOES_NOT_EXIST
            ) from exc
    if experiment.lifecycle_stage != LifecycleStage.ACTIVE:
        raise MlflowException(
            f"Cannot set a deleted experiment {experiment.name!r} as the active experiment. You "
            "can restore the experiment, or permanently delete the experiment to create a new "
            "one.",
            INVALID_PARAMETER_VALUE,
        )
    _active_experiment_id = experiment.experiment_id
    return experiment


def create_experiment(
    name: str, artifact_location: str | None = None, tags: dict[str, Any] | None = None
) -> str:
    return _client().create_experiment(name, artifact_location, tags)


def get_experiment(experiment_id: str) -> Experiment:
    return _client().get_experiment(experiment_id)


def get_experiment_by_name(name: str) -> Experiment | None:
    return _client().get_experiment_by_name(name)


def search_experiments(
    view_type: int = ViewType.ACTIVE_ONLY,
    max_results: int | None = None,
    filter_string: str | None = None,
    order_by: list[str] | None = None,
) -> list[Experiment]:
    return list(_client().search_experiments(view_type, max_results, filter_string, order_by))


def delete_experiment(experiment_id: str) -> None:
    _client().delete_experiment(experiment_id)


def restore_experiment(experiment_id: str) -> None:
    _client().restore_experiment(experiment_id)


def set_experiment_tag(key: str, value: Any) -> None:
    _client().set_experiment_tag(_get_experiment_id(), key, value)


# ------------------------------------------------------------------------------ runs


def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    parent_run_id: str | None = None,
    tags: dict[str, Any] | None = None,
    description: str | None = None,
    log_system_metrics: bool | None = None,
) -> ActiveRun:
    """Start a run (or resume ``run_id``) and make it the active one; a context manager.

    With a run already active, ``nested=True`` starts a child (``mlflow.parentRunId`` tag);
    without it, starting another run is an error, as in MLflow.
    """
    stack = _stack()
    if experiment_id is not None and not isinstance(experiment_id, (str, int)):
        raise MlflowException(
            f"Invalid experiment id: {experiment_id} of type {type(experiment_id)}. Must be one "
            "of str, int, or None.",
            INVALID_PARAMETER_VALUE,
        )
    experiment_id = None if experiment_id is None else str(experiment_id)
    if stack and not nested:
        raise Exception(
            f"Run with UUID {stack[0].info.run_id} is already active. To start a new run, first "
            "end the current run with mlflow.end_run(). To start a nested run, call start_run "
            "with nested=True"
        )
    client = _client()
    store = client._store
    user_tags = {str(k): v for k, v in (tags or {}).items()}
    if description:
        if MLFLOW_RUN_NOTE in user_tags:
            raise MlflowException(
                f"Description is already set via the tag {MLFLOW_RUN_NOTE} in tags.Remove the "
                f"key {MLFLOW_RUN_NOTE} from the tags or omit the description.",
                INVALID_PARAMETER_VALUE,
            )
        user_tags[MLFLOW_RUN_NOTE] = description
    existing = run_id or os.environ.pop("MLFLOW_RUN_ID", None)
    fresh: Run | None = None
    if existing:
        validation.validate_run_id(existing)
        ref = backend.ref_of(store, existing)
        run = client.get_run(existing)
        if _active_experiment_id is not None and _active_experiment_id != run.info.experiment_id:
            raise MlflowException(
                f"Cannot start run with ID {existing} because active experiment ID does not "
                "match environment run ID. Make sure --experiment-name or --experiment-id "
                "matches experiment set with set_experiment(), or just use command-line arguments"
            )
        if run.info.lifecycle_stage == LifecycleStage.DELETED:
            raise MlflowException(
                f"Cannot start run with ID {existing} because it is in the deleted state."
            )
        backend.resume_run(store, ref, run_name)
        if user_tags:
            client.log_batch(existing, tags=[_tag(k, v) for k, v in user_tags.items()])
    else:
        if parent_run_id:
            validation.validate_run_id(parent_run_id)
            if stack and parent_run_id != stack[-1].info.run_id:
                raise MlflowException(
                    f"Current run with UUID {stack[-1].info.run_id} does not match the "
                    f"specified parent_run_id {parent_run_id}. To start a new nested run under "
                    f"the parent run with UUID {stack[-1].info.run_id}, first end the current "
                    "run with mlflow.end_run()."
                )
            if client.get_run(parent_run_id).info.lifecycle_stage == LifecycleStage.DELETED:
                raise MlflowException(
                    f"Cannot start run under parent run with ID {parent_run_id} because it is "
                    "in the deleted state."
                )
        elif stack:
            parent_run_id = stack[-1].info.run_id
        if parent_run_id is not None:
            user_tags[MLFLOW_PARENT_RUN_ID] = parent_run_id
        if run_name:
            user_tags[MLFLOW_RUN_NAME] = run_name
        exp_id = experiment_id if experiment_id is not None else _get_experiment_id()
        tags_all = {**backend.context_tags(), **user_tags}
        meta, ref = backend.create_run(store, exp_id, tags=tags_all, run_name=run_name)
        existing = meta["id"]
        # Described by the metadata just written (a resumed run is read again below).
        fresh = backend.run_entity(store, meta, ref)
    exit_hooks.install(_end_all)
    run = fresh if fresh is not None else client.get_run(existing)
    active = ActiveRun(run, ref, get_writer().buffer(ref))
    stack.append(active)
    return active


def _tag(key: str, value: Any) -> RunTag:
    return RunTag(key, str(value))


def end_run(status: str = "FINISHED") -> None:
    """End the active run (the innermost nested one) with ``status``."""
    global _last_active_run_id
    stack = _stack()
    if not stack:
        return
    run = stack.pop()
    _last_active_run_id = run.info.run_id
    backend.terminate(_client_store(run), run._ref, status, None)


def _client_store(run: ActiveRun) -> Store:
    return store_for(str(run._ref.root))


def _end_all(status: str) -> None:
    """At exit: end every run still active in any thread, innermost first."""
    for stack in list(_all_stacks):
        while stack:
            run = stack.pop()
            if run._pid == os.getpid():
                backend.terminate(_client_store(run), run._ref, status, None)
            else:  # inherited through fork: write this process's points, leave the run
                get_writer().flush(run._ref)


def active_run() -> ActiveRun | None:
    stack = _stack()
    return stack[-1] if stack else None


def last_active_run() -> Run | None:
    """The active run, else the run that ended last in this process (read again)."""
    current = active_run()
    if current is not None:
        return current
    if _last_active_run_id is None:
        return None
    return get_run(_last_active_run_id)


def get_run(run_id: str) -> Run:
    return _client().get_run(run_id)


def get_parent_run(run_id: str) -> Run | None:
    return _client().get_parent_run(run_id)


def delete_run(run_id: str) -> None:
    _client().delete_run(run_id)


def restore_run(run_id: str) -> None:
    _client().restore_run(run_id)


def _get_or_start_run() -> ActiveRun:
    stack = _stack()
    return stack[-1] if stack else start_run()


def _run_id(run_id: str | None) -> str:
    return run_id if run_id is not None else _get_or_start_run().info.run_id


# ------------------------------------------------------------------------------ logging

_DONE = RunOperations()


def log_metric(
    key: str,
    value: float,
    step: int | None = None,
    synchronous: bool | None = None,
    timestamp: int | None = None,
    run_id: str | None = None,
    model_id: str | None = None,
    dataset: Any = None,
) -> RunOperations | None:
    """One point of ``key`` at ``step`` (0 by default), now or at ``timestamp`` (Unix ms)."""
    if run_id is None and timestamp is None:
        validation.validate_metric_name(key)
        kind = type(value)
        if (kind is not float and kind is not int) or (step is not None and type(step) is not int):
            value = _checked_value(key, value, step)
        _queue(step, {key: value})
        return _DONE if synchronous is False else None
    return _client().log_metric(
        _run_id(run_id), key, value, timestamp, step, synchronous=synchronous
    )


def _queue(step: int | None, items: dict[str, Any]) -> None:
    """Append checked points to the active run's buffer (the same hot path as ``R``)."""
    stack = _local.stack
    run = stack[-1] if stack else _get_or_start_run()
    buf = run._buf
    if not buf.running:  # ended by a client call: ask the writer again, and write at once
        buf = run._buf = get_writer().buffer(run._ref)
    buf.log(step, items)
    if not buf.running:
        get_writer().flush(run._ref)


def _checked_value(key: str, value: Any, step: Any) -> float:
    converted = backend.to_metric_value(value)
    validation.validate_metric(key, converted, _now_ms(), 0 if step is None else step)
    return float(converted)


def log_metrics(
    metrics: dict[str, float],
    step: int | None = None,
    synchronous: bool | None = None,
    run_id: str | None = None,
    timestamp: int | None = None,
    model_id: str | None = None,
    dataset: Any = None,
) -> RunOperations | None:
    """One point per key at ``step`` (0 by default); the whole call is checked first."""
    if run_id is None and timestamp is None:
        items = dict(metrics)
        for key, value in items.items():
            validation.validate_metric_name(key)
            kind = type(value)
            if (kind is not float and kind is not int) or (
                step is not None and type(step) is not int
            ):
                items[key] = _checked_value(key, value, step)
        _queue(step, items)
        return _DONE if synchronous is False else None
    stamp = timestamp if timestamp is not None else _now_ms()
    _client().log_batch(
        _run_id(run_id),
        metrics=[Metric(k, v, stamp, step or 0) for k, v in metrics.items()],  # type: ignore[arg-type]
    )
    return _DONE if synchronous is False else None


def _now_ms() -> int:
    return now_ms()


def log_param(key: str, value: Any, synchronous: bool | None = None) -> Any:
    """Log a param of the active run (started if none); returns ``value``."""
    return _client().log_param(_run_id(None), key, value)


def log_params(
    params: dict[str, Any], synchronous: bool | None = None, run_id: str | None = None
) -> RunOperations | None:
    _client().log_batch(_run_id(run_id), params=[Param(str(k), v) for k, v in params.items()])
    return _DONE if synchronous is False else None


def set_tag(key: str, value: Any, synchronous: bool | None = None) -> RunOperations | None:
    _client().set_tag(_run_id(None), key, value)
    return _DONE if synchronous is False else None


def set_tags(tags: dict[str, Any], synchronous: bool | None = None) -> RunOperations | None:
    _client().log_batch(_run_id(None), tags=[_tag(str(k), v) for k, v in tags.items()])
    return _DONE if synchronous is False else None


def delete_tag(key: str) -> None:
    _client().delete_tag(_run_id(None), key)


def flush_async_logging() -> None:
    """Write every queued point of this process now."""
    get_writer().flush()


# ------------------------------------------------------------------------------ artifacts


def log_artifact(
    local_path: str, artifact_path: str | None = None, run_id: str | None = None
) -> None:
    _client().log_artifact(_run_id(run_id), local_path, artifact_path)


def log_artifacts(
    local_dir: str, artifact_path: str | None = None, run_id: str | None = None
) -> None:
    _client().log_artifacts(_run_id(run_id), local_dir, artifact_path)


def log_text(text: str, artifact_file: str, run_id: str | None = None) -> None:
    _client().log_text(_run_id(run_id), text, artifact_file)


def log_dict(dictionary: Any, artifact_file: str, run_id: str | None = None) -> None:
    _client().log_dict(_run_id(run_id), dictionary, artifact_file)


def log_figure(
    figure: Any,
    artifact_file: str,
    *,
    save_kwargs: dict[str, Any] | None = None,
) -> None:
    _client().log_figure(_run_id(None), figure, artifact_file, save_kwargs=save_kwargs)


def get_artifact_uri(artifact_path: str | None = None) -> str:
    """The ``file://`` URI of the active run's artifacts (or of ``artifact_path`` in them)."""
    run = _get_or_start_run()
    base = str(run.info.artifact_uri)
    if not artifact_path:
        return base
    return f"{base}/{artifacts.safe_relative(artifact_path)}"


# ------------------------------------------------------------------------------ search


def search_runs(
    experiment_ids: list[str] | None = None,
    filter_string: str = "",
    run_view_type: int = ViewType.ACTIVE_ONLY,
    max_results: int = SEARCH_MAX_RESULTS_PANDAS,
    order_by: list[str] | None = None,
    output_format: Literal["pandas", "list"] = "pandas",
    search_all_experiments: bool = False,
    experiment_names: list[str] | None = None,
) -> Any:
    """Runs of the given experiments (the active one by default) as ``mlflow.search_runs``'
    DataFrame, or a list of :class:`Run` with ``output_format="list"``."""
    if output_format not in ("pandas", "list"):
        raise MlflowException(
            f"Unsupported output format: {output_format}. Supported string values are "
            "'pandas' or 'list'",
            INVALID_PARAMETER_VALUE,
        )
    client = _client()
    store = client._store
    ids = _search_ids(store, experiment_ids, experiment_names, search_all_experiments)
    if output_format == "list":
        return search_run_entities(store, ids, filter_string, run_view_type, max_results, order_by)
    from ...search.listing import search_records

    try:
        frame = search_records(
            store,
            ids,
            filter_string=filter_string,
            run_view_type=run_view_type,
            max_results=max_results,
            order_by=order_by,
            dead_status=backend.KILLED,  # as in Run.info.status
        )
    except ValueError as exc:
        raise MlflowException(str(exc), INVALID_PARAMETER_VALUE) from exc
    return frame


def _search_ids(
    store: Any,
    experiment_ids: Sequence[str] | str | None,
    experiment_names: Sequence[str] | None,
    search_all: bool,
) -> list[str]:
    if experiment_ids is not None and experiment_names is not None:
        raise MlflowException(
            "Only experiment_ids or experiment_names can be used, but not both",
            INVALID_PARAMETER_VALUE,
        )
    if experiment_names is not None:
        ids = []
        for name in experiment_names:
            meta = store.find_experiment(name)
            if meta is not None:  # MLflow skips unknown names
                ids.append(meta["id"])
        return ids
    if experiment_ids is not None:
        return (
            [experiment_ids]
            if isinstance(experiment_ids, str)
            else [str(i) for i in experiment_ids]
        )
    if search_all:
        return [meta["id"] for meta in store.iter_experiments()]
    return [_get_experiment_id()]


__all__ = [
    "ActiveRun",
    "RunStatus",
    "active_run",
    "create_experiment",
    "delete_experiment",
    "delete_run",
    "delete_tag",
    "end_run",
    "flush_async_logging",
    "get_artifact_uri",
    "get_experiment",
    "get_experiment_by_name",
    "get_parent_run",
    "get_run",
    "get_tracking_uri",
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
]
