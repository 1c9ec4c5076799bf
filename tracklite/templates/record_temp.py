"""qlib's record templates without qlib: prediction, signal analysis and (through qlib) backtest
records, with qlib's artifact paths, file names and metric names.

A template works on any recorder with qlib's recorder methods (``save_objects``,
``load_object``, ``list_artifacts``, ``log_metrics``): a ``tracklite.Recorder``, a recorder of
``tracklite.qlib``'s manager, or a recorder of qlib's own MLflow manager.

Files (all pickles) and metrics::

    SignalRecord     pred.pkl, label.pkl                        (no metrics)
    SigAnaRecord     sig_analysis/ic.pkl, ric.pkl               IC, ICIR, Rank IC, Rank ICIR
                     (+ long_short_r.pkl, long_avg_r.pkl with ana_long_short:
                      Long-Short Ann Return/Sharpe, Long-Avg Ann Return/Sharpe)
    HFSignalRecord   hg_sig_analysis/ic.pkl, ric.pkl, long_pre.pkl, short_pre.pkl,
                     long_short_r.pkl, long_avg_r.pkl                      IC, ICIR, Rank IC,
                     Rank ICIR, Long precision, Short precision, Long-Short Average Return/Sharpe
    PortAnaRecord    portfolio_analysis/...  (runs qlib's backtest; needs qlib)
    MultiPassPortAnaRecord  portfolio_analysis/multi_pass_port_analysis_<freq>.pkl
                     mean./std./mean_std.<excess kind>.<annualized_return|information_ratio>
                     (several backtests; needs qlib)

The contrib templates ``SignalMseRecord`` and ``MultiSegRecord`` are in :mod:`.contrib`.
"""

from __future__ import annotations

import builtins
import logging
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from .. import parquet_copies
from . import signal_analysis
from ._qlib import QlibRequiredError, load_errors, loaded, require_qlib

if TYPE_CHECKING:
    import os

    import pandas as pd

__all__ = [
    "ACRecordTemp",
    "HFSignalRecord",
    "LabelSource",
    "MultiPassPortAnaRecord",
    "PortAnaRecord",
    "Predictor",
    "QlibRequiredError",
    "RecordTemp",
    "RecorderLike",
    "SigAnaRecord",
    "SignalRecord",
]

logger = logging.getLogger("tracklite.templates")


class RecorderLike(Protocol):
    """What a template needs from a recorder (qlib's recorder API)."""

    experiment_id: Any

    def save_objects(
        self,
        local_path: str | os.PathLike[str] | None = None,
        artifact_path: str | None = None,
        **kwargs: Any,
    ) -> None: ...

    def load_object(self, name: str) -> Any: ...

    def list_artifacts(self, artifact_path: str | None = None) -> builtins.list[str]: ...

    def log_metrics(self, step: Any = None, **kwargs: Any) -> None: ...


@runtime_checkable
class Predictor(Protocol):
    """A model: anything with ``predict(dataset)`` returning a Series or a DataFrame on a
    ``(datetime, instrument)`` index."""

    def predict(self, dataset: Any) -> Any: ...


@runtime_checkable
class LabelSource(Protocol):
    """A dataset that can hand out its label, as qlib's ``DatasetH`` does.

    :class:`SignalRecord` calls ``prepare(segments="test", col_set="label", data_key="raw")``
    (without ``data_key`` if the method does not take it) and saves the result as ``label.pkl``.
    Any object with such a ``prepare`` qualifies; a label can also be given directly with
    ``SignalRecord(..., label=frame)``.
    """

    def prepare(self, segments: Any, col_set: Any = ..., **kwargs: Any) -> Any: ...


class RecordTemp:
    """Base of the record templates: where a record's files live and how to find them.

    ``artifact_path`` is the folder of this record's files (None: the artifact root);
    ``depend_cls`` is the record whose files this one needs. :meth:`load` and :meth:`check`
    fall back to ``depend_cls``'s folder, recursively, as qlib's templates do.
    """

    artifact_path: ClassVar[str | None] = None
    depend_cls: ClassVar[type[RecordTemp] | None] = None

    def __init__(self, recorder: RecorderLike | None = None) -> None:
        self._recorder = recorder

    @property
    def recorder(self) -> RecorderLike:
        if self._recorder is None:
            raise ValueError("This RecordTemp did not set recorder yet.")
        return self._recorder

    @classmethod
    def get_path(cls, path: str | None = None) -> str:
        """``artifact_path/path`` with the missing parts left out (``""`` for neither)."""
        return "/".join(part for part in (cls.artifact_path, path) if part is not None)

    def _lineage(self, parents: bool) -> builtins.list[type[RecordTemp]]:
        """This record's class, then (with ``parents``) each ``depend_cls`` in turn."""
        chain: builtins.list[type[RecordTemp]] = [type(self)]
        while parents and chain[-1].depend_cls is not None:
            dep = chain[-1].depend_cls
            assert dep is not None
            if dep in chain:
                raise TypeError(f"depend_cls of {type(self).__name__} forms a cycle")
            chain.append(dep)
        return chain

    def save(self, **objects: Any) -> None:
        """Pickle ``objects`` into this record's folder (``save_objects`` with the path set)."""
        self.recorder.save_objects(artifact_path=self.get_path() or None, **objects)

    def load(self, name: str, parents: bool = True) -> Any:
        """Load ``name`` from this record's folder, else (with ``parents``) from the folder of
        each ``depend_cls`` in turn: ``SigAnaRecord(rec).load("pred.pkl")`` finds the root
        ``pred.pkl``. The last load error is raised if none has it."""
        errors = load_errors()
        error: BaseException | None = None
        # Each class's own get_path, not a swap of self.__class__ as qlib does: no shared state
        # is touched, so templates of one recorder can be used from several threads.
        for cls in self._lineage(parents):
            try:
                return self.recorder.load_object(cls.get_path(name))
            except errors as exc:
                error = exc
        assert error is not None
        raise error

    def list(self) -> builtins.list[str]:
        """Names (relative to ``artifact_path``) of the files this record produces."""
        return []

    def check(self, include_self: bool = False, parents: bool = True) -> None:
        """``FileNotFoundError`` unless the files are present: this record's own (with
        ``include_self``) and those of every ``depend_cls`` (with ``parents``)."""
        listings: dict[str, builtins.list[str]] = {}
        chain = self._lineage(parents)
        for cls in chain if include_self else chain[1:]:
            # qlib casts self to the parent class and calls its list(); calling the parent's
            # method on self is the same without mutating self.
            for item in cls.list(self):
                path = cls.get_path(item)
                folder = path.rsplit("/", 1)[0] if "/" in path else ""
                if folder not in listings:
                    listings[folder] = self.recorder.list_artifacts(folder)
                if path not in listings[folder]:
                    raise FileNotFoundError(
                        f"{type(self).__name__} needs artifact {path!r} ({cls.__name__}), "
                        f"which the recorder does not have"
                    )

    def generate(self, **kwargs: Any) -> Any:
        """Compute and save the record's files and metrics."""
        raise NotImplementedError("Please implement the `generate` method.")


class ACRecordTemp(RecordTemp):
    """A record that checks its inputs first: generation is skipped (with a log message) when
    the files it depends on are missing, or, with ``skip_existing``, when its own files exist."""

    def __init__(self, recorder: RecorderLike | None = None, skip_existing: bool = False) -> None:
        super().__init__(recorder)
        self.skip_existing = skip_existing

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        """Run :meth:`_generate` unless skipped; save the dict it returns; return it."""
        if self.skip_existing:
            try:
                self.check(include_self=True, parents=False)
            except FileNotFoundError:
                pass
            else:
                logger.info("The results has previously generated, Generation skipped.")
                return None
        try:
            self.check()
        except FileNotFoundError as exc:
            logger.warning("The dependent data does not exists. Generation skipped. (%s)", exc)
            return None
        artifacts = self._generate(*args, **kwargs)
        if isinstance(artifacts, dict):
            self.save(**artifacts)
            save_parquet_copies(self, artifacts)
        return artifacts

    def _generate(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        """Compute the record; return ``{file name: object}`` to save, or None."""
        raise NotImplementedError("Please implement the `_generate` method")


def save_parquet_copies(record: RecordTemp, objects: dict[str, Any]) -> None:
    """Also save each pandas Series or DataFrame of ``objects`` as ``<stem>.parquet`` beside its
    pickle (:func:`tracklite.parquet_copies.save`), so that readers never need to unpickle. A
    recorder that copies qlib's analysis files itself (``copies_qlib_analysis``, the recorders
    of :mod:`tracklite.qlib`) already wrote those: they are not written twice."""
    folder = record.get_path() or None
    if getattr(record.recorder, "copies_qlib_analysis", False):
        prefix = f"{folder}/" if folder else ""
        objects = {
            n: o for n, o in objects.items() if not parquet_copies.is_qlib_analysis(prefix + n)
        }
    parquet_copies.save(record.recorder, objects, folder)


def _as_frame(data: Any, column: str) -> Any:
    import pandas as pd

    if isinstance(data, pd.Series):
        return data.to_frame(column if data.name is None else data.name)
    return data


class SignalRecord(RecordTemp):
    """Save a model's predictions (``pred.pkl``) and, when there is one, the label
    (``label.pkl``) at the artifact root.

    ``model`` is any :class:`Predictor`. The label comes from ``label`` when given (a
    DataFrame, or a Series made into one), else from a ``dataset`` that is a
    :class:`LabelSource`; with neither, no ``label.pkl`` is written.
    """

    def __init__(
        self,
        model: Any = None,
        dataset: Any = None,
        recorder: RecorderLike | None = None,
        label: Any = None,
    ) -> None:
        super().__init__(recorder)
        self.model = model
        self.dataset = dataset
        self.label = label

    @staticmethod
    def generate_label(dataset: Any) -> Any:
        """The raw test-segment label of a :class:`LabelSource` (None if it keeps no raw data)."""
        dataset_module = loaded("qlib.data.dataset")
        if dataset_module is not None and isinstance(dataset, dataset_module.DatasetH):
            # A real qlib dataset: let qlib pick the label exactly as its own template does
            # (it calls DatasetH.prepare even on subclasses that change prepare).
            qlib_records = require_qlib("qlib.workflow.record_temp", "labels of qlib datasets")
            return qlib_records.SignalRecord.generate_label(dataset)
        request: dict[str, Any] = {"segments": "test", "col_set": "label", "data_key": "raw"}
        try:
            return dataset.prepare(**request)
        except TypeError:
            del request["data_key"]  # a prepare without data keys: the label is the raw one
            return dataset.prepare(**request)
        except AttributeError as exc:
            logger.warning("the dataset has no raw label (%s); label.pkl will hold None", exc)
            return None

    def generate(self, **kwargs: Any) -> None:
        """Predict, save ``pred.pkl`` (a Series becomes a ``score`` column), then the label."""
        import pandas as pd

        if self.model is None or not isinstance(self.model, Predictor):
            raise TypeError(
                f"SignalRecord needs a model with predict(dataset), got {type(self.model).__name__}"
            )
        pred = self.model.predict(self.dataset)
        if isinstance(pred, pd.Series):
            pred = pred.to_frame("score")
        self.save(**{"pred.pkl": pred})
        logger.info(
            "Signal record 'pred.pkl' has been saved as the artifact of the Experiment %s",
            self.recorder.experiment_id,
        )
        if self.label is not None:
            self.save(**{"label.pkl": _as_frame(self.label, "label")})
        elif self._offers_label(self.dataset):
            self.save(**{"label.pkl": self.generate_label(self.dataset)})

    @staticmethod
    def _offers_label(dataset: Any) -> bool:
        dataset_module = loaded("qlib.data.dataset")
        if dataset_module is not None and isinstance(dataset, dataset_module.Dataset):
            # qlib's base Dataset has an abstract prepare(); only DatasetH holds a label.
            return isinstance(dataset, dataset_module.DatasetH)
        return isinstance(dataset, LabelSource)

    def list(self) -> builtins.list[str]:
        return ["pred.pkl", "label.pkl"]


def _ratio(numerator: Any, denominator: Any) -> Any:
    """``numerator / denominator`` in their own numpy type (a float32 series gives a float32
    ratio, as in qlib), x / 0 being inf or NaN rather than an error."""
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        return numerator / denominator


def _ic_metrics(ic: pd.Series, ric: pd.Series) -> dict[str, Any]:
    return {
        "IC": ic.mean(),
        "ICIR": _ratio(ic.mean(), ic.std()),
        "Rank IC": ric.mean(),
        "Rank ICIR": _ratio(ric.mean(), ric.std()),
    }


class SigAnaRecord(ACRecordTemp):
    """IC analysis of ``pred.pkl`` against ``label.pkl``, in ``sig_analysis/``.

    ``label_col`` picks the label column; ``ana_long_short`` adds the long-short analysis,
    annualised with ``ann_scaler`` periods per year.
    """

    artifact_path = "sig_analysis"
    depend_cls = SignalRecord

    def __init__(
        self,
        recorder: RecorderLike | None = None,
        ana_long_short: bool = False,
        ann_scaler: int = 252,
        label_col: int = 0,
        skip_existing: bool = False,
    ) -> None:
        super().__init__(recorder, skip_existing=skip_existing)
        self.ana_long_short = ana_long_short
        self.ann_scaler = ann_scaler
        self.label_col = label_col

    def _generate(self, label: pd.DataFrame | None = None, **kwargs: Any) -> dict[str, Any] | None:
        import pandas as pd

        pred = self.load("pred.pkl")
        if label is None:
            label = self.load("label.pkl")
        if not isinstance(label, pd.DataFrame) or label.empty:
            logger.warning("Empty label.")
            return None
        score, target = pred.iloc[:, 0], label.iloc[:, self.label_col]
        ic, ric = signal_analysis.calc_ic(score, target)
        metrics = _ic_metrics(ic, ric)
        objects: dict[str, Any] = {"ic.pkl": ic, "ric.pkl": ric}
        if self.ana_long_short:
            long_short, long_avg = signal_analysis.calc_long_short_return(score, target)
            root = self.ann_scaler**0.5
            # Computed in the series' own type, in qlib's order: float32 labels give the
            # float32-rounded values qlib logs.
            metrics.update(
                {
                    "Long-Short Ann Return": long_short.mean() * self.ann_scaler,
                    "Long-Short Ann Sharpe": _ratio(long_short.mean(), long_short.std()) * root,
                    "Long-Avg Ann Return": long_avg.mean() * self.ann_scaler,
                    "Long-Avg Ann Sharpe": _ratio(long_avg.mean(), long_avg.std()) * root,
                }
            )
            objects.update({"long_short_r.pkl": long_short, "long_avg_r.pkl": long_avg})
        self.recorder.log_metrics(**metrics)
        logger.info("signal analysis: %s", metrics)
        return objects

    def list(self) -> builtins.list[str]:
        names = ["ic.pkl", "ric.pkl"]
        if self.ana_long_short:
            names += ["long_short_r.pkl", "long_avg_r.pkl"]
        return names


class HFSignalRecord(SignalRecord):
    """High-frequency signal analysis (IC, precision, long-short) in ``hg_sig_analysis/``.

    Like qlib's, it does not check its inputs first and fails if ``pred.pkl`` or
    ``label.pkl`` is missing; extra keyword arguments (``model``, ``dataset``) are ignored.
    """

    artifact_path = "hg_sig_analysis"
    depend_cls = SignalRecord

    def __init__(self, recorder: RecorderLike | None = None, **kwargs: Any) -> None:
        super().__init__(recorder=recorder)

    def generate(self, **kwargs: Any) -> None:
        pred = self.load("pred.pkl")
        label = self.load("label.pkl")
        score, target = pred.iloc[:, 0], label.iloc[:, 0]
        long_pre, short_pre = signal_analysis.calc_long_short_prec(score, target, is_alpha=True)
        ic, ric = signal_analysis.calc_ic(score, target)
        long_short, long_avg = signal_analysis.calc_long_short_return(score, target)
        metrics = _ic_metrics(ic, ric)
        metrics.update(
            {
                "Long precision": long_pre.mean(),
                "Short precision": short_pre.mean(),
                "Long-Short Average Return": long_short.mean(),
                "Long-Short Average Sharpe": _ratio(long_short.mean(), long_short.std()),
            }
        )
        self.recorder.log_metrics(**metrics)
        self.save(
            **{
                "ic.pkl": ic,
                "ric.pkl": ric,
                "long_pre.pkl": long_pre,
                "short_pre.pkl": short_pre,
                "long_short_r.pkl": long_short,
                "long_avg_r.pkl": long_avg,
            }
        )
        save_parquet_copies(self, {"ic.pkl": ic, "ric.pkl": ric, "long_short_r.pkl": long_short})
        logger.info("high-frequency signal analysis: %s", metrics)

    def list(self) -> builtins.list[str]:
        return [
            "ic.pkl",
            "ric.pkl",
            "long_pre.pkl",
            "short_pre.pkl",
            "long_short_r.pkl",
            "long_avg_r.pkl",
        ]


class PortAnaRecord(ACRecordTemp):
    """Backtest ``pred.pkl`` with qlib and save the portfolio analysis in
    ``portfolio_analysis/`` (qlib's files and metrics, e.g. ``port_analysis_1day.pkl`` and
    ``1day.excess_return_with_cost.annualized_return``).

    The backtest is qlib's own (strategy, executor, exchange, market data), so this record
    needs qlib installed and initialised with data; without qlib it raises
    :class:`QlibRequiredError`. The arguments are qlib's ``PortAnaRecord``'s.
    """

    artifact_path = "portfolio_analysis"
    depend_cls = SignalRecord
    #: The qlib record (in ``qlib.workflow.record_temp``) that runs the backtest.
    qlib_record: ClassVar[str] = "PortAnaRecord"

    def __init__(
        self,
        recorder: RecorderLike | None = None,
        config: dict[str, Any] | None = None,
        risk_analysis_freq: builtins.list[str] | str | None = None,
        indicator_analysis_freq: builtins.list[str] | str | None = None,
        indicator_analysis_method: str | None = None,
        skip_existing: bool = False,
        **kwargs: Any,
    ) -> None:
        qlib_records = require_qlib(
            "qlib.workflow.record_temp", f"{type(self).__name__} (a backtest)"
        )
        super().__init__(recorder, skip_existing=skip_existing)
        #: qlib's own record, which runs the backtest and names the files.
        self.delegate: Any = getattr(qlib_records, self.qlib_record)(
            recorder=recorder,
            config=config,
            risk_analysis_freq=risk_analysis_freq,
            indicator_analysis_freq=indicator_analysis_freq,
            indicator_analysis_method=indicator_analysis_method,
            **kwargs,
        )
        # qlib's record loads pred.pkl with its own fallback, which only understands qlib's
        # LoadObjectError; route its loads through ours, which knows both kinds of recorder.
        self.delegate.load = self.load

    def list(self) -> builtins.list[str]:
        names: builtins.list[str] = self.delegate.list()
        return names

    def _generate(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        result: dict[str, Any] | None = self.delegate._generate(*args, **kwargs)
        return result


class MultiPassPortAnaRecord(PortAnaRecord):
    """``pass_num`` backtests of ``pred.pkl`` (with ``shuffle_init_score``, the first day's
    scores shuffled before each, so each pass starts from another position), summarised in
    ``portfolio_analysis/multi_pass_port_analysis_<freq>.pkl``: the mean, std and mean/std over
    the passes of each excess return's annualized_return and information_ratio, also logged as
    metrics ``mean.<excess kind>.<annualized_return|information_ratio>`` (and ``std.``,
    ``mean_std.``). Each pass also logs :class:`PortAnaRecord`'s metrics.

    qlib's own record runs the passes (it needs qlib, and a strategy config with a ``signal``);
    the shuffle uses numpy's global random state, so ``np.random.seed`` makes it repeatable.
    The shuffle is done on a copy of the scores: qlib's shuffles them in place through
    ``.values``, which pandas 3 makes read-only (``ValueError``), and reads a backtest without
    ``start_time`` as NaT there; here both work.
    """

    qlib_record = "MultiPassPortAnaRecord"

    def __init__(
        self,
        recorder: RecorderLike | None = None,
        pass_num: int = 10,
        shuffle_init_score: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            recorder, pass_num=pass_num, shuffle_init_score=shuffle_init_score, **kwargs
        )
        self.delegate.random_init = self._random_init

    def _random_init(self) -> None:
        """qlib's ``random_init``: the first backtest day's scores shuffled, as the signal."""
        import numpy as np
        import pandas as pd

        copy_config = require_qlib("qlib.utils.data", "MultiPassPortAnaRecord").deepcopy_basic_type
        pred = self.load("pred.pkl")
        dates = pred.index.get_level_values("datetime")
        start = self.delegate.backtest_config.get("start_time")
        first = dates.min() if start is None else dates[dates >= pd.Timestamp(start)].min()
        rows = np.asarray(dates == first)
        scores = pred["score"].to_numpy(copy=True)
        day = scores[rows]
        np.random.shuffle(day)  # the permutation qlib's in-place shuffle would draw
        scores[rows] = day
        strategy = copy_config(self.delegate.original_strategy)
        strategy["kwargs"]["signal"] = pred.assign(score=scores)
        self.delegate.strategy_config = strategy
