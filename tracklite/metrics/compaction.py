"""Compaction: merging a recorder's metric segments into one file (HPC inode quotas).

The merged file is published first and names, in its Parquet metadata, every segment it
replaces; only then are those deleted. A tracklite reader that lists both skips the replaced
ones, so no point is seen twice or missed while compaction runs. Compactions of one recorder
are serialised by the recorder's lock, and new segments written meanwhile are left alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ..store import layout, safefs
from ..store.ids import new_id
from ..store.locks import locked
from ..store.ref import RecorderRef
from . import segments


@dataclass
class CompactionReport:
    """What a compaction did."""

    recorders: int = 0
    compacted: int = 0
    segments_removed: int = 0
    points: int = 0
    errors: list[str] = field(default_factory=list)


def compact_recorder(ref: RecorderRef) -> int:
    """Merge the segments of one recorder into a single file; returns segments removed.

    The ``metrics/`` folder is opened from the store root without following links: a linked
    ``metrics/`` raises :class:`~tracklite.errors.UnsafeLinkError` and nothing is read, written
    or deleted through it.
    """
    try:
        folder = safefs.open_under(
            ref.root, [ref.experiment_id, ref.recorder_id, layout.METRICS_DIR]
        )
    except FileNotFoundError:
        return 0  # no metrics, or the recorder was removed (gc) or quarantined
    with folder:
        if sum(map(_is_segment, folder.names())) < 2:
            return 0
        with locked(ref.dir / layout.RECORDER_LOCK):
            return _compact_locked(folder)


def _compact_locked(folder: safefs.Dir) -> int:
    names = [n for n in folder.names() if _is_segment(n)]
    if len(names) < 2:
        return 0
    covered: list[str] = []
    for name in names:
        covered.append(name)
        covered.extend(segments.replaces_in(folder, name))
    # Named after the newest segment merged, so the merged file sorts where that one did:
    # before every segment published meanwhile (a bare new id would sort after them, and
    # readers would see those newer points before the older ones, per key).
    newest = names[-1][: -len(layout.SEGMENT_SUFFIX)].split("-")[0]
    name = f"{newest}-{new_id()}{layout.SEGMENT_SUFFIX}"
    # Exactly the listed files, streamed one at a time (memory stays bounded): a segment
    # another process publishes meanwhile is not in ``covered`` and is left alone.
    segments.write_merged(folder, names, replaces=sorted(set(covered)), name=name)
    removed = 0
    for old in sorted(set(covered)):
        if folder.unlink(old):
            removed += 1
    return removed


def _is_segment(name: str) -> bool:
    return name.endswith(layout.SEGMENT_SUFFIX) and not name.startswith(".")


def compact(uri: str | os.PathLike[str], experiment_id: str | None = None) -> CompactionReport:
    """Compact every recorder of a store (or of one experiment, by id or name)."""
    from ..store.root import Store

    store = Store.from_uri(uri)
    report = CompactionReport()
    if experiment_id is None:
        experiments = [m["id"] for m in store.iter_experiments(include_deleted=True)]
    else:
        meta = store.read_experiment(experiment_id) or store.find_experiment(experiment_id)
        if meta is None:
            raise ValueError(f"no experiment with id or name {experiment_id!r} in {store.root}")
        experiments = [meta["id"]]
    for exp_id in experiments:
        for rec_id in store.recorder_ids(exp_id):
            ref = RecorderRef(store.root, exp_id, rec_id)
            report.recorders += 1
            try:
                removed = compact_recorder(ref)
            except Exception as exc:
                report.errors.append(f"{ref.dir}: {exc}")
                continue
            if removed:
                report.compacted += 1
                report.segments_removed += removed
    return report
