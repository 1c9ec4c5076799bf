"""``R``: the process-global entry point with qlib's ``QlibRecorder`` methods."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..errors import LoadObjectError, NotFoundError, RecorderInitializationError, UsageError
from . import exit_hooks
from .experiment import Experiment
from .manager import ExpManager
from .recorder import Recorder

if TYPE_CHECKING:
    import pandas as pd

    from ..mlflow.entities import Run


class QlibRecorder:
    """qlib's global recorder API over a tracklite store. Use the module-level ``R``."""

    def __init__(self, exp_manager: ExpManager | None = None) -> None:
        self.exp_manager = exp_manager if exp_manager is not None else ExpManager()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(manager={self.exp_manager!r})"

    def __reduce__(self) -> str | tuple[Any, ...]:
        # The module-level R is the process's own, like qlib's: it pickles by name and loads
        # as the R of the loading process (whose runs are its own). Other instances, with
        # their manager and active run, pickle by value.
        if self is R:
            return "R"
        return (QlibRecorder, (self.exp_manager,))

    def register(self, exp_manager: ExpManager) -> None:
        """Swap the experiment manager (what ``qlib.init`` does); refused while a run is active."""
        if self.exp_manager.active_experiment is not None:
            raise RecorderInitializationError(
                "Please don't reinitialize tracklite while an experiment is active: call "
                "R.end_exp() first."
            )
        self.exp_manager = exp_manager

    # ------------------------------------------------------------------ runs

    @contextmanager
    def start(
        self,
        *,
        experiment_id: str | None = None,
        experiment_name: str | None = None,
        recorder_id: str | None = None,
        recorder_name: str | None = None,
        uri: str | None = None,
        resume: bool = False,
    ) -> Iterator[Experiment]:
        """Run the ``with`` block inside a recorder; yields the Experiment.

        A normal exit ends the run FINISHED; any exception, KeyboardInterrupt included, ends it
        FAILED and is re-raised.
        """
        experiment = self.start_exp(
            experiment_id=experiment_id,
            experiment_name=experiment_name,
            recorder_id=recorder_id,
            recorder_name=recorder_name,
            uri=uri,
            resume=resume,
        )
        try:
            yield experiment
        except BaseException:
            self.end_exp(Recorder.STATUS_FA)
            raise
        self.end_exp(Recorder.STATUS_FI)

    def start_exp(
        self,
        *,
        experiment_id: str | None = None,
        experiment_name: str | None = None,
        recorder_id: str | None = None,
        recorder_name: str | None = None,
        uri: str | None = None,
        resume: bool = False,
    ) -> Experiment:
        """Start a run without a ``with`` block; end it with :meth:`end_exp`."""
        exit_hooks.install(self._end_at_exit)
        return self.exp_manager.start_exp(
            experiment_id=experiment_id,
            experiment_name=experiment_name,
            recorder_id=recorder_id,
            recorder_name=recorder_name,
            uri=uri,
            resume=resume,
        )

    def end_exp(self, recorder_status: str = Recorder.STATUS_FI) -> None:
        """End the active run with ``recorder_status`` (FINISHED by default); no-op if none."""
        self.exp_manager.end_exp(recorder_status)

    def _end_at_exit(self, status: str) -> None:
        # In a forked child this writes only the child's points (see Recorder.end_run).
        self.end_exp(status)

    # ------------------------------------------------------------------ lookups

    def search_records(self, experiment_ids: Any = None, **kwargs: Any) -> pd.DataFrame | list[Run]:
        """Recorders as a DataFrame with ``mlflow.search_runs``' columns (every active
        experiment's when ``experiment_ids`` is None).

        Keywords: ``filter_string`` (MLflow's search syntax), ``run_view_type`` (1 active,
        2 deleted, 3 all), ``max_results`` (no cap by default), ``order_by`` (list of
        ``"<column> [ASC|DESC]"``), ``output_format`` (``"pandas"``, or ``"list"`` for MLflow
        ``Run`` objects: ``r.info.run_id``, ``r.data.metrics``).
        """
        return self.exp_manager.search_records(experiment_ids, **kwargs)

    def list_experiments(self) -> dict[str, Experiment]:
        return self.exp_manager.list_experiments()

    def list_recorders(
        self, experiment_id: str | None = None, experiment_name: str | None = None
    ) -> dict[str, Recorder]:
        """Recorders of an experiment (created if missing, as in qlib), ``{id: Recorder}``,
        newest first."""
        experiment = self.get_exp(experiment_id=experiment_id, experiment_name=experiment_name)
        result = experiment.list_recorders()
        assert isinstance(result, dict)
        return result

    def get_exp(
        self,
        *,
        experiment_id: str | None = None,
        experiment_name: str | None = None,
        create: bool = True,
        start: bool = False,
    ) -> Experiment:
        if start:
            exit_hooks.install(self._end_at_exit)
        return self.exp_manager.get_exp(
            experiment_id=experiment_id,
            experiment_name=experiment_name,
            create=create,
            start=start,
        )

    def delete_exp(
        self, experiment_id: str | None = None, experiment_name: str | None = None
    ) -> None:
        self.exp_manager.delete_exp(experiment_id, experiment_name)

    def get_uri(self) -> str:
        return self.exp_manager.uri

    def set_uri(self, uri: str | None) -> None:
        """Set the default store URI (a plain path or ``file:`` URI)."""
        self.exp_manager.set_uri(uri)

    @contextmanager
    def uri_context(self, uri: str) -> Iterator[None]:
        """Use ``uri`` as the default store inside the ``with`` block."""
        previous = self.exp_manager._default_uri
        self.exp_manager.set_uri(uri)
        try:
            yield
        finally:
            self.exp_manager._default_uri = previous

    def get_recorder(
        self,
        *,
        recorder_id: str | None = None,
        recorder_name: str | None = None,
        experiment_id: str | None = None,
        experiment_name: str | None = None,
    ) -> Recorder:
        """The active recorder, or one found by id or name in the given (or active, or default)
        experiment. A recorder id is checked against that experiment."""
        experiment = self.get_exp(
            experiment_id=experiment_id, experiment_name=experiment_name, create=False
        )
        return experiment.get_recorder(recorder_id, recorder_name, create=False, start=False)

    def delete_recorder(
        self, recorder_id: str | None = None, recorder_name: str | None = None
    ) -> None:
        self.get_exp().delete_recorder(recorder_id, recorder_name)

    # ------------------------------------------------------------------ logging

    def _running(self) -> Recorder:
        """The active recorder, starting the default experiment and a recorder if none is."""
        return self.get_exp(start=True).get_recorder(start=True)

    def save_objects(
        self,
        local_path: str | os.PathLike[str] | None = None,
        artifact_path: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Save files or pickled objects into the active recorder (started if none is)."""
        if local_path is not None and kwargs:
            raise UsageError(
                "You can choose only one of `local_path`(save the files in a path) or "
                "`kwargs`(pass in the objects directly)"
            )
        self._running().save_objects(local_path, artifact_path, **kwargs)

    def load_object(self, name: str) -> Any:
        """Load a pickled artifact of the active recorder (else of the latest default one)."""
        try:
            # create=False: a failed load creates nothing (not even the default experiment).
            experiment = self.get_exp(create=False)
            recorder = experiment.get_recorder(create=False)
        except NotFoundError as exc:
            # qlib would start a new, empty run here and then fail to load from it.
            raise LoadObjectError(f"cannot load artifact {name!r}: {exc}") from exc
        return recorder.load_object(name)

    def log_params(self, **kwargs: Any) -> None:
        self._running().log_params(**kwargs)

    def log_metrics(self, step: int | None = None, **kwargs: Any) -> None:
        """Log one point per keyword at ``step`` into the active recorder (started if none)."""
        # The hot path of every training loop: go straight to the running recorder's buffer.
        experiment = self.exp_manager.active_experiment
        if experiment is not None:
            recorder = experiment.active_recorder
            if recorder is not None:
                buf = recorder._buffer
                if buf is not None and buf.running:
                    buf.log(step, kwargs)
                    return
        self._running().log_metrics(step, **kwargs)

    def log_artifact(
        self, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        self._running().log_artifact(local_path, artifact_path)

    def download_artifact(self, path: str, dst_path: str | None = None) -> str:
        """Copy an artifact of the active recorder to a local path; returns that path."""
        return self._running().download_artifact(path, dst_path)

    def set_tags(self, **kwargs: Any) -> None:
        self._running().set_tags(**kwargs)

    def flush(self) -> None:
        """Write every metric point accepted so far, in every recorder, to disk."""
        from ..metrics.writer import get_writer

        get_writer().flush()


R = QlibRecorder()
