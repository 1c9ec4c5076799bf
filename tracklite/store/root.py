"""A store folder: its marker, its experiments and their recorders' metadata.

:class:`Store` is a cheap handle on a root path (constructing one does no I/O), so API objects
can make one per call without caching, as qlib does with MLflow clients.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import (
    CorruptMetadataError,
    ExpAlreadyExistError,
    NotFoundError,
    StoreError,
    UnsafeLinkError,
    UsageError,
)
from . import atomic, changes, layout, metadata, safefs
from .clock import now_iso
from .ids import new_id
from .locks import locked
from .names import check_name
from .owner import owner_record

Meta = dict[str, Any]

#: What a lifecycle may be: soft-deleted items are kept until ``tracklite gc``.
LIFECYCLES = ("active", "deleted")

# Entries that may sit in a folder without making it "something else": editor and OS droppings.
_IGNORABLE = {".DS_Store", "Thumbs.db", ".ipynb_checkpoints"}


class Store:
    """A tracklite store rooted at an absolute folder path."""

    __slots__ = ("_ready", "root")

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._ready = False

    @classmethod
    def from_uri(cls, uri: str | os.PathLike[str]) -> Store:
        return cls(layout.uri_to_path(uri))

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # ---------------------------------------------------------------- the store marker

    def exists(self) -> bool:
        """Whether the folder holds a tracklite store (raises if it holds something else)."""
        if (self.root / layout.MARKER).is_file():
            self._check_marker()
            return True
        if self.root.is_dir():
            try:
                self._refuse_foreign()
            except StoreError:
                # Another process may have published the marker since we looked.
                if (self.root / layout.MARKER).is_file():
                    self._check_marker()
                    return True
                raise
        elif self.root.exists() and not self.root.is_dir():  # not made a folder meanwhile
            raise StoreError(f"tracklite store path {self.root} exists and is not a folder")
        return False

    def ensure(self) -> None:
        """Make sure the folder is a usable store, creating it (and its marker) if needed.

        A folder holding anything but a tracklite store (an MLflow ``mlruns`` folder, unrelated
        files) is refused and never written into.
        """
        # Handles are cached per process: re-check when the folder was removed (or replaced)
        # since, e.g. a notebook that deleted its store and starts again.
        if self._ready and (self.root / layout.MARKER).is_file():
            return
        if not self.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            marker = {"format_version": layout.FORMAT_VERSION, "created": now_iso()}
            # Two processes may race here; both write an equivalent marker atomically.
            atomic.write_json(self.root / layout.MARKER, marker, durable=True)
        self._ready = True

    def _check_marker(self) -> None:
        try:
            marker = atomic.read_json(self.root / layout.MARKER)
            version = int(marker["format_version"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(
                f"{self.root / layout.MARKER} is not a readable tracklite marker ({exc}); "
                "run `tracklite check --fix` on the store"
            ) from exc
        if version > layout.FORMAT_VERSION:
            raise StoreError(
                f"store {self.root} has format_version {version}; this tracklite reads up to "
                f"{layout.FORMAT_VERSION}: upgrade tracklite"
            )

    def _refuse_foreign(self) -> None:
        found = [entry for entry in _meaningful_entries(self.root)]
        if not found:
            return
        names = sorted(entry.name for entry in found)
        if (self.root / ".trash").is_dir() or any(
            (entry / "meta.yaml").is_file() for entry in found if entry.is_dir()
        ):
            raise StoreError(
                f"{self.root} looks like an MLflow file store (mlruns), not a tracklite store; "
                f"tracklite never writes into it. Import it with `tracklite import-mlflow "
                f"{self.root} --to NEW_FOLDER`, or point tracklite at another folder."
            )
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise StoreError(
            f"{self.root} is a non-empty folder without a tracklite marker ({layout.MARKER}); "
            f"found: {shown}. tracklite never writes into a folder holding something else: "
            "choose an empty or new folder (set TRACKLITE_URI or R.set_uri)."
        )

    # ---------------------------------------------------------------- experiments

    def experiment_dir(self, experiment_id: str) -> Path:
        return layout.experiment_dir(self.root, experiment_id)

    def read_experiment(self, experiment_id: str) -> Meta | None:
        """An experiment's metadata by id (deleted ones included), or None;
        :class:`CorruptMetadataError` if its ``experiment.json`` cannot be read,
        :class:`UnsafeLinkError` if its folder is a link."""
        if not _plain_id(experiment_id):
            return None
        return metadata.read(self.root, (experiment_id, layout.EXPERIMENT_FILE), experiment_id)

    def experiment_ids(self) -> list[str]:
        """Ids of every experiment folder (active and deleted, readable or not), oldest first
        (ids sort by time)."""
        try:
            entries = list(os.scandir(self.root))
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(e.name for e in entries if layout.is_id_name(e.name) and e.is_dir())

    def iter_experiments(self, include_deleted: bool = False) -> Iterator[Meta]:
        """Every experiment's metadata, oldest first; one whose ``experiment.json`` cannot be
        read is skipped with a :class:`CorruptMetadataWarning`."""
        if not self.exists():
            return
        for name in self.experiment_ids():
            try:
                meta = self.read_experiment(name)
            except (CorruptMetadataError, UnsafeLinkError) as exc:
                metadata.skipped(exc)
                continue
            if meta is None:
                continue
            if include_deleted or meta.get("lifecycle") == "active":
                yield meta

    def find_experiment(self, name: str) -> Meta | None:
        """The active experiment called ``name``, or None."""
        for meta in self.iter_experiments():
            if meta.get("name") == name:
                return meta
        return None

    def create_experiment(self, name: str, *, experiment_id: str | None = None) -> Meta:
        """Create an experiment; :class:`ExpAlreadyExistError` if an active one has that name."""
        meta, _ = self._create_experiment(name, experiment_id, must_be_new=True)
        return meta

    def get_or_create_experiment(self, name: str) -> tuple[Meta, bool]:
        """The active experiment called ``name``, created if missing. The lookup and the creation
        happen under one store lock, so racing processes end with a single experiment."""
        existing = self.find_experiment(name)
        if existing is not None:
            return existing, False
        return self._create_experiment(name, None, must_be_new=False)

    def _create_experiment(
        self, name: str, experiment_id: str | None, *, must_be_new: bool
    ) -> tuple[Meta, bool]:
        check_name(name, "experiment_name")
        self.ensure()
        with locked(self.root / layout.STORE_LOCK):
            existing = self.find_experiment(name)
            if existing is not None:
                if must_be_new:
                    raise ExpAlreadyExistError(
                        f"an experiment named {name!r} already exists (id {existing['id']})"
                    )
                return existing, False
            exp_id = experiment_id or new_id()
            if experiment_id is not None and self.experiment_dir(exp_id).exists():
                raise ExpAlreadyExistError(f"an experiment with id {exp_id!r} already exists")
            meta: Meta = {
                "format_version": layout.FORMAT_VERSION,
                "id": exp_id,
                "name": name,
                "lifecycle": "active",
                "created": now_iso(),
                "deleted_time": None,
            }
            # A listing never sees an experiment without its metadata.
            atomic.publish_folder(
                self.experiment_dir(exp_id),
                lambda folder: atomic.write_json(
                    folder / layout.EXPERIMENT_FILE, meta, durable=True
                ),
            )
            return meta, True

    def set_experiment_lifecycle(self, experiment_id: str, lifecycle: str) -> Meta:
        """Soft-delete (``"deleted"``) or restore (``"active"``) an experiment."""
        _check_lifecycle(lifecycle)
        self.ensure()
        with locked(self.root / layout.STORE_LOCK):
            meta = self.read_experiment(experiment_id)
            if meta is None:
                raise NotFoundError(f"no experiment with id {experiment_id!r} in {self.root}")
            if lifecycle == "active" and meta["lifecycle"] != "active":
                clash = self.find_experiment(meta["name"])
                if clash is not None:
                    raise ExpAlreadyExistError(
                        f"cannot restore experiment {experiment_id}: the name {meta['name']!r} "
                        f"is used by active experiment {clash['id']}"
                    )
            meta["lifecycle"] = lifecycle
            meta["deleted_time"] = now_iso() if lifecycle == "deleted" else None
            atomic.write_json(layout.experiment_file(self.root, experiment_id), meta, durable=True)
            return meta

    def update_experiment(self, experiment_id: str, mutate: Callable[[Meta], None]) -> Meta:
        """Read-modify-write an experiment's metadata under the store lock (tags, for one)."""
        self.ensure()
        with locked(self.root / layout.STORE_LOCK):
            meta = self.read_experiment(experiment_id)
            if meta is None:
                raise NotFoundError(f"no experiment with id {experiment_id!r} in {self.root}")
            mutate(meta)
            atomic.write_json(layout.experiment_file(self.root, experiment_id), meta, durable=True)
            return meta

    # ---------------------------------------------------------------- recorders

    def recorder_dir(self, experiment_id: str, recorder_id: str) -> Path:
        return layout.recorder_dir(self.root, experiment_id, recorder_id)

    def create_recorder(
        self,
        experiment_id: str,
        name: str,
        *,
        recorder_id: str | None = None,
        status: str = "RUNNING",
        start_time: str | None = None,
        extra: Meta | None = None,
    ) -> Meta:
        """Create a recorder folder with its ``recorder.json``; returns the metadata."""
        check_name(name, "recorder_name")
        exp_dir = self.experiment_dir(experiment_id)
        if not (exp_dir / layout.EXPERIMENT_FILE).is_file():
            raise NotFoundError(f"no experiment with id {experiment_id!r} in {self.root}")
        rec_id = recorder_id or new_id()
        meta: Meta = {
            "format_version": layout.FORMAT_VERSION,
            "id": rec_id,
            "name": name,
            "experiment_id": experiment_id,
            "status": status,
            "lifecycle": "active",
            "start_time": start_time,
            "end_time": None,
            "deleted_time": None,
            "owner": owner_record(),
            "params": {},
            "tags": {},
            "metrics": {},
        }
        if extra:
            meta.update(extra)
        with changes.noting(exp_dir, rec_id):
            atomic.publish_folder(
                self.recorder_dir(experiment_id, rec_id),
                lambda folder: atomic.write_json(folder / layout.RECORDER_FILE, meta),
            )
        return meta

    def read_recorder(self, experiment_id: str, recorder_id: str) -> Meta | None:
        """A recorder's metadata, or None if there is no such recorder in that experiment;
        :class:`CorruptMetadataError` if its ``recorder.json`` cannot be read,
        :class:`UnsafeLinkError` if its folder or its experiment's is a link."""
        if not (_plain_id(experiment_id) and _plain_id(recorder_id)):
            return None
        parts = (experiment_id, recorder_id, layout.RECORDER_FILE)
        return metadata.read(self.root, parts, recorder_id)

    def recorder_ids(self, experiment_id: str) -> list[str]:
        """Ids of every recorder folder in an experiment, newest first (ids sort by time)."""
        try:
            names = os.listdir(self.experiment_dir(experiment_id))
        except FileNotFoundError:
            return []
        return sorted((n for n in names if layout.is_id_name(n)), reverse=True)

    def iter_recorders(self, experiment_id: str, include_deleted: bool = False) -> Iterator[Meta]:
        """Metadata of the recorders of an experiment, newest created first; one whose
        ``recorder.json`` cannot be read is skipped with a :class:`CorruptMetadataWarning`."""
        rec_ids = self.recorder_ids(experiment_id)
        if not rec_ids or not _plain_id(experiment_id):
            return
        try:
            # Opened once: each recorder then costs a folder and a file opened below it.
            exp = safefs.open_under(self.root, [experiment_id])
        except (FileNotFoundError, NotADirectoryError):
            return
        except UnsafeLinkError as exc:
            metadata.skipped(exc)
            return
        with exp:
            for rec_id in rec_ids:
                try:
                    meta = metadata.read_in(exp, (rec_id, layout.RECORDER_FILE), rec_id)
                except (CorruptMetadataError, UnsafeLinkError) as exc:
                    metadata.skipped(exc, recorder=True)
                    continue
                if meta is None:
                    continue
                if include_deleted or meta.get("lifecycle") == "active":
                    yield meta

    def update_recorder(
        self, experiment_id: str, recorder_id: str, mutate: Callable[[Meta], None]
    ) -> Meta:
        """Read-modify-write a recorder's metadata under its lock; returns the new metadata."""
        rec_dir = self.recorder_dir(experiment_id, recorder_id)
        with locked(rec_dir / layout.RECORDER_LOCK):
            meta = self.read_recorder(experiment_id, recorder_id)
            if meta is None:
                raise NotFoundError(
                    f"no recorder {recorder_id!r} in experiment {experiment_id!r} of {self.root}"
                )
            # Journaled, so that searches re-read this recorder and no other (``mutate`` may
            # replace files beside recorder.json too: the latest-metrics summary).
            with changes.noting(rec_dir.parent, recorder_id):
                mutate(meta)
                atomic.write_json(rec_dir / layout.RECORDER_FILE, meta)
            return meta

    def set_recorder_lifecycle(self, experiment_id: str, recorder_id: str, lifecycle: str) -> Meta:
        """Soft-delete (``"deleted"``) or restore (``"active"``) a recorder."""
        _check_lifecycle(lifecycle)
        stamp = now_iso() if lifecycle == "deleted" else None

        def mutate(meta: Meta) -> None:
            meta["lifecycle"] = lifecycle
            meta["deleted_time"] = stamp

        return self.update_recorder(experiment_id, recorder_id, mutate)

    def locate_recorder(self, recorder_id: str) -> Meta | None:
        """Find a recorder by id in any experiment (one ``stat`` per experiment)."""
        if not _plain_id(recorder_id) or not self.exists():
            return None
        for name in self.experiment_ids():
            if self.recorder_dir(name, recorder_id).is_dir():
                return self.read_recorder(name, recorder_id)
        return None


def _check_lifecycle(lifecycle: str) -> None:
    # Listings know these two only: any other value would hide the item from both views.
    if lifecycle not in LIFECYCLES:
        raise UsageError(f"lifecycle must be 'active' or 'deleted', got {lifecycle!r}")


def _plain_id(value: str) -> bool:
    # Ids come from users (get_recorder(recorder_id=...)); one holding a separator or starting
    # with a dot must never be joined onto a path.
    return (
        isinstance(value, str)
        and bool(value)
        and "/" not in value
        and "\\" not in value
        and "\x00" not in value
        and not value.startswith(".")
    )


def _meaningful_entries(root: Path) -> list[Path]:
    """Entries of ``root`` other than empty folders and OS/editor droppings."""
    # Another process creating the store right now has a temporary marker in it: that is
    # tracklite's own, not "something else" (the marker appears when it is renamed).
    marker_temp = f"{atomic.TEMP_PREFIX}{layout.MARKER}."
    found = []
    for entry in root.iterdir():
        if entry.name in _IGNORABLE or entry.name.startswith(marker_temp):
            continue
        if entry.is_dir() and not entry.is_symlink():
            try:
                if not any(entry.iterdir()):
                    continue
            except OSError:
                pass
        found.append(entry)
    return found
