"""XGBoost: a ``TrainingCallback`` for ``xgboost.train`` and ``xgboost.cv``.

>>> callback = XGBoostCallback()
>>> xgb.train(params, dtrain, evals=[(dvalid, "valid")], callbacks=[callback])  # doctest: +SKIP

After each boosting round, the latest value of every metric in ``evals_log`` is logged at step
``epoch`` (XGBoost's round number, as it prints it) as ``<data>-<metric>`` (``valid-rmse``);
under ``xgboost.cv`` as ``<data>-<metric>-mean`` and ``<data>-<metric>-std``, the names of
``xgboost.cv``'s own result columns. Under XGBoost's collective (Dask, Spark, a
``CommunicatorContext``) only rank 0 logs.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

from ..api.recorder import Recorder
from ._framework import require
from ._run import IntegrationRun

xgboost = require("xgboost", "XGBoost", "xgboost")
# After the check that names XGBoost when it is missing:
from xgboost import collective  # noqa: E402
from xgboost.callback import TrainingCallback  # noqa: E402


class XGBoostCallback(TrainingCallback):  # type: ignore[misc]
    """Log XGBoost's evaluation history into a tracklite recorder.

    ``experiment_name``, ``run_name`` and ``uri`` say where an own run is started when ``R``
    has no active run (``docs/integrations.md``); ``recorder`` writes into that recorder
    instead. An own run ends FINISHED when training ends. ``log_model`` saves the trained
    booster as the artifact ``model.json``; ``best_iteration`` and ``best_score`` of an early
    stop are tags.
    """

    def __init__(
        self,
        *,
        experiment_name: str | None = None,
        run_name: str | None = "xgboost",
        uri: str | os.PathLike[str] | None = None,
        recorder: Recorder | None = None,
        log_model: bool = False,
    ) -> None:
        super().__init__()
        self.run = IntegrationRun(
            experiment_name=experiment_name, run_name=run_name, uri=uri, recorder=recorder
        )
        self.log_model = log_model
        self._leader = True

    def before_training(self, model: Any) -> Any:
        self._leader = collective.get_rank() == 0
        return model

    def after_iteration(self, model: Any, epoch: int, evals_log: Mapping[str, Any]) -> bool:
        if self._leader:
            self.run.log_metrics(latest_metrics(evals_log), epoch)
        return False  # never asks XGBoost to stop

    def after_training(self, model: Any) -> Any:
        if not self._leader:
            return model
        best = {
            name: value
            for name in ("best_iteration", "best_score")
            if (value := model.attr(name)) is not None
        }
        if best:
            self.run.recorder().set_tags(**best)
        if self.log_model and isinstance(model, xgboost.Booster):
            with tempfile.TemporaryDirectory(prefix="tracklite-xgboost-") as scratch:
                path = os.path.join(scratch, "model.json")
                model.save_model(path)
                self.run.recorder().log_artifact(path)
        self.run.end(Recorder.STATUS_FI)
        return model


def latest_metrics(evals_log: Mapping[str, Mapping[str, Sequence[Any]]]) -> dict[str, float]:
    """``{key: value}`` of the newest entry of every metric; ``(mean, std)`` pairs of
    cross-validation become two keys."""
    metrics: dict[str, float] = {}
    for data, per_metric in evals_log.items():
        for metric, history in per_metric.items():
            if not history:
                continue
            last = history[-1]
            if isinstance(last, tuple):
                metrics[f"{data}-{metric}-mean"], metrics[f"{data}-{metric}-std"] = last
            else:
                metrics[f"{data}-{metric}"] = last
    return metrics
