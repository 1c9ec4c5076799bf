"""``MlflowClient``: MLflow's low-level client over a tracklite store.

Every call reads or writes the store's own files: an experiment created here is an experiment of
``R`` and of the ``tracklite`` command, a run a recorder. Runs created in this process are
written by tracklite's metric writer (points buffered, written in the background, read back at
once by this process); runs of other processes are written at each call, as MLflow does.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ...api.recorder import Recorder
from ...errors import ExpAlreadyExistError, NotFoundError
from ...metrics.writer import get_writer
from ...store import artifacts
from ...store.ref import RecorderRef
from ...store.root import Store
from .. import _backend as backend
from .. import _experiment_search
from ..entities import (
    Experiment,
    FileInfo,
    LifecycleStage,
    Metric,
    Param,
    Run,
    RunStatus,
    RunTag,
    ViewType,
)
from ..exceptions import (
    INVALID_PARAMETER_VALUE,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
    MlflowException,
)
from ..utils import validation
from ..utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

#: MLflow's default page size of ``MlflowClient.search_runs`` / ``search_experiments``.
SEARCH_MAX_RESULTS_DEFAULT = 1000


class PagedList(list):  # type: ignore[type-arg]
    """A list of results with MLflow's ``token`` for the next page (always None: every result
    comes in one page)."""

    def __init__(self, items: Iterable[Any], token: str | None = None) -> None:
        super().__init__(items)
        self.token = token

    def to_list(self) -> list[Any]:
        return list(self)


class RunOperations:
    """What MLflow returns for ``synchronous=False``: ``wait()`` makes the points durable."""

    def __init__(self, refs: Sequence[RecorderRef] = ()) -> None:
        self._refs = list(refs)

    def wait(self) -> None:
        for ref in self._refs:
            get_writer().flush(ref)


class LocalArtifactRepository:
    """A run's artifact folder, as MLflow's local artifact repository describes it (qlib asks
    ``client._tracking_client._get_artifact_repo(run_id)`` for one)."""

    def __init__(self, artifact_uri: str, artifact_dir: str) -> None:
        self.artifact_uri = artifact_uri
        self.artifact_dir = artifact_dir


class _TrackingClient:
    """What code reaching into MLflow's private ``MlflowClient._tracking_client`` uses."""

    def __init__(self, client: MlflowClient) -> None:
        self._client = client
        self.tracking_uri = client.tracking_uri

    def _get_artifact_repo(self, run_id: str) -> LocalArtifactRepository:
        ref = backend.ref_of(self._client._store, run_id)
        return LocalArtifactRepository(ref.artifacts_dir.as_uri(), str(ref.artifacts_dir))


class MlflowClient:
    """MLflow's client for the store at ``tracking_uri`` (the current tracking URI when None)."""

    def __init__(self, tracking_uri: str | None = None, registry_uri: str | None = None) -> None:
        uri = backend.check_uri(tracking_uri) if tracking_uri else backend.tracking_uri()
        self._tracking_uri = uri
        self._registry_uri = registry_uri
        self._store = backend.open_store(uri)

    @classmethod
    def of_store(cls, store: Store) -> MlflowClient:
        """A client over ``store`` as it is: no ``Default`` experiment is added (what
        tracklite's own recorders hand out as ``recorder.client``, as qlib's recorders do)."""
        client = cls.__new__(cls)
        client._tracking_uri = store.root.as_uri()
        client._registry_uri = None
        client._store = store
        return client

    @property
    def tracking_uri(self) -> str:
        return self._tracking_uri

    def __repr__(self) -> str:
        return f"MlflowClient(tracking_uri={self._tracking_uri!r})"

    @property
    def _tracking_client(self) -> _TrackingClient:
        return _TrackingClient(self)

    # ------------------------------------------------------------------ experiments

    def create_experiment(
        self,
        name: str,
        artifact_location: str | None = None,
        tags: dict[str, Any] | None = None,
    ) -> str:
        """Create an experiment; returns its id."""
        return backend.create_experiment(self._store, name, artifact_location, tags)

    def get_experiment(self, experiment_id: str) -> Experiment:
        meta = backend.read_experiment(self._store, str(experiment_id))
        return backend.experiment_entity(self._store, meta)

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        """The experiment called ``name`` (an active one first, else a deleted one), or None."""
        found = self._store.find_experiment(name)
        if found is None:
            found = next(
                (
                    m
                    for m in self._store.iter_experiments(include_deleted=True)
                    if m["name"] == name
                ),
                None,
            )
        return None if found is None else backend.experiment_entity(self._store, found)

    def search_experiments(
        self,
        view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int | None = SEARCH_MAX_RESULTS_DEFAULT,
        filter_string: str | None = None,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        """Experiments matching ``filter_string`` (``name LIKE 'lgb%'``, ``tags.k = 'v'``), by
        ``order_by`` (newest first by default)."""
        if view_type not in (ViewType.ACTIVE_ONLY, ViewType.DELETED_ONLY, ViewType.ALL):
            raise MlflowException(f"Invalid view type '{view_type}'", INVALID_PARAMETER_VALUE)
        predicates = _experiment_search.parse_filter(filter_string)
        keys = _experiment_search.parse_order_by(order_by)
        stages = LifecycleStage.view_type_to_stages(view_type)
        found = [
            backend.experiment_entity(self._store, meta)
            for meta in self._store.iter_experiments(include_deleted=True)
            if meta.get("lifecycle", "active") in stages
        ]
        found = [e for e in found if all(p(e) for p in predicates)]
        ordered = _experiment_search.sort_experiments(found, keys)
        if max_results is not None:
            ordered = ordered[: int(max_results)]
        return PagedList(ordered)

    def delete_experiment(self, experiment_id: str) -> None:
        """Soft-delete an experiment and, as MLflow does, its active runs (the default
        experiment cannot be deleted)."""
        exp_id = str(experiment_id)
        if exp_id == backend.DEFAULT_EXPERIMENT_ID:
            raise MlflowException(
                f"Cannot delete the default experiment '{backend.DEFAULT_EXPERIMENT_ID}'. This "
                "is an internally reserved experiment."
            )
        meta = self._store.read_experiment(exp_id)
        if meta is None or meta.get("lifecycle") != "active":
            raise MlflowException(
                f"Could not find experiment with ID {exp_id}", RESOURCE_DOES_NOT_EXIST
            )
        backend.set_runs_lifecycle(self._store, exp_id, "deleted")
        self._store.set_experiment_lifecycle(exp_id, "deleted")

    def restore_experiment(self, experiment_id: str) -> None:
        """Restore a deleted experiment and its deleted runs, as MLflow does."""
        exp_id = str(experiment_id)
        meta = self._store.read_experiment(exp_id)
        if meta is None or meta.get("lifecycle") != "deleted":
            raise MlflowException(
                f"Could not find deleted experiment with ID {exp_id}", RESOURCE_DOES_NOT_EXIST
            )
        try:
            self._store.set_experiment_lifecycle(exp_id, "active")
        except ExpAlreadyExistError as exc:
            raise MlflowException(str(exc), RESOURCE_ALREADY_EXISTS) from exc
        backend.set_runs_lifecycle(self._store, exp_id, "active")

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        validation.validate_tag_name(key)
        backend.read_experiment(self._store, str(experiment_id))
        self._store.update_experiment(
            str(experiment_id), lambda m: m.setdefault("tags", {}).update({key: str(value)})
        )

    # ------------------------------------------------------------------ runs

    def create_run(
        self,
        experiment_id: str,
        start_time: int | None = None,
        tags: dict[str, Any] | None = None,
        run_name: str | None = None,
    ) -> Run:
        """A new RUNNING run; its name comes from ``run_name``, else the ``mlflow.runName``
        tag, else a generated one."""
        meta, ref = backend.create_run(
            self._store,
            str(experiment_id),
            start_time=start_time,
            tags={str(k): v for k, v in (tags or {}).items()},
            run_name=run_name,
        )
        return backend.run_entity(self._store, meta, ref)

    def get_run(self, run_id: str) -> Run:
        return backend.get_run(self._store, run_id)

    def get_parent_run(self, run_id: str) -> Run | None:
        parent = self.get_run(run_id).data.tags.get(MLFLOW_PARENT_RUN_ID)
        return None if parent is None else self.get_run(parent)

    def update_run(self, run_id: str, status: str | None = None, name: str | None = None) -> None:
        ref = backend.ref_of(self._store, run_id)
        if status is not None and status not in RunStatus._STRING_TO_STATUS:
            raise MlflowException(f"Invalid run status {status!r}", INVALID_PARAMETER_VALUE)

        def change(meta: dict[str, Any]) -> None:
            if status is not None:
                meta["status"] = status
            if name:
                meta["name"] = name
                meta.setdefault("tags", {})[MLFLOW_RUN_NAME] = name

        get_writer().flush(ref)
        self._store.update_recorder(ref.experiment_id, ref.recorder_id, change)

    def set_terminated(
        self, run_id: str, status: str | None = None, end_time: int | None = None
    ) -> None:
        """End a run: ``status`` (FINISHED by default) and ``end_time`` (Unix ms, now by
        default); every point logged before is written first."""
        ref = backend.ref_of(self._store, run_id)
        backend.terminate(self._store, ref, status or "FINISHED", end_time)

    def delete_run(self, run_id: str) -> None:
        backend.set_lifecycle(self._store, run_id, "deleted")

    def restore_run(self, run_id: str) -> None:
        backend.set_lifecycle(self._store, run_id, "active")

    # ------------------------------------------------------------------ logging

    def _writable(self, run_id: str) -> tuple[RecorderRef, Any]:
        ref = backend.ref_of(self._store, run_id)
        buf = backend.buffer_of(ref)
        backend.check_active(self._store, ref, buf)
        return ref, buf

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        timestamp: int | None = None,
        step: int | None = None,
        synchronous: bool | None = None,
        dataset_name: str | None = None,
        dataset_digest: str | None = None,
        model_id: str | None = None,
    ) -> RunOperations | None:
        """One metric point (``step`` 0 and the current time by default)."""
        ref, buf = self._writable(run_id)
        backend.queue_points(buf, [(key, value, timestamp, 0 if step is None else step)])
        backend.written(ref, buf)
        return RunOperations([ref]) if synchronous is False else None

    def log_param(self, run_id: str, key: str, value: Any, synchronous: bool | None = None) -> Any:
        """Log a param (stored as a string); logging another value for a key is an error."""
        ref, buf = self._writable(run_id)
        backend.queue_params(self._store, ref, buf, backend.clean_params([(key, value)]))
        backend.written(ref, buf)
        return value

    def set_tag(
        self, run_id: str, key: str, value: Any, synchronous: bool | None = None
    ) -> RunOperations | None:
        ref, buf = self._writable(run_id)
        buf.update_meta(tags=backend.clean_tags([(key, value)]))
        backend.written(ref, buf)
        return RunOperations([ref]) if synchronous is False else None

    def delete_tag(self, run_id: str, key: str) -> None:
        ref, buf = self._writable(run_id)
        if key not in backend.pending_and_stored(self._store, ref, buf, "tags"):
            raise MlflowException(
                f"No tag with name: {key} in run with id {run_id}", RESOURCE_DOES_NOT_EXIST
            )
        buf.update_meta(tags={key: None})
        backend.written(ref, buf)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Sequence[Param] = (),
        tags: Sequence[RunTag] = (),
        synchronous: bool | None = None,
    ) -> RunOperations | None:
        """Metrics, params and tags in one call; everything is checked before anything is
        queued. As with MLflow's file store, batches may exceed the server's limits
        (``utils.validation.MAX_METRICS_PER_BATCH``, ``MAX_PARAMS_TAGS_PER_BATCH``)."""
        metrics, params, tags = list(metrics), list(params), list(tags)
        seen: set[str] = set()
        dupes = [p.key for p in params if p.key in seen or seen.add(p.key)]  # type: ignore[func-returns-value]
        if dupes:
            raise MlflowException(
                f"Duplicate parameter keys have been submitted: {dupes}. Please ensure the "
                "request contains only one param value per param key.",
                INVALID_PARAMETER_VALUE,
            )
        clean_params = backend.clean_params((p.key, p.value) for p in params)
        clean_tags = backend.clean_tags((t.key, t.value) for t in tags)
        ref, buf = self._writable(run_id)
        if clean_params:
            backend.queue_params(self._store, ref, buf, clean_params)
        if metrics:
            backend.queue_points(buf, [(m.key, m.value, m.timestamp, m.step) for m in metrics])
        if clean_tags:
            buf.update_meta(tags=clean_tags)
        backend.written(ref, buf)
        return RunOperations([ref]) if synchronous is False else None

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every point of ``key``, in logging order."""
        import pyarrow as pa
        import pyarrow.compute as pc

        from ...metrics import segments

        ref = backend.ref_of(self._store, run_id)
        backend.read_run(self._store, ref)  # writes this process's pending points first
        table = segments.read_points(ref.metrics_dir)
        table = table.filter(pc.equal(table["key"], pa.scalar(key, pa.string())))
        stamps = table["timestamp"].cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64())
        return [
            Metric(key, float(value), int(stamp), int(step))  # type: ignore[arg-type]
            for value, stamp, step in zip(
                table["value"].to_pylist(),
                stamps.to_pylist(),
                table["step"].to_pylist(),
                strict=True,
            )
        ]

    # ------------------------------------------------------------------ search

    def search_runs(
        self,
        experiment_ids: str | list[str],
        filter_string: str = "",
        run_view_type: int = ViewType.ACTIVE_ONLY,
        max_results: int = SEARCH_MAX_RESULTS_DEFAULT,
        order_by: list[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList:
        """Runs as :class:`Run` objects, in MLflow's order (newest first unless ``order_by``
        says otherwise), with tracklite's search engine and MLflow's filter language."""
        return PagedList(
            search_run_entities(
                self._store, experiment_ids, filter_string, run_view_type, max_results, order_by
            )
        )

    # ------------------------------------------------------------------ artifacts

    def _recorder(self, run_id: str) -> Recorder:
        ref = backend.ref_of(self._store, run_id)
        return Recorder._from_meta(backend.uri_of(self._store), backend.read_run(self._store, ref))

    def log_artifact(self, run_id: str, local_path: str, artifact_path: str | None = None) -> None:
        """Copy a local file into the run's artifacts, under ``artifact_path``."""
        self._recorder(run_id).log_artifact(local_path, _artifact_path(artifact_path))

    def log_artifacts(self, run_id: str, local_dir: str, artifact_path: str | None = None) -> None:
        """Copy a local folder's contents into the run's artifacts, under ``artifact_path``."""
        if not os.path.isdir(local_dir):
            raise MlflowException(f"{local_dir!r} is not a folder", INVALID_PARAMETER_VALUE)
        self._recorder(run_id).log_artifact(local_dir, _artifact_path(artifact_path))

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self._write_artifact(run_id, artifact_file, text.encode("utf-8"))

    def log_dict(self, run_id: str, dictionary: Any, artifact_file: str) -> None:
        """A dict as JSON, or as YAML when ``artifact_file`` ends in ``.yaml``/``.yml``."""
        if Path(artifact_file).suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError as exc:
                raise MlflowException(
                    f"log_dict to {artifact_file!r} writes YAML and needs PyYAML "
                    "(pip install pyyaml), or use a .json name"
                ) from exc
            data = yaml.safe_dump(dictionary, default_flow_style=False).encode("utf-8")
        else:
            data = json.dumps(dictionary, indent=2).encode("utf-8")
        self._write_artifact(run_id, artifact_file, data)

    def log_figure(
        self,
        run_id: str,
        figure: Any,
        artifact_file: str,
        *,
        save_kwargs: dict[str, Any] | None = None,
    ) -> None:
        """A matplotlib figure (or a plotly one, as HTML) saved as ``artifact_file``."""
        suffix = Path(artifact_file).suffix
        with tempfile.TemporaryDirectory(prefix="tracklite-") as tmp:
            local = Path(tmp) / f"figure{suffix}"
            if hasattr(figure, "savefig"):
                figure.savefig(local, **(save_kwargs or {}))
            elif hasattr(figure, "write_html") and suffix == ".html":
                figure.write_html(str(local), **(save_kwargs or {}))
            else:
                raise TypeError(
                    f"log_figure takes a matplotlib figure (or a plotly one saved as .html), "
                    f"got {type(figure).__name__}"
                )
            self._write_artifact(run_id, artifact_file, local.read_bytes())

    def _write_artifact(self, run_id: str, artifact_file: str, data: bytes) -> None:
        ref = backend.ref_of(self._store, run_id)
        relative = artifacts.safe_relative(artifact_file, "artifact_file")
        if not relative:
            raise MlflowException("artifact_file must name a file", INVALID_PARAMETER_VALUE)
        artifacts.write_artifact(ref, relative, data)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        """The artifacts directly under ``path`` (the root when None), sorted by path."""
        ref = backend.ref_of(self._store, run_id)
        relative = artifacts.safe_relative(path or None, "path")
        out = []
        for child, is_dir, size in artifacts.stat_children(ref, relative):
            out.append(FileInfo(child, is_dir, size))
        return out

    def download_artifacts(self, run_id: str, path: str, dst_path: str | None = None) -> str:
        """The local path of artifact ``path`` (file or folder, ``""`` for all). Artifacts are
        already local files: with no ``dst_path`` their own path is returned, as MLflow does
        for a local store; else they are copied into ``dst_path``."""
        ref = backend.ref_of(self._store, run_id)
        relative = artifacts.safe_relative(path or None, "path")
        try:
            source = artifacts.local_path(ref, relative)
        except FileNotFoundError as exc:
            raise MlflowException(
                f"No such file or directory: '{exc.filename}'", RESOURCE_DOES_NOT_EXIST
            ) from None
        if dst_path is None:
            return str(source)
        os.makedirs(dst_path, exist_ok=True)
        return self._recorder(run_id).download_artifact(relative or ".", dst_path)


def _artifact_path(artifact_path: str | None) -> str | None:
    if artifact_path is not None:
        artifacts.safe_relative(artifact_path)
    return artifact_path


def search_run_entities(
    store: Any,
    experiment_ids: str | list[str] | None,
    filter_string: str | None,
    run_view_type: int,
    max_results: int | None,
    order_by: list[str] | None,
) -> list[Run]:
    """The runs of a search, as :class:`Run` objects, in order (one engine with ``R``)."""
    from ...search.listing import matching_recorder_metas

    ids = [experiment_ids] if isinstance(experiment_ids, str) else list(experiment_ids or [])
    try:
        metas = matching_recorder_metas(
            store,
            [str(i) for i in ids],
            filter_string=filter_string,
            max_results=max_results,
            run_view_type=run_view_type,
            order_by=order_by,
            dead_status=backend.KILLED,
        )
    except NotFoundError as exc:
        raise MlflowException(str(exc), RESOURCE_DOES_NOT_EXIST) from exc
    except ValueError as exc:
        raise MlflowException(str(exc), INVALID_PARAMETER_VALUE) from exc
    runs = []
    for info in metas:
        ref = RecorderRef(store.root, info["experiment_id"], info["id"])
        meta = store.read_recorder(ref.experiment_id, ref.recorder_id)
        if meta is not None:  # removed since the search read it
            runs.append(backend.run_entity(store, meta, ref))
    return runs
