"""Point qlib at a tracklite store: an experiment manager qlib builds from its own config.

::

    import qlib
    qlib.init(
        provider_uri="~/.qlib/qlib_data/cn_data",
        exp_manager={
            "class": "TrackliteExpManager",
            "module_path": "tracklite.qlib",
            "kwargs": {"uri": "/shared/tracklite-store", "default_exp_name": "Experiment"},
        },
    )

From then on qlib's own ``R``, ``task_train``, record templates, ``RecorderCollector`` and
``OnlineToolR`` read and write that tracklite store; ``tracklite.R`` and the ``tracklite`` command
read the same store. The classes here are tracklite's ``ExpManager``/``Experiment``/``Recorder``
(their behaviour) and also subclasses of qlib's base classes (qlib's ``isinstance`` checks), and
their errors are both tracklite's and qlib's exception types (qlib's ``except`` clauses). Once
this module is imported, every experiment and recorder tracklite creates is of these classes.

Importing this module imports qlib (and, through ``qlib.workflow``, MLflow); ``import tracklite``
never imports this module. ``from tracklite import R`` imports it once qlib is loaded, and makes
qlib's ``R`` tracklite's (:mod:`tracklite.qlib.bridge`).
"""

from __future__ import annotations

import os
import pickle
from typing import TYPE_CHECKING, Any, ClassVar

from qlib.config import C as _qlib_config
from qlib.utils import exceptions as _qlib_errors
from qlib.workflow.exp import Experiment as _QlibExperiment
from qlib.workflow.expm import ExpManager as _QlibExpManager
from qlib.workflow.recorder import Recorder as _QlibRecorder

from .. import errors as _errors
from .. import parquet_copies as _parquet_copies
from ..api import kinds as _kinds
from ..api.experiment import Experiment as _Experiment
from ..api.manager import DEFAULT_EXP_NAME
from ..api.manager import ExpManager as _ExpManager
from ..api.recorder import Recorder as _Recorder
from ..api.stores import store_for

if TYPE_CHECKING:
    import pandas as pd

    from ..mlflow import MlflowClient
    from ..mlflow.entities import Run

__all__ = [
    "ExpAlreadyExistError",
    "LoadObjectError",
    "TrackliteExpManager",
    "TrackliteExperiment",
    "TrackliteRecorder",
    "as_qlib_recorder",
]


class LoadObjectError(_errors.LoadObjectError, _qlib_errors.LoadObjectError):  # type: ignore[misc]
    """An artifact could not be loaded; caught by ``except`` clauses of tracklite and of qlib."""


class ExpAlreadyExistError(
    _errors.ExpAlreadyExistError,
    _qlib_errors.ExpAlreadyExistError,  # type: ignore[misc]
):
    """An active experiment already has that name (tracklite's and qlib's error)."""


class TrackliteRecorder(_Recorder, _QlibRecorder):  # type: ignore[misc]
    """A tracklite recorder that qlib accepts as one of its own.

    Objects saved at qlib's standard analysis paths (``sig_analysis/ic.pkl``,
    ``portfolio_analysis/report_normal_1day.pkl``...) also get a Parquet copy beside the pickle,
    whichever template saves them (qlib's own too), so the page's qlib panels read no pickle.
    """

    #: This recorder copies qlib's analysis objects itself (tracklite's templates skip them).
    copies_qlib_analysis: ClassVar[bool] = True

    def save_objects(
        self,
        local_path: str | os.PathLike[str] | None = None,
        artifact_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        """tracklite's ``save_objects``, plus the Parquet copies of qlib's analysis objects."""
        super().save_objects(local_path, artifact_path, **kwargs)
        prefix = f"{artifact_path.strip('/')}/" if artifact_path else ""
        analysis = {
            name: obj
            for name, obj in kwargs.items()
            if _parquet_copies.is_qlib_analysis(prefix + name)
        }
        if analysis:
            _parquet_copies.save(self, analysis, artifact_path)

    @property
    def client(self) -> MlflowClient:
        """MLflow's client over this recorder's store, as qlib's recorders have:
        ``rec.client.get_metric_history(rec.id, "loss")``, ``get_run``, ``list_artifacts``,
        ``download_artifacts`` (``tracklite.mlflow``'s, reading the tracklite store)."""
        from ..mlflow import MlflowClient

        return MlflowClient.of_store(store_for(self.uri))

    def load_object(self, name: str, unpickler: type[Any] = pickle.Unpickler) -> Any:
        """Unpickle an artifact; a failure is :class:`LoadObjectError` (qlib's type too)."""
        try:
            return super().load_object(name, unpickler)
        except LoadObjectError:
            raise
        except _errors.LoadObjectError as exc:
            raise LoadObjectError(str(exc)) from (exc.__cause__ or exc)


def as_qlib_recorder(recorder: _Recorder) -> TrackliteRecorder:
    """The same recorder as a :class:`TrackliteRecorder` (itself if it already is one, as
    every recorder created after this module was imported is)."""
    if isinstance(recorder, TrackliteRecorder):
        return recorder
    # Same folder, same state: a fresh object of the subclass sharing the attribute values.
    adapted = TrackliteRecorder.__new__(TrackliteRecorder)
    adapted.__dict__.update(vars(recorder))
    return adapted


class TrackliteExperiment(_Experiment, _QlibExperiment):  # type: ignore[misc]
    """A tracklite experiment that qlib accepts as one of its own."""


class TrackliteExpManager(_ExpManager, _QlibExpManager):  # type: ignore[misc]
    """qlib's experiment manager over a tracklite store.

    ``uri`` is the store (a folder path or ``file:`` URI; None means ``$TRACKLITE_URI``, else
    ``./tracklite-store``). As with qlib's own manager, the default URI lives in qlib's config
    (``C.exp_manager["kwargs"]["uri"]``), so ``R.set_uri`` and ``R.uri_context`` change it there
    and qlib's worker processes, which rebuild the manager from that config, see the change.
    """

    def __init__(
        self, uri: str | None = None, default_exp_name: str | None = DEFAULT_EXP_NAME
    ) -> None:
        _ExpManager.__init__(self, uri, default_exp_name)

    # tracklite's ExpManager keeps its default URI in ``_default_uri``; here that attribute is
    # qlib's config entry, shared with everything qlib rebuilds from ``C``.
    @property
    def _default_uri(self) -> str | None:
        kwargs = _qlib_config.exp_manager.get("kwargs") or {}
        uri: str | None = kwargs.get("uri")
        return uri

    @_default_uri.setter
    def _default_uri(self, value: str | None) -> None:
        _qlib_config.exp_manager.setdefault("kwargs", {})["uri"] = value

    def search_records(
        self, experiment_ids: Any = None, output_format: str = "list", **kwargs: Any
    ) -> pd.DataFrame | list[Run]:
        """What qlib's ``R.search_records`` returns: a list of MLflow ``Run`` objects
        (``r.info.run_id``, ``r.data.metrics``), with no cap on ``max_results``;
        ``output_format="pandas"`` gives tracklite's DataFrame."""
        return super().search_records(experiment_ids, output_format, **kwargs)

    def create_exp(self, experiment_name: str | None = None) -> _Experiment:
        try:
            return super().create_exp(experiment_name)
        except ExpAlreadyExistError:
            raise
        except _errors.ExpAlreadyExistError as exc:
            raise ExpAlreadyExistError(str(exc)) from exc


def _adopt_active_run() -> None:
    """A run of ``tracklite.R`` started before qlib was loaded: its experiment and recorder
    objects become these classes, so qlib's code accepts them too. (The subclasses add no
    state, only qlib's base classes and error types, so the objects stay what they were.)"""
    from ..api.qlib_r import R

    experiment = R.exp_manager.active_experiment
    if experiment is None:
        return
    if type(experiment) is _Experiment:
        experiment.__class__ = TrackliteExperiment
    recorder = experiment.active_recorder
    if recorder is not None and type(recorder) is _Recorder:
        recorder.__class__ = TrackliteRecorder


# From now on tracklite hands out these classes, whichever manager or R creates the objects.
_kinds.hand_out(TrackliteExperiment, TrackliteRecorder)
_adopt_active_run()
