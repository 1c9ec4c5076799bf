"""Where ``tracklite.mlflow`` meets the store: URIs, experiments, runs and their writers.

An MLflow run is a tracklite recorder and an MLflow experiment a tracklite experiment, in the same
folders, written by the same metric writer, so ``R``, the CLI and the dashboard see them. This
module turns store metadata into MLflow entities and MLflow calls into store and writer calls;
the client and the fluent API are thin layers over it.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..api import provenance
from ..api.stores import store_for
from ..errors import ExpAlreadyExistError
from ..liveness import DEAD, beat, effective_status
from ..metrics import latest
from ..metrics.values import to_step
from ..metrics.writer import RecorderBuffer, get_writer
from ..store import layout
from ..store.clock import iso_to_ms, ms_to_iso, now_iso, now_ms
from ..store.owner import owner_record
from ..store.ref import RecorderRef
from ..store.root import Meta, Store
from .entities import (
    Experiment,
    ExperimentTag,
    Metric,
    Param,
    Run,
    RunData,
    RunInfo,
    RunStatus,
    RunTag,
)
from .exceptions import (
    INVALID_PARAMETER_VALUE,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
    MlflowException,
)
from .utils import validation
from .utils.mlflow_tags import MLFLOW_RUN_NAME, MLFLOW_USER

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"
TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"

# ------------------------------------------------------------------------------ tracking URIs

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")
_SERVER_NAMES = ("databricks", "databricks-uc", "uc")


def check_uri(uri: str | os.PathLike[str]) -> str:
    """``uri`` if it names a folder (a path or ``file:`` URI); else one sentence saying why not."""
    text = os.fspath(uri)
    if not isinstance(text, str) or not text.strip():
        raise MlflowException(
            f"tracking URI must be a folder path or a file: URI, got {uri!r}",
            INVALID_PARAMETER_VALUE,
        )
    match = _SCHEME.match(text)
    scheme = match.group(1).lower() if match else None
    # One letter before a colon is a Windows drive, not a scheme.
    server = text.strip().lower() in _SERVER_NAMES or (
        scheme is not None and scheme != "file" and len(scheme) > 1
    )
    if server:
        raise MlflowException(
            f"tracking URI {text!r} needs an MLflow server or database, and tracklite.mlflow "
            "stores runs in a local folder: pass a folder path or a file: URI instead.",
            INVALID_PARAMETER_VALUE,
        )
    try:
        layout.uri_to_path(text)
    except ValueError as exc:
        raise MlflowException(str(exc), INVALID_PARAMETER_VALUE) from exc
    return text


class _Uri:
    """The tracking URI of this process: ``set_tracking_uri``, else ``$MLFLOW_TRACKING_URI``,
    else tracklite's default store (``$TRACKLITE_URI`` or ``./tracklite-store``)."""

    explicit: str | None = None


def set_tracking_uri(uri: str | os.PathLike[str] | None) -> None:
    _Uri.explicit = None if uri is None else check_uri(uri)


def is_tracking_uri_set() -> bool:
    return _Uri.explicit is not None or bool(os.environ.get(TRACKING_URI_ENV))


def tracking_uri() -> str:
    if _Uri.explicit is not None:
        return _Uri.explicit
    env = os.environ.get(TRACKING_URI_ENV)
    if env:
        return check_uri(env)
    return Path(layout.default_uri()).as_uri()


# ------------------------------------------------------------------------------ the store

_defaults_made: set[Path] = set()
_guard = threading.Lock()


def open_store(uri: str | None = None) -> Store:
    """The store a tracking URI names (the current one when None), with MLflow's ``Default``
    experiment (id ``0``) in it, as MLflow's file store has from its creation."""
    store = store_for(check_uri(uri) if uri is not None else tracking_uri())
    # Checked again when the store's marker is gone (a notebook that deleted its store).
    if store.root not in _defaults_made or not (store.root / layout.MARKER).is_file():
        with _guard:
            if store.read_experiment(DEFAULT_EXPERIMENT_ID) is None:
                # Created meanwhile, or an active experiment is already called Default.
                with contextlib.suppress(ExpAlreadyExistError):
                    store.create_experiment(
                        DEFAULT_EXPERIMENT_NAME, experiment_id=DEFAULT_EXPERIMENT_ID
                    )
            _defaults_made.add(store.root)
    return store


def default_experiment_id(store: Store) -> str:
    """``0``, MLflow's ``Default``; where another experiment took that name first (one created
    through ``R``, say), that one."""
    if store.read_experiment(DEFAULT_EXPERIMENT_ID) is None:
        found = store.find_experiment(DEFAULT_EXPERIMENT_NAME)
        if found is not None:
            return str(found["id"])
    return DEFAULT_EXPERIMENT_ID


def uri_of(store: Store) -> str:
    return str(store.root)


# ------------------------------------------------------------------------------ experiments


def experiment_entity(store: Store, meta: Meta) -> Experiment:
    created = iso_to_ms(meta.get("created"))
    updated = iso_to_ms(meta.get("deleted_time")) or iso_to_ms(meta.get("updated")) or created
    return Experiment(
        experiment_id=meta["id"],
        name=meta["name"],
        artifact_location=(store.root / meta["id"]).as_uri(),
        lifecycle_stage=meta.get("lifecycle", "active"),
        tags=[ExperimentTag(k, v) for k, v in (meta.get("tags") or {}).items()],
        creation_time=created,
        last_update_time=updated,
    )


def read_experiment(store: Store, experiment_id: str) -> Meta:
    """An experiment's metadata by id (deleted ones too); MLflow's error when missing."""
    meta = store.read_experiment(str(experiment_id))
    if meta is None:
        raise MlflowException(
            f"Could not find experiment with ID {experiment_id}", RESOURCE_DOES_NOT_EXIST
        )
    return meta


def create_experiment(
    store: Store,
    name: str,
    artifact_location: str | None = None,
    tags: dict[str, Any] | None = None,
) -> str:
    validation.validate_experiment_name(name)
    if artifact_location is not None:
        raise MlflowException(
            f"artifact_location {artifact_location!r} is not supported: tracklite keeps every "
            "run's artifacts in its folder of the store; leave artifact_location unset.",
            INVALID_PARAMETER_VALUE,
        )
    for exp in store.iter_experiments(include_deleted=True):
        if exp["name"] == name:
            if exp.get("lifecycle") == "deleted":
                raise MlflowException(
                    f"Experiment {name!r} already exists in deleted state. You can restore the "
                    "experiment, or permanently delete the experiment to create a new one.",
                    RESOURCE_ALREADY_EXISTS,
                )
            raise MlflowException(f"Experiment '{name}' already exists.", RESOURCE_ALREADY_EXISTS)
    try:
        meta = store.create_experiment(name)
    except ExpAlreadyExistError as exc:  # created by another process since we looked
        raise MlflowException(
            f"Experiment '{name}' already exists.", RESOURCE_ALREADY_EXISTS
        ) from exc
    if tags:
        clean = {str(k): str(v) for k, v in tags.items()}
        for key in clean:
            validation.validate_tag_name(key)
        store.update_experiment(meta["id"], lambda m: m.setdefault("tags", {}).update(clean))
    return str(meta["id"])


# ------------------------------------------------------------------------------ runs

_WORDS_A = (
    "amber", "bold", "brisk", "calm", "clever", "crisp", "dapper", "eager", "fleet", "gentle",
    "glad", "keen", "lively", "lucid", "merry", "nimble", "quiet", "rapid", "sleek", "steady",
    "sunny", "swift", "tidy", "vivid", "witty", "zesty",
)  # fmt: skip
_WORDS_B = (
    "badger", "bee", "crane", "deer", "dove", "eel", "falcon", "finch", "fox", "gull", "hare",
    "heron", "ibis", "koala", "lark", "lynx", "moth", "newt", "otter", "owl", "panda", "quail",
    "robin", "seal", "swan", "wren",
)  # fmt: skip


def random_run_name() -> str:
    """A readable run name for runs started without one, as MLflow gives (``swift-otter-317``)."""
    return f"{random.choice(_WORDS_A)}-{random.choice(_WORDS_B)}-{random.randint(0, 999)}"


def context_tags() -> dict[str, str]:
    """The tags a run started by the fluent API gets: user, source (MLflow's) and tracklite's
    host, pid and versions. ``mlflow.runName`` is set from the run itself."""
    tags = provenance.system_tags("")
    tags.pop(MLFLOW_RUN_NAME, None)
    return tags


# Where each run id lives (runs never move between experiments): one lookup per run and process.
_located: dict[tuple[Path, str], str] = {}


def ref_of(store: Store, run_id: str) -> RecorderRef:
    """The folder of run ``run_id``; MLflow's "Run '...' not found" when there is none."""
    exp_id = _located.get((store.root, run_id))
    if exp_id is None:
        meta = store.locate_recorder(run_id) if isinstance(run_id, str) else None
        if meta is None:
            raise MlflowException(f"Run '{run_id}' not found", RESOURCE_DOES_NOT_EXIST)
        exp_id = _located[(store.root, run_id)] = meta["experiment_id"]
    return RecorderRef(store.root, exp_id, run_id)


def read_run(store: Store, ref: RecorderRef) -> Meta:
    """The run's metadata on disk, after this process's pending points and changes of it."""
    get_writer().flush(ref)
    meta = store.read_recorder(ref.experiment_id, ref.recorder_id)
    if meta is None:
        _located.pop((store.root, ref.recorder_id), None)
        raise MlflowException(f"Run '{ref.recorder_id}' not found", RESOURCE_DOES_NOT_EXIST)
    return meta


# MLflow's status of a run whose process is gone (tracklite's DEAD), in runs and in searches.
KILLED = "KILLED"


def status_of(meta: Meta, ref: RecorderRef) -> str:
    """MLflow's status of a recorder: a RUNNING one whose process is gone reads KILLED."""
    stored = str(meta.get("status"))
    if stored == "RUNNING" and effective_status(meta, ref.dir) == DEAD:
        return KILLED
    return stored


def run_entity(store: Store, meta: Meta, ref: RecorderRef | None = None) -> Run:
    ref = ref or RecorderRef(store.root, meta["experiment_id"], meta["id"])
    tags = dict(meta.get("tags") or {})
    tags.setdefault(MLFLOW_RUN_NAME, meta["name"])
    info = RunInfo(
        run_id=meta["id"],
        experiment_id=meta["experiment_id"],
        user_id=tags.get(MLFLOW_USER, "unknown"),
        status=status_of(meta, ref),
        start_time=iso_to_ms(meta.get("start_time")) or 0,
        end_time=iso_to_ms(meta.get("end_time")),
        lifecycle_stage=meta.get("lifecycle", "active"),
        artifact_uri=ref.artifacts_dir.as_uri(),
        run_name=meta["name"],
    )
    metrics = [
        Metric(key, float(entry["value"]), int(entry["timestamp"]), int(entry["step"]))
        for key, entry in latest.summary(ref.dir, meta).items()
    ]
    data = RunData(
        metrics=metrics,
        params=[Param(k, v) for k, v in (meta.get("params") or {}).items()],
        tags=[RunTag(k, v) for k, v in tags.items()],
    )
    return Run(info, data)


def get_run(store: Store, run_id: str) -> Run:
    ref = ref_of(store, run_id)
    return run_entity(store, read_run(store, ref), ref)


def create_run(
    store: Store,
    experiment_id: str,
    *,
    start_time: int | None = None,
    tags: dict[str, str] | None = None,
    run_name: str | None = None,
) -> tuple[Meta, RecorderRef]:
    """A new RUNNING run owned by this process, its points buffered by the metric writer."""
    tags = dict(tags or {})
    tag_name = tags.get(MLFLOW_RUN_NAME)
    if run_name is not None and tag_name is not None and run_name != tag_name:
        raise MlflowException(
            "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with "
            f"different values (run_name='{run_name}', mlflow.runName='{tag_name}').",
            INVALID_PARAMETER_VALUE,
        )
    name = run_name or tag_name or random_run_name()
    tags[MLFLOW_RUN_NAME] = name
    for key, value in tags.items():
        validation.validate_tag_name(key)
        tags[key] = validation.truncated(str(value), validation.MAX_TAG_VAL_LENGTH)
    exp = store.read_experiment(str(experiment_id))
    if exp is None:
        raise MlflowException(
            f"Could not create run under experiment with ID {experiment_id} - no such "
            "experiment exists.",
            RESOURCE_DOES_NOT_EXIST,
        )
    if exp.get("lifecycle") != "active":
        raise MlflowException(
            f"Could not create run under non-active experiment with ID {experiment_id}.",
            INVALID_PARAMETER_VALUE,
        )
    started = ms_to_iso(start_time) if start_time is not None else now_iso()
    meta = store.create_recorder(
        exp["id"], name, start_time=started, extra={"params": {}, "tags": tags}
    )
    ref = RecorderRef(store.root, exp["id"], meta["id"])
    _located[(store.root, meta["id"])] = exp["id"]
    attach(ref)
    return meta, ref


def attach(ref: RecorderRef) -> RecorderBuffer:
    """Make this process the run's writer: buffered points, heartbeats, a flush at exit."""
    beat(ref.dir)
    return get_writer().attach(ref)


def resume_run(store: Store, ref: RecorderRef, run_name: str | None) -> Meta:
    """``start_run(run_id=...)``: RUNNING again, owned by this process (end time kept)."""

    def resume(meta: Meta) -> None:
        meta["status"] = "RUNNING"
        meta["owner"] = owner_record()
        if run_name:
            meta["name"] = run_name
            meta.setdefault("tags", {})[MLFLOW_RUN_NAME] = run_name

    meta = store.update_recorder(ref.experiment_id, ref.recorder_id, resume)
    attach(ref)
    return meta


def terminate(store: Store, ref: RecorderRef, status: str, end_time: int | None) -> None:
    """End a run with ``status``: its points written (and compacted when this process wrote
    them), status and end time in the same metadata rewrite."""
    if status not in RunStatus._STRING_TO_STATUS:
        raise MlflowException(
            f"Invalid run status {status!r}: one of {', '.join(RunStatus._STRING_TO_STATUS)}",
            INVALID_PARAMETER_VALUE,
        )
    ended = ms_to_iso(end_time) if end_time is not None else now_iso()

    def finish(meta: Meta) -> None:
        meta["status"] = status
        meta["end_time"] = ended

    writer = get_writer()
    buf = writer.buffer(ref)
    if buf.running:
        writer.finish(ref, finish)
    else:
        writer.flush(ref)
        store.update_recorder(ref.experiment_id, ref.recorder_id, finish)


def set_lifecycle(store: Store, run_id: str, lifecycle: str) -> None:
    ref = ref_of(store, run_id)
    get_writer().flush(ref)
    store.set_recorder_lifecycle(ref.experiment_id, ref.recorder_id, lifecycle)


def set_runs_lifecycle(store: Store, experiment_id: str, lifecycle: str) -> None:
    """Delete (or restore) every run of an experiment that is not already so."""
    for meta in store.iter_recorders(experiment_id, include_deleted=True):
        if meta.get("lifecycle", "active") != lifecycle:
            store.set_recorder_lifecycle(experiment_id, meta["id"], lifecycle)


# ------------------------------------------------------------------------------ writing


def check_active(store: Store, ref: RecorderRef, buf: RecorderBuffer) -> Meta | None:
    """MLflow refuses to write into a deleted run. A run this process is writing is taken as
    active (no read per point); any other is read."""
    if buf.running:
        return None
    meta = store.read_recorder(ref.experiment_id, ref.recorder_id)
    if meta is None:
        raise MlflowException(f"Run '{ref.recorder_id}' not found", RESOURCE_DOES_NOT_EXIST)
    if meta.get("lifecycle") != "active":
        raise MlflowException(
            f"The run {ref.recorder_id} must be in the 'active' state. Current state is "
            f"{meta.get('lifecycle')}.",
            INVALID_PARAMETER_VALUE,
        )
    return meta


def to_metric_value(value: Any) -> Any:
    """MLflow's conversion: numbers, numpy scalars, one-element arrays and tensors to float, and
    anything ``float()`` takes; the rest is left as it is for validation to refuse."""
    kind = type(value)
    if kind is float or value is None:
        return value
    if kind is int or kind is bool:
        return float(value)
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return float(item())  # numpy scalars and arrays, torch tensors: one element only
        except (TypeError, ValueError, RuntimeError, OverflowError):
            pass
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):
        return value


def queue_points(
    buf: RecorderBuffer,
    points: Iterable[tuple[str, Any, int | None, Any]],
) -> None:
    """Queue ``(key, value, timestamp ms or None, step)`` points, validated as a whole first.

    Consecutive points sharing a step and a timestamp (a training step's metrics) go to the
    writer as one call, like ``R.log_metrics``; logging order is kept.
    """
    calls: list[tuple[int, int, dict[str, float]]] = []
    now = None
    for index, (key, raw, stamp, step) in enumerate(points):
        value = to_metric_value(raw)
        if stamp is None:
            now = now_ms() if now is None else now
            stamp = now
        validation.validate_metric(key, value, stamp, step, path=f"metrics[{index}]")
        where = (to_step(step), int(stamp))
        if calls and calls[-1][:2] == where and key not in calls[-1][2]:
            calls[-1][2][key] = float(value)
        else:
            calls.append((*where, {key: float(value)}))
    for step_, stamp_, items in calls:
        buf.log(step_, items, stamp_)


def pending_and_stored(
    store: Store, ref: RecorderRef, buf: RecorderBuffer, field: str
) -> dict[str, Any]:
    """The run's params or tags: on disk, overlaid with what this process has queued."""
    # The flush lock is held by a write in flight: taking it means no change is between the
    # buffer and the file while both are read.
    with buf.flush_lock:
        meta = store.read_recorder(ref.experiment_id, ref.recorder_id)
        if meta is None:
            raise MlflowException(f"Run '{ref.recorder_id}' not found", RESOURCE_DOES_NOT_EXIST)
        current = dict(meta.get(field) or {})
        with buf.lock:
            pending = dict(buf.params if field == "params" else buf.tags)
    for key, value in pending.items():
        if value is None:
            current.pop(key, None)
        else:
            current[key] = value
    return current


def queue_params(
    store: Store, ref: RecorderRef, buf: RecorderBuffer, params: dict[str, str]
) -> None:
    """Queue params, refusing (as MLflow does) a key already logged with another value."""
    if not params:
        return
    current = pending_and_stored(store, ref, buf, "params")
    for key, value in params.items():
        old = current.get(key)
        if old is not None and old != value:
            raise MlflowException(
                f"Changing param values is not allowed. Param with key='{key}' was already "
                f"logged with value='{old}' for run ID='{ref.recorder_id}'. Attempted logging "
                f"new value '{value}'.{validation.PARAM_VALIDATION_MSG}",
                INVALID_PARAMETER_VALUE,
            )
    buf.update_meta(params=params)


def clean_params(params: Iterable[tuple[Any, Any]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for index, (key, value) in enumerate(params):
        validation.validate_param_name(key, f"params[{index}].key" if index else "key")
        out[key] = validation.truncated(str(value), validation.MAX_PARAM_VAL_LENGTH)
    return out


def clean_tags(tags: Iterable[tuple[Any, Any]]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for key, value in tags:
        validation.validate_tag_name(key)
        out[key] = validation.truncated(str(value), validation.MAX_TAG_VAL_LENGTH)
    return out


def written(ref: RecorderRef, buf: RecorderBuffer) -> None:
    """A run this process is not writing is written at once (MLflow's calls are synchronous)."""
    if not buf.running:
        get_writer().flush(ref)


def buffer_of(ref: RecorderRef) -> RecorderBuffer:
    return get_writer().buffer(ref)
