"""Import an MLflow file store (an ``mlruns`` folder) into a tracklite store, without MLflow.

What maps to what (``docs/import-mlflow.md`` is the user's version):

- an MLflow experiment becomes a tracklite experiment with the same id (MLflow's numeric ids are
  valid tracklite ids), so importing again finds it. If the destination already has an *active*
  experiment with that name under another id, the runs go into that one (names identify
  experiments in qlib; two active experiments with one name would break ``R.get_exp``). If the id
  is taken by an unrelated experiment (two ``mlruns`` folders both numbered from 1), a new id is
  made. ``experiment.json`` records the source under ``imported_from``.
- experiment ``0`` ("Default", which MLflow always creates) is imported only if it has runs;
  deleted experiments (``.trash/``) only with ``include_deleted=True``.
- a run becomes a recorder with the same id: name, status (``KILLED`` stays ``KILLED``), start,
  end and deletion times, params, tags, lifecycle, the full history of every metric as ONE
  Parquet segment, the latest-value summary (MLflow's rule) and the artifacts, copied or
  hard-linked. ``recorder.json`` records ``imported_from = {path, fingerprint, ...}``.

A new recorder is built under a hidden staging folder and renamed into place, so a crash leaves
nothing half-imported in view. Importing again skips runs whose source fingerprint is unchanged
and brings changed ones up to date: the source wins for everything it has, and nothing that
exists only on the tracklite side (points logged, tags set or artifacts saved there) is deleted.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..errors import StoreError
from ..metrics import latest, segments
from ..store import atomic, changes, layout, safefs
from ..store.clock import ms_to_iso, now_iso
from ..store.ids import new_id
from ..store.locks import locked
from ..store.names import check_name
from ..store.root import Meta, Store
from .reader import (
    _EXPERIMENT_NON_RUNS,
    MalformedRun,
    MlflowExperiment,
    MlflowFormatError,
    MlflowRun,
    read_mlruns,
)

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["ImportReport", "SkippedItem", "import_mlflow"]

#: The experiment MLflow creates in every store; imported only when it holds runs.
DEFAULT_EXPERIMENT_ID = "0"
#: Recorder name for a run without any (only very old MLflow versions wrote such runs).
NAMELESS_RUN = "mlflow_recorder"
_SOURCE = "mlflow-file-store"
# Ends the name of every segment the importer writes (before ".parquet").
_SEGMENT_MARK = "-mlflow"

Progress = Callable[[int, int], object]


@dataclass(frozen=True)
class SkippedItem:
    """A run or experiment that was not imported, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class ImportReport:
    """What :func:`import_mlflow` did. ``ok`` is False when anything was skipped."""

    source: Path
    destination: Path
    experiments_created: list[str] = field(default_factory=list)
    experiments_reused: list[str] = field(default_factory=list)
    runs_created: int = 0
    runs_updated: int = 0
    runs_unchanged: int = 0
    artifacts_copied: int = 0
    artifacts_linked: int = 0
    skipped: list[SkippedItem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every run and experiment found was imported."""
        return not self.skipped

    @property
    def runs(self) -> int:
        """Runs now present in the destination (created, updated or already up to date)."""
        return self.runs_created + self.runs_updated + self.runs_unchanged

    def __str__(self) -> str:
        lines = [
            f"imported {self.source} into {self.destination}",
            f"experiments: {len(self.experiments_created)} created, "
            f"{len(self.experiments_reused)} already there",
            f"runs: {self.runs_created} new, {self.runs_updated} updated, "
            f"{self.runs_unchanged} unchanged, {len(self.skipped)} skipped",
            f"artifacts: {self.artifacts_copied} copied, {self.artifacts_linked} hard-linked",
        ]
        lines += [f"note: {note}" for note in self.notes]
        lines += [f"skipped: {item}" for item in self.skipped]
        return "\n".join(lines)


class _RunError(Exception):
    """A run that cannot be imported; the message becomes the report's reason."""


def import_mlflow(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str] | None = None,
    *,
    include_deleted: bool = False,
    link: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Import the MLflow file store at ``src`` (a path or ``file:`` URI) into the tracklite
    store at ``dst`` (default: :func:`tracklite.store.layout.default_uri`).

    ``include_deleted`` also imports experiments from ``.trash/`` (as deleted ones); ``link``
    hard-links artifact files instead of copying them (falling back to a copy where a link is
    impossible, e.g. across filesystems); ``progress(done, total)`` is called after each run.
    Nothing is ever written under ``src``. Importing again is idempotent and updates runs that
    changed at the source. Malformed runs are listed in ``report.skipped``; the rest is imported.
    """
    source = read_mlruns(src, include_deleted=include_deleted)
    store = Store.from_uri(dst if dst is not None else layout.default_uri())
    # Refuses a folder holding anything but a tracklite store, the mlruns folder itself included.
    store.ensure()
    report = ImportReport(Path(source.root), store.root)
    report.skipped.extend(SkippedItem(bad.path, bad.reason) for bad in source.malformed)
    importer = _Importer(store, report, link=link)
    total = sum(_count_run_folders(exp.path) for exp in source)
    done = 0

    def advance() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(min(done, total), total)

    if progress is not None:
        progress(0, total)
    for exp in source:
        importer.import_experiment(exp, advance)
    if progress is not None:
        progress(total, total)
    return report


# ---------------------------------------------------------------------------- the work


class _Importer:
    """State of one import: the destination's experiments and where its recorders live."""

    def __init__(self, store: Store, report: ImportReport, *, link: bool) -> None:
        self.store = store
        self.report = report
        self.link = link
        self.link_failed = False
        # Read once: every experiment of the destination, deleted ones included.
        self.experiments: dict[str, Meta] = {
            meta["id"]: meta for meta in store.iter_experiments(include_deleted=True)
        }
        self._run_index: dict[str, str] | None = None
        self.seen_runs: set[str] = set()

    # ------------------------------------------------------------------ experiments

    def import_experiment(self, exp: MlflowExperiment, advance: Callable[[], None]) -> None:
        target: Meta | None = None
        handled = 0
        try:
            # Default is created lazily (only if a run needs it); every other one up front, so
            # an empty experiment is imported too.
            if exp.experiment_id != DEFAULT_EXPERIMENT_ID:
                target = self.target_experiment(exp)
            # Metric files are read only for runs that are new or changed (see import_run).
            for run in exp.runs():
                try:
                    if isinstance(run, MalformedRun):
                        raise _RunError(f"malformed run: {run.reason}")
                    if run.run_id in self.seen_runs:
                        raise _RunError("another run with this id was imported from this source")
                    self.seen_runs.add(run.run_id)
                    if target is None:
                        target = self.target_experiment(exp)
                    self.import_run(run, target["id"])
                except (_RunError, OSError, ValueError, StoreError) as exc:
                    self.report.skipped.append(SkippedItem(run.path, str(exc)))
                handled += 1
                advance()
        except (OSError, ValueError, StoreError) as exc:
            # The experiment itself is unusable (unlistable folder, invalid name).
            self.report.skipped.append(SkippedItem(exp.path, f"experiment not imported: {exc}"))
            for _ in range(_count_run_folders(exp.path) - handled):
                advance()

    def target_experiment(self, exp: MlflowExperiment) -> Meta:
        """The destination experiment for ``exp``: found, brought up to date, or created."""
        found = self.find_experiment(exp)
        if found is None:
            return self.create_experiment(exp)
        if found["id"] not in self.report.experiments_reused + self.report.experiments_created:
            self.report.experiments_reused.append(found["id"])
        if _came_from(found, exp):
            return self.sync_experiment(found, exp)
        return found

    def find_experiment(self, exp: MlflowExperiment) -> Meta | None:
        same_id = self.experiments.get(exp.experiment_id)
        if same_id is not None and (same_id.get("name") == exp.name or _came_from(same_id, exp)):
            return same_id
        for meta in self.experiments.values():
            if _came_from(meta, exp):
                return meta  # imported earlier under another id (its own was taken)
        if exp.lifecycle_stage == "active":
            for meta in self.experiments.values():
                if meta.get("lifecycle") == "active" and meta.get("name") == exp.name:
                    self.report.notes.append(
                        f"experiment {exp.name!r} (MLflow id {exp.experiment_id}) imported into "
                        f"the existing experiment of that name, id {meta['id']}"
                    )
                    return meta
        return None

    def create_experiment(self, exp: MlflowExperiment) -> Meta:
        check_name(exp.name, "experiment name")
        exp_id = exp.experiment_id
        if not layout.is_id_name(exp_id) or exp_id in self.experiments:
            exp_id = new_id()
        deleted = exp.lifecycle_stage == "deleted"
        meta: Meta = {
            "format_version": layout.FORMAT_VERSION,
            "id": exp_id,
            "name": exp.name,
            "lifecycle": exp.lifecycle_stage,
            "created": ms_to_iso(exp.creation_time) or now_iso(),
            # MLflow keeps no deletion time for experiments; its last update is the deletion.
            "deleted_time": (ms_to_iso(exp.last_update_time) or now_iso()) if deleted else None,
            "imported_from": _experiment_origin(exp),
        }
        tags = exp.tags()
        if tags:  # read by tracklite.mlflow as the experiment's tags
            meta["tags"] = tags
        root = self.store.root
        # Written here rather than by Store.create_experiment: the source's creation time,
        # lifecycle and origin must land in the one atomic write, and a deleted experiment may
        # share its name with an active one.
        with locked(root / layout.STORE_LOCK):
            if not deleted:
                clash = self.store.find_experiment(exp.name)
                if clash is not None:  # created by another process since we looked
                    self.experiments[clash["id"]] = clash
                    self.report.experiments_reused.append(clash["id"])
                    return clash
            if layout.experiment_dir(root, exp_id).exists():
                exp_id = meta["id"] = new_id()
            atomic.publish_folder(
                layout.experiment_dir(root, exp_id),
                lambda folder: atomic.write_json(folder / layout.EXPERIMENT_FILE, meta),
            )
        if exp_id != exp.experiment_id:
            self.report.notes.append(
                f"experiment {exp.name!r}: MLflow id {exp.experiment_id} is used by another "
                f"experiment in the destination; imported as id {exp_id}"
            )
        self.experiments[exp_id] = meta
        self.report.experiments_created.append(exp_id)
        return meta

    def sync_experiment(self, meta: Meta, exp: MlflowExperiment) -> Meta:
        """Apply a rename or (un)deletion made at the source since the last import.

        Only changes *at the source* are applied, so an experiment deleted on the tracklite side
        stays deleted while its source is unchanged.
        """
        before: dict[str, Any] = meta.get("imported_from") or {}
        wanted = _experiment_origin(exp)
        if before == wanted:
            return meta
        root = self.store.root
        with locked(root / layout.STORE_LOCK):
            current = self.store.read_experiment(meta["id"]) or meta
            if before.get("name") != exp.name and current["name"] != exp.name:
                clash = self.store.find_experiment(exp.name)
                if clash is None or current["lifecycle"] != "active":
                    current["name"] = exp.name
                else:
                    self.report.notes.append(
                        f"experiment {current['name']!r} was renamed {exp.name!r} at the source; "
                        f"not renamed here, the name is used by experiment {clash['id']}"
                    )
            stage = exp.lifecycle_stage
            if before.get("lifecycle") != stage and current["lifecycle"] != stage:
                clash = self.store.find_experiment(current["name"]) if stage == "active" else None
                if clash is None:
                    current["lifecycle"] = stage
                    current["deleted_time"] = now_iso() if stage == "deleted" else None
            current["imported_from"] = wanted
            atomic.write_json(root / meta["id"] / layout.EXPERIMENT_FILE, current)
        self.experiments[meta["id"]] = current
        return current

    # ------------------------------------------------------------------ runs

    def run_index(self) -> dict[str, str]:
        """Recorder id -> experiment id for every recorder folder of the destination."""
        if self._run_index is None:
            self._run_index = {
                rec_id: exp_id
                for exp_id in self.experiments
                for rec_id in self.store.recorder_ids(exp_id)
            }
        return self._run_index

    def import_run(self, run: MlflowRun, experiment_id: str) -> None:
        # Taken before any metric file is read: a point appended meanwhile changes the next
        # import's fingerprint, so it is never missed.
        fingerprint = run.fingerprint()
        where = self.run_index().get(run.run_id)
        if where is None:
            self.create_run(run, experiment_id, fingerprint)
            self.run_index()[run.run_id] = experiment_id
            self.report.runs_created += 1
            return
        meta = self.store.read_recorder(where, run.run_id)
        if meta is None:
            raise _RunError(
                f"recorder folder {self.store.recorder_dir(where, run.run_id)} exists without "
                "readable metadata; run `tracklite check --fix` on the store, then import again"
            )
        origin = meta.get("imported_from")
        if not isinstance(origin, dict):
            raise _RunError(f"a recorder with id {run.run_id} exists and was not imported")
        if origin.get("fingerprint") == fingerprint:
            self.report.runs_unchanged += 1
            return
        self.update_run(run, where, fingerprint)
        self.report.runs_updated += 1

    def create_run(self, run: MlflowRun, experiment_id: str, fingerprint: str) -> None:
        table, summary = self.points(run)
        # Every folder of the destination is reached from the store root without following a
        # link (a linked experiment folder, or a link planted in the staging folder meanwhile,
        # raises UnsafeLinkError: nothing is written outside the store).
        with safefs.open_under(self.store.root, [experiment_id]) as exp:
            # Built whole under a hidden name that ``tracklite check`` knows as staging, then
            # renamed: readers never see a recorder without its metadata, metrics or artifacts.
            name = f".{run.run_id}-{secrets.token_hex(4)}.creating"
            exp.mkdir(name)
            try:
                with exp.child(name) as staging:
                    segment = None
                    if table.num_rows:
                        segment = segments.write_segment(
                            Path(staging.fd_path(staging.fd)) / layout.METRICS_DIR,
                            table,
                            name=_segment_name(None),
                        ).name
                    self.copy_artifacts(run, staging, fresh=True)
                    meta = _recorder_meta(run, experiment_id)
                    latest.replace(staging, meta, summary)
                    meta["imported_from"] = _run_origin(run, fingerprint, segment)
                    staging.publish(layout.RECORDER_FILE, _json_writer(meta))
                try:
                    exp.rename(name, exp, run.run_id)
                except OSError as exc:
                    raise _RunError(f"recorder {run.run_id} appeared meanwhile ({exc})") from None
            except BaseException:
                exp.rmtree(name)
                raise

    def update_run(self, run: MlflowRun, experiment_id: str, fingerprint: str) -> None:
        """Bring an imported recorder up to date with its changed source run."""
        table, _ = self.points(run)
        rec_dir = self.store.recorder_dir(experiment_id, run.run_id)
        # One lock for the segment swap and the metadata rewrite (compaction takes it too).
        with (
            locked(rec_dir / layout.RECORDER_LOCK),
            safefs.open_under(self.store.root, [experiment_id, run.run_id]) as rec,
            rec.child(layout.METRICS_DIR, create=True) as metrics,
        ):
            meta = self.store.read_recorder(experiment_id, run.run_id)
            if meta is None:
                raise _RunError(f"recorder {run.run_id} vanished during the import")
            origin: dict[str, Any] = meta.get("imported_from") or {}
            self.copy_artifacts(run, rec, fresh=False)
            # The open folders themselves (descriptor paths): never a link swapped in later.
            metrics_dir = Path(metrics.fd_path(metrics.fd))
            ours = _imported_segments(metrics_dir, origin.get("segment"))
            segment = None
            if table.num_rows:
                # The new segment names the ones it replaces, so a reader listing both skips the
                # old points until they are deleted just below: no point is seen twice.
                segment = segments.write_segment(
                    Path(rec.fd_path(rec.fd)) / layout.METRICS_DIR,
                    table,
                    replaces=ours or None,
                    name=_segment_name(ours[0] if ours else None),
                ).name
            for name in ours:
                metrics.unlink(name)
            fresh = _recorder_meta(run, experiment_id)
            for key in ("name", "status", "start_time", "end_time"):
                meta[key] = fresh[key]
            if origin.get("lifecycle") != run.lifecycle_stage:
                # only a change at the source; a deletion made here survives otherwise
                meta["lifecycle"] = fresh["lifecycle"]
                meta["deleted_time"] = fresh["deleted_time"]
            # The source wins for its keys; keys set only here are kept.
            meta["params"] = {**meta.get("params", {}), **fresh["params"]}
            meta["tags"] = {**meta.get("tags", {}), **fresh["tags"]}
            latest.replace(rec, meta, _summary(segments.read_points(metrics_dir)))
            meta["imported_from"] = _run_origin(run, fingerprint, segment)
            with changes.noting(rec_dir.parent, rec_dir.name):
                rec.publish(layout.RECORDER_FILE, _json_writer(meta))

    def points(self, run: MlflowRun) -> tuple[pa.Table, dict[str, Any]]:
        """The run's full metric history as one segment table, and its latest-value summary.

        Raises :class:`_RunError` for a metric file with an unreadable line before its last.
        """
        import numpy as np
        import pyarrow as pa

        try:
            history = run.metric_history()
        except MlflowFormatError as exc:
            where = os.path.relpath(exc.path, run.path)
            raise _RunError(f"malformed run: {where}: {exc.reason}") from None
        keys: list[str] = []
        steps: list[int] = []
        values: list[float] = []
        stamps: list[int] = []
        summary: dict[str, Any] = {}
        for key in sorted(history):
            columns = history[key]
            if columns.torn:
                self.report.notes.append(
                    f"{run.path}: skipped the unreadable end of metric {key!r}: "
                    f"{columns.dropped_tail!r}"
                )
            if not len(columns):
                continue
            keys.extend([key] * len(columns))
            steps.extend(columns.steps)
            values.extend(columns.values)
            stamps.extend(columns.timestamps)
            # The latest point by latest.merge's order (step, then timestamp, then value, NaN
            # lowest, the later of equals winning), found in C: a stable sort's last element.
            vals = np.asarray(columns.values, dtype=np.float64)
            order = np.lexsort(
                (
                    np.where(np.isnan(vals), -np.inf, vals),
                    np.asarray(columns.timestamps, dtype=np.int64),
                    np.asarray(columns.steps, dtype=np.int64),
                )
            )
            i = int(order[-1])
            latest.merge(
                summary,
                [key],
                [columns.steps[i]],
                [columns.values[i]],
                [columns.timestamps[i]],
            )
        # from_arrays, not pa.table(dict): the latter imports pandas to check its argument.
        table = pa.Table.from_arrays(
            [
                pa.array(keys, pa.string()),
                pa.array(steps, pa.int64()),
                pa.array(values, pa.float64()),
                pa.array(stamps, pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
            ],
            schema=segments.schema(),
        )
        return table, summary

    # ------------------------------------------------------------------ artifacts

    def copy_artifacts(self, run: MlflowRun, dest: safefs.Dir, *, fresh: bool) -> None:
        """Copy (or link) every artifact file of ``run`` into ``artifacts/`` of the open
        recorder folder ``dest`` (its folders opened, or created, without following a link).

        ``fresh``: ``dest`` is in a staging folder nobody sees, so files go straight in.
        Otherwise a file already matching (same inode, or same size and mtime, which copies
        keep) is left alone, and a changed one is replaced atomically.
        """
        if run.artifacts_dir is None:
            return
        for rel in run.iter_artifacts():
            parts = rel.split("/")
            source = os.path.join(run.artifacts_dir, *parts)
            try:
                st = os.stat(source)
            except FileNotFoundError:
                self.report.notes.append(f"{source}: artifact vanished or is a broken link")
                continue
            name = parts[-1]
            with dest.walk([layout.ARTIFACTS_DIR, *parts[:-1]], create=True) as folder:
                if not fresh and _same_file(folder, name, st):
                    continue
                if fresh:
                    self.place(source, folder, name, st)
                else:
                    tmp = safefs.temp_name(name)
                    try:
                        self.place(source, folder, tmp, st)
                        folder.commit(tmp, name)  # a link at ``name`` is replaced, not followed
                    except BaseException:
                        folder.discard(tmp)
                        raise

    def place(self, source: str, folder: safefs.Dir, name: str, st: os.stat_result) -> None:
        if self.link and not self.link_failed:
            try:
                os.link(source, name, dst_dir_fd=folder.fd)
                self.report.artifacts_linked += 1
                return
            except FileNotFoundError:
                raise
            except OSError as exc:  # another filesystem, no permission, link count limit
                self.link_failed = True
                self.report.notes.append(f"artifacts copied instead of hard-linked: {exc}")
        if not stat.S_ISREG(st.st_mode):  # a named pipe would block the import forever
            raise shutil.SpecialFileError(f"{source} is not a regular file")
        fd = folder.open_fd(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
            out.flush()
            # Keeping the source's mtime lets a later import see the file is unchanged.
            os.utime(out.fileno(), ns=(st.st_atime_ns, st.st_mtime_ns))
            if atomic.FSYNC:
                os.fsync(out.fileno())
        self.report.artifacts_copied += 1


# ---------------------------------------------------------------------------- helpers


def _count_run_folders(path: str) -> int:
    """How many folders of an experiment may be runs (the progress total; a few may not be)."""
    try:
        with os.scandir(path) as it:
            return sum(
                1
                for entry in it
                if entry.is_dir()
                and not entry.name.startswith(".")
                and entry.name not in _EXPERIMENT_NON_RUNS
            )
    except OSError:
        return 0


def _experiment_origin(exp: MlflowExperiment) -> dict[str, Any]:
    return {
        "source": _SOURCE,
        "path": exp.path,
        "experiment_id": exp.experiment_id,
        "name": exp.name,
        "lifecycle": exp.lifecycle_stage,
    }


def _came_from(meta: Meta, exp: MlflowExperiment) -> bool:
    """Whether ``meta`` was imported from ``exp``: same MLflow id and the same name or folder
    (a source renamed since, or a folder moved since, still matches)."""
    origin = meta.get("imported_from")
    return (
        isinstance(origin, dict)
        and origin.get("experiment_id") == exp.experiment_id
        and (origin.get("name") == exp.name or origin.get("path") == exp.path)
    )


def _run_origin(run: MlflowRun, fingerprint: str, segment: str | None) -> dict[str, Any]:
    return {
        "source": _SOURCE,
        "path": run.path,
        "experiment_id": run.experiment_id,
        "fingerprint": fingerprint,
        "lifecycle": run.lifecycle_stage,
        "user_id": run.user_id,
        # The segment holding the imported points: an update replaces it and nothing else.
        "segment": segment,
        "imported": now_iso(),
    }


def _recorder_meta(run: MlflowRun, experiment_id: str) -> Meta:
    deleted = run.lifecycle_stage == "deleted"
    return {
        "format_version": layout.FORMAT_VERSION,
        "id": run.run_id,
        "name": _recorder_name(run.name),
        "experiment_id": experiment_id,
        "status": run.status,  # MLflow's KILLED is kept: readers show it as stored
        "lifecycle": run.lifecycle_stage,
        "start_time": ms_to_iso(run.start_time),
        "end_time": ms_to_iso(run.end_time),
        "deleted_time": (ms_to_iso(run.deleted_time) or now_iso()) if deleted else None,
        # No tracklite process owns an imported run; liveness then goes by recorder.json's age.
        "owner": None,
        "params": dict(run.params),
        "tags": dict(run.tags),
        "metrics": {},
    }


def _recorder_name(name: str | None) -> str:
    if not name:
        return NAMELESS_RUN
    # Names are data, but control characters break terminals and CSV (store/names.py).
    cleaned = "".join(" " if ord(c) < 0x20 or ord(c) == 0x7F else c for c in name)
    return check_name(cleaned if cleaned.strip() else NAMELESS_RUN, "run name")


def _summary(table: pa.Table) -> dict[str, Any]:
    import pyarrow as pa

    summary: dict[str, Any] = {}
    latest.merge(
        summary,
        table.column("key").to_pylist(),  # type: ignore[arg-type]
        table.column("step").to_pylist(),  # type: ignore[arg-type]
        table.column("value").to_pylist(),  # type: ignore[arg-type]
        table.column("timestamp").cast(pa.int64()).to_pylist(),  # type: ignore[arg-type]
    )
    return summary


def _segment_name(replacing: str | None) -> str:
    """A name for an imported segment: marked as imported, and sorting where the segment it
    replaces did (as compaction names its files), so points logged in tracklite after the
    import still read after the imported ones."""
    prefix = f"{replacing.split('-')[0].split('.')[0]}-" if replacing else ""
    return f"{prefix}{new_id()}{_SEGMENT_MARK}{layout.SEGMENT_SUFFIX}"


def _imported_segments(metrics_dir: Path, recorded: object) -> list[str]:
    """The published segments holding imported points, sorted: marked ones, the one recorded
    in ``imported_from`` and compacted segments that absorbed either. Marked names also catch
    a segment published by an update that crashed before rewriting ``recorder.json``."""
    import pyarrow.parquet as pq

    def imported(name: str) -> bool:
        return name == recorded or name.endswith(_SEGMENT_MARK + layout.SEGMENT_SUFFIX)

    found: list[str] = []
    for name in segments.segment_names(metrics_dir):
        if imported(name):
            found.append(name)
            continue
        try:
            meta = pq.read_schema(metrics_dir / name).metadata or {}
            replaced = json.loads(meta.get(segments.REPLACES_KEY, b"[]"))
        except (OSError, ValueError):
            continue
        if any(imported(old) for old in _names(replaced)):
            found.append(name)
    return found


def _names(value: object) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _json_writer(meta: Meta) -> Callable[[IO[bytes]], None]:
    data = atomic.dump_json(meta)

    def write(handle: IO[bytes]) -> None:
        handle.write(data)

    return write


def _same_file(folder: safefs.Dir, name: str, st: os.stat_result) -> bool:
    try:
        current = folder.lstat(name)  # a link there is never the same file: it is replaced
    except (FileNotFoundError, NotADirectoryError):
        return False
    if (current.st_ino, current.st_dev) == (st.st_ino, st.st_dev):
        return True  # hard-linked
    return current.st_size == st.st_size and current.st_mtime_ns == st.st_mtime_ns
