"""qlib's contrib record templates (``qlib.contrib.workflow``) without qlib.

Files (pickles) and metrics::

    SignalMseRecord  sig_analysis/mse.pkl, rmse.pkl             MSE, RMSE
    MultiSegRecord   results-<key>.pkl for each segment key     (no metrics)
                     (a dict: all-IC, mean-IC, all-Rank-IC, mean-Rank-IC)
"""

from __future__ import annotations

import builtins
import logging
from typing import Any

from . import signal_analysis
from .record_temp import RecorderLike, RecordTemp, SignalRecord

__all__ = ["MultiSegRecord", "SignalMseRecord"]

logger = logging.getLogger("tracklite.templates")


class SignalMseRecord(RecordTemp):
    """Mean squared error of ``pred.pkl`` against ``label.pkl``, in ``sig_analysis/``.

    Rows are matched on the index, and a row counts only where both values are present.
    Raises ``FileNotFoundError`` (before computing anything) if either file is missing.
    """

    artifact_path = "sig_analysis"
    depend_cls = SignalRecord

    def __init__(self, recorder: RecorderLike | None = None, **kwargs: Any) -> None:
        super().__init__(recorder)

    def generate(self, **kwargs: Any) -> dict[str, Any]:
        """Log ``MSE`` and ``RMSE``, save ``mse.pkl`` and ``rmse.pkl``; returns the metrics."""
        import numpy as np

        self.check()
        pred = self.load("pred.pkl")
        label = self.load("label.pkl")
        score, target = pred.iloc[:, 0], label.iloc[:, 0]
        if not score.index.equals(target.index):
            score, target = score.align(target, join="inner")
        # In the values' own precision (float32 labels stay float32), as qlib's computes it.
        error = np.asarray(score.to_numpy()) - np.asarray(target.to_numpy())
        error = error[~np.isnan(error)]
        if not len(error):
            raise ValueError("SignalMseRecord: pred.pkl and label.pkl have no row in common")
        mse = float(np.mean(error * error))
        metrics = {"MSE": mse, "RMSE": np.sqrt(mse)}
        self.recorder.log_metrics(**metrics)
        self.save(**{"mse.pkl": metrics["MSE"], "rmse.pkl": metrics["RMSE"]})
        logger.info("The evaluation results in SignalMseRecord is %s", metrics)
        return metrics

    def list(self) -> builtins.list[str]:
        return ["mse.pkl", "rmse.pkl"]


class MultiSegRecord(RecordTemp):
    """IC and rank IC of a model's predictions on several segments of a dataset.

    ``generate({"valid": "valid", "test": "test"}, save=True)`` predicts each segment with
    ``model.predict(dataset, segment)``, takes its raw label with
    ``dataset.prepare(segments=segment, col_set="label", data_key="raw")`` and, with ``save``,
    stores ``results-<key>.pkl``: ``{"all-IC": Series, "mean-IC": float, "all-Rank-IC": Series,
    "mean-Rank-IC": float}``. A qlib ``DatasetH`` qualifies, as does any dataset with such a
    ``prepare`` (called without ``data_key`` if it does not take one).
    """

    def __init__(self, model: Any, dataset: Any, recorder: RecorderLike | None = None) -> None:
        super().__init__(recorder)
        if not callable(getattr(dataset, "prepare", None)):
            raise ValueError(
                f"MultiSegRecord needs a dataset with prepare() (a qlib DatasetH or alike), "
                f"got {type(dataset).__name__}"
            )
        self.model = model
        self.dataset = dataset

    def _label(self, segment: Any) -> Any:
        request: dict[str, Any] = {"segments": segment, "col_set": "label", "data_key": "raw"}
        try:
            return self.dataset.prepare(**request)
        except TypeError:
            del request["data_key"]  # a prepare without data keys: the label is the raw one
            return self.dataset.prepare(**request)

    def generate(  # type: ignore[override]  # qlib's signature: segments come first
        self, segments: dict[str, Any], save: bool = False
    ) -> dict[str, dict[str, Any]]:
        """The results of each segment key (saved as ``results-<key>.pkl`` with ``save``)."""
        import pandas as pd

        every: dict[str, dict[str, Any]] = {}
        for key, segment in segments.items():
            pred = self.model.predict(self.dataset, segment)
            if isinstance(pred, pd.Series):
                pred = pred.to_frame("score")
            label = self._label(segment)
            ic, ric = signal_analysis.calc_ic(pred.iloc[:, 0], label.iloc[:, 0])
            results = {
                "all-IC": ic,
                "mean-IC": ic.mean(),
                "all-Rank-IC": ric,
                "mean-Rank-IC": ric.mean(),
            }
            logger.info(
                "--- Results for %s (%s) --- IC %.4f%%, ICIR %.4f, Rank IC %.4f%%, Rank ICIR %.4f",
                key,
                segment,
                100 * ic.mean(),
                ic.mean() / ic.std(),
                100 * ric.mean(),
                ric.mean() / ric.std(),
            )
            if save:
                self.save(**{f"results-{key}.pkl": results})
            every[key] = results
        return every
