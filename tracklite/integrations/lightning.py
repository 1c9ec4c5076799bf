"""PyTorch Lightning: a ``Logger`` for ``lightning.pytorch.Trainer``.

>>> Trainer(logger=LightningLogger(experiment_name="mnist"))  # doctest: +SKIP

Metrics are logged at the step Lightning passes (its count of optimizer steps), hyperparameters
as params (nested ones flattened with ``/``), and ``finalize`` ends an own run FINISHED or
FAILED as Lightning reports. Checkpoints are saved as artifacts under ``checkpoints/`` when
``log_model`` asks (as MLflow's logger does: ``True`` at the end, ``"all"`` as they are
written). Only global rank 0 writes.
"""

from __future__ import annotations

import os
from argparse import Namespace
from collections.abc import Mapping
from typing import Any, Literal

from ..api.recorder import Recorder
from ._framework import require
from ._params import flatten
from ._run import IntegrationRun

require("lightning.pytorch", "PyTorch Lightning", "lightning")
from lightning.pytorch.loggers.logger import Logger, rank_zero_experiment  # noqa: E402
from lightning.pytorch.utilities.rank_zero import rank_zero_only  # noqa: E402


class LightningLogger(Logger):  # type: ignore[misc]
    """Log a Lightning run into a tracklite recorder.

    ``experiment_name``, ``run_name`` and ``uri`` say where an own run is started when ``R``
    has no active run (``docs/integrations.md``); ``recorder`` writes into that recorder
    instead. ``name`` is the experiment id and ``version`` the recorder id, so checkpoints land
    in ``<save_dir or default_root_dir>/<experiment id>/<recorder id>/checkpoints``.
    ``prefix`` is put before every metric key (joined with ``-``, Lightning's way).
    """

    LOGGER_JOIN_CHAR = "-"

    def __init__(
        self,
        experiment_name: str | None = None,
        run_name: str | None = "lightning",
        uri: str | os.PathLike[str] | None = None,
        *,
        recorder: Recorder | None = None,
        save_dir: str | os.PathLike[str] | None = None,
        log_model: Literal[True, False, "all"] = False,
        prefix: str = "",
    ) -> None:
        super().__init__()
        self.run = IntegrationRun(
            experiment_name=experiment_name,
            run_name=run_name,
            uri=uri,
            recorder=recorder,
            resume=True,
        )
        self._save_dir = None if save_dir is None else os.fspath(save_dir)
        self._log_model = log_model
        self._prefix = prefix
        self._checkpoint_callback: Any = None
        self._logged_checkpoints: dict[str, float] = {}  # path -> mtime when saved

    # ------------------------------------------------------------------ identity

    @property
    @rank_zero_experiment  # type: ignore[untyped-decorator,misc]
    def experiment(self) -> Recorder:
        """The tracklite recorder written to (a no-op stand-in on ranks other than 0). After
        ``finalize`` it is still the same recorder, and writing to it does not reopen the run."""
        return self.run.latest()

    @property
    def name(self) -> str | None:
        """The experiment id (None on ranks other than 0)."""
        return self.run.latest().experiment_id if rank_zero_only.rank == 0 else None

    @property
    def version(self) -> str | None:
        """The recorder id (None on ranks other than 0)."""
        return self.run.latest().id if rank_zero_only.rank == 0 else None

    @property
    def save_dir(self) -> str | None:
        """Where Lightning writes this logger's local files (checkpoints); None means the
        trainer's ``default_root_dir``."""
        return self._save_dir

    @property
    def log_dir(self) -> str | None:
        """``save_dir/<experiment id>/<recorder id>`` (None without a ``save_dir``)."""
        if self._save_dir is None or self.name is None or self.version is None:
            return None
        return os.path.join(self._save_dir, self.name, self.version)

    # ------------------------------------------------------------------ logging

    @rank_zero_only  # type: ignore[untyped-decorator,misc]
    def log_hyperparams(
        self, params: Mapping[str, Any] | Namespace, *args: Any, **kwargs: Any
    ) -> None:
        values = vars(params) if isinstance(params, Namespace) else dict(params)
        self.run.log_params(flatten(values))

    @rank_zero_only  # type: ignore[untyped-decorator,misc]
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        join = self.LOGGER_JOIN_CHAR
        numbers = {
            f"{self._prefix}{join}{key}" if self._prefix else key: value
            for key, value in metrics.items()
            if not isinstance(value, str)
        }
        self.run.log_metrics(numbers, 0 if step is None else int(step))

    @rank_zero_only  # type: ignore[untyped-decorator,misc]
    def save(self) -> None:
        if self.run.started:
            self.run.latest().flush()

    @rank_zero_only  # type: ignore[untyped-decorator,misc]
    def finalize(self, status: str) -> None:
        if not self.run.started:
            return
        if self._checkpoint_callback is not None:
            self._save_checkpoints(self._checkpoint_callback)
        finished = status in ("success", "finished", "FINISHED")
        self.run.end(Recorder.STATUS_FI if finished else Recorder.STATUS_FA)

    # ------------------------------------------------------------------ checkpoints

    @rank_zero_only  # type: ignore[untyped-decorator,misc]
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        every = self._log_model == "all" or (
            self._log_model is True and checkpoint_callback.save_top_k == -1
        )
        if every:
            self._save_checkpoints(checkpoint_callback)
        elif self._log_model is True:
            self._checkpoint_callback = checkpoint_callback  # saved at finalize

    def _save_checkpoints(self, checkpoint_callback: Any) -> None:
        """Save each checkpoint file the callback knows that is new or rewritten since it was
        last saved, as ``checkpoints/<file name>``; tag the best one."""
        paths = {
            getattr(checkpoint_callback, "last_model_path", ""),
            getattr(checkpoint_callback, "best_model_path", ""),
            *getattr(checkpoint_callback, "best_k_models", {}),
        }
        recorder = self.run.recorder()
        for path in sorted(p for p in paths if p and os.path.isfile(p)):
            mtime = os.path.getmtime(path)
            if self._logged_checkpoints.get(path) == mtime:
                continue
            recorder.log_artifact(path, "checkpoints")
            self._logged_checkpoints[path] = mtime
        best = getattr(checkpoint_callback, "best_model_path", "")
        if best and best in self._logged_checkpoints:
            recorder.set_tags(best_checkpoint=f"checkpoints/{os.path.basename(best)}")
