"""``Experiment``: a named group of recorders, with qlib's ``MLflowExperiment`` contract."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError, UsageError
from ..store.names import check_name
from . import kinds
from .recorder import Recorder
from .stores import store_for

if TYPE_CHECKING:
    import pandas as pd

    from ..mlflow.entities import Run


class Experiment:
    """An experiment bound to the store it was found in."""

    RT_D = "dict"
    RT_L = "list"
    #: qlib's cap for MLflow searches; tracklite has no cap and keeps the name for compatibility.
    UNLIMITED = None

    def __init__(self, id: str, name: str, uri: str) -> None:
        self.id = id
        self.name = name
        self._uri = uri
        self.active_recorder: Recorder | None = None
        self._default_rec_name = "mlflow_recorder"

    @property
    def uri(self) -> str:
        return self._uri

    @property
    def info(self) -> dict[str, Any]:
        recorders = list(self.list_recorders(rtype=Experiment.RT_D))
        return {
            "class": "Experiment",
            "id": self.id,
            "name": self.name,
            "active_recorder": self.active_recorder.id if self.active_recorder else None,
            "recorders": recorders,
        }

    def __repr__(self) -> str:
        # Unlike qlib, never list every recorder just to print an experiment.
        return f"Experiment(id={self.id!r}, name={self.name!r}, uri={self._uri!r})"

    def __str__(self) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Experiment) and (other.id, other._uri) == (self.id, self._uri)

    def __hash__(self) -> int:
        return hash(self.id)

    # ------------------------------------------------------------------ runs

    def start(
        self,
        *,
        recorder_id: str | None = None,
        recorder_name: str | None = None,
        resume: bool = False,
    ) -> Recorder:
        """Start a new recorder (or, with ``resume``, the one with that id or the latest with that
        name, created if missing) and make it the active one."""
        if recorder_name is None:
            recorder_name = self._default_rec_name
        check_name(recorder_name, "recorder_name")
        if resume:
            recorder, _ = self._get_or_create_rec(recorder_id, recorder_name)
        else:
            recorder = self.create_recorder(recorder_name)
        self.active_recorder = recorder
        try:
            recorder.start_run()
        except BaseException:
            self.active_recorder = None
            raise
        return recorder

    def end(self, recorder_status: str = Recorder.STATUS_S) -> None:
        """End the active recorder with ``recorder_status``."""
        if self.active_recorder is not None:
            self.active_recorder.end_run(recorder_status)
            self.active_recorder = None

    def create_recorder(self, recorder_name: str | None = None) -> Recorder:
        """A new recorder object, not yet started (nothing is written until ``start_run``)."""
        # "" is not "no name": it is refused when the recorder starts.
        name = self._default_rec_name if recorder_name is None else recorder_name
        return kinds.recorder_class()(self.id, self._uri, name)

    def get_recorder(
        self,
        recorder_id: str | None = None,
        recorder_name: str | None = None,
        create: bool = True,
        start: bool = False,
    ) -> Recorder:
        """qlib's lookup table: the active recorder when nothing is named; else by id, else the
        latest with that name; created (and, with ``start``, started and made active) if
        ``create`` and missing."""
        if recorder_id is None and recorder_name is None:
            if self.active_recorder is not None:
                return self.active_recorder
            recorder_name = self._default_rec_name
        if create:
            recorder, is_new = self._get_or_create_rec(recorder_id, recorder_name)
            if is_new and start:
                self.active_recorder = recorder
                recorder.start_run()
            return recorder
        return self._get_recorder(recorder_id, recorder_name)

    def _get_or_create_rec(
        self, recorder_id: str | None, recorder_name: str | None
    ) -> tuple[Recorder, bool]:
        try:
            return self._get_recorder(recorder_id, recorder_name), False
        except NotFoundError:
            return self.create_recorder(recorder_name), True

    def _get_recorder(
        self, recorder_id: str | None = None, recorder_name: str | None = None
    ) -> Recorder:
        if recorder_id is None and recorder_name is None:
            raise UsageError(
                "Please input at least one of recorder id or name before retrieving recorder."
            )
        store = store_for(self._uri)
        if recorder_id is not None:
            meta = store.read_recorder(self.id, recorder_id)
            if meta is None:
                raise NotFoundError(
                    f"No valid recorder has been found, please make sure the input recorder id "
                    f"is correct: no recorder {recorder_id!r} in experiment {self.name!r} "
                    f"({self.id})."
                )
            return kinds.recorder_class()._from_meta(self._uri, meta)
        for meta in store.iter_recorders(self.id):
            if meta["name"] == recorder_name:
                return kinds.recorder_class()._from_meta(self._uri, meta)
        raise NotFoundError(
            "No valid recorder has been found, please make sure the input recorder name is "
            f"correct: no recorder named {recorder_name!r} in experiment {self.name!r}."
        )

    def delete_recorder(
        self, recorder_id: str | None = None, recorder_name: str | None = None
    ) -> None:
        """Soft-delete a recorder of this experiment, by id or by (latest) name."""
        if recorder_id is None and recorder_name is None:
            raise UsageError("Please input a valid recorder id or name before deleting.")
        recorder = self._get_recorder(recorder_id, recorder_name)
        store_for(self._uri).set_recorder_lifecycle(self.id, recorder.ref.recorder_id, "deleted")

    # ------------------------------------------------------------------ listing

    def list_recorders(
        self,
        rtype: str = RT_D,
        max_results: int | None = None,
        status: str | None = None,
        filter_string: str = "",
    ) -> dict[str, Recorder] | list[Recorder]:
        """Active recorders, newest first, as ``{id: Recorder}`` (``"dict"``) or a list.

        ``status`` keeps one status; ``filter_string`` is MLflow's search syntax;
        ``max_results`` caps the count (no cap by default).
        """
        if rtype not in (Experiment.RT_D, Experiment.RT_L):
            raise NotImplementedError("This type of input is not supported")
        from ..search.listing import matching_recorder_columns

        found = matching_recorder_columns(
            store_for(self._uri),
            [self.id],
            filter_string=filter_string,
            status=status,
            max_results=max_results,
            fields=("id", "name", "status", "start_time", "end_time"),
        )
        root = store_for(self._uri).root
        with _no_collection():
            recorders = kinds.recorder_class()._listed(self._uri, root, self.id, found)
        if rtype == Experiment.RT_D:
            return {rec.id: rec for rec in recorders if rec.id is not None}
        return recorders

    def search_records(
        self, output_format: str = "pandas", **kwargs: Any
    ) -> pd.DataFrame | list[Run]:
        """``R.search_records`` limited to this experiment: ``mlflow.search_runs``' frame, or
        with ``output_format="list"`` a list of MLflow ``Run`` objects."""
        from . import run_list

        return run_list.search_records(self._uri, [self.id], output_format, **kwargs)


@contextlib.contextmanager
def _no_collection() -> Iterator[None]:
    """Pauses the cyclic garbage collector while many objects are built: they form no cycles,
    and every collection would walk all of them again (it more than halved listing 100,000
    recorders)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
