"""Removing soft-deleted experiments and recorders for good (``tracklite gc``).

Deleting is soft everywhere else in tracklite: ``delete_exp`` and ``delete_recorder`` only mark
metadata, so a mistake can be undone with a restore. :func:`collect` is the one place that
removes data. It works in two phases so that a crash or a concurrent restore never loses a
live recorder:

1. under the lock that a restore also takes, re-read the metadata, check it is still deleted
   and not in use, and rename the folder to a hidden ``.<id>.gc-<token>`` name in the same
   folder (atomic; listings skip hidden names, so the item vanishes at once);
2. remove the renamed folder with ``shutil.rmtree``, outside the lock.

A gc interrupted between the two phases leaves a hidden folder behind; the next
:func:`plan` lists it as a ``leftover`` and :func:`collect` removes it.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from .. import liveness
from ..errors import UnsafeLinkError
from ..store import layout, safefs
from ..store.locks import locked
from ..store.root import Meta, Store

Kind = Literal["experiment", "recorder", "leftover"]
#: ``progress(done, total)`` after each item.
ProgressFn = Callable[[int, int], None]

_TOMB = ".gc-"


@dataclass(frozen=True)
class Garbage:
    """One thing gc may remove: a deleted experiment (with all its recorders), a deleted
    recorder of an active experiment, or a leftover from an interrupted gc."""

    kind: Kind
    path: Path
    experiment_id: str
    recorder_id: str | None = None
    name: str | None = None
    experiment_name: str | None = None
    deleted_time: str | None = None
    size: int = 0
    files: int = 0


@dataclass
class Plan:
    """What :func:`collect` would remove, and what it keeps with the reason."""

    items: list[Garbage] = field(default_factory=list)
    kept: list[tuple[Garbage, str]] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(item.size for item in self.items)


@dataclass
class Result:
    removed: list[Garbage] = field(default_factory=list)
    skipped: list[tuple[Garbage, str]] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(item.size for item in self.removed)


def plan(root: str | os.PathLike[str], older_than: float | None = None) -> Plan:
    """Find soft-deleted data under ``root``; ``older_than`` (seconds) keeps recent deletions.

    Items that are still RUNNING (or hold a RUNNING recorder) are kept: a live process would
    recreate folders under a removed recorder. Once its process is gone
    (:mod:`tracklite.liveness` says DEAD), a recorder can be collected.
    """
    store = Store(Path(root))
    result = Plan()
    if not store.exists():
        return result
    cutoff = None if older_than is None else time.time() - older_than
    for name in sorted(os.listdir(store.root)):
        path = store.root / name
        if _is_tomb(name) and path.is_dir():
            result.items.append(_leftover(path, name))
            continue
        if not layout.is_id_name(name):
            continue
        exp = store.read_experiment(name)
        if exp is None:
            continue
        if exp.get("lifecycle") == "deleted":
            item = _measure(
                Garbage(
                    "experiment",
                    path,
                    exp["id"],
                    name=exp.get("name"),
                    experiment_name=exp.get("name"),
                    deleted_time=exp.get("deleted_time"),
                )
            )
            reason = _keep_reason(store, exp, path / layout.EXPERIMENT_FILE, cutoff)
            if reason is None:
                reason = next(
                    (
                        f"its recorder {rec['id']} is still running"
                        for rec in store.iter_recorders(exp["id"], include_deleted=True)
                        if _in_use(store, rec)
                    ),
                    None,
                )
            _sort(result, item, reason)
            continue
        for entry in sorted(os.listdir(path)):
            if _is_tomb(entry) and (path / entry).is_dir():
                result.items.append(_leftover(path / entry, name))
        for rec in store.iter_recorders(exp["id"], include_deleted=True):
            if rec.get("lifecycle") != "deleted":
                continue
            rec_dir = path / rec["id"]
            item = _measure(
                Garbage(
                    "recorder",
                    rec_dir,
                    exp["id"],
                    rec["id"],
                    name=rec.get("name"),
                    experiment_name=exp.get("name"),
                    deleted_time=rec.get("deleted_time"),
                )
            )
            reason = _keep_reason(store, rec, rec_dir / layout.RECORDER_FILE, cutoff)
            if reason is None and _in_use(store, rec):
                reason = "it is still running"
            _sort(result, item, reason)
    return result


def collect(
    root: str | os.PathLike[str],
    items: Iterable[Garbage] | None = None,
    older_than: float | None = None,
    progress: ProgressFn | None = None,
) -> Result:
    """Remove ``items`` (default: everything :func:`plan` finds) for good.

    Each item is checked again just before it goes: one restored or started since the plan is
    skipped, with the reason, never removed.
    """
    store = Store(Path(root))
    todo = list(plan(root, older_than).items if items is None else items)
    result = Result()
    for done, item in enumerate(todo, start=1):
        reason = _remove(store, item)
        if reason is None:
            result.removed.append(item)
        else:
            result.skipped.append((item, reason))
        if progress is not None:
            progress(done, len(todo))
    return result


# ------------------------------------------------------------------ removal


def _remove(store: Store, item: Garbage) -> str | None:
    """Remove one item; the reason it was left alone, or None when it is gone.

    The folder is reached from the store root without following links, renamed and removed
    relative to its parent's descriptor: nothing outside the store is moved or deleted, even
    if a folder on the way is swapped for a link meanwhile.
    """
    try:
        parent, name = safefs.open_parent(store.root, item.path)
    except FileNotFoundError:
        return "it was already removed"
    except UnsafeLinkError:
        return "it lies behind a symbolic link (run `tracklite check`)"
    with parent:
        if item.kind == "leftover":
            parent.rmtree(name)
            return None if parent.kind(name) is None else "could not remove it"
        if parent.kind(name) == "link":
            return "it is a symbolic link (run `tracklite check`)"
        if item.kind == "experiment":
            lock = store.root / layout.STORE_LOCK
        else:
            lock = item.path / layout.RECORDER_LOCK
        tomb = f".{name}{_TOMB}{secrets.token_hex(4)}"
        try:
            with locked(lock):
                reason = _still_garbage(store, item)
                if reason is not None:
                    return reason
                parent.rename(name, parent, tomb)
        except FileNotFoundError:
            return "it was already removed"
        parent.rmtree(tomb)
    return None


def _still_garbage(store: Store, item: Garbage) -> str | None:
    if item.kind == "experiment":
        exp = store.read_experiment(item.experiment_id)
        if exp is None:
            return "it was already removed"
        if exp.get("lifecycle") != "deleted":
            return "it was restored"
        for rec in store.iter_recorders(item.experiment_id, include_deleted=True):
            if _in_use(store, rec):
                return f"its recorder {rec['id']} is still running"
        return None
    assert item.recorder_id is not None
    current = store.read_recorder(item.experiment_id, item.recorder_id)
    if current is None:
        return "it was already removed"
    if current.get("lifecycle") != "deleted":
        return "it was restored"
    if _in_use(store, current):
        return "it is still running"
    return None


# ------------------------------------------------------------------ helpers


def _in_use(store: Store, rec: Meta) -> bool:
    """Whether a recorder's process may still write into it."""
    if rec.get("status") != liveness.RUNNING:
        return False
    folder = store.recorder_dir(rec["experiment_id"], rec["id"])
    return liveness.effective_status(rec, folder) != liveness.DEAD


def _keep_reason(store: Store, meta: Meta, meta_file: Path, cutoff: float | None) -> str | None:
    if cutoff is None:
        return None
    deleted = meta.get("deleted_time")
    try:
        # Metadata written by other tools may lack deleted_time: its last change stands in.
        moment = (
            datetime.fromisoformat(deleted).timestamp() if deleted else meta_file.stat().st_mtime
        )
    except (ValueError, OSError):
        return None
    if moment > cutoff:
        return "it was deleted too recently"
    return None


def _sort(result: Plan, item: Garbage, reason: str | None) -> None:
    if reason is None:
        result.items.append(item)
    else:
        result.kept.append((item, reason))


def _is_tomb(name: str) -> bool:
    return name.startswith(".") and _TOMB in name


def _leftover(path: Path, experiment_id: str) -> Garbage:
    return _measure(Garbage("leftover", path, experiment_id, name=path.name))


def _measure(item: Garbage) -> Garbage:
    size = files = 0
    for folder, _dirs, names in os.walk(item.path):
        for name in names:
            try:
                size += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue
            files += 1
    return Garbage(**{**item.__dict__, "size": size, "files": files})
