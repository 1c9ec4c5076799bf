"""A store seen whole, as the ``tracklite`` command sees it: every experiment and recorder,
deleted ones too, by id; a recorder's folder, status, artifacts and metric history; soft delete
and restore.

Metadata comes as the dictionaries ``experiment.json`` and ``recorder.json`` hold
(``docs/format.md``). :meth:`Catalog.recorders` is the search of :func:`tracklite.search_records`
(the same filter, order and summary), giving each match's info rather than a DataFrame row.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..liveness import effective_status
from ..store import artifacts
from ..store.ref import RecorderRef
from ..store.root import Meta
from .stores import store_for

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Catalog", "Meta"]


class Catalog:
    """The store at ``uri`` (a folder path or ``file:`` URI). Constructing one does no I/O."""

    __slots__ = ("_store",)

    def __init__(self, uri: str | os.PathLike[str]) -> None:
        self._store = store_for(uri)

    def __repr__(self) -> str:
        return f"Catalog({str(self.root)!r})"

    @property
    def root(self) -> Path:
        """The store's folder."""
        return self._store.root

    def exists(self) -> bool:
        """Whether the folder holds a store; :class:`StoreError` if it holds something else."""
        return self._store.exists()

    def create(self) -> None:
        """Make the folder a store if it is not one yet (a folder of something else is refused)."""
        self._store.ensure()

    # ------------------------------------------------------------------ experiments

    def experiments(self, include_deleted: bool = False) -> list[Meta]:
        """Every experiment's metadata, oldest first (unreadable ones skipped with a warning)."""
        return list(self._store.iter_experiments(include_deleted=include_deleted))

    def experiment(self, experiment_id: str) -> Meta | None:
        """An experiment's metadata by id, deleted or not; None if there is none."""
        return self._store.read_experiment(experiment_id)

    def experiment_ids(self) -> list[str]:
        """Ids of every experiment folder, readable or not, oldest first."""
        return self._store.experiment_ids()

    def overview(self, experiment_id: str) -> tuple[dict[str, int], int | None]:
        """Active recorders counted by status (DEAD judged now) and the Unix milliseconds of
        the last start, end or metric point among them (from the search summary)."""
        from ..search.listing import experiment_overview

        return experiment_overview(self._store, experiment_id)

    def set_experiment_lifecycle(self, experiment_id: str, lifecycle: str) -> Meta:
        """Soft-delete (``"deleted"``) or restore (``"active"``) an experiment; restoring one
        whose name an active experiment took meanwhile raises :class:`ExpAlreadyExistError`."""
        return self._store.set_experiment_lifecycle(experiment_id, lifecycle)

    # ------------------------------------------------------------------ recorders

    def recorder_ids(self) -> list[str]:
        """The id of every recorder folder, readable or not, in no particular order (what a
        shortened id must stay unambiguous against): no pairs made, nothing sorted."""
        store = self._store
        return [
            rec_id for exp_id in store.experiment_ids() for rec_id in store.recorder_ids(exp_id)
        ]

    def recorder_locations(self) -> list[tuple[str, str]]:
        """``(recorder_id, experiment_id)`` for every recorder folder, readable or not,
        sorted by id."""
        store = self._store
        return sorted(
            (rec_id, exp_id)
            for exp_id in store.experiment_ids()
            for rec_id in store.recorder_ids(exp_id)
        )

    def recorder(self, experiment_id: str, recorder_id: str) -> Meta | None:
        """A recorder's metadata, with its whole latest-metrics summary (part of it may live
        beside ``recorder.json``, in ``latest.parquet``); None if that experiment has no such
        recorder."""
        from ..metrics import latest

        meta = self._store.read_recorder(experiment_id, recorder_id)
        if meta is None or not latest.has_file(meta):
            return meta
        return {**meta, "metrics": latest.summary(self._ref(meta).dir, meta)}

    def recorders(
        self,
        experiment_ids: Sequence[str],
        *,
        filter_string: str | None = "",
        run_view_type: int = 1,
        max_results: int | None = None,
        order_by: Sequence[str] | None = None,
        status: str | None = None,
    ) -> list[Meta]:
        """Id, name, experiment id, status (DEAD judged now), times, lifecycle and owner of
        the recorders of ``experiment_ids`` that match, newest first unless ``order_by`` says
        (the arguments of :func:`tracklite.search_records`; ``status`` keeps one status), from
        the search summary: no ``recorder.json`` is read for recorders that did not change."""
        from ..search.listing import matching_recorder_metas

        return matching_recorder_metas(
            self._store,
            experiment_ids,
            filter_string=filter_string,
            run_view_type=run_view_type,
            max_results=max_results,
            order_by=order_by,
            status=status,
        )

    def folder(self, meta: Meta) -> Path:
        """The recorder's folder."""
        return self._ref(meta).dir

    def status(self, meta: Meta) -> str:
        """The recorder's status as a reader should see it: DEAD for a RUNNING recorder whose
        process is gone (only a RUNNING one has its owner looked up)."""
        return effective_status(meta, self._ref(meta).dir)

    def set_recorder_lifecycle(self, meta: Meta, lifecycle: str) -> Meta:
        """Soft-delete (``"deleted"``) or restore (``"active"``) a recorder."""
        return self._store.set_recorder_lifecycle(meta["experiment_id"], meta["id"], lifecycle)

    def artifact_files(self, meta: Meta) -> list[tuple[str, int]]:
        """Every artifact file of the recorder as (path, size), sorted by path; links are
        left out, never followed."""
        return sorted(artifacts.files(self._ref(meta)))

    def metric_history(self, meta: Meta, key: str | None = None) -> pd.DataFrame:
        """Every logged point of the recorder (of ``key`` only, if given), in logging order:
        ``key``, ``step``, ``value``, ``timestamp``."""
        from ..metrics.history import recorder_history

        return recorder_history(self._ref(meta), key)

    def _ref(self, meta: Meta) -> RecorderRef:
        return RecorderRef(self.root, meta["experiment_id"], meta["id"])
