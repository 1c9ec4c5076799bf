"""tracklite's record templates and signal analysis, without qlib: the numbers (against hand
computations and an independent pandas oracle), the files and metrics on a real store, the
``depend_cls`` fallback, ``check``, ``skip_existing``, and a template run in another process."""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tracklite import ExpManager, LoadObjectError, QlibRecorder, Recorder
from tracklite.templates import (
    ACRecordTemp,
    HFSignalRecord,
    LabelSource,
    MultiPassPortAnaRecord,
    MultiSegRecord,
    PortAnaRecord,
    QlibRequiredError,
    RecordTemp,
    SigAnaRecord,
    SignalMseRecord,
    SignalRecord,
    calc_ic,
    calc_long_short_prec,
    calc_long_short_return,
)

pytestmark = pytest.mark.usefixtures("clean_env")


def _has_qlib() -> bool:
    # tests/qlib is on sys.path's tests/ entry as a namespace package named "qlib" (no origin);
    # only a real installation counts.
    spec = importlib.util.find_spec("qlib")
    return spec is not None and spec.origin is not None


HAS_QLIB = _has_qlib()


# ---------------------------------------------------------------------------- synthetic data


def panel(
    seed: int = 0,
    dates: int = 12,
    instruments: int = 30,
    missing: float = 0.05,
    ties: bool = True,
) -> tuple[pd.Series, pd.Series]:
    """A prediction and a label on a (datetime, instrument) index, with gaps and ties."""
    rng = np.random.default_rng(seed)
    index = pd.MultiIndex.from_product(
        [
            pd.date_range("2021-03-01", periods=dates, freq="B"),
            [f"SZ{1 + i:06d}" for i in range(instruments)],
        ],
        names=["datetime", "instrument"],
    )
    score = rng.normal(size=len(index))
    label = 0.02 * rng.normal(size=len(index)) + 0.004 * score
    if ties:
        score = np.round(score, 1)
    score[rng.random(len(index)) < missing] = np.nan
    label[rng.random(len(index)) < missing] = np.nan
    return pd.Series(score, index=index, name="score"), pd.Series(label, index=index, name="LABEL0")


def one_date(pred: list[float], label: list[float]) -> tuple[pd.Series, pd.Series]:
    index = pd.MultiIndex.from_product(
        [[pd.Timestamp("2022-01-03")], [f"I{i}" for i in range(len(pred))]],
        names=["datetime", "instrument"],
    )
    return pd.Series(pred, index=index, dtype=float), pd.Series(label, index=index, dtype=float)


class Model:
    """Any object with predict(dataset) is a model."""

    def __init__(self, pred: pd.Series) -> None:
        self.pred = pred

    def predict(self, dataset: Any) -> pd.Series:
        return self.pred


class Dataset:
    """Offers its label the way qlib's DatasetH does, through prepare()."""

    def __init__(self, label: pd.DataFrame) -> None:
        self.label = label
        self.calls: list[dict[str, Any]] = []

    def prepare(self, segments: Any, col_set: Any = "__all", data_key: str = "infer") -> Any:
        self.calls.append({"segments": segments, "col_set": col_set, "data_key": data_key})
        return self.label


# ---------------------------------------------------------------------------- the numbers


def test_ic_on_hand_computed_cross_sections() -> None:
    pred, label = one_date([1, 2, 3, 4], [10, 20, 30, 40])
    ic, ric = calc_ic(pred, label)
    assert ic.iloc[0] == pytest.approx(1.0, abs=1e-15) and ric.iloc[0] == pytest.approx(1.0)
    pred, label = one_date([1, 2, 3, 4], [1, 4, 9, 100])
    ic, ric = calc_ic(pred, label)
    assert ric.iloc[0] == pytest.approx(1.0)  # monotone: rank correlation is exactly 1
    x, y = np.array([1, 2, 3, 4.0]), np.array([1, 4, 9, 100.0])
    assert ic.iloc[0] == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-15)
    # Ties share their average rank: ranks (1, 2.5, 2.5, 4) against (4, 3, 2, 1).
    pred, label = one_date([0.1, 0.5, 0.5, 0.9], [4, 3, 2, 1])
    _, ric = calc_ic(pred, label)
    expected = np.corrcoef([1, 2.5, 2.5, 4], [4, 3, 2, 1])[0, 1]
    assert ric.iloc[0] == pytest.approx(expected, abs=1e-15)
    assert ic.index.name == "datetime" and ic.name is None


def test_ic_skips_missing_pairs_and_is_nan_when_undefined() -> None:
    pred, label = one_date([1, 2, np.nan, 4, 5], [2, 4, 100, np.nan, 10])
    ic, ric = calc_ic(pred, label)
    assert ic.iloc[0] == pytest.approx(1.0) and ric.iloc[0] == pytest.approx(1.0)
    for p, y in ([[1, 1, 1], [1, 2, 3]], [[1, 2, 3], [0.1, 0.1, 0.1]], [[1, np.nan], [1, 2]]):
        ic, ric = calc_ic(*one_date(p, y))
        assert math.isnan(ic.iloc[0]) and math.isnan(ric.iloc[0])


def _oracle_ic(pred: pd.Series, label: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Per-date correlations with pandas alone (Spearman as Pearson of pandas' ranks)."""
    frame = pd.DataFrame({"p": pred, "y": label})
    ic, ric = {}, {}
    for date, rows in frame.groupby(level="datetime"):
        pairs = rows.dropna()
        ic[date] = pairs["p"].corr(pairs["y"])
        ric[date] = pairs["p"].rank().corr(pairs["y"].rank())
    return pd.Series(ic), pd.Series(ric)


@pytest.mark.parametrize("seed", range(4))
def test_ic_agrees_with_a_pandas_oracle(seed: int) -> None:
    pred, label = panel(seed)
    ic, ric = calc_ic(pred, label)
    want_ic, want_ric = _oracle_ic(pred, label)
    np.testing.assert_allclose(ic.to_numpy(), want_ic.to_numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(ric.to_numpy(), want_ric.to_numpy(), rtol=0, atol=1e-12)
    assert list(ic.index) == list(want_ic.index)
    ic_drop, _ = calc_ic(
        pred, label.where(label.index.get_level_values(0) != ic.index[0]), dropna=True
    )
    assert ic.index[0] not in ic_drop.index and len(ic_drop) == len(ic) - 1


def test_long_short_legs_follow_pandas_nlargest() -> None:
    # 10 rows -> legs of int(10 * 0.2) = 2. Ties at the top: the earlier row wins.
    pred, label = one_date(
        [5, 9, 9, 9, 1, 2, 0, 3, 4, 8], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    )
    long_short, long_avg = calc_long_short_return(pred, label)
    top, bottom = (2.0 + 3.0) / 2, (7.0 + 5.0) / 2
    assert long_short.iloc[0] == pytest.approx((top - bottom) / 2)
    assert long_avg.iloc[0] == pytest.approx(5.5) and long_avg.name == "label"
    assert long_short.name is None
    # Missing predictions fill a leg only when too few predictions are present.
    pred, label = one_date([np.nan] * 8 + [1, 2], [1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10])
    long_short, _ = calc_long_short_return(pred, label, quantile=0.3)
    top, bottom = (10 + 9 + 1) / 3, (9 + 10 + 1) / 3
    assert long_short.iloc[0] == pytest.approx((top - bottom) / 2)


def _oracle_long_short(pred: pd.Series, label: pd.Series, n_of: Callable[[int], int]) -> Any:
    """Legs with pandas' own nlargest/nsmallest and Series.mean, date by date."""
    frame = pd.DataFrame({"pred": pred, "label": label})
    top, bottom = {}, {}
    for date, rows in frame.groupby(level="datetime"):
        n = n_of(len(rows))
        top[date] = rows.nlargest(n, columns="pred")["label"].mean()
        bottom[date] = rows.nsmallest(n, columns="pred")["label"].mean()
    # Series of the per-date scalars first: their type (float32, or float64 once a plain NaN
    # is among them) decides the precision of the difference.
    return (pd.Series(top) - pd.Series(bottom)) / 2


@pytest.mark.parametrize("seed", range(3))
def test_long_short_keeps_float32_labels_bit_for_bit(seed: int) -> None:
    """qlib's labels are float32; its long-short numbers are float32 sums and means, in the
    order pandas' nlargest returns the rows. Ours are the same bits."""
    pred, label = panel(seed, dates=20, instruments=40, missing=0.1)
    label32 = label.astype("float32")
    long_short, average = calc_long_short_return(pred, label32)
    assert long_short.dtype == np.float32 and average.dtype == np.float32
    want = _oracle_long_short(pred, label32, lambda rows: int(rows * 0.2))
    np.testing.assert_array_equal(long_short.to_numpy(), want.to_numpy())
    np.testing.assert_array_equal(
        average.to_numpy(), label32.groupby(level="datetime").mean().to_numpy()
    )
    # A date with no label at all: pandas' mean is then a float NaN, and the Series float64.
    holes = label32.where(label32.index.get_level_values(0) != label32.index.levels[0][0])
    long_short, _ = calc_long_short_return(pred, holes)
    assert long_short.dtype == np.float64 and math.isnan(long_short.iloc[0])
    want = _oracle_long_short(pred, holes, lambda rows: int(rows * 0.2))
    assert want.dtype == np.float64
    np.testing.assert_array_equal(long_short.to_numpy(), want.to_numpy())


def test_float32_metrics_are_float32_arithmetic(recorder: Recorder) -> None:
    pred, label = panel(9)
    label32 = label.astype("float32").to_frame()
    SignalRecord(Model(pred), Dataset(label32), recorder).generate()
    SigAnaRecord(recorder, ana_long_short=True).generate()
    long_short = recorder.load_object("sig_analysis/long_short_r.pkl")
    assert long_short.dtype == np.float32
    sharpe = long_short.mean() / long_short.std() * 252**0.5
    if np.lib.NumpyVersion(np.__version__) >= "2.0.0":
        # NEP 50: a Python float no longer widens a float32 (numpy 1.x gives float64 here).
        assert isinstance(sharpe, np.float32)
    assert recorder.list_metrics()["Long-Short Ann Sharpe"] == float(sharpe)


def test_long_short_precision_by_hand() -> None:
    pred, label = one_date(
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0], [1.0, -1.0, 0.5, 0, 0, 0, 0, 0, -2.0, -3.0]
    )
    long_pre, short_pre = calc_long_short_prec(pred, label)
    assert long_pre.iloc[0] == 0.5 and short_pre.iloc[0] == 1.0
    assert long_pre.name == "label" and long_pre.index.name == "datetime"
    # Demeaned first (mean -0.45): the long leg's labels 1.45 and -0.55 -> one hit of two.
    long_pre, short_pre = calc_long_short_prec(pred, label, is_alpha=True)
    assert long_pre.iloc[0] == 0.5 and short_pre.iloc[0] == 1.0
    with pytest.raises(ValueError, match="more instruments"):
        calc_long_short_prec(*one_date([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]))


def test_precision_leaves_out_dates_with_empty_legs() -> None:
    pred, label = panel(3, dates=3, instruments=12, missing=0)
    keep = ~(
        (pred.index.get_level_values(0) == pred.index.levels[0][1])
        & (pred.index.get_level_values(1) > "SZ000004")
    )
    long_pre, _ = calc_long_short_prec(pred[keep], label[keep])
    assert list(long_pre.index) == [pred.index.levels[0][0], pred.index.levels[0][2]]


def test_analysis_on_a_long_history() -> None:
    """1,500 dates x 200 instruments: vectorised analysis (timed in no test: speed is measured
    by benchmarks, not asserted)."""
    pred, label = panel(1, dates=1500, instruments=200)
    ic, ric = calc_ic(pred, label)
    assert len(ic) == len(ric) == 1500
    calc_long_short_return(pred, label)
    calc_long_short_prec(pred, label, is_alpha=True)


# ---------------------------------------------------------------------------- templates on a store


@pytest.fixture
def recorder(R: QlibRecorder) -> Any:
    with R.start(experiment_name="templates"):
        yield R.get_recorder()


def test_paths_and_lists() -> None:
    assert RecordTemp.get_path() == "" and RecordTemp.get_path("x.pkl") == "x.pkl"
    assert SigAnaRecord.get_path() == "sig_analysis"
    assert SigAnaRecord.get_path("ic.pkl") == "sig_analysis/ic.pkl"
    assert HFSignalRecord.get_path("ic.pkl") == "hg_sig_analysis/ic.pkl"
    assert SignalRecord().list() == ["pred.pkl", "label.pkl"]
    assert SigAnaRecord().list() == ["ic.pkl", "ric.pkl"]
    assert SigAnaRecord(ana_long_short=True).list()[2:] == ["long_short_r.pkl", "long_avg_r.pkl"]
    assert SigAnaRecord.depend_cls is SignalRecord and HFSignalRecord.depend_cls is SignalRecord
    with pytest.raises(ValueError, match="did not set recorder"):
        _ = RecordTemp().recorder
    with pytest.raises(NotImplementedError):
        RecordTemp().generate()


def test_signal_record_saves_pred_and_label_from_the_dataset(recorder: Recorder) -> None:
    pred, label = panel()
    dataset = Dataset(label.to_frame())
    SignalRecord(Model(pred), dataset, recorder).generate()
    assert recorder.list_artifacts() == ["label.pkl", "pred.pkl"]
    saved = recorder.load_object("pred.pkl")
    pd.testing.assert_frame_equal(saved, pred.to_frame("score"))
    pd.testing.assert_frame_equal(recorder.load_object("label.pkl"), label.to_frame())
    assert dataset.calls == [{"segments": "test", "col_set": "label", "data_key": "raw"}]
    assert recorder.list_metrics() == {}


def test_signal_record_label_argument_and_other_datasets(R: QlibRecorder) -> None:
    pred, label = panel()

    class NoDataKey:
        def prepare(self, segments: Any, col_set: Any = None) -> Any:
            return label.to_frame("L")

    class NoRawData:
        def prepare(self, segments: Any, **kwargs: Any) -> Any:
            raise AttributeError("handler dropped its raw data")

    cases: list[tuple[Any, Any, Any]] = [
        (object(), label, label.to_frame()),  # label argument, Series -> frame
        (NoDataKey(), None, label.to_frame("L")),
        (NoRawData(), None, None),
    ]
    for dataset, given, expected in cases:
        with R.start(experiment_name="labels"):
            rec = R.get_recorder()
            SignalRecord(Model(pred), dataset, rec, label=given).generate()
            got = rec.load_object("label.pkl")
            if expected is None:
                assert got is None
            else:
                pd.testing.assert_frame_equal(got, expected)
    assert isinstance(NoDataKey(), LabelSource) and not isinstance(object(), LabelSource)
    with R.start(experiment_name="labels"):
        rec = R.get_recorder()
        SignalRecord(Model(pred), object(), rec).generate()  # no label anywhere: none saved
        assert rec.list_artifacts() == ["pred.pkl"]
        with pytest.raises(TypeError, match="predict"):
            SignalRecord(object(), None, rec).generate()


def test_sig_ana_record_files_and_metrics(recorder: Recorder) -> None:
    pred, label = panel(5)
    SignalRecord(Model(pred), Dataset(label.to_frame()), recorder).generate()
    objects = SigAnaRecord(recorder, ana_long_short=True, ann_scaler=250).generate()
    assert sorted(objects) == ["ic.pkl", "long_avg_r.pkl", "long_short_r.pkl", "ric.pkl"]
    assert recorder.list_artifacts("sig_analysis") == [
        "sig_analysis/ic.parquet",  # Parquet copies, for readers that must not unpickle
        "sig_analysis/ic.pkl",
        "sig_analysis/long_avg_r.parquet",
        "sig_analysis/long_avg_r.pkl",
        "sig_analysis/long_short_r.parquet",
        "sig_analysis/long_short_r.pkl",
        "sig_analysis/ric.parquet",
        "sig_analysis/ric.pkl",
    ]
    ic, ric = calc_ic(pred, label)
    long_short, long_avg = calc_long_short_return(pred, label)
    pd.testing.assert_series_equal(recorder.load_object("sig_analysis/ic.pkl"), ic)
    pd.testing.assert_series_equal(recorder.load_object("sig_analysis/long_avg_r.pkl"), long_avg)
    metrics = recorder.list_metrics()
    expected = {
        "IC": ic.mean(),
        "ICIR": ic.mean() / ic.std(),
        "Rank IC": ric.mean(),
        "Rank ICIR": ric.mean() / ric.std(),
        "Long-Short Ann Return": long_short.mean() * 250,
        "Long-Short Ann Sharpe": long_short.mean() / long_short.std() * 250**0.5,
        "Long-Avg Ann Return": long_avg.mean() * 250,
        "Long-Avg Ann Sharpe": long_avg.mean() / long_avg.std() * 250**0.5,
    }
    assert metrics.keys() == expected.keys()
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, rel=1e-12, abs=1e-15), key
    history = recorder.get_metric_history("IC")
    assert list(history["step"]) == [0]


def test_sig_ana_record_skips_without_its_inputs(recorder: Recorder, caplog: Any) -> None:
    pred, label = panel()
    recorder.save_objects(**{"pred.pkl": pred.to_frame("score")})
    with caplog.at_level(logging.WARNING, logger="tracklite.templates"):
        # As in qlib, label.pkl is required even when a label is passed in.
        assert SigAnaRecord(recorder).generate(label=label.to_frame()) is None
    assert "dependent data does not exists" in caplog.text
    assert recorder.list_artifacts() == ["pred.pkl"] and recorder.list_metrics() == {}
    recorder.save_objects(**{"label.pkl": label.iloc[:0].to_frame()})
    with caplog.at_level(logging.WARNING, logger="tracklite.templates"):
        assert SigAnaRecord(recorder).generate() is None
    assert "Empty label." in caplog.text
    objects = SigAnaRecord(recorder).generate(label=label.to_frame())  # the argument wins
    assert objects is not None and recorder.list_metrics()["IC"] == pytest.approx(
        calc_ic(pred, label)[0].mean()
    )


def test_skip_existing(recorder: Recorder, caplog: Any) -> None:
    pred, label = panel()
    SignalRecord(Model(pred), Dataset(label.to_frame()), recorder).generate()
    assert SigAnaRecord(recorder, skip_existing=True).generate() is not None
    ic_file = Path(recorder.get_local_dir()) / "artifacts" / "sig_analysis" / "ic.pkl"
    stamp = ic_file.stat().st_mtime_ns
    with caplog.at_level(logging.INFO, logger="tracklite.templates"):
        assert SigAnaRecord(recorder, skip_existing=True).generate() is None
    assert "Generation skipped" in caplog.text
    assert ic_file.stat().st_mtime_ns == stamp
    assert len(recorder.get_metric_history("IC")) == 1
    # Its own files exist, but long-short ones do not: it runs again.
    assert SigAnaRecord(recorder, ana_long_short=True, skip_existing=True).generate() is not None
    assert len(recorder.get_metric_history("IC")) == 2


def test_load_falls_back_to_depend_cls_and_check(recorder: Recorder) -> None:
    pred, label = panel()
    ana = SigAnaRecord(recorder)
    with pytest.raises(FileNotFoundError, match=r"pred\.pkl"):
        ana.check()
    ana.check(parents=False)  # nothing to check
    SignalRecord(Model(pred), Dataset(label.to_frame()), recorder).generate()
    ana.check()
    with pytest.raises(FileNotFoundError, match=r"sig_analysis/ic\.pkl"):
        ana.check(include_self=True)
    pd.testing.assert_frame_equal(ana.load("pred.pkl"), pred.to_frame("score"))
    with pytest.raises(LoadObjectError):
        ana.load("pred.pkl", parents=False)
    with pytest.raises(LoadObjectError):
        ana.load("nothing.pkl")
    ana.generate()
    ana.check(include_self=True)
    assert type(ana) is SigAnaRecord  # the fallback never re-classes the object

    class Deeper(SigAnaRecord):
        artifact_path = "deeper"
        depend_cls = SigAnaRecord

    deeper = Deeper(recorder)
    pd.testing.assert_series_equal(deeper.load("ic.pkl"), ana.load("ic.pkl"))
    pd.testing.assert_frame_equal(deeper.load("label.pkl"), label.to_frame())
    deeper.check()
    with pytest.raises(FileNotFoundError):
        deeper.check(include_self=True)


def test_ac_record_saves_what_generate_returns(recorder: Recorder) -> None:
    class Count(ACRecordTemp):
        artifact_path = "count"

        def _generate(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            return {"n.pkl": len(args) + len(kwargs)}

        def list(self) -> list[str]:
            return ["n.pkl"]

    assert Count(recorder).generate(1, 2, x=3) == {"n.pkl": 3}
    assert recorder.load_object("count/n.pkl") == 3
    Count(recorder).check(include_self=True)


def test_hf_signal_record(recorder: Recorder) -> None:
    pred, label = panel(7, dates=8, instruments=25)
    SignalRecord(Model(pred), Dataset(label.to_frame()), recorder).generate()
    HFSignalRecord(recorder, model=None, dataset=None).generate()
    names = HFSignalRecord(recorder).list()
    copies = ["ic.parquet", "ric.parquet", "long_short_r.parquet"]  # never need unpickling
    assert recorder.list_artifacts("hg_sig_analysis") == sorted(
        f"hg_sig_analysis/{n}" for n in [*names, *copies]
    )
    long_pre, short_pre = calc_long_short_prec(pred, label, is_alpha=True)
    long_short, _ = calc_long_short_return(pred, label)
    pd.testing.assert_series_equal(recorder.load_object("hg_sig_analysis/short_pre.pkl"), short_pre)
    metrics = recorder.list_metrics()
    assert metrics["Long precision"] == pytest.approx(long_pre.mean(), rel=1e-12)
    assert metrics["Long-Short Average Sharpe"] == pytest.approx(
        long_short.mean() / long_short.std(), rel=1e-12
    )
    assert set(metrics) == {
        "IC",
        "ICIR",
        "Rank IC",
        "Rank ICIR",
        "Long precision",
        "Short precision",
        "Long-Short Average Return",
        "Long-Short Average Sharpe",
    }


def test_hf_signal_record_needs_instruments_and_files(recorder: Recorder) -> None:
    with pytest.raises(LoadObjectError):
        HFSignalRecord(recorder).generate()
    pred, label = panel(dates=3, instruments=5)
    SignalRecord(Model(pred), Dataset(label.to_frame()), recorder).generate()
    with pytest.raises(ValueError, match="more instruments"):
        HFSignalRecord(recorder).generate()
    assert recorder.list_metrics() == {}


@pytest.mark.skipif(HAS_QLIB, reason="qlib is installed: tests/qlib runs PortAnaRecord")
@pytest.mark.skipif(HAS_QLIB, reason="qlib is installed here")
def test_port_ana_records_say_they_need_qlib(recorder: Recorder) -> None:
    for template in (PortAnaRecord, MultiPassPortAnaRecord):
        with pytest.raises(QlibRequiredError, match="pip install pyqlib") as caught:
            template(recorder)
        assert isinstance(caught.value, ImportError)
        assert template.__name__ in str(caught.value)


def test_signal_mse_record(recorder: Recorder) -> None:
    pred, label = panel(3, missing=0.1)
    with pytest.raises(FileNotFoundError, match=r"pred\.pkl"):
        SignalMseRecord(recorder).generate()
    SignalRecord(Model(pred), None, recorder, label=label).generate()
    # Only rows with both values count; rows are matched on the index, not on position.
    label = label.sample(frac=1.0, random_state=1)
    recorder.save_objects(**{"label.pkl": label.to_frame()})
    both = pd.concat([pred, label], axis=1, join="inner").dropna()
    expected = float(((both["score"] - both["LABEL0"]) ** 2).mean())
    metrics = SignalMseRecord(recorder).generate()
    assert metrics["MSE"] == pytest.approx(expected, rel=1e-12)
    assert recorder.list_metrics() == pytest.approx({"MSE": expected, "RMSE": expected**0.5})
    assert recorder.list_artifacts("sig_analysis") == [
        "sig_analysis/mse.pkl",
        "sig_analysis/rmse.pkl",
    ]
    assert recorder.load_object("sig_analysis/rmse.pkl") == pytest.approx(expected**0.5)


def test_multi_seg_record(recorder: Recorder) -> None:
    pred, label = panel(4)

    class SegmentModel:
        def predict(self, dataset: Any, segment: str = "test") -> pd.Series:
            return pred * (1 if segment == "test" else -1)

    dataset = Dataset(label.to_frame())
    with pytest.raises(ValueError, match="prepare"):
        MultiSegRecord(SegmentModel(), object(), recorder)
    results = MultiSegRecord(SegmentModel(), dataset, recorder).generate(
        {"valid": "valid", "test": "test"}, save=True
    )
    assert [c["segments"] for c in dataset.calls] == ["valid", "test"]
    assert recorder.list_artifacts() == ["results-test.pkl", "results-valid.pkl"]
    saved = recorder.load_object("results-test.pkl")
    assert sorted(saved) == ["all-IC", "all-Rank-IC", "mean-IC", "mean-Rank-IC"]
    ic, ric = calc_ic(pred, label)
    pd.testing.assert_series_equal(saved["all-IC"], ic)
    assert saved["mean-Rank-IC"] == pytest.approx(ric.mean())
    assert results["valid"]["mean-IC"] == pytest.approx(-ic.mean())
    assert recorder.list_metrics() == {}


# ---------------------------------------------------------------------------- processes


def test_templates_in_another_process(
    store_uri: str, tmp_path: Path, run_script: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    pred, label = panel(11)
    pred.to_frame("score").to_pickle(tmp_path / "pred.pkl")
    label.to_frame().to_pickle(tmp_path / "label.pkl")
    code = f"""
import pandas as pd
from tracklite import ExpManager, QlibRecorder
from tracklite.templates import SignalRecord, SigAnaRecord

class Model:
    def predict(self, dataset):
        return pd.read_pickle({str(tmp_path / "pred.pkl")!r})

R = QlibRecorder(ExpManager(uri={store_uri!r}))
with R.start(experiment_name="elsewhere"):
    rec = R.get_recorder()
    label = pd.read_pickle({str(tmp_path / "label.pkl")!r})
    SignalRecord(Model(), None, rec, label=label).generate()
    SigAnaRecord(rec, ana_long_short=True).generate()
    print(rec.id)
"""
    done = run_script(code, tmp_path / "cwd")
    assert done.returncode == 0, done.stderr
    reader = QlibRecorder(ExpManager(uri=store_uri))
    rec = reader.get_recorder(recorder_id=done.stdout.split()[-1], experiment_name="elsewhere")
    assert rec.status == "FINISHED"
    ic, _ = calc_ic(pred, label)
    assert rec.list_metrics()["IC"] == pytest.approx(ic.mean(), rel=1e-12)
    assert SigAnaRecord(rec).load("pred.pkl").equals(pred.to_frame("score"))
    meta = json.loads((Path(rec.get_local_dir()) / "recorder.json").read_text())
    assert "Long-Avg Ann Sharpe" in meta["metrics"]


def test_import_tracklite_imports_neither_qlib_nor_mlflow() -> None:
    code = (
        "import sys, tracklite, tracklite.templates, tracklite.online\n"
        "from tracklite import R  # also waits for qlib, without importing it\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('qlib', 'mlflow', 'pandas'))\n"
        "print(bad)\n"
        "print(sum(type(f).__name__ == '_AfterImport' for f in sys.meta_path))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.split() == ["[]", "1"]


def test_recorder_fixture_is_a_real_store(recorder: Recorder, store_uri: str) -> None:
    # The templates above wrote into this folder, not into memory.
    assert Path(recorder.get_local_dir()).is_relative_to(Path(store_uri))
    assert ExpManager(uri=store_uri).get_exp(experiment_name="templates", create=False)
