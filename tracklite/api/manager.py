"""``ExpManager``: finds, creates and activates experiments (qlib's ``MLflowExpManager``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError, UsageError
from ..store import layout
from ..store.names import check_name
from . import kinds
from .experiment import Experiment
from .recorder import Recorder
from .stores import store_for

if TYPE_CHECKING:
    import pandas as pd

    from ..mlflow.entities import Run

DEFAULT_EXP_NAME = "Experiment"


class ExpManager:
    """Holds the active experiment of this process and the tracking URI.

    ``uri=None`` means "``$TRACKLITE_URI``, else ``./tracklite-store``", looked up at each use.
    Constructing a manager does no I/O.
    """

    def __init__(
        self, uri: str | None = None, default_exp_name: str | None = DEFAULT_EXP_NAME
    ) -> None:
        self._default_uri = uri
        self._active_exp_uri: str | None = None
        self._default_exp_name = default_exp_name or DEFAULT_EXP_NAME
        self.active_experiment: Experiment | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(uri={self.uri})"

    # ------------------------------------------------------------------ URIs

    @property
    def default_uri(self) -> str:
        return self._default_uri if self._default_uri is not None else layout.default_uri()

    @default_uri.setter
    def default_uri(self, value: str | None) -> None:
        if value is not None:
            layout.uri_to_path(value)  # refuse a bad URI now, not at the first write
        self._default_uri = value

    @property
    def uri(self) -> str:
        """The URI in use: the one given to ``start(uri=...)`` while that run is active."""
        return self._active_exp_uri or self.default_uri

    def set_uri(self, uri: str | None) -> None:
        self.default_uri = uri

    # ------------------------------------------------------------------ runs

    def start_exp(
        self,
        *,
        experiment_id: str | None = None,
        experiment_name: str | None = None,
        recorder_id: str | None = None,
        recorder_name: str | None = None,
        uri: str | None = None,
        resume: bool = False,
        **kwargs: Any,
    ) -> Experiment:
        """Activate an experiment (found by id, else by name, created by name if missing) and
        start a recorder in it."""
        if self.active_experiment is not None:
            active = self.active_experiment.active_recorder
            raise UsageError(
                f"experiment {self.active_experiment.name!r} is already active"
                + (f" with recorder {active.id}" if active is not None else "")
                + "; call R.end_exp() before starting another run"
            )
        # Refuse bad names and URIs before anything is created (not after making the experiment).
        if experiment_name is not None:
            check_name(experiment_name, "experiment_name")
        if recorder_name is not None:
            check_name(recorder_name, "recorder_name")
        if uri is not None:
            layout.uri_to_path(uri)
        self._active_exp_uri = uri
        try:
            if experiment_name is None:
                experiment_name = self._default_exp_name
            if experiment_id is not None:
                experiment = self._get_exp(experiment_id=experiment_id)
            else:
                experiment, _ = self._get_or_create_exp(experiment_name=experiment_name)
            self.active_experiment = experiment
            experiment.start(recorder_id=recorder_id, recorder_name=recorder_name, resume=resume)
        except BaseException:
            self.active_experiment = None
            self._active_exp_uri = None
            raise
        return experiment

    def end_exp(self, recorder_status: str = Recorder.STATUS_S, **kwargs: Any) -> None:
        """End the active experiment's recorder with ``recorder_status``; no-op if none."""
        from .recorder import STATUSES

        if recorder_status not in STATUSES:
            raise UsageError(
                f"status must be one of {', '.join(STATUSES)}, got {recorder_status!r}"
            )
        self._active_exp_uri = None
        experiment = self.active_experiment
        if experiment is None:
            return
        try:
            experiment.end(recorder_status)
        finally:
            self.active_experiment = None

    # ------------------------------------------------------------------ experiments

    def create_exp(self, experiment_name: str | None = None) -> Experiment:
        """Create an experiment; :class:`ExpAlreadyExistError` if the name is taken."""
        if experiment_name is None:
            raise UsageError("Please input a valid experiment name before creating it.")
        meta = store_for(self.uri).create_experiment(experiment_name)
        return kinds.experiment_class()(meta["id"], meta["name"], self.uri)

    def get_exp(
        self,
        *,
        experiment_id: str | None = None,
        experiment_name: str | None = None,
        create: bool = True,
        start: bool = False,
    ) -> Experiment:
        """qlib's lookup table: the active experiment when nothing is named, else the default
        name; created if ``create``; with ``start`` and nothing active, activated and started."""
        if experiment_id is None and experiment_name is None:
            if self.active_experiment is not None:
                return self.active_experiment
            experiment_name = self._default_exp_name
        if create:
            experiment, _ = self._get_or_create_exp(
                experiment_id=experiment_id, experiment_name=experiment_name
            )
        else:
            experiment = self._get_exp(experiment_id=experiment_id, experiment_name=experiment_name)
        if start and self.active_experiment is None:
            self.active_experiment = experiment
            experiment.start()
        return experiment

    def _get_or_create_exp(
        self, experiment_id: str | None = None, experiment_name: str | None = None
    ) -> tuple[Experiment, bool]:
        if experiment_id is not None:
            try:
                return self._get_exp(experiment_id=experiment_id), False
            except NotFoundError:
                if experiment_name is None:
                    raise
        if experiment_name is None:
            raise UsageError("Please input at least one of experiment id or name.")
        # Lookup and creation happen under one store lock (no lost race, unlike qlib+MLflow).
        meta, created = store_for(self.uri).get_or_create_experiment(experiment_name)
        return kinds.experiment_class()(meta["id"], meta["name"], self.uri), created

    def _get_exp(
        self, experiment_id: str | None = None, experiment_name: str | None = None
    ) -> Experiment:
        if experiment_id is None and experiment_name is None:
            raise UsageError(
                "Please input at least one of experiment/recorder id or name before "
                "retrieving experiment/recorder."
            )
        store = store_for(self.uri)
        if experiment_id is not None:
            meta = store.read_experiment(str(experiment_id))
            if meta is None or meta.get("lifecycle") != "active":
                raise NotFoundError(
                    "No valid experiment has been found, please make sure the input experiment "
                    f"id is correct: no active experiment with id {experiment_id!r} in "
                    f"{store.root}."
                )
        else:
            assert experiment_name is not None
            found = store.find_experiment(experiment_name)
            if found is None:
                raise NotFoundError(
                    "No valid experiment has been found, please make sure the input experiment "
                    f"name is correct: no active experiment named {experiment_name!r} in "
                    f"{store.root}."
                )
            meta = found
        return kinds.experiment_class()(meta["id"], meta["name"], self.uri)

    def delete_exp(
        self, experiment_id: str | None = None, experiment_name: str | None = None
    ) -> None:
        """Soft-delete an experiment; its name can be used again afterwards."""
        if experiment_id is None and experiment_name is None:
            raise UsageError("Please input a valid experiment id or name before deleting.")
        experiment = self._get_exp(experiment_id=experiment_id, experiment_name=experiment_name)
        store_for(self.uri).set_experiment_lifecycle(experiment.id, "deleted")

    def list_experiments(self) -> dict[str, Experiment]:
        """Active experiments as ``{name: Experiment}``, oldest first."""
        return {
            meta["name"]: kinds.experiment_class()(meta["id"], meta["name"], self.uri)
            for meta in store_for(self.uri).iter_experiments()
        }

    def search_records(
        self, experiment_ids: Any = None, output_format: str = "pandas", **kwargs: Any
    ) -> pd.DataFrame | list[Run]:
        """A DataFrame shaped like ``mlflow.search_runs``' (see ``R.search_records``), or with
        ``output_format="list"`` a list of MLflow ``Run`` objects."""
        from . import run_list

        return run_list.search_records(self.uri, experiment_ids, output_format, **kwargs)
