"""``Recorder``: one run, with qlib's ``MLflowRecorder`` contract."""

from __future__ import annotations

import contextlib
import os
import pickle
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LoadObjectError, MetricWriteError, UsageError
from ..liveness import beat, effective_status
from ..metrics import latest
from ..metrics.latest import values_of
from ..metrics.writer import RecorderBuffer, get_writer
from ..store import artifacts, sharing
from ..store.clock import iso_to_local_string, now_iso
from ..store.names import check_key
from ..store.owner import owner_record
from ..store.ref import RecorderRef
from ..store.root import Meta
from . import provenance
from .stores import store_for

if TYPE_CHECKING:
    import pandas as pd

STATUSES = ("SCHEDULED", "RUNNING", "FINISHED", "FAILED")
_ELSEWHERE = -1  # ``_started_pid`` of a copy unpickled outside the process that started the run


class _Unset:
    """A time not converted to qlib's format yet."""


_NOT_CONVERTED = (_Unset(), _Unset())


class Recorder:
    """A recorder (run): params, tags, metrics and artifacts stored in one folder.

    Objects come from :meth:`Experiment.get_recorder`, :meth:`Experiment.create_recorder` or
    ``R.get_recorder()``; one built directly starts unsaved (``id`` None, ``SCHEDULED``).
    """

    STATUS_S = "SCHEDULED"
    STATUS_R = "RUNNING"
    STATUS_FI = "FINISHED"
    STATUS_FA = "FAILED"

    def __init__(self, experiment_id: str, uri: str, name: str | None = None) -> None:
        self.experiment_id = experiment_id
        self.name = name
        self.id: str | None = None
        # Stored ISO times, shown in qlib's local format on first read: listing 100,000
        # recorders converts none of them.
        self._iso_times: tuple[str | None, str | None] = (None, None)
        self._local_times: tuple[str | _Unset | None, str | _Unset | None] = (None, None)
        self.status = Recorder.STATUS_S
        self._uri = uri
        self._ref: RecorderRef | None = None
        self._buffer: RecorderBuffer | None = None
        self._started_pid: int | None = None  # the process whose start_run began the run

    @classmethod
    def _from_meta(cls, uri: str, meta: Meta) -> Recorder:
        rec = cls(meta["experiment_id"], uri, meta["name"])
        rec._load(meta)
        return rec

    @classmethod
    def _listed(
        cls,
        uri: str,
        root: Path,
        experiment_id: str,
        found: dict[str, list[Any]],
    ) -> list[Recorder]:
        """Recorders as a listing found them: ``found`` holds ``id``, ``name``, ``status``
        (already judged for liveness), ``start_time`` and ``end_time`` (as stored), one list
        each. Every object gets a copy of one freshly initialised object's attributes: running
        ``__init__`` 100,000 times would cost a third of a listing."""
        template = cls(experiment_id, uri).__dict__
        made: list[Recorder] = []
        for rec_id, name, status, start, end in zip(
            found["id"],
            found["name"],
            found["status"],
            found["start_time"],
            found["end_time"],
            strict=True,
        ):
            rec = cls.__new__(cls)
            state = template.copy()
            state["id"] = rec_id
            state["name"] = name
            state["status"] = status
            state["_ref"] = RecorderRef(root, experiment_id, rec_id)
            state["_iso_times"] = (start, end)
            state["_local_times"] = _NOT_CONVERTED
            rec.__dict__ = state
            made.append(rec)
        return made

    def _set_iso_times(self, times: tuple[str | None, str | None]) -> None:
        self._iso_times = times
        self._local_times = _NOT_CONVERTED

    def _local_time(self, which: int) -> str | None:
        value = self._local_times[which]
        if isinstance(value, _Unset):
            value = iso_to_local_string(self._iso_times[which])
            self._set_local_time(which, value)
        return value

    def _set_local_time(self, which: int, value: str | None) -> None:
        times = list(self._local_times)
        times[which] = value
        self._local_times = (times[0], times[1])

    @property
    def start_time(self) -> str | None:
        """When the run started, in qlib's format: local ``%Y-%m-%d %H:%M:%S``; or None."""
        return self._local_time(0)

    @start_time.setter
    def start_time(self, value: str | None) -> None:
        self._set_local_time(0, value)

    @property
    def end_time(self) -> str | None:
        """When the run ended, in qlib's format; None while it runs."""
        return self._local_time(1)

    @end_time.setter
    def end_time(self, value: str | None) -> None:
        self._set_local_time(1, value)

    def _load(self, meta: Meta) -> None:
        self.id = meta["id"]
        self.name = meta["name"]
        self._set_iso_times((meta.get("start_time"), meta.get("end_time")))
        self._ref = RecorderRef(store_for(self._uri).root, self.experiment_id, meta["id"])
        # A RUNNING recorder whose process is gone reads as DEAD (docs/reliability.md).
        # (Only a RUNNING one needs its folder path: listing builds thousands of these.)
        stored = meta.get("status")
        self.status = effective_status(meta, self._ref.dir) if stored == "RUNNING" else str(stored)

    # ------------------------------------------------------------------ identity

    @property
    def uri(self) -> str:
        """The tracking URI of the store this recorder lives in."""
        return self._uri

    @property
    def info(self) -> dict[str, Any]:
        return {
            "class": "Recorder",
            "id": self.id,
            "name": self.name,
            "experiment_id": self.experiment_id,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "status": self.status,
        }

    def __repr__(self) -> str:
        return f"Recorder(info={self.info}, uri={self._uri!r})"

    def __str__(self) -> str:
        return str(self.info)

    def __hash__(self) -> int:
        return hash(self.id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Recorder) and other.id == self.id and self.id is not None

    # ------------------------------------------------------------------ pickling

    def __getstate__(self) -> dict[str, Any]:
        """The recorder without this process's write buffer (qlib pickles recorders, e.g. in
        ``OnlineManager.to_pickle``). What this process has queued is written first, here and
        once: the copy refers to the same folder and carries no pending points."""
        if self._ref is not None:
            self.flush()
        state = self.__dict__.copy()
        state["_buffer"] = None
        state["_pickled_on"] = socket.gethostname()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        pickled_on = state.pop("_pickled_on", None)
        # Pickles of earlier releases hold the local times themselves.
        local = (state.pop("start_time", None), state.pop("end_time", None))
        state.setdefault("_iso_times", (None, None))
        state.setdefault("_local_times", local)
        self.__dict__.update(state)
        if self._started_pid is not None and (
            pickled_on != socket.gethostname() or self._started_pid != os.getpid()
        ):
            # Started by another process: that process ends the run; here the copy logs
            # straight to disk like any recorder not running in this process.
            self._started_pid = _ELSEWHERE

    def set_recorder_name(self, rname: str) -> None:
        """Set the name used when the recorder is first started."""
        self.name = check_key(rname, "recorder_name")

    @property
    def ref(self) -> RecorderRef:
        """The recorder's folder; ``ValueError`` if it was never started."""
        if self._ref is None:
            raise UsageError(
                "Please make sure the recorder has been created and started properly before "
                "using it (this recorder has no id yet)."
            )
        return self._ref

    @property
    def artifact_uri(self) -> str:
        return self.ref.artifacts_dir.as_uri()

    def get_artifact_uri(self) -> str:
        """The ``file://`` URI of the recorder's artifacts folder."""
        return self.artifact_uri

    def get_local_dir(self) -> str:
        """The recorder's folder on the local filesystem."""
        path = self.ref.dir
        if not path.is_dir():
            raise RuntimeError("This recorder is not saved in the local file system.")
        return str(path)

    # ------------------------------------------------------------------ lifecycle

    def start_run(self) -> Recorder:
        """Create this recorder on disk (or resume it), RUNNING, recording provenance."""
        store = store_for(self._uri)
        name = "mlflow_recorder" if self.name is None else self.name
        started = now_iso()
        params = provenance.start_params()
        tags = provenance.system_tags(name)
        if self.id is None:
            meta = store.create_recorder(
                self.experiment_id,
                name,
                start_time=started,
                extra={"params": params, "tags": tags},
            )
        else:

            def resume(meta: Meta) -> None:
                meta["status"] = Recorder.STATUS_R
                meta["end_time"] = None
                meta["owner"] = owner_record()
                # Resuming from another command line replaces cmd-sys.argv (qlib's MLflow
                # raised here and silently lost every later log of the run).
                meta["params"].update(params)
                meta["tags"].update(tags)

            # Refuse before taking the run over: a resume that failed halfway would leave
            # another user's finished run RUNNING under an owner that never beats (DEAD).
            sharing.require_writable(self.ref)
            meta = store.update_recorder(self.experiment_id, self.id, resume)
        self._load(meta)
        beat(self.ref.dir)  # the first heartbeat; the metric writer keeps it fresh
        self._buffer = get_writer().attach(self.ref)
        self._started_pid = os.getpid()
        for name_, data in provenance.git_snapshot().items():
            artifacts.write_artifact(self.ref, name_, data)
        return self

    def end_run(self, status: str = STATUS_S) -> None:
        """Flush everything and mark the run ended with ``status``.

        In a process forked from the one that started the run (which unwinds the same ``with``
        block or exits), only this process's points are written: the run is its starter's to end.
        """
        if status not in STATUSES:
            raise UsageError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        if self._ref is not None and self._started_pid not in (None, os.getpid()):
            self._leave_forked_run(self._ref)
            return
        self.end_time = iso_to_local_string(ended := now_iso())
        if self.status != Recorder.STATUS_S:
            self.status = status
        if self._ref is None:
            return
        final = self.status

        def finish(meta: Meta) -> None:
            meta["status"] = final
            meta["end_time"] = ended

        self._buffer = None
        try:
            get_writer().finish(self._ref, finish)
        except MetricWriteError:
            # The final write failed: the points stay queued (the writer retries them), but
            # the run did not end well. Record FAILED if the metadata is still writable.
            self.status = Recorder.STATUS_FA

            def failed(meta: Meta) -> None:
                meta["status"] = Recorder.STATUS_FA
                meta["end_time"] = ended

            # If that fails too, the MetricWriteError raised below says what went wrong.
            with contextlib.suppress(Exception):
                store_for(self._uri).update_recorder(
                    self.experiment_id, self._ref.recorder_id, failed
                )
            raise

    def _leave_forked_run(self, ref: RecorderRef) -> None:
        # No status, no end time, no compaction (the starter may be writing segments): the
        # child's own points are written, and it stops beating the starter's heartbeat.
        self._buffer = None
        buf = get_writer().buffer(ref)
        buf.running = False
        get_writer().flush(ref)

    def flush(self) -> None:
        """Write every metric point accepted so far to disk (raises a pending write error)."""
        if self._ref is not None:
            get_writer().flush(self._ref)

    def refresh(self) -> Recorder:
        """Re-read status and times from disk (another process may have changed them)."""
        meta = self._meta()
        self._load(meta)
        return self

    def _meta(self) -> Meta:
        meta = store_for(self._uri).read_recorder(self.experiment_id, self.ref.recorder_id)
        if meta is None:
            raise FileNotFoundError(f"recorder folder {self.ref.dir} has disappeared")
        return meta

    def _buf(self) -> RecorderBuffer:
        buf = self._buffer
        if buf is None or not buf.running:
            # A buffer kept from earlier is dropped by the writer when another object of the same
            # recorder ends a run (qlib's DelayTrainerR resumes by id, then tags the old object);
            # writes into it would be lost, so a recorder not running here asks the writer again.
            buf = self._buffer = get_writer().buffer(self.ref)
        return buf

    def _queued(self, buf: RecorderBuffer) -> None:
        # A recorder not running in this process is written at once, as qlib does.
        if not buf.running:
            get_writer().flush(self.ref)

    # ------------------------------------------------------------------ params, tags, metrics

    def log_params(self, **kwargs: Any) -> None:
        """Record params; values are stored as strings (``[1, 2]`` becomes ``'[1, 2]'``)."""
        params = {check_key(k, "param key"): str(v) for k, v in kwargs.items()}
        if params:
            buf = self._buf()
            buf.update_meta(params=params)
            self._queued(buf)

    def set_tags(self, **kwargs: Any) -> None:
        """Set tags; values are stored as strings."""
        tags: dict[str, str | None] = {check_key(k, "tag key"): str(v) for k, v in kwargs.items()}
        if tags:
            buf = self._buf()
            buf.update_meta(tags=tags)
            self._queued(buf)

    def delete_tags(self, *keys: str) -> None:
        """Remove tags (missing keys are ignored)."""
        if keys:
            buf = self._buf()
            buf.update_meta(tags=dict.fromkeys(keys))
            self._queued(buf)

    def log_metrics(self, step: int | None = None, **kwargs: Any) -> None:
        """Record one point per keyword at ``step`` (None means 0). Values must be numbers:
        anything else raises ``TypeError`` naming the key, and nothing of the call is kept."""
        buf = self._buffer
        if buf is None or not buf.running:
            buf = self._buf()
        buf.log(step, kwargs)
        if not buf.running:
            get_writer().flush(self.ref)

    def log_batch(self, metrics: Any, steps: Any = None) -> int:
        """Log many steps of one or more keys in one call; returns the number of points.

        ``metrics`` is a DataFrame (one column per key; steps from a ``step`` column, else the
        index) or a mapping ``{key: 1-d array}``; ``steps`` (array-like) overrides, and defaults
        to ``0..n-1`` for a mapping. Everything is validated before anything is queued; NaN
        and infinities are values like any other.
        """
        from ..metrics.batch import columns_of

        prepared = columns_of(metrics, steps)
        buf = self._buf()
        for key, step_col, value_col, stamp_col in prepared:
            buf.log_key_columns(key, step_col, value_col, stamp_col)
        if buf.full:
            # A batch that fills the buffer is written now, by its caller (back-pressure);
            # if that fails the points stay queued and the error says so.
            get_writer().relieve(buf)
        self._queued(buf)
        return sum(len(col[2]) for col in prepared)

    def list_metrics(self) -> dict[str, float]:
        """The latest value of every metric (highest step, then newest timestamp)."""
        self.flush()
        return values_of(latest.summary(self.ref.dir, self._meta()))

    def list_params(self) -> dict[str, str]:
        self.flush()
        return dict(self._meta()["params"])

    def list_tags(self) -> dict[str, str]:
        self.flush()
        return dict(self._meta()["tags"])

    def get_metric_history(
        self, key: str | None = None, max_points: int | None = None
    ) -> pd.DataFrame:
        """Every point logged (all keys, or one): columns key, step, value, timestamp, in
        logging order per key. ``max_points`` thins each key to at most that many points for
        plotting, always keeping the first and the last."""
        from ..metrics.history import recorder_history

        self.flush()
        return recorder_history(self.ref, key, max_points=max_points)

    # ------------------------------------------------------------------ artifacts

    def save_objects(
        self,
        local_path: str | os.PathLike[str] | None = None,
        artifact_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Save a local file or a folder's contents, or pickle objects, under ``artifact_path``.

        A folder's *contents* land under ``artifact_path`` (the folder's own name is dropped); a
        file keeps its base name; each ``name=obj`` is pickled (cloudpickle) to ``name``.
        """
        if local_path is not None and kwargs:
            raise UsageError(
                "You can choose only one of `local_path`(save the files in a path) or "
                "`kwargs`(pass in the objects directly)"
            )
        prefix = artifacts.safe_relative(artifact_path)
        if local_path is not None:
            self._save_local(Path(local_path), prefix)
            return
        objects = {}
        for name, obj in kwargs.items():
            if "/" in name or "\\" in name:
                raise ValueError(
                    f"object name {name!r} holds a path separator; put folders in artifact_path"
                )
            objects[artifacts.safe_relative(f"{prefix}/{name}" if prefix else name, "name")] = obj
        artifacts.save_objects(self.ref, objects)

    def _save_local(self, source: Path, prefix: str) -> None:
        if source.is_dir():
            plan = artifacts.plan_directory(source)
            for real, rel in plan:
                relative = f"{prefix}/{rel}" if prefix else rel
                artifacts.save_file(self.ref, artifacts.safe_relative(relative), real)
        elif source.is_file():
            relative = f"{prefix}/{source.name}" if prefix else source.name
            artifacts.save_file(self.ref, artifacts.safe_relative(relative), source)
        else:
            raise FileNotFoundError(f"local_path {str(source)!r} does not exist")

    def log_artifact(
        self, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        """Save one local file (or a folder's contents) under ``artifact_path``."""
        self._save_local(Path(local_path), artifacts.safe_relative(artifact_path))

    def list_artifacts(self, artifact_path: str | None = None) -> list[str]:
        """Immediate children of ``artifact_path`` (``None`` or ``""`` is the root), as paths
        relative to the artifact root: ``["sig"]``, then ``["sig/pred.pkl"]``."""
        relative = artifacts.safe_relative(artifact_path or None)
        return artifacts.list_children(self.ref, relative)

    def load_object(self, name: str, unpickler: type[Any] = pickle.Unpickler) -> Any:
        """Unpickle artifact ``name`` in place; any failure is a :class:`LoadObjectError`."""
        try:
            relative = artifacts.safe_relative(name, "name")
            return artifacts.load_object(self.ref, relative, unpickler)
        except Exception as exc:
            raise LoadObjectError(f"cannot load artifact {name!r}: {exc}") from exc

    def download_artifact(self, path: str, dst_path: str | None = None) -> str:
        """Copy artifact ``path`` (file or folder) to ``dst_path`` (an existing folder) or a new
        temporary folder; returns the local path of the copy."""
        return artifacts.download(self.ref, artifacts.safe_relative(path, "path"), dst_path)
