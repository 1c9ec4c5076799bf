"""``tracklite.check``: verify a store and, with ``fix=True``, repair it.

Like diskcache's ``Cache.check``, it walks everything and reports each problem as a
:class:`Finding`. What it verifies:

- the marker and every ``experiment.json`` / ``recorder.json`` parse, have the expected fields,
  the ids of the folders holding them, and a ``format_version`` this tracklite knows;
- every metric segment has a readable Parquet footer naming the four metric columns (a
  truncated or foreign file fails there); with ``deep=True`` every data page decodes too;
- the latest-metrics summary in ``recorder.json`` agrees with the segments: first against the
  footers' statistics (smallest and largest key, highest step, newest timestamp), and, only
  when those disagree, against every point read back; with ``deep=True`` always against every
  point, key by key (recorders being written right now by a live process are skipped: their
  summary legitimately lags a flush);
- no temporary file (``.tmp-*``, ``.<id>.creating``, dot-files in ``metrics/``) is older than
  ``temp_age`` seconds (a live writer refreshes its file's mtime with every write);
- no unknown files; no symbolic link anywhere in the store (never followed, always reported);
  no two active experiments with one name; no RUNNING recorder whose process is gone
  (:mod:`tracklite.liveness`).

``fix=True`` never deletes data: corrupt files move to ``<root>/.quarantine/<time>/`` under their
relative path, and a recorder or experiment whose metadata was lost gets a minimal new one (its
metrics summary rebuilt from the segments, a ``tracklite.repair`` tag saying why), so its
points and artifacts stay reachable. Stale temporary files are removed (they were never
published), summaries are rebuilt, and dead runs are stored as FAILED with a ``tracklite.dead``
tag. Unknown files, duplicate names and newer format versions are only reported.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .. import liveness
from ..errors import CorruptMetadataError, NotFoundError, StoreError, UnsafeLinkError
from ..metrics import latest, segments
from ..store import atomic, changes, layout, metadata, mounts, safefs
from ..store.clock import ms_to_iso, now_iso
from ..store.ids import id_time_ms
from ..store.locks import locked
from ..store.ref import RecorderRef
from ..store.root import Meta, Store
from . import check_workers

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

#: A temporary file or staging folder untouched for this many seconds belongs to a dead writer.
#: Writers rewrite their temporary file continuously, so only a stalled or killed one gets old.
TEMP_STALE_AFTER: Final[float] = 600.0

#: Most processes checking recorders at once in a read-only check (:mod:`.check_workers`). On
#: a network filesystem (NFS, Lustre) this many, whatever the cores: each system call waits for
#: the metadata server there, and parallel requests are what makes a walk fast.
CHECK_WORKERS: Final[int] = 8
#: Entries of an experiment folder per worker job.
CHUNK: Final[int] = 500
#: Experiments with fewer entries are checked in the calling process alone: starting a worker
#: costs 0.2 s of CPU, and 1-2 s on a busy machine, where a second process also gains least.
SHARE_FROM: Final[int] = 20_000

# Kinds of findings.
MARKER: Final = "marker"
CORRUPT_METADATA: Final = "corrupt_metadata"
MISSING_METADATA: Final = "missing_metadata"
UNKNOWN_VERSION: Final = "unknown_version"
CORRUPT_SEGMENT: Final = "corrupt_segment"
REPLACED_SEGMENT: Final = "replaced_segment"
SUMMARY_MISMATCH: Final = "summary_mismatch"
STALE_TEMP: Final = "stale_temp"
UNKNOWN_FILE: Final = "unknown_file"
UNSAFE_LINK: Final = "unsafe_link"
DUPLICATE_NAME: Final = "duplicate_name"
DEAD_RUN: Final = "dead_run"

#: Statuses a stored recorder may have (KILLED comes from MLflow imports).
KNOWN_STATUSES: Final = frozenset({"SCHEDULED", "RUNNING", "FINISHED", "FAILED", "KILLED"})

# Editor and OS droppings that are never worth a finding.
_IGNORED: Final = frozenset({".DS_Store", "Thumbs.db", ".ipynb_checkpoints"})
# atomic.temp_name: .tmp-<target>.<pid>.<8 hex>
_TEMP_RE: Final = re.compile(r"^\.tmp-.+\.\d+\.[0-9a-f]{8}$")
_STAGING_RE: Final = re.compile(r"^\.[^.]+\.creating$")
# tracklite.maintenance.gc renames what it removes to .<id>.gc-<hex> first; an interrupted gc
# leaves one behind (data the user already chose to delete).
_GC_TOMB_RE: Final = re.compile(r"^\.[^.]+\.gc-[0-9a-f]+$")
# An NFS client renames a file deleted while still open to .nfs<hex> until it is closed (a
# compaction deleting a segment a reader holds); one whose holder crashed stays forever.
_NFS_SILLY_RE: Final = re.compile(r"^\.nfs[0-9a-fA-F]+$")
_METRIC_COLUMNS: Final = ("key", "step", "value", "timestamp")


@dataclass(frozen=True)
class Finding:
    """One problem: where, what kind (the module's constants), a message, and whether fixed."""

    path: Path
    kind: str
    message: str
    fixed: bool = False

    def __str__(self) -> str:
        return f"{self.kind}: {self.path}: {self.message}" + (" [fixed]" if self.fixed else "")


@dataclass
class CheckReport:
    """Everything :func:`check` found, in walking order."""

    root: Path
    findings: list[Finding] = field(default_factory=list)
    quarantine: Path | None = None

    @property
    def clean(self) -> bool:
        """No finding at all."""
        return not self.findings

    @property
    def problems(self) -> list[Finding]:
        """Findings not fixed."""
        return [f for f in self.findings if not f.fixed]

    @property
    def ok(self) -> bool:
        """Every finding was fixed (always False for a non-clean check without ``fix``)."""
        return not self.problems

    def kinds(self) -> dict[str, int]:
        """How many findings of each kind."""
        counts: dict[str, int] = {}
        for finding in self.findings:
            counts[finding.kind] = counts.get(finding.kind, 0) + 1
        return counts

    def of_kind(self, kind: str) -> list[Finding]:
        return [f for f in self.findings if f.kind == kind]

    def __iter__(self) -> Iterator[Finding]:
        return iter(self.findings)

    def __len__(self) -> int:
        return len(self.findings)

    def __str__(self) -> str:
        if self.clean:
            return f"{self.root}: clean"
        fixed = sum(f.fixed for f in self.findings)
        lines = [f"{self.root}: {len(self.findings)} finding(s), {fixed} fixed"]
        lines.extend(f"  {finding}" for finding in self.findings)
        return "\n".join(lines)


def check(
    root: str | os.PathLike[str],
    fix: bool = False,
    *,
    temp_age: float = TEMP_STALE_AFTER,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
    deep: bool = False,
) -> CheckReport:
    """Verify the store at ``root`` (a path or ``file:`` URI); with ``fix``, repair it.

    :param root: the store folder.
    :param fix: repair what can be repaired without losing data (see the module docstring).
    :param temp_age: seconds after which a temporary file counts as abandoned.
    :param progress: called as ``progress(recorders checked, recorders found so far)``, in the
        store's order, from the calling thread.
    :param workers: processes checking recorders at once without ``fix``: this one and
        ``workers - 1`` started for it (1: only this one), for experiments of
        :data:`SHARE_FROM` recorders or more; by default one per core, at most
        :data:`CHECK_WORKERS`, and that many on a network filesystem (NFS, Lustre, ...). The
        findings and their order are the same whatever the number.
        ``fix`` works in this process, one recorder at a time.
    :param deep: read every point of every segment, not only the footers: finds a segment
        whose data pages do not decode (``corrupt_segment``) and a summary whose value alone
        differs from the points (``summary_mismatch``), at the cost of reading all the data.
    :return: a :class:`CheckReport`.
    :raises FileNotFoundError: ``root`` does not exist.
    :raises StoreError: ``root`` holds something other than a tracklite store.
    """
    path = layout.uri_to_path(root)
    if workers is None:
        workers = default_workers(path)
    elif workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    return _Checker(path, fix, temp_age, progress, workers, deep).run()


def default_workers(root: Path) -> int:
    """How many processes a read-only check of ``root`` uses by default: one per core this
    process may run on, at most :data:`CHECK_WORKERS`, and that many on a network filesystem
    whatever the cores."""
    if not sys.executable:
        return 1  # an embedded interpreter: no Python to start workers with
    if mounts.is_network(root):
        return CHECK_WORKERS
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, CHECK_WORKERS))


class _Checker:
    def __init__(
        self,
        root: Path,
        fix: bool,
        temp_age: float,
        progress: Callable[[int, int], None] | None = None,
        workers: int = 1,
        deep: bool = False,
    ) -> None:
        self.root = root
        self.deep = deep
        self.progress = progress
        self.workers = 1 if fix else workers
        # Started on the first experiment big enough to share out, closed at the end.
        self._workers: check_workers.Workers | None = None
        self.checked = self.found_recorders = 0
        self.store = Store(root)
        self.fix = fix
        self.temp_age = temp_age
        self.now = time.time()
        self.report = CheckReport(root)
        # The experiment folder being walked, held open: each recorder folder is opened from
        # it (one openat) instead of from the store root.
        self._experiment: safefs.Dir | None = None
        self._experiment_id = ""
        self._experiment_path = root
        self._stamp = (
            f"{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"
        )

    # ------------------------------------------------------------------ plumbing

    def found(self, path: Path, kind: str, message: str, fixed: bool = False) -> None:
        self.report.findings.append(Finding(path, kind, message, fixed))

    def quarantine(self, path: Path) -> Path | None:
        """Move ``path`` (file, folder or link: the entry itself, never what a link points to)
        under this run's quarantine folder; None if another process moved or removed it first.

        Both ends are reached from the store root without following links, and the move is a
        rename inside the store: atomic, and the bytes are kept as they were.
        """
        parts = safefs.parts_below(self.root, path)
        try:
            source, name = safefs.open_parent(self.root, path)
        except (FileNotFoundError, UnsafeLinkError):
            return None  # its folder went away (or became a link) meanwhile
        with source:
            if source.kind(name) is None:
                return None
            with self._quarantine_dir() as stamp, stamp.walk(parts[:-1], create=True) as dst:
                try:
                    source.rename(name, dst, name)
                except FileNotFoundError:
                    return None  # another check (or a compaction) moved it first
        target = self.root / layout.QUARANTINE_DIR / self._stamp / Path(*parts)
        self.report.quarantine = self.root / layout.QUARANTINE_DIR / self._stamp
        return target

    def _quarantine_dir(self) -> safefs.Dir:
        """This run's folder in ``.quarantine/``, created if needed. A ``.quarantine`` that is a
        link is itself moved into a new, real quarantine first: nothing is ever moved through
        it out of the store."""
        with safefs.open_dir(self.root) as top:
            try:
                holder = top.child(layout.QUARANTINE_DIR, create=True)
            except UnsafeLinkError:
                self._move_linked_quarantine(top)
                holder = top.child(layout.QUARANTINE_DIR)
        with holder:
            return holder.child(self._stamp, create=True)

    def _move_linked_quarantine(self, top: safefs.Dir) -> None:
        aside = f"{layout.QUARANTINE_DIR}.link-{secrets.token_hex(4)}"
        top.rename(layout.QUARANTINE_DIR, top, aside)  # renames the link, not its target
        with (
            top.child(layout.QUARANTINE_DIR, create=True) as fresh,
            fresh.child(self._stamp, create=True) as stamp,
        ):
            top.rename(aside, stamp, layout.QUARANTINE_DIR)
        self.report.quarantine = self.root / layout.QUARANTINE_DIR / self._stamp

    def age(self, path: Path) -> float:
        try:
            return self.now - os.lstat(path).st_mtime
        except FileNotFoundError:
            return 0.0

    def temp_entry(self, path: Path) -> None:
        """A temporary file or staging folder: a finding once it is older than ``temp_age``."""
        age = self.age(path)
        if age <= self.temp_age:
            return
        fixed = False
        if self.fix:
            try:
                folder, name = safefs.open_parent(self.root, path)
            except (FileNotFoundError, UnsafeLinkError):
                pass  # removed (or its folder swapped) by another process meanwhile
            else:
                with folder:
                    folder.rmtree(name)  # never follows a link, at any depth
            fixed = True
        self.found(path, STALE_TEMP, f"temporary entry abandoned {age:.0f} s ago", fixed)

    def unknown(self, path: Path, where: str) -> None:
        self.found(path, UNKNOWN_FILE, f"not part of a tracklite {where}; left in place")

    def unsafe_link(self, path: Path) -> None:
        """A symbolic link anywhere in the store: tracklite never follows one."""
        try:
            target = os.readlink(path)
        except OSError:
            return  # gone meanwhile
        fixed = False
        if self.fix:
            if path == self.root / layout.QUARANTINE_DIR:
                self._quarantine_dir().close()  # moves the link itself into a real quarantine
            else:
                self.quarantine(path)  # the link itself, never its target
            fixed = True
        self.found(
            path,
            UNSAFE_LINK,
            f"symbolic link to {target}; tracklite never follows links inside a store",
            fixed,
        )

    def entries(self, folder: Path) -> list[tuple[Path, bool]]:
        """The entries of ``folder`` that are not links, each with whether it is a folder; every
        link is reported (and with ``fix`` quarantined) on the way."""
        return [(folder / name, is_dir) for name, is_dir in self.entry_names(folder)]

    def entry_names(self, folder: Path) -> list[tuple[str, bool]]:
        """:meth:`entries` by name (no path made for each of 100,000 recorders).

        One ``scandir``: the kinds come with the listing (no ``stat`` per entry on filesystems
        that report them), which matters at 100,000 recorders and on network filesystems.
        """
        try:
            with os.scandir(folder) as listing:
                kinds = sorted(
                    (e.name, e.is_symlink(), e.is_dir(follow_symlinks=False))
                    for e in listing
                    if e.name not in _IGNORED
                )
        except (FileNotFoundError, NotADirectoryError):
            return []
        found = []
        for name, is_link, is_dir in kinds:
            if is_link:
                self.unsafe_link(folder / name)
            else:
                found.append((name, is_dir))
        return found

    # ------------------------------------------------------------------ the store

    def run(self) -> CheckReport:
        try:
            return self._run()
        finally:
            if self._workers is not None:
                self._workers.close()

    def _run(self) -> CheckReport:
        if not self.root.is_dir():
            raise FileNotFoundError(f"no store folder at {self.root}")
        if not self.check_marker():
            return self.report
        names: dict[str, list[str]] = {}
        for entry, is_dir in self.entries(self.root):
            name = entry.name
            if name in layout.ROOT_ENTRIES:
                continue
            if _is_temp(name):
                self.temp_entry(entry)
            elif layout.is_id_name(name) and is_dir:
                meta = self.check_experiment(entry)
                if meta is not None and meta.get("lifecycle") == "active":
                    names.setdefault(str(meta.get("name")), []).append(name)
            else:
                self.unknown(entry, "store folder")
        for name, ids in names.items():
            if len(ids) > 1:
                self.found(
                    self.root,
                    DUPLICATE_NAME,
                    f"{len(ids)} active experiments are named {name!r}: {', '.join(sorted(ids))}",
                )
        return self.report

    def check_marker(self) -> bool:
        """Check the marker; False when the rest must not be touched (a newer format)."""
        path = self.root / layout.MARKER
        if path.is_symlink():
            self.unsafe_link(path)
            if self.fix:
                self._write_marker()
            return True
        try:
            marker = atomic.read_json(path)
        except FileNotFoundError:
            if not any(
                (e / layout.EXPERIMENT_FILE).is_file()
                for e in _entries(self.root)
                if layout.is_id_name(e.name)
            ):
                raise StoreError(
                    f"{self.root} is not a tracklite store (no {layout.MARKER})"
                ) from None
            self.found(path, MARKER, "store marker missing", self.fix and self._write_marker())
            return True
        except (OSError, ValueError) as exc:
            self.found(path, MARKER, f"store marker unreadable: {exc}", self._replace_marker())
            return True
        version = marker.get("format_version") if isinstance(marker, dict) else None
        if not isinstance(version, int) or version < 1:
            message = f"store marker has no valid format_version: {marker!r}"
            self.found(path, MARKER, message, self._replace_marker())
            return True
        if version > layout.FORMAT_VERSION:
            self.found(
                path,
                UNKNOWN_VERSION,
                f"store format_version {version} is newer than this tracklite reads "
                f"({layout.FORMAT_VERSION}); nothing else checked, nothing changed",
            )
            return False
        return True

    def _replace_marker(self) -> bool:
        if not self.fix:
            return False
        self.quarantine(self.root / layout.MARKER)
        return self._write_marker()

    def _write_marker(self) -> bool:
        atomic.write_json(
            self.root / layout.MARKER,
            {"format_version": layout.FORMAT_VERSION, "created": now_iso()},
        )
        return True

    # ------------------------------------------------------------------ experiments

    def check_experiment(self, folder: Path) -> Meta | None:
        exp_id = folder.name
        path = folder / layout.EXPERIMENT_FILE
        meta, problem = _read_meta(self.root, path, {"id": exp_id}, _valid_experiment)
        if problem == UNSAFE_LINK:
            self.unsafe_link(folder)  # swapped for a link since it was listed
            return None
        if problem == UNKNOWN_VERSION:
            self.found(path, UNKNOWN_VERSION, "format_version newer than this tracklite reads")
            return None
        if problem is not None:
            children = [e for e in _entries(folder) if layout.is_id_name(e.name)]
            if meta is None and problem == MISSING_METADATA and not children:
                if folder.exists():
                    self.unknown(
                        folder, "store folder (an id-named folder without experiment.json)"
                    )
                return None
            meta = self.recover_experiment(folder, path, problem)
        names = self.entry_names(folder)
        self.found_recorders += sum(1 for name, _ in names if layout.is_id_name(name))
        self.check_recorders(exp_id, names)
        return meta

    @contextlib.contextmanager
    def holding_experiment(self, exp_id: str) -> Iterator[None]:
        """Hold the experiment folder open meanwhile: each recorder is opened from it."""
        self._experiment_id = exp_id
        self._experiment_path = layout.experiment_dir(self.root, exp_id)
        try:
            self._experiment = safefs.open_under(self.root, [exp_id])
        except (FileNotFoundError, NotADirectoryError, UnsafeLinkError):
            self._experiment = None  # gone or swapped meanwhile: each recorder opens its own way
        try:
            yield
        finally:
            if self._experiment is not None:
                self._experiment.close()
                self._experiment = None

    def check_recorders(self, exp_id: str, entries: list[tuple[str, bool]]) -> None:
        """The entries of an experiment folder, in order (recorders, temporaries, strays)."""
        names = [(name, d) for name, d in entries if name not in layout.EXPERIMENT_ENTRIES]
        if self.workers > 1 and len(names) >= SHARE_FROM:
            self.share_out(exp_id, names)
            return
        with self.holding_experiment(exp_id):
            for name, is_dir in names:
                if self.check_entry(exp_id, name, is_dir):
                    self.recorders_done(1)

    def share_out(self, exp_id: str, names: list[tuple[str, bool]]) -> None:
        """Read-only, so entries are independent: worker processes check them in chunks, and
        each chunk's findings join the report in the listing's order (the serial report)."""
        if self._workers is None:
            self._workers = check_workers.Workers(self.workers)
        root = str(self.root)
        jobs = [
            (root, exp_id, names[i : i + CHUNK], self.temp_age, self.now, self.deep)
            for i in range(0, len(names), CHUNK)
        ]
        for findings, recorders in self._workers.map(jobs):
            self.report.findings.extend(findings)
            self.recorders_done(recorders)

    def check_entry(self, exp_id: str, name: str, is_dir: bool) -> bool:
        """One entry of an experiment folder; whether it was a recorder."""
        entry = self._experiment_path / name
        if _is_temp(name):
            self.temp_entry(entry)
        elif layout.is_id_name(name) and is_dir:
            self.check_recorder(exp_id, entry)
            return True
        else:
            self.unknown(entry, "experiment folder")
        return False

    def recorders_done(self, count: int) -> None:
        self.checked += count
        if self.progress is not None:
            self.progress(self.checked, max(self.checked, self.found_recorders))

    def recover_experiment(self, folder: Path, path: Path, problem: str) -> Meta | None:
        message = {
            MISSING_METADATA: "experiment.json missing",
            CORRUPT_METADATA: "experiment.json unreadable or malformed",
        }[problem]
        if not self.fix:
            self.found(path, problem, message)
            return None
        with locked(self.root / layout.STORE_LOCK):
            # Another process may have repaired (or gc removed) it meanwhile.
            meta, again = _read_meta(self.root, path, {"id": folder.name}, _valid_experiment)
            if again in (None, UNSAFE_LINK) or not folder.is_dir():
                return meta
            moved = self.quarantine(path) if again == CORRUPT_METADATA else None
            meta = {
                "format_version": layout.FORMAT_VERSION,
                "id": folder.name,
                "name": f"recovered-{folder.name}",
                "lifecycle": "active",
                "created": ms_to_iso(id_time_ms(folder.name)) or now_iso(),
                "deleted_time": None,
                "repair": f"{message}; rebuilt by tracklite check"
                + (f" (old file in {moved.relative_to(self.root)})" if moved else ""),
            }
            atomic.write_json(path, meta)
        self.found(path, problem, f"{message}; rebuilt as {meta['name']!r}", True)
        return meta

    # ------------------------------------------------------------------ recorders

    def check_recorder(self, exp_id: str, folder: Path) -> None:
        """One recorder: its metadata, its folder's entries, its segments, its liveness and
        summary. A recorder removed (gc) or moved while being checked is skipped."""
        try:
            self._check_recorder(exp_id, folder)
        except (FileNotFoundError, NotFoundError):
            if folder.is_dir():
                raise
            # gc removed it, or another check quarantined it, while we looked: nothing to do.

    def _check_recorder(self, exp_id: str, folder: Path) -> None:
        try:
            recorder = self._open_recorder(exp_id, folder)
        except UnsafeLinkError:
            self.unsafe_link(folder)  # swapped for a link since it was listed
            return
        except NotADirectoryError:
            return  # swapped for a file since it was listed: the next check sees it
        with recorder:
            self._check_open_recorder(exp_id, folder, recorder)

    def _open_recorder(self, exp_id: str, folder: Path) -> safefs.Dir:
        """A recorder folder, never through a link: from the experiment folder held open (one
        ``openat``), else from the store root."""
        held = self._experiment
        if held is not None and self._experiment_id == exp_id:
            return held.child(folder.name)
        return safefs.open_under(self.root, safefs.parts_below(self.root, folder))

    def _check_open_recorder(self, exp_id: str, folder: Path, recorder: safefs.Dir) -> None:
        """Everything of one recorder is reached from its open folder: one descriptor for the
        recorder, one for ``metrics/`` and one for ``artifacts/``, and no path is resolved
        again from the store root."""
        expect = {"id": folder.name, "experiment_id": exp_id}
        meta, problem = _read_meta_in(recorder, layout.RECORDER_FILE, expect, _valid_recorder)
        if problem == UNKNOWN_VERSION:
            message = "format_version newer than this tracklite reads"
            self.found(folder / layout.RECORDER_FILE, UNKNOWN_VERSION, message)
            return
        if problem == MISSING_METADATA and not _has_content(folder):
            # No points, no artifacts: nothing to recover a recorder for.
            if folder.is_dir():
                self.unknown(folder, "experiment folder (an id-named folder without recorder.json)")
            return
        self.check_recorder_entries(folder, recorder)
        found = self.check_segments(recorder)
        if problem is not None:
            self.recover_recorder(exp_id, folder, folder / layout.RECORDER_FILE, problem, meta)
            return
        assert meta is not None
        status = liveness.effective_status(meta, folder, self.now)
        if status == liveness.RUNNING:
            return  # a live writer's summary may lag its last segment by one flush
        if status == liveness.DEAD:
            self.mark_dead(exp_id, folder, meta)
        try:
            stored: Mapping[str, Any] = latest.summary(folder, meta)
        except CorruptMetadataError as exc:  # latest.parquet unreadable: rebuilt below
            stored = {"(latest.parquet)": str(exc)}
        if found is not None and found.summary is not None:
            actual = found.summary  # deep: every point was read already
        elif _footers_agree(stored, None if found is None else found.footers):
            return  # the common case: no point needs reading
        else:
            actual = self.segments_summary(folder)
        mismatch = _summary_differences(stored, actual)
        if mismatch:
            self.repair_summary(exp_id, folder, mismatch)

    def check_recorder_entries(self, folder: Path, recorder: safefs.Dir) -> None:
        """Temporary files, artifacts, links and unknown entries of a recorder folder (links
        first, as :meth:`entries` reports them)."""
        listing = [(name, kind) for name, kind in recorder.kinds() if name not in _IGNORED]
        for name, kind in listing:
            if kind == "link":
                self.unsafe_link(folder / name)
        for name, kind in listing:
            if kind == "link" or name in layout.RECORDER_ENTRIES:
                continue
            if _is_temp(name):
                self.temp_entry(folder / name)
            elif name == layout.ARTIFACTS_DIR and kind == "dir":
                self.check_artifacts(recorder)
            elif not (name == layout.METRICS_DIR and kind == "dir"):
                self.unknown(folder / name, "recorder folder")

    def repair_summary(self, exp_id: str, folder: Path, mismatch: str) -> None:
        """Report a summary that disagrees with the segments; with ``fix``, rebuild it."""
        fixed = False
        if self.fix:
            rebuilt: list[bool] = []

            def rebuild(current: Meta) -> None:
                # Never overwrite the summary of a run a live process resumed meanwhile.
                if liveness.effective_status(current, folder) == liveness.RUNNING:
                    return
                latest.replace(folder, current, self.segments_summary(folder))
                rebuilt.append(True)

            self.store.update_recorder(exp_id, folder.name, rebuild)
            if not rebuilt:
                return  # resumed meanwhile: a live run's summary is its writer's to keep
            fixed = True
        path = folder / layout.RECORDER_FILE
        self.found(path, SUMMARY_MISMATCH, f"latest-metrics summary disagrees: {mismatch}", fixed)

    def segments_summary(self, folder: Path) -> dict[str, Any]:
        """The summary of every point of a recorder.

        Repairs call it while the recorder's lock is held: under the lock no compaction runs
        and every writer's summary update waits, so this listing holds every segment behind
        the stored summary: rebuilding from it never drops a key or goes back to an older step
        (a listing taken without the lock could miss segments a compaction just merged, and so
        summarise nothing). Without the lock a compaction racing it can make a summary look
        wrong; its listing is taken again when a segment vanishes (see _readable_segments).
        """
        try:
            metrics = safefs.open_under(self.root, safefs.parts_below(self.root, folder))
        except FileNotFoundError:
            return {}
        with metrics:
            try:
                sub = metrics.child(layout.METRICS_DIR)
            except FileNotFoundError:
                return {}
        with sub:
            return _summary(_readable_segments(sub))

    def recover_recorder(
        self, exp_id: str, folder: Path, path: Path, problem: str, old: Meta | None
    ) -> None:
        message = {
            MISSING_METADATA: "recorder.json missing",
            CORRUPT_METADATA: "recorder.json unreadable or malformed",
        }[problem]
        if not self.fix:
            self.found(path, problem, message)
            return
        rec_id = folder.name
        with locked(folder / layout.RECORDER_LOCK):
            expect = {"id": rec_id, "experiment_id": exp_id}
            _, again = _read_meta(self.root, path, expect, _valid_recorder)
            if again in (None, UNSAFE_LINK):
                return  # repaired by someone else meanwhile
            # Journaled, so that searches through a summary see the rebuilt recorder.
            with changes.noting(folder.parent, rec_id):
                moved = self.quarantine(path) if again == CORRUPT_METADATA else None
                note = f"{message}; rebuilt by tracklite check at {now_iso()}" + (
                    f" (old file in {moved.relative_to(self.root)})" if moved else ""
                )
                meta = _rebuilt_recorder(exp_id, rec_id, old, note)
                latest.replace(folder, meta, self.segments_summary(folder))
                atomic.write_json(path, meta)
        self.found(path, problem, f"{message}; rebuilt (status FAILED, tracklite.repair tag)", True)

    def mark_dead(self, exp_id: str, folder: Path, meta: Meta) -> None:
        owner = meta.get("owner")
        who = liveness.describe_owner(owner)
        fixed = False
        if self.fix:
            age = liveness.heartbeat_age(folder, self.now)
            last_seen = datetime.fromtimestamp(self.now - (age or 0.0), timezone.utc)
            note = (
                f"owner {who} was gone (last sign of life {last_seen.isoformat()}); marked FAILED "
                f"by tracklite check at {now_iso()}"
            )

            def bury(current: Meta) -> None:
                # Re-judge under the lock: the run may have been resumed or ended meanwhile.
                if (
                    current.get("owner") != owner
                    or liveness.effective_status(current, folder) != liveness.DEAD
                ):
                    return
                current["status"] = "FAILED"
                current["end_time"] = last_seen.isoformat(timespec="microseconds")
                current["tags"]["tracklite.dead"] = note
                latest.replace(folder, current, self.segments_summary(folder))

            after = self.store.update_recorder(exp_id, folder.name, bury)
            fixed = after.get("status") == "FAILED"
            if fixed:
                # What end_run would have done: one segment, so plain pandas reads it exactly.
                from ..metrics.compaction import compact_recorder

                compact_recorder(RecorderRef(self.root, exp_id, folder.name))
        self.found(
            folder / layout.RECORDER_FILE, DEAD_RUN, f"RUNNING, but its owner {who} is gone", fixed
        )

    # ------------------------------------------------------------------ contents

    def check_segments(self, recorder: safefs.Dir) -> _Segments | None:
        """Footers of the readable segments (replaced ones excluded), and with ``deep`` the
        summary of all their points; corrupt ones reported or quarantined.

        Read from one listing; a segment that vanished meanwhile (a compaction merged it) makes
        the whole listing be read again, so the footers returned are one consistent picture.
        None when compactions kept racing (the summary is then judged from the points).
        """
        for _attempt in range(20):
            found = self._read_segments(recorder)
            if found is not None:
                return found
        return None  # pragma: no cover - compactions kept racing

    def _read_segments(self, recorder: safefs.Dir) -> _Segments | None:
        """The footers of the segments in ``metrics/`` of an open recorder folder (paths are
        only made for findings); with ``deep``, each segment is read whole too, by the reader
        the summary's comparison uses, and folded into a summary of its own."""
        try:
            folder = recorder.child(layout.METRICS_DIR)
        except (FileNotFoundError, NotADirectoryError, UnsafeLinkError):
            return _Segments([], {} if self.deep else None)
        tables: dict[str, pq.FileMetaData] = {}
        folded: dict[str, dict[str, Any]] = {}
        replaced: dict[str, str] = {}
        with folder:
            try:
                listing = folder.kinds()
            except FileNotFoundError:
                listing = []
            for name, kind in listing:
                if name in _IGNORED:
                    continue
                if kind == "link":
                    self.unsafe_link(folder.path / name)
                    continue
                if name.startswith("."):
                    # The metric writer's temporaries are all hidden names in metrics/.
                    self.temp_entry(folder.path / name)
                    continue
                if not name.endswith(layout.SEGMENT_SUFFIX) or kind != "file":
                    self.unknown(folder.path / name, "metrics folder")
                    continue
                try:
                    footer = _segment_footer(folder, name)
                    if self.deep:
                        # Every data page decoded: damage behind an intact footer fails here.
                        folded[name] = _summary([_segment_table(folder, name)])
                except FileNotFoundError:
                    return None  # merged away while we read: read a fresh listing
                except Exception as exc:  # pyarrow raises many kinds on a torn file
                    entry = folder.path / name
                    if self.fix:
                        self.quarantine(entry)
                    message = f"unreadable metric segment: {exc}"
                    self.found(entry, CORRUPT_SEGMENT, message, self.fix)
                    continue
                tables[name] = footer
                for old in segments.replaces_of(footer):
                    replaced[old] = name
        for old, by in sorted(replaced.items()):
            if old in tables:
                del tables[old]
                folded.pop(old, None)
                path = folder.path / old
                # A compaction deletes the files it replaced right after publishing; survivors
                # older than the bound mean it died in between. Readers already skip them.
                if self.age(path) > self.temp_age:
                    if self.fix:
                        self.quarantine(path)
                    self.found(path, REPLACED_SEGMENT, f"already merged into {by}", self.fix)
        if not self.deep:
            return _Segments(list(tables.values()))
        summary: dict[str, Any] = {}
        for entries in folded.values():
            latest.merge_entries(summary, entries)  # the latest point wins, in any order
        return _Segments(list(tables.values()), summary)

    def check_artifacts(self, recorder: safefs.Dir) -> None:
        """Every link in ``artifacts/`` at any depth (never entered), and stale temporaries."""
        try:
            folder = recorder.child(layout.ARTIFACTS_DIR)
        except (FileNotFoundError, NotADirectoryError, UnsafeLinkError):
            return
        with folder:
            entries = list(folder.tree())  # most runs log no artifact: one empty listing
        for rel, kind in entries:
            path = folder.path.joinpath(*rel.split("/"))
            name = path.name
            if kind == "link":
                self.unsafe_link(path)
            elif kind == "file" and (_TEMP_RE.match(name) or _NFS_SILLY_RE.match(name)):
                self.temp_entry(path)


# ---------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class _Segments:
    """What a check read of a recorder's readable, not replaced segments."""

    footers: list[pq.FileMetaData]
    #: With ``deep``: the latest-value summary of every point in them (else None).
    summary: dict[str, Any] | None = None


def check_chunk(
    root: str,
    exp_id: str,
    names: list[tuple[str, bool]],
    temp_age: float,
    now: float,
    deep: bool = False,
) -> tuple[list[Finding], int]:
    """(findings, recorders checked) of entries ``names`` (name, is a folder) of experiment
    ``exp_id``, read-only, as of time ``now`` (every point read with ``deep``): one job of a
    worker process."""
    checker = _Checker(Path(root), False, temp_age, deep=deep)
    checker.now = now
    recorders = 0
    with checker.holding_experiment(exp_id):
        for name, is_dir in names:
            recorders += checker.check_entry(exp_id, name, is_dir)
    return checker.report.findings, recorders


def _rebuilt_recorder(exp_id: str, rec_id: str, old: Meta | None, note: str) -> Meta:
    """A minimal new ``recorder.json`` keeping what could be salvaged from ``old``."""
    salvage = old if isinstance(old, dict) else {}
    tags = _str_dict(salvage.get("tags"))
    tags["tracklite.repair"] = note
    return {
        "format_version": layout.FORMAT_VERSION,
        "id": rec_id,
        "name": name if isinstance(name := salvage.get("name"), str) else "recovered",
        "experiment_id": exp_id,
        # Nobody can vouch for this run's outcome any more.
        "status": "FAILED",
        "lifecycle": "deleted" if salvage.get("lifecycle") == "deleted" else "active",
        "start_time": _iso_or(salvage.get("start_time"), ms_to_iso(id_time_ms(rec_id))),
        "end_time": _iso_or(salvage.get("end_time"), None),
        "deleted_time": _iso_or(salvage.get("deleted_time"), None),
        "owner": salvage.get("owner") if isinstance(salvage.get("owner"), dict) else None,
        "params": _str_dict(salvage.get("params")),
        "tags": tags,
        "metrics": {},
    }


def _has_content(folder: Path) -> bool:
    return any(any(_entries(folder / sub)) for sub in (layout.METRICS_DIR, layout.ARTIFACTS_DIR))


def _segment_footer(folder: safefs.Dir, name: str) -> pq.FileMetaData:
    """A segment's footer (``ValueError`` if it lacks one of the four metric columns)."""
    footer = segments.footer_in(folder, name)
    names = footer.schema.names  # built anew on each access
    missing = [c for c in _METRIC_COLUMNS if c not in names]
    if missing:
        raise ValueError(f"no column(s) {', '.join(missing)}")
    return footer


def _segment_table(folder: safefs.Dir, name: str) -> pa.Table:
    """A segment's four metric columns (``ValueError`` if it lacks one)."""
    table = segments.read_in(folder, name)
    missing = [c for c in _METRIC_COLUMNS if c not in table.column_names]
    if missing:
        raise ValueError(f"no column(s) {', '.join(missing)}")
    return table.select(list(_METRIC_COLUMNS))


def _readable_segments(folder: safefs.Dir) -> list[pa.Table]:
    """Every readable, not replaced segment of an open ``metrics/`` folder, from one listing
    taken again if a segment vanishes meanwhile (corrupt ones are left out)."""
    for _attempt in range(20):
        tables: dict[str, pa.Table] = {}
        replaced: set[str] = set()
        vanished = False
        for name in folder.names():
            if name.startswith(".") or not name.endswith(layout.SEGMENT_SUFFIX):
                continue
            try:
                table = _segment_table(folder, name)
            except FileNotFoundError:
                vanished = True
                break
            except Exception:  # corrupt: its points are not readable by anyone
                continue
            tables[name] = table
            raw = (table.schema.metadata or {}).get(segments.REPLACES_KEY)
            if raw:
                replaced.update(json.loads(raw))
        if not vanished:
            return [t for n, t in tables.items() if n not in replaced]
    raise OSError(f"metrics of {folder.path} kept changing while being read")


def _entries(folder: Path) -> list[Path]:
    try:
        names = sorted(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [folder / n for n in names if n not in _IGNORED]


def _is_temp(name: str) -> bool:
    if not name.startswith("."):
        return False  # every temporary name is hidden (most entries are not: no pattern tried)
    return name.startswith(atomic.TEMP_PREFIX) or any(
        pattern.match(name) for pattern in (_TEMP_RE, _STAGING_RE, _GC_TOMB_RE, _NFS_SILLY_RE)
    )


def _valid_experiment(meta: Meta) -> bool:
    return isinstance(meta.get("name"), str) and meta.get("lifecycle") in ("active", "deleted")


def _valid_recorder(meta: Meta) -> bool:
    return (
        isinstance(meta.get("name"), str)
        and meta.get("status") in KNOWN_STATUSES
        and meta.get("lifecycle", "active") in ("active", "deleted")
        and all(isinstance(meta.get(k), dict) for k in ("params", "tags", "metrics"))
    )


def _read_meta(
    root: Path, path: Path, expect: Mapping[str, str], valid: Callable[[Meta], bool]
) -> tuple[Meta | None, str | None]:
    """(metadata, problem kind or None): MISSING_METADATA, CORRUPT_METADATA, UNKNOWN_VERSION,
    or UNSAFE_LINK when its folder was replaced by a link since it was listed (nothing read).
    Read by the one metadata reader (from the store root, never through a link); a link or a
    folder in the file's place is CORRUPT_METADATA, for ``--fix`` to move aside."""
    try:
        meta = metadata.load(root, safefs.parts_below(root, path))
    except CorruptMetadataError:
        return None, CORRUPT_METADATA
    except UnsafeLinkError:
        return None, UNSAFE_LINK
    return _judge_meta(meta, expect, valid)


def _read_meta_in(
    folder: safefs.Dir, name: str, expect: Mapping[str, str], valid: Callable[[Meta], bool]
) -> tuple[Meta | None, str | None]:
    """:func:`_read_meta` of the file ``name`` in the open ``folder``."""
    try:
        found = metadata.load_file(folder, name)
    except CorruptMetadataError:
        return None, CORRUPT_METADATA
    return _judge_meta(None if found is None else found[0], expect, valid)


def _judge_meta(
    meta: object, expect: Mapping[str, str], valid: Callable[[Meta], bool]
) -> tuple[Meta | None, str | None]:
    if meta is None:
        return None, MISSING_METADATA
    if not isinstance(meta, dict):
        return None, CORRUPT_METADATA
    version = meta.get("format_version")
    if isinstance(version, int) and version > layout.FORMAT_VERSION:
        return meta, UNKNOWN_VERSION
    if not isinstance(version, int) or version < 1:
        return meta, CORRUPT_METADATA
    if any(meta.get(k) != v for k, v in expect.items()) or not valid(meta):
        return meta, CORRUPT_METADATA
    return meta, None


def _summary(tables: list[pa.Table]) -> dict[str, Any]:
    """The latest-value summary of the given points (the writer's rule, latest.merge)."""
    import pyarrow as pa

    summary: dict[str, Any] = {}
    for table in tables:
        keys: list[str] = table.column("key").to_pylist()  # type: ignore[assignment]
        steps: list[int] = table.column("step").to_pylist()  # type: ignore[assignment]
        values: list[float] = table.column("value").to_pylist()  # type: ignore[assignment]
        stamps: list[int] = table.column("timestamp").cast(pa.int64()).to_pylist()  # type: ignore[assignment]
        latest.merge(summary, keys, steps, values, stamps)
    return summary


def _footers_agree(stored: object, footers: list[pq.FileMetaData] | None) -> bool:
    """Whether the segments' footer statistics match summary ``stored``: the same smallest and
    largest key, highest step and newest timestamp, from no data page at all.

    The highest step of all points is the highest of the keys' latest steps, so a summary
    missing the newest points (a writer killed between a flush and its summary update) or
    holding points no segment has (a lost segment) disagrees. Missing statistics, or a point
    logged after a higher step of its key (its timestamp is newer than any in the summary),
    also disagree: the caller then compares every point.
    """
    if footers is None or not isinstance(stored, Mapping):
        return False
    try:
        steps = [int(entry["step"]) for entry in stored.values()]
        stamps = [int(entry["timestamp"]) for entry in stored.values()]
    except (KeyError, TypeError, ValueError):
        return False
    keys: list[str] = []
    top_step: list[int] = []
    top_stamp: list[int] = []
    for footer in footers:
        where = {name: i for i, name in enumerate(footer.schema.names)}
        for index in range(footer.num_row_groups):
            group = footer.row_group(index)
            if group.num_rows == 0:
                continue
            bounds = _group_bounds(group, where)
            if bounds is None:
                return False
            keys.extend(bounds[:2])
            top_step.append(bounds[2])
            top_stamp.append(bounds[3])
    if not keys:
        return not stored
    return (
        bool(stored)
        and min(stored) == min(keys)
        and max(stored) == max(keys)
        and max(steps) == max(top_step)
        and max(stamps) == max(top_stamp)
    )


def _group_bounds(
    group: pq.RowGroupMetaData, where: Mapping[str, int]
) -> tuple[str, str, int, int] | None:
    """(smallest key, largest key, highest step, newest timestamp) of a row group from its
    statistics; None when one is missing or of a foreign type."""
    found: list[object] = []
    for column in ("key", "step", "timestamp"):
        stats = group.column(where[column]).statistics
        if stats is None or not stats.has_min_max or stats.null_count:
            return None
        # Raw for the integers: the stored number (milliseconds, as in the summary), not a
        # datetime.
        found.extend((stats.min, stats.max) if column == "key" else (stats.max_raw,))
    low, high, step, stamp = found
    strings = isinstance(low, str) and isinstance(high, str)
    if strings and isinstance(step, int) and isinstance(stamp, int):
        return str(low), str(high), step, stamp
    return None


def _summary_differences(stored: Mapping[str, Any], actual: Mapping[str, Any]) -> str:
    """'' when they agree, else a short description of the first differences."""
    problems: list[str] = []
    for key in sorted(set(stored) | set(actual)):
        if key not in actual:
            problems.append(f"{key!r} has no points")
        elif key not in stored:
            problems.append(f"{key!r} missing from the summary")
        elif not _same_entry(stored[key], actual[key]):
            problems.append(f"{key!r} is {stored[key]!r}, the segments say {actual[key]!r}")
    shown = "; ".join(problems[:3])
    return shown + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")


def _same_entry(stored: Any, actual: Mapping[str, Any]) -> bool:
    if not isinstance(stored, Mapping):
        return False
    try:
        value, want = float(stored["value"]), float(actual["value"])
        same_value = value == want or (math.isnan(value) and math.isnan(want))
        return (
            same_value
            and int(stored["step"]) == actual["step"]
            and int(stored["timestamp"]) == actual["timestamp"]
        )
    except (KeyError, TypeError, ValueError):
        return False


def _str_dict(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items()}


def _iso_or(value: object, default: str | None) -> str | None:
    if isinstance(value, str):
        try:
            datetime.fromisoformat(value)
            return value
        except ValueError:
            pass
    return default
