"""Export a tracklite store: tables for colleagues without tracklite, or an MLflow file store.

- :func:`export_table` writes ``recorders.<fmt>`` (the ``search_records`` frame, plus
  ``experiment_name``, ``recorder_name`` and ``lifecycle`` columns) and ``metrics.<fmt>`` (the long
  history of :func:`tracklite.search.history.load_metrics`) as Parquet or CSV.
- :func:`export_mlflow` writes experiments as an MLflow file store (``mlruns``) that MLflow's own
  client reads: ``meta.yaml`` files in MLflow's layout, ``metrics/<key>`` files of
  ``<timestamp_ms> <value> <step>`` lines, ``params/``, ``tags/`` and ``artifacts/``.

Every file is written atomically, and each MLflow run folder is built beside the destination and
renamed into place, so an interrupted export leaves no half-written run for MLflow to trip on.
Exporting again overwrites the runs it wrote before. The MLflow export writes meta.yaml with
PyYAML (the ``mlflow`` extra); the tables need only pandas and pyarrow.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..errors import NotFoundError, StoreError, UnsafeLinkError
from ..liveness import DEAD, effective_status
from ..metrics import segments
from ..store import atomic, layout, safefs
from ..store.clock import iso_to_ms, now_ms
from ..store.root import Meta, Store
from .meta_yaml import dump as dump_yaml
from .meta_yaml import require_yaml
from .reader import RUN_STATUSES

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ExportReport", "export_mlflow", "export_table"]

FORMATS = ("parquet", "csv")
_TRASH = ".trash"
# MLflow's SourceType.LOCAL: what MLflow itself writes for every run of a file store.
_SOURCE_TYPE_LOCAL = 4


@dataclass
class ExportReport:
    """What an export wrote. ``ok`` is False when something could not be exported."""

    destination: Path
    files: list[Path] = field(default_factory=list)
    experiments: int = 0
    recorders: int = 0
    points: int = 0
    skipped: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.skipped

    def __str__(self) -> str:
        lines = [
            f"exported {_count(self.experiments, 'experiment')}, "
            f"{_count(self.recorders, 'recorder')} and {_count(self.points, 'metric point')} "
            f"to {self.destination}"
        ]
        lines += [f"wrote {path}" for path in self.files]
        lines += [f"skipped: {item}" for item in self.skipped]
        return "\n".join(lines)


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# ---------------------------------------------------------------------------- tables


def export_table(
    uri: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    experiments: str | Iterable[str] | None = None,
    fmt: str = "parquet",
    *,
    include_deleted: bool = False,
) -> ExportReport:
    """Write the recorder table and the long metric history of ``experiments`` (names or ids;
    all active ones by default) into the folder ``dst`` as ``recorders.<fmt>`` and
    ``metrics.<fmt>``, ``fmt`` being ``"parquet"`` or ``"csv"``.

    ``include_deleted`` adds deleted experiments (when none are named) and deleted recorders.
    Files of the same names in ``dst`` are replaced.
    """
    from ..search.history import load_metrics
    from ..search.listing import ACTIVE_ONLY, ALL, search_records

    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {', '.join(FORMATS)}, got {fmt!r}")
    store = _open(uri)
    chosen = _select_experiments(store, experiments, include_deleted)
    ids = [meta["id"] for meta in chosen]
    view = ALL if include_deleted else ACTIVE_ONLY
    recorders = search_records(store, ids, run_view_type=view)
    names, lifecycles = _recorder_names(store, ids)
    exp_names = {meta["id"]: meta["name"] for meta in chosen}
    # Names beside the ids: a colleague reading the file has no store to look them up in.
    recorders.insert(1, "recorder_name", [names.get(i) for i in recorders["run_id"]])
    recorders.insert(3, "experiment_name", [exp_names.get(i) for i in recorders["experiment_id"]])
    recorders.insert(5, "lifecycle", [lifecycles.get(i) for i in recorders["run_id"]])
    # Exactly the recorders of the table; deleted ones are already filtered out above.
    metrics = load_metrics(
        store.root,
        experiments=ids,
        recorders=list(recorders["run_id"]),
        include_deleted=True,
    )
    target = Path(dst)
    target.mkdir(parents=True, exist_ok=True)
    report = ExportReport(target, experiments=len(ids), recorders=len(recorders))
    report.points = len(metrics)
    for stem, frame in (("recorders", recorders), ("metrics", metrics)):
        path = target / f"{stem}.{fmt}"
        _write_frame(path, frame, fmt)
        report.files.append(path)
    return report


def _write_frame(path: Path, frame: pd.DataFrame, fmt: str) -> None:
    def write(handle: IO[bytes]) -> None:
        if fmt == "parquet":
            frame.to_parquet(handle, index=False)
        else:
            # pandas writes times with their UTC offset: unambiguous for any CSV reader.
            frame.to_csv(handle, index=False, encoding="utf-8")

    atomic.publish(path, write)


def _recorder_names(store: Store, ids: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    names: dict[str, str] = {}
    lifecycles: dict[str, str] = {}
    for exp_id in ids:
        for meta in store.iter_recorders(exp_id, include_deleted=True):
            names[meta["id"]] = meta["name"]
            lifecycles[meta["id"]] = meta.get("lifecycle", "active")
    return names, lifecycles


# ---------------------------------------------------------------------------- MLflow


def export_mlflow(
    uri: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    experiments: str | Iterable[str] | None = None,
    *,
    include_deleted: bool = False,
) -> ExportReport:
    """Write ``experiments`` (names or ids; all active ones by default) of the store at ``uri``
    as an MLflow file store at ``dst`` (a new folder or an existing ``mlruns`` folder).

    Experiments and runs keep their ids. ``include_deleted`` adds deleted recorders (written as
    deleted runs) and, when no experiments are named, deleted experiments; a deleted experiment
    (named by id, or included) goes to ``.trash/`` as MLflow keeps it. Statuses
    map to MLflow's ints; a RUNNING recorder whose process is gone (DEAD) is written FAILED.
    Keys that cannot be MLflow file names (``..``, empty path parts, or a key that is also
    another key's folder) are skipped and listed in ``report.skipped``.
    """
    require_yaml()  # before anything is written
    store = _open(uri)
    chosen = _select_experiments(store, experiments, include_deleted)
    root = _mlflow_destination(dst)
    root.mkdir(parents=True, exist_ok=True)
    report = ExportReport(root, experiments=len(chosen))
    # Run folders are built beside the destination: MLflow refuses to list a store holding a
    # folder whose name is not a valid id, so nothing temporary may ever sit inside it.
    staging = root.parent / f".{root.name}.tracklite-export-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        if not any(meta["id"] == "0" for meta in chosen) and not _has_experiment(root, "0"):
            # MLflow creates its Default experiment in every store and expects to find it.
            _write_experiment_meta(root / "0", "0", "Default", "active", now_ms(), now_ms())
        for meta in chosen:
            _export_experiment(store, meta, root, staging, report, include_deleted)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report


def _export_experiment(
    store: Store, exp: Meta, root: Path, staging: Path, report: ExportReport, with_deleted: bool
) -> None:
    exp_id: str = exp["id"]
    deleted = exp.get("lifecycle") == "deleted"
    exp_dir = (root / _TRASH / exp_id) if deleted else (root / exp_id)
    # An experiment that changed lifecycle since an earlier export must not exist twice.
    stale = (root / exp_id) if deleted else (root / _TRASH / exp_id)
    if (stale / "meta.yaml").is_file():
        shutil.rmtree(stale)
    created = iso_to_ms(exp.get("created")) or now_ms()
    updated = iso_to_ms(exp.get("deleted_time")) if deleted else None
    _write_experiment_meta(
        exp_dir,
        exp_id,
        exp["name"],
        "deleted" if deleted else "active",
        created,
        updated or created,
    )
    (root / _TRASH).mkdir(exist_ok=True)
    for meta in store.iter_recorders(exp_id, include_deleted=with_deleted):
        build = staging / meta["id"]
        try:
            report.points += _build_run(store, meta, build, exp_dir, report)
            _swap_in(build, exp_dir / meta["id"], staging)
            report.recorders += 1
        except (OSError, ValueError) as exc:
            report.skipped.append(f"recorder {meta['id']}: {exc}")
            shutil.rmtree(build, ignore_errors=True)


def _build_run(store: Store, meta: Meta, build: Path, exp_dir: Path, report: ExportReport) -> int:
    """Write one run folder at ``build``; returns the number of metric points written."""
    rec_id: str = meta["id"]
    rec_dir = store.recorder_dir(meta["experiment_id"], rec_id)
    build.mkdir()
    deleted = meta.get("lifecycle") == "deleted"
    status = effective_status(meta, rec_dir)
    if status == DEAD:
        status = "FAILED"  # what `tracklite check --fix` would store; MLflow has no DEAD
    if status not in RUN_STATUSES:
        report.skipped.append(f"recorder {rec_id}: unknown status {status!r} written as FAILED")
        status = "FAILED"
    tags: dict[str, str] = {str(k): str(v) for k, v in meta.get("tags", {}).items()}
    tags["mlflow.runName"] = meta["name"]  # MLflow's UI and search take the name from here
    origin = meta.get("imported_from")
    user = tags.get("mlflow.user") or (origin or {}).get("user_id") or "unknown"
    fields: dict[str, Any] = {
        "artifact_uri": (exp_dir / rec_id / "artifacts").as_uri(),
        "end_time": iso_to_ms(meta.get("end_time")),
        "entry_point_name": "",
        "experiment_id": meta["experiment_id"],
        "lifecycle_stage": "deleted" if deleted else "active",
        "run_id": rec_id,
        "run_name": meta["name"],
        "source_name": "",
        "source_type": _SOURCE_TYPE_LOCAL,
        "source_version": "",
        "start_time": iso_to_ms(meta.get("start_time")),
        "status": RUN_STATUSES.index(status) + 1,
        "tags": [],
        "user_id": user,
    }
    if deleted:
        fields["deleted_time"] = iso_to_ms(meta.get("deleted_time")) or now_ms()
    atomic.write_bytes(build / "meta.yaml", dump_yaml(fields))
    # MLflow creates these four for every run, and its file store does not find a run by id
    # (get_run, get_metric_history) unless metrics/, params/ and artifacts/ all exist.
    for part in ("metrics", "params", "tags", "artifacts"):
        (build / part).mkdir()
    where = f"recorder {rec_id}"
    for part, values in (("params", meta.get("params", {})), ("tags", tags)):
        for key, path in _key_paths(build / part, values, f"{where}: {part[:-1]}", report):
            path.write_bytes(str(values[key]).encode("utf-8"))
    # Read from the store root one folder at a time, never through a link planted in the
    # store: a linked recorder, metrics/ or artifacts/ folder skips the run (UnsafeLinkError).
    with safefs.open_under(store.root, [meta["experiment_id"], rec_id]) as rec:
        points = _write_metrics(rec, build / "metrics", where, report)
        _copy_artifacts(rec, build / "artifacts", where, report)
    return points


def _write_metrics(rec: safefs.Dir, target: Path, where: str, report: ExportReport) -> int:
    if rec.kind(layout.METRICS_DIR) is None:
        return 0
    with rec.child(layout.METRICS_DIR) as folder:
        source = Path(folder.fd_path(folder.fd))  # the open folder itself, never a link
        if not segments.segment_names(source):
            return 0
        table = segments.read_points(source)
    import pyarrow as pa

    keys: list[str] = table.column("key").to_pylist()  # type: ignore[assignment]
    steps: list[int] = table.column("step").to_pylist()  # type: ignore[assignment]
    values: list[float] = table.column("value").to_pylist()  # type: ignore[assignment]
    stamps: list[int] = table.column("timestamp").cast(pa.int64()).to_pylist()  # type: ignore[assignment]
    lines: dict[str, list[str]] = {}
    for key, step, value, stamp in zip(keys, steps, values, stamps, strict=True):
        # repr() round-trips every float exactly, and gives MLflow's nan / inf spellings.
        lines.setdefault(key, []).append(f"{stamp} {float(value)!r} {step}\n")
    written = 0
    for key, path in _key_paths(target, lines, f"{where}: metric", report):
        path.write_text("".join(lines[key]), encoding="ascii")
        written += len(lines[key])
    return written


def _copy_artifacts(rec: safefs.Dir, target: Path, where: str, report: ExportReport) -> None:
    if rec.kind(layout.ARTIFACTS_DIR) is None:
        return
    with rec.child(layout.ARTIFACTS_DIR) as source:
        for rel, kind in source.tree():
            parts = rel.split("/")
            if kind == "link":
                report.skipped.append(f"{where}: artifact {rel} is a symbolic link (not followed)")
                continue
            if kind != "file" or parts[-1].startswith(atomic.TEMP_PREFIX):
                continue  # a temporary is a save in progress or abandoned, never an artifact
            dest = target.joinpath(*parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                with (
                    source.walk(parts[:-1]) as folder,
                    folder.reader(parts[-1]) as handle,
                    open(dest, "wb") as out,
                ):
                    shutil.copyfileobj(handle, out)
            except (FileNotFoundError, UnsafeLinkError):
                # removed, or swapped for a link, since the walk listed it
                report.skipped.append(f"{where}: artifact {rel} vanished or became a link")
                with contextlib.suppress(FileNotFoundError):
                    dest.unlink()


def _swap_in(build: Path, final: Path, staging: Path) -> None:
    """Move ``build`` to ``final``, replacing an earlier export of the same run."""
    if final.exists():
        old = staging / f"{final.name}.old"
        os.rename(final, old)
        try:
            os.rename(build, final)
        except BaseException:
            os.rename(old, final)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        final.parent.mkdir(parents=True, exist_ok=True)
        os.rename(build, final)


def _write_experiment_meta(
    exp_dir: Path, exp_id: str, name: str, stage: str, created: int, updated: int
) -> None:
    exp_dir.mkdir(parents=True, exist_ok=True)
    fields: dict[str, Any] = {
        "artifact_location": exp_dir.as_uri(),
        "creation_time": created,
        "experiment_id": exp_id,
        "last_update_time": updated,
        "lifecycle_stage": stage,
        "name": name,
    }
    atomic.write_bytes(exp_dir / "meta.yaml", dump_yaml(fields))


def _key_paths(
    folder: Path, values: Iterable[str], what: str, report: ExportReport
) -> Iterator[tuple[str, Path]]:
    """(key, file path) for each key that can be an MLflow file name; ``/`` makes folders.

    A key that is also a folder of another key (``a`` and ``a/b``) cannot exist in MLflow's
    layout; the first in sorted order wins.
    """
    files: set[tuple[str, ...]] = set()
    folders: set[tuple[str, ...]] = set()
    for key in sorted(values):
        parts = tuple(key.split("/"))
        problem = _bad_key(key, parts)
        if problem is None and (
            parts in folders or any(parts[:i] in files for i in range(1, len(parts)))
        ):
            problem = "clashes with another key used as a folder"
        if problem is not None:
            report.skipped.append(f"{what} {key!r}: {problem}")
            continue
        files.add(parts)
        folders.update(parts[:i] for i in range(1, len(parts)))
        path = folder.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        yield key, path


def _bad_key(key: str, parts: tuple[str, ...]) -> str | None:
    if any(part in ("", ".", "..") for part in parts):
        return "empty, '.' or '..' path part"
    if "\\" in key or "\x00" in key:
        return "holds a backslash or NUL"
    return None


# ---------------------------------------------------------------------------- helpers


def _open(uri: str | os.PathLike[str]) -> Store:
    store = Store.from_uri(uri)
    if not store.exists():
        raise NotFoundError(f"no tracklite store at {store.root}")
    return store


def _select_experiments(
    store: Store, experiments: str | Iterable[str] | None, include_deleted: bool
) -> list[Meta]:
    """Experiment metadata for names or ids, in store order.

    An id selects its experiment even if deleted; a name selects the active experiment of
    that name, or (with ``include_deleted``) deleted ones too.
    """
    every = list(store.iter_experiments(include_deleted=True))
    if experiments is None:
        return [m for m in every if include_deleted or m.get("lifecycle") == "active"]
    wanted = [experiments] if isinstance(experiments, str) else list(experiments)
    chosen: dict[str, Meta] = {}
    for item in wanted:
        matches = [m for m in every if m["id"] == item]
        if not matches:
            matches = [
                m
                for m in every
                if m.get("name") == item and (include_deleted or m.get("lifecycle") == "active")
            ]
        if not matches:
            raise NotFoundError(f"no experiment with name or id {item!r} in {store.root}")
        chosen.update((m["id"], m) for m in matches)
    return [m for m in every if m["id"] in chosen]


def _mlflow_destination(dst: str | os.PathLike[str]) -> Path:
    """The destination folder; refuse one holding something other than an MLflow file store."""
    root = layout.uri_to_path(dst)
    if not root.exists():
        return root
    if not root.is_dir():
        raise StoreError(f"{root} exists and is not a folder")
    if (root / layout.MARKER).exists():
        raise StoreError(f"{root} is a tracklite store; export to an MLflow folder elsewhere")
    entries = [e for e in os.listdir(root) if e not in (".DS_Store", "Thumbs.db")]
    looks_mlflow = (root / _TRASH).is_dir() or any(
        (root / e / "meta.yaml").is_file() for e in entries
    )
    if entries and not looks_mlflow:
        raise StoreError(
            f"{root} is a non-empty folder that is not an MLflow file store; "
            "export into a new or empty folder"
        )
    return root


def _has_experiment(root: Path, exp_id: str) -> bool:
    return any((place / exp_id / "meta.yaml").is_file() for place in (root, root / _TRASH))
