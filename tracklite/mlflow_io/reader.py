"""Read an MLflow file store (an ``mlruns`` folder) directly, without MLflow.

Layout (see the spec, qlib-r-api.md section 9)::

    <root>/<experiment_id>/meta.yaml                   experiment meta
    <root>/<experiment_id>/<run_id>/meta.yaml           run meta, status as an int enum
    <root>/<experiment_id>/<run_id>/metrics/<key>       lines "<timestamp_ms> <value> <step>"
    <root>/<experiment_id>/<run_id>/params|tags/<key>   whole-file values
    <root>/<experiment_id>/<run_id>/artifacts/...
    <root>/.trash/<experiment_id>/...                   deleted experiments

Keys containing ``/`` are sub-folders. Experiments are listed eagerly (one small file each); runs
are read one at a time as :meth:`MlflowExperiment.runs` is iterated, and metric files only when
asked. A run that cannot be read comes back as :class:`MalformedRun` rather than an exception, so
an importer can report it and go on. meta.yaml files are read with PyYAML (the ``mlflow`` extra),
imported when a store is first read.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote, urlparse

from . import meta_yaml

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

RUN_STATUSES: tuple[str, ...] = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
"""MLflow's RunStatus names; the int enum stored in meta.yaml is the index plus one."""

_TRASH = ".trash"
# Folders at the store root that are never experiments (dot-folders are skipped as well).
_ROOT_NON_EXPERIMENTS = frozenset({"models"})
# Folders MLflow itself keeps inside an experiment next to the runs (2.x datasets, 3.x traces
# and logged models, experiment tags).
_EXPERIMENT_NON_RUNS = frozenset({"tags", "datasets", "traces", "models"})
_RUN_PARTS = frozenset({"metrics", "params", "tags", "artifacts"})
# Files that copying tools drop into folders; read as keys they would become bogus params/metrics.
_JUNK_FILES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})
_TAIL_REPORT_CHARS = 200


class MlflowFormatError(ValueError):
    """A file in the store cannot be read as MLflow writes it."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class _Invalid(Exception):
    """A field of meta.yaml has a value this reader cannot accept (internal)."""


@dataclass(frozen=True)
class MalformedRun:
    """A run folder that could not be read; ``reason`` says why."""

    path: str
    reason: str

    @property
    def run_id(self) -> str:
        """The folder name, which is the run id for any run MLflow wrote."""
        return os.path.basename(self.path)


@dataclass(frozen=True)
class MalformedExperiment:
    """An experiment folder whose meta.yaml could not be read; ``reason`` says why."""

    path: str
    reason: str


@dataclass(frozen=True)
class MetricColumns:
    """One metric's history as parallel columns, in file (= logging) order.

    ``dropped_tail`` is ``None`` when the file ended cleanly; otherwise it holds the text after
    the last readable line (a torn final write, an empty line, NUL padding after a crash), cut
    to 200 characters. That text was skipped.
    """

    key: str
    timestamps: tuple[int, ...]
    values: tuple[float, ...]
    steps: tuple[int, ...]
    dropped_tail: str | None = None

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def torn(self) -> bool:
        """Whether something at the end of the file was skipped."""
        return self.dropped_tail is not None


@dataclass(frozen=True)
class MlflowRun:
    """One run, with its meta, params and tags read; metrics are read on demand.

    ``artifacts_dir`` is the run's local ``artifacts/`` folder (``None`` if it has none); the
    ``artifact_uri`` in meta.yaml is ignored because it names the machine that wrote the store.
    """

    run_id: str
    experiment_id: str
    name: str | None
    status: str
    start_time: int | None
    end_time: int | None
    lifecycle_stage: str
    user_id: str | None
    params: dict[str, str]
    tags: dict[str, str]
    path: str
    artifacts_dir: str | None
    deleted_time: int | None = None
    _meta_digest: str = field(default="", repr=False, compare=False)
    _metrics: dict[str, MetricColumns] | None = field(default=None, repr=False, compare=False)
    _fingerprint: str | None = field(default=None, repr=False, compare=False)

    @property
    def metrics_dir(self) -> str:
        """The run's ``metrics/`` folder (it may not exist)."""
        return os.path.join(self.path, "metrics")

    def metric_history(self, keys: Iterable[str] | None = None) -> dict[str, MetricColumns]:
        """Full histories of all metrics, or of ``keys``, keyed by metric key.

        Raises :class:`MlflowFormatError` for a line that cannot be read before the last one
        (a torn last line is skipped and reported in ``dropped_tail`` instead), and
        ``KeyError`` for a requested key that has no file. Use ``runs(read_metrics=True)`` to get
        such runs as :class:`MalformedRun` instead.
        """
        if self._metrics is not None:
            if keys is None:
                return dict(self._metrics)
            return {key: self._metrics[key] for key in keys}
        if keys is None:
            found = sorted(_walk_files(self.metrics_dir))
        else:
            found = [(key, self._metric_path(key)) for key in keys]
        return {key: _read_metric_file(path, key) for key, path in found}

    def _metric_path(self, key: str) -> str:
        parts = key.split("/")
        if not key or any(part in ("", ".", "..") for part in parts):
            raise KeyError(key)
        path = os.path.join(self.metrics_dir, *parts)
        if not os.path.isfile(path):
            raise KeyError(key)
        return path

    def iter_artifacts(self) -> Iterator[str]:
        """Relative paths (with ``/``) of all files under ``artifacts_dir``, sorted."""
        if self.artifacts_dir is not None:
            yield from sorted(key for key, _ in _walk_files(self.artifacts_dir))

    def fingerprint(self) -> str:
        """A cheap signature of the run at the source, for idempotent re-import.

        Hashes the meta.yaml bytes and param and tag values as read, plus the relative path,
        size and mtime of every metric and artifact file (stat only, no content). It changes
        when the run is edited, logged to, deleted or restored; it also changes if a copy did
        not preserve mtimes. Runs read with ``read_metrics=True`` carry the value
        taken just before their metric files were read, so a later append is never missed.
        """
        if self._fingerprint is not None:
            return self._fingerprint
        return _compute_fingerprint(self)


@dataclass(frozen=True)
class MlflowExperiment:
    """One experiment folder; its runs are read lazily by :meth:`runs`."""

    experiment_id: str
    name: str
    lifecycle_stage: str
    creation_time: int | None
    last_update_time: int | None
    path: str

    def runs(self, *, read_metrics: bool = False) -> Iterator[MlflowRun | MalformedRun]:
        """Yield the runs, sorted by folder name, each read only when reached.

        With ``read_metrics=True`` the metric files are read too (then ``metric_history()`` costs
        nothing), and a run with an unreadable metric line comes back as :class:`MalformedRun`.
        Folders that are not runs (``tags``, ``datasets``, ``traces``, ``models``, dot-folders,
        folders with neither meta.yaml nor run sub-folders) are skipped.
        """
        with os.scandir(self.path) as it:
            candidates = sorted(
                entry.path
                for entry in it
                if entry.is_dir()
                and not entry.name.startswith(".")
                and entry.name not in _EXPERIMENT_NON_RUNS
            )
        for run_dir in candidates:
            run = _load_run(run_dir, self.experiment_id, read_metrics=read_metrics)
            if run is not None:
                yield run

    def tags(self) -> dict[str, str]:
        """Experiment tags from ``<experiment>/tags/``."""
        return _read_values(os.path.join(self.path, "tags"))


@dataclass(frozen=True)
class MlrunsStore:
    """The experiments of one ``mlruns`` folder, sorted by id."""

    root: str
    experiments: tuple[MlflowExperiment, ...]
    malformed: tuple[MalformedExperiment, ...] = ()

    def __iter__(self) -> Iterator[MlflowExperiment]:
        return iter(self.experiments)

    def __len__(self) -> int:
        return len(self.experiments)

    def get(self, experiment_id: str) -> MlflowExperiment:
        """The experiment with this id; ``KeyError`` if there is none."""
        for exp in self.experiments:
            if exp.experiment_id == experiment_id:
                return exp
        raise KeyError(experiment_id)


def read_mlruns(root: str | os.PathLike[str], *, include_deleted: bool = False) -> MlrunsStore:
    """List the experiments of the MLflow file store at ``root`` (a path or ``file:`` URI).

    Deleted experiments (in ``.trash/``, or marked deleted in place) are included only with
    ``include_deleted=True``, with ``lifecycle_stage == "deleted"``. Folders without meta.yaml are
    skipped; experiments whose meta.yaml cannot be read are listed in ``malformed``.
    """
    meta_yaml.require_yaml()  # a missing extra is one clear error, not a malformed store
    root_path = _local_path(root)
    if not os.path.isdir(root_path):
        raise NotADirectoryError(f"not an mlruns folder: {root_path}")
    found: list[MlflowExperiment] = []
    malformed: list[MalformedExperiment] = []
    seen: set[str] = set()
    places = [(root_path, False)]
    if include_deleted:
        places.append((os.path.join(root_path, _TRASH), True))
    for folder, in_trash in places:
        try:
            with os.scandir(folder) as it:
                dirs = sorted(
                    entry.path
                    for entry in it
                    if entry.is_dir()
                    and not entry.name.startswith(".")
                    and entry.name not in _ROOT_NON_EXPERIMENTS
                )
        except FileNotFoundError:  # no .trash yet
            continue
        for exp_dir in dirs:
            exp = _load_experiment(exp_dir, in_trash)
            if exp is None:
                continue
            if isinstance(exp, MalformedExperiment):
                malformed.append(exp)
            elif exp.experiment_id in seen:
                # Both a live and a trashed copy exist (e.g. a restore cut short): keep the live
                # one, which was listed first.
                malformed.append(MalformedExperiment(exp_dir, "duplicate experiment id"))
            elif include_deleted or exp.lifecycle_stage != "deleted":
                seen.add(exp.experiment_id)
                found.append(exp)
    found.sort(key=lambda exp: _id_sort_key(exp.experiment_id))
    return MlrunsStore(root_path, tuple(found), tuple(malformed))


# --- helpers ---------------------------------------------------------------------------------


def _local_path(root: str | os.PathLike[str]) -> str:
    """Accept a plain path or a ``file:`` URI (qlib configs hold ``file:/path/mlruns``)."""
    text = os.fspath(root)
    if text.startswith("file:"):
        # urllib.parse only: urllib.request would pull in http and ssl at import time
        parsed = urlparse(text)
        text = unquote(parsed.path)
        if parsed.netloc and parsed.netloc != "localhost":
            text = f"//{parsed.netloc}{text}"  # file://server/share -> UNC path
        elif os.name == "nt" and len(text) > 2 and text[0] == "/" and text[2] == ":":
            text = text[1:]  # file:///C:/x -> C:/x
    return os.path.abspath(text)


def _id_sort_key(experiment_id: str) -> tuple[int, int, str]:
    # numeric ids in numeric order ("0" first), any others after them
    if experiment_id.isdigit():
        return (0, int(experiment_id), "")
    return (1, 0, experiment_id)


def _read_meta(folder: str) -> tuple[dict[str, Any], bytes]:
    """Parse ``folder/meta.yaml``; raise :class:`_Invalid` with a reason when it is unusable."""
    try:
        with open(os.path.join(folder, "meta.yaml"), "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise _Invalid("meta.yaml is missing") from None
    except OSError as exc:
        raise _Invalid(f"cannot read meta.yaml: {exc}") from None
    if not raw.strip(b" \t\r\n\0"):
        raise _Invalid("meta.yaml is empty (interrupted write?)")
    try:
        return meta_yaml.load(raw.decode("utf-8")), raw
    except UnicodeDecodeError as exc:
        raise _Invalid(f"meta.yaml is not UTF-8: {exc}") from None
    except meta_yaml.MetaYamlError as exc:
        raise _Invalid(f"meta.yaml is not readable YAML: {exc}") from None


def _opt_int(meta: Mapping[str, Any], key: str) -> int | None:
    value = meta.get(key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise _Invalid(f"{key} is not an integer: {value!r}")


def _opt_str(meta: Mapping[str, Any], key: str) -> str | None:
    value = meta.get(key)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # e.g. an unquoted numeric id in a hand-written file
    raise _Invalid(f"{key} is not a string: {value!r}")


def _lifecycle(meta: Mapping[str, Any]) -> str:
    stage = _opt_str(meta, "lifecycle_stage") or "active"  # absent in very old stores
    if stage not in ("active", "deleted"):
        raise _Invalid(f"unknown lifecycle_stage {stage!r}")
    return stage


def _status(value: Any) -> str:
    if isinstance(value, str):
        if value.upper() in RUN_STATUSES:
            return value.upper()
        if value.isdigit():
            value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= len(RUN_STATUSES):
        return RUN_STATUSES[value - 1]
    raise _Invalid(f"unknown status {value!r}")


def _load_experiment(exp_dir: str, in_trash: bool) -> MlflowExperiment | MalformedExperiment | None:
    if not os.path.isfile(os.path.join(exp_dir, "meta.yaml")):
        return None  # not an experiment (stray folder)
    folder_id = os.path.basename(exp_dir)
    try:
        meta, _ = _read_meta(exp_dir)
        meta_id = _opt_str(meta, "experiment_id")
        if meta_id is not None and meta_id != folder_id:
            # MLflow ignores such an experiment too: its runs could not be found by id.
            raise _Invalid(f"experiment_id {meta_id!r} does not match the folder name")
        name = _opt_str(meta, "name")
        if not name:
            raise _Invalid("meta.yaml has no name")
        stage = "deleted" if in_trash else _lifecycle(meta)
        return MlflowExperiment(
            experiment_id=folder_id,
            name=name,
            lifecycle_stage=stage,
            creation_time=_opt_int(meta, "creation_time"),
            last_update_time=_opt_int(meta, "last_update_time"),
            path=exp_dir,
        )
    except _Invalid as exc:
        return MalformedExperiment(exp_dir, str(exc))


def _load_run(
    run_dir: str, experiment_id: str, *, read_metrics: bool
) -> MlflowRun | MalformedRun | None:
    """The run in ``run_dir``, a :class:`MalformedRun` saying why not, or None for a stray
    folder."""
    try:
        with os.scandir(run_dir) as it:
            names = {entry.name for entry in it}
    except OSError as exc:
        return MalformedRun(run_dir, f"cannot list run folder: {exc}")
    folder = os.path.basename(run_dir)
    if "meta.yaml" not in names and not (names & _RUN_PARTS) and not _looks_like_run_id(folder):
        return None  # a stray folder, not a run that lost its meta.yaml
    try:
        run = _read_run(run_dir, experiment_id, names)
        if not read_metrics:
            return run
        # Fingerprint first: anything appended while the files are read then shows as a change.
        fingerprint = _compute_fingerprint(run)
        metrics = run.metric_history() if "metrics" in names else {}
        return replace(run, _metrics=metrics, _fingerprint=fingerprint)
    except _Invalid as exc:
        return MalformedRun(run_dir, str(exc))
    except MlflowFormatError as exc:
        return MalformedRun(run_dir, f"{os.path.relpath(exc.path, run_dir)}: {exc.reason}")
    except OSError as exc:
        return MalformedRun(run_dir, f"cannot read run files: {exc}")


def _read_run(run_dir: str, experiment_id: str, names: set[str]) -> MlflowRun:
    """A run's meta.yaml, params and tags (``names``: the folder's entries); raises
    :class:`_Invalid`."""
    meta, raw = _read_meta(run_dir)
    run_id = _run_id(meta, os.path.basename(run_dir), experiment_id)
    status = meta.get("status")
    if status is None:
        raise _Invalid("meta.yaml has no status")
    params = _read_values(os.path.join(run_dir, "params")) if "params" in names else {}
    tags = _read_values(os.path.join(run_dir, "tags")) if "tags" in names else {}
    return MlflowRun(
        run_id=run_id,
        experiment_id=experiment_id,
        name=_opt_str(meta, "run_name") or tags.get("mlflow.runName") or None,
        status=_status(status),
        start_time=_opt_int(meta, "start_time"),
        end_time=_opt_int(meta, "end_time"),
        lifecycle_stage=_lifecycle(meta),
        user_id=_opt_str(meta, "user_id"),
        params=params,
        tags=tags,
        path=run_dir,
        artifacts_dir=os.path.join(run_dir, "artifacts") if "artifacts" in names else None,
        deleted_time=_opt_int(meta, "deleted_time"),
        _meta_digest=hashlib.blake2b(raw, digest_size=16).hexdigest(),
    )


def _run_id(meta: Mapping[str, Any], folder: str, experiment_id: str) -> str:
    """The run id in meta.yaml, which must name this folder and this experiment."""
    run_id = _opt_str(meta, "run_id") or _opt_str(meta, "run_uuid")  # run_uuid: old MLflow
    if not run_id:
        raise _Invalid("meta.yaml has no run_id")
    if run_id != folder:
        raise _Invalid(f"run_id {run_id!r} in meta.yaml does not match the folder name")
    meta_exp = _opt_str(meta, "experiment_id")
    if meta_exp is not None and meta_exp != experiment_id:
        # MLflow treats this as a malformed run; importing it would file it twice.
        raise _Invalid(f"experiment_id {meta_exp!r} does not match experiment {experiment_id}")
    return run_id


def _looks_like_run_id(name: str) -> bool:
    return len(name) == 32 and all(c in "0123456789abcdef" for c in name)


def _walk_files(top: str) -> list[tuple[str, str]]:
    """(key, path) of every file under ``top``, the key using ``/`` for sub-folders."""
    found: list[tuple[str, str]] = []
    stack = [(top, "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            it = os.scandir(folder)
        except (FileNotFoundError, NotADirectoryError):
            continue
        with it:
            for entry in it:
                name = entry.name
                if name in _JUNK_FILES or name.startswith("._"):
                    continue
                if entry.is_dir():
                    stack.append((entry.path, f"{prefix}{name}/"))
                else:
                    found.append((prefix + name, entry.path))
    return found


def _read_values(top: str) -> dict[str, str]:
    """Params or tags: one file per key, the whole file being the value."""
    values: dict[str, str] = {}
    for key, path in sorted(_walk_files(top)):
        with open(path, "rb") as f:
            values[key] = f.read().decode("utf-8", errors="replace")
    return values


def _read_metric_file(path: str, key: str) -> MetricColumns:
    """Parse ``<timestamp_ms> <value> <step>`` lines (or old ``<timestamp_ms> <value>``)."""
    with open(path, "rb") as f:
        # MLflow writes ASCII; anything else fails to parse on its own line below
        text = f.read().decode("utf-8", errors="replace")
    lines = text.split("\n")
    terminated = lines[-1] == ""
    if terminated:
        lines.pop()
    # A crash can leave empty lines or NUL padding at the end: skip them, report below.
    end = len(lines)
    while end and not lines[end - 1].strip(" \t\r\0"):
        end -= 1
    timestamps: list[int] = []
    values: list[float] = []
    steps: list[int] = []
    seen_three = False
    good = end
    for i in range(end):
        parts = lines[i].split()
        try:
            if len(parts) == 3:
                step = int(parts[2])
                seen_three = True
            elif len(parts) == 2 and not (seen_three and i == len(lines) - 1 and not terminated):
                step = 0  # old two-field format
            else:
                # (an unterminated "ts value" after three-field lines lost its step to a crash)
                raise ValueError("step missing" if len(parts) == 2 else f"{len(parts)} fields")
            timestamp = int(parts[0])
            value = float(parts[1])
        except ValueError as exc:
            if i == end - 1:
                good = i  # torn last line: skip it, reported in dropped_tail
                break
            raise MlflowFormatError(
                path, f"line {i + 1} is malformed ({exc}): {lines[i]!r:.80}"
            ) from None
        timestamps.append(timestamp)
        values.append(value)
        steps.append(step)
    dropped: str | None = None
    if good < len(lines):
        dropped = "\n".join(lines[good:])[:_TAIL_REPORT_CHARS]
    return MetricColumns(key, tuple(timestamps), tuple(values), tuple(steps), dropped)


def _compute_fingerprint(run: MlflowRun) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(b"tracklite.mlflow-run.v1\n")
    h.update(run._meta_digest.encode())

    def feed(label: str, key: str, value: str) -> None:
        # length-prefixed, so no key/value split can collide with another
        h.update(
            f"{label}{len(key)}:{key}{len(value)}:{value}\n".encode("utf-8", "surrogateescape")
        )

    for label, mapping in (("p", run.params), ("t", run.tags)):
        for key in sorted(mapping):
            feed(label, key, mapping[key])
    tops = [("m", run.metrics_dir)]
    if run.artifacts_dir is not None:
        tops.append(("a", run.artifacts_dir))
    for label, top in tops:
        for key, path in sorted(_walk_files(top)):
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            feed(label, key, f"{st.st_size}:{st.st_mtime_ns}")
    return h.hexdigest()
