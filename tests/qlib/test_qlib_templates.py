"""qlib's record templates against tracklite's, on the same synthetic predictions and labels:
the same artifact names and contents, the same metric names and values (to 1e-12), through the
adapter and on qlib's own MLflow recorders; and PortAnaRecord's delegation to qlib's backtest."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("qlib.workflow")

import pandas as pd
from _qlib_support import FixedModel, panel, port_config, same_object
from conftest import QlibSession
from qlib.workflow import record_temp as qlib_records

from tracklite import templates


def walk(rec: Any, path: str | None = None) -> Iterator[str]:
    """Every artifact file of a recorder (qlib's list_artifacts lists one level), leaving out
    the Parquet copies tracklite's templates add beside qlib's pickles."""
    for entry in rec.list_artifacts(path):
        if entry.endswith(".parquet"):
            continue
        children = rec.list_artifacts(entry)
        if children and children != [entry]:
            yield from walk(rec, entry)
        else:
            yield entry


def run_records(R: Any, module: Any, pred: pd.DataFrame, label: pd.DataFrame) -> Any:
    """SignalRecord, SigAnaRecord (with long-short) and HFSignalRecord of ``module``."""
    with R.start(experiment_name="records", recorder_name=module.__name__):
        rec = R.get_recorder()
        module.SignalRecord(FixedModel(pred["score"]), None, rec).generate()
        rec.save_objects(**{"label.pkl": label})
        module.SigAnaRecord(rec, ana_long_short=True, ann_scaler=250).generate()
        module.HFSignalRecord(rec).generate()
    return rec


def assert_same_records(ours: Any, theirs: Any) -> None:
    files = sorted(walk(theirs))
    assert sorted(walk(ours)) == files
    assert {
        "pred.pkl",
        "label.pkl",
        "sig_analysis/ic.pkl",
        "sig_analysis/long_avg_r.pkl",
        "hg_sig_analysis/short_pre.pkl",
    } <= set(files)
    for name in files:
        if name.startswith("code_"):
            continue
        same_object(ours.load_object(name), theirs.load_object(name))
    mine, qlibs = ours.list_metrics(), theirs.list_metrics()
    assert (
        sorted(mine)
        == sorted(qlibs)
        == sorted(
            [
                "IC",
                "ICIR",
                "Rank IC",
                "Rank ICIR",
                "Long-Short Ann Return",
                "Long-Short Ann Sharpe",
                "Long-Avg Ann Return",
                "Long-Avg Ann Sharpe",
                "Long precision",
                "Short precision",
                "Long-Short Average Return",
                "Long-Short Average Sharpe",
            ]
        )
    )
    for key, value in qlibs.items():
        assert mine[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key


@pytest.mark.parametrize(
    "data",
    [dict(seed=0), dict(seed=1, ties=False, missing=0.0), dict(seed=2, missing=0.3)],
    ids=["ties-and-gaps", "clean", "many-gaps"],
)
def test_same_artifacts_and_metrics_as_qlib(
    qlib_tracklite: QlibSession, data: dict[str, Any]
) -> None:
    pred, label = panel(**data)
    theirs = run_records(qlib_tracklite.R, qlib_records, pred, label)
    ours = run_records(qlib_tracklite.R, templates, pred, label)
    assert_same_records(ours, theirs)


def test_templates_cross_over(qlib_tracklite: QlibSession) -> None:
    """Each side's analysis of the other side's signal record: the depend_cls fallback of
    qlib's templates works on the adapter's recorders, and tracklite's on qlib's files."""
    R = qlib_tracklite.R
    pred, label = panel(4)
    with R.start(experiment_name="cross"):
        rec = R.get_recorder()
        templates.SignalRecord(FixedModel(pred["score"]), None, rec, label=label).generate()
        qlib_records.SigAnaRecord(rec).generate()
        assert qlib_records.SigAnaRecord(rec).load("pred.pkl").equals(pred)
        qlib_records.SigAnaRecord(rec).check(include_self=True)
        templates.SigAnaRecord(rec).check(include_self=True)
        qlib_ic = rec.load_object("sig_analysis/ic.pkl")
        assert templates.SigAnaRecord(rec, skip_existing=True).generate() is None
        ours = templates.SigAnaRecord(rec).generate()
        same_object(ours["ic.pkl"], qlib_ic)
        # qlib's skip_existing on files tracklite wrote.
        assert qlib_records.SigAnaRecord(rec, skip_existing=True).generate() is None


def test_tracklite_templates_on_qlib_mlflow_recorders(qlib_mlflow: QlibSession) -> None:
    """tracklite's templates take qlib's MLflow recorders too, falling back on qlib's own
    LoadObjectError, and agree with qlib's templates there."""
    R = qlib_mlflow.R
    pred, label = panel(5)
    theirs = run_records(R, qlib_records, pred, label)
    ours = run_records(R, templates, pred, label)
    assert type(ours).__name__ == "MLflowRecorder"
    assert_same_records(ours, theirs)
    assert templates.SigAnaRecord(ours).load("label.pkl").equals(label)


def test_signal_record_label_from_a_qlib_dataset(qlib_market: QlibSession) -> None:
    """With a real qlib DatasetH, tracklite's SignalRecord saves the label qlib's does."""
    from _qlib_support import market_task
    from qlib.utils import init_instance_by_config

    R = qlib_market.R
    task = market_task()
    dataset = init_instance_by_config(task["dataset"])
    model = init_instance_by_config(task["model"])
    model.fit(dataset)
    recs = []
    for module in (qlib_records, templates):
        with R.start(experiment_name="dataset"):
            rec = R.get_recorder()
            module.SignalRecord(model, dataset, rec).generate()
            recs.append(rec)
    theirs, ours = recs
    assert sorted(walk(ours)) == sorted(walk(theirs)) == ["label.pkl", "pred.pkl"]
    for name in ("pred.pkl", "label.pkl"):
        same_object(ours.load_object(name), theirs.load_object(name))
    label = ours.load_object("label.pkl")
    assert list(label.columns) == ["LABEL0"] and len(label) > 0


def test_port_ana_record_runs_qlibs_backtest(qlib_market: QlibSession) -> None:
    """tracklite's PortAnaRecord hands the backtest to qlib: same files, same metrics."""
    from _qlib_support import market_calendar

    R = qlib_market.R
    cal = market_calendar()
    codes = [f"SH{600000 + i}" for i in range(12)]
    index = pd.MultiIndex.from_product([cal[5:40], codes], names=["datetime", "instrument"])
    pred, _ = panel(8)
    pred = pd.DataFrame(
        {
            "score": pd.Series(range(len(index)), dtype=float)
            .sample(frac=1, random_state=3)
            .to_numpy()
        },
        index=index,
    )
    recs = []
    for module in (qlib_records, templates):
        with R.start(experiment_name="backtest"):
            rec = R.get_recorder()
            rec.save_objects(**{"pred.pkl": pred, "label.pkl": pred})
            record = module.PortAnaRecord(rec, port_config(), risk_analysis_freq="day")
            assert record.list() == [
                "report_normal_1day.pkl",
                "positions_normal_1day.pkl",
                "port_analysis_1day.pkl",
                "indicator_analysis_1day.pkl",
            ]
            record.generate()
            record.check(include_self=True)
            recs.append(rec)
    theirs, ours = recs
    files = sorted(walk(theirs))
    assert sorted(walk(ours)) == files
    assert "portfolio_analysis/port_analysis_1day.pkl" in files
    for name in (
        "portfolio_analysis/port_analysis_1day.pkl",
        "portfolio_analysis/report_normal_1day.pkl",
        "portfolio_analysis/indicator_analysis_1day.pkl",
    ):
        same_object(ours.load_object(name), theirs.load_object(name))
    mine, qlibs = ours.list_metrics(), theirs.list_metrics()
    assert "1day.excess_return_with_cost.annualized_return" in qlibs
    assert mine.keys() == qlibs.keys()
    for key, value in qlibs.items():
        assert mine[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
    # Skips like qlib's when its input is missing, and with skip_existing when done.
    with R.start(experiment_name="backtest"):
        rec = R.get_recorder()
        assert templates.PortAnaRecord(rec, port_config()).generate() is None
        assert rec.list_metrics() == {}
    assert templates.PortAnaRecord(ours, port_config(), skip_existing=True).generate() is None


def test_tracklite_templates_in_a_qlib_task(qlib_market: QlibSession) -> None:
    """qlib's task_train builds records from a task config; tracklite's templates can be named
    there (module_path "tracklite.templates") and store what qlib's store."""
    from _qlib_support import market_task
    from qlib.model.trainer import task_train

    recs = []
    for module_path in ("qlib.workflow.record_temp", "tracklite.templates"):
        task = market_task()
        task["record"] = [
            {"class": "SignalRecord", "module_path": module_path},
            {
                "class": "SigAnaRecord",
                "module_path": module_path,
                "kwargs": {"ana_long_short": True},
            },
            {"class": "HFSignalRecord", "module_path": module_path},
            {
                "class": "PortAnaRecord",
                "module_path": module_path,
                "kwargs": {"config": port_config(), "risk_analysis_freq": "day"},
            },
        ]
        recs.append(task_train(task, "task_records"))
    theirs, ours = recs
    files = sorted(f for f in walk(theirs) if f not in ("task", "params.pkl", "dataset"))
    assert sorted(f for f in walk(ours) if f not in ("task", "params.pkl", "dataset")) == files
    assert {
        "label.pkl",
        "sig_analysis/ric.pkl",
        "hg_sig_analysis/ic.pkl",
        "portfolio_analysis/port_analysis_1day.pkl",
    } <= set(files)
    for name in files:
        if name.startswith("portfolio_analysis/positions") or "indicators_normal" in name:
            continue  # objects without value equality; their metrics are compared below
        same_object(ours.load_object(name), theirs.load_object(name))
    mine, qlibs = ours.list_metrics(), theirs.list_metrics()
    assert mine.keys() == qlibs.keys() and len(qlibs) > 20
    for key, value in qlibs.items():
        assert mine[key] == pytest.approx(value, rel=1e-12, abs=1e-12, nan_ok=True), key


def fitted_market_model() -> tuple[Any, Any]:
    """qlib's linear model fitted on the synthetic market, and its DatasetH."""
    from _qlib_support import market_task
    from qlib.utils import init_instance_by_config

    task = market_task()
    dataset = init_instance_by_config(task["dataset"])
    model = init_instance_by_config(task["model"])
    model.fit(dataset)
    return model, dataset


def test_contrib_templates_match_qlib(qlib_market: QlibSession) -> None:
    """qlib's test_contrib_workflow (MultiSegRecord, then SignalRecord + SignalMseRecord), with
    qlib's templates and tracklite's: the same files, objects and metrics."""
    from qlib.contrib.workflow import record_temp as qlib_contrib

    model, dataset = fitted_market_model()
    R = qlib_market.R
    recs = []
    for multi_seg, mse in (
        (qlib_contrib.MultiSegRecord, qlib_contrib.SignalMseRecord),
        (templates.MultiSegRecord, templates.SignalMseRecord),
    ):
        with R.start(experiment_name="contrib"):
            rec = R.get_recorder()
            multi_seg(model, dataset, rec).generate(dict(valid="valid", test="test"), True)
            qlib_records.SignalRecord(model, dataset, rec).generate()
            mse(rec).generate()
            recs.append(rec)
    theirs, ours = recs
    files = sorted(walk(theirs))
    assert sorted(walk(ours)) == files
    assert {"results-valid.pkl", "results-test.pkl", "sig_analysis/mse.pkl"} <= set(files)
    for name in ("results-valid.pkl", "results-test.pkl"):
        mine, qlibs = ours.load_object(name), theirs.load_object(name)
        assert (
            sorted(mine)
            == sorted(qlibs)
            == [
                "all-IC",
                "all-Rank-IC",
                "mean-IC",
                "mean-Rank-IC",
            ]
        )
        same_object(mine["all-IC"], qlibs["all-IC"])
        same_object(mine["all-Rank-IC"], qlibs["all-Rank-IC"])
        assert mine["mean-IC"] == pytest.approx(qlibs["mean-IC"], rel=1e-12, abs=1e-12)
        assert mine["mean-Rank-IC"] == pytest.approx(qlibs["mean-Rank-IC"], rel=1e-12, abs=1e-12)
    for name in ("sig_analysis/mse.pkl", "sig_analysis/rmse.pkl"):
        assert ours.load_object(name) == pytest.approx(theirs.load_object(name), rel=1e-12)
    assert sorted(ours.list_metrics()) == sorted(theirs.list_metrics()) == ["MSE", "RMSE"]
    for key, value in theirs.list_metrics().items():
        assert ours.list_metrics()[key] == pytest.approx(value, rel=1e-12), key
    # Without a label, both refuse before computing anything.
    with R.start(experiment_name="contrib"):
        rec = R.get_recorder()
        rec.save_objects(**{"pred.pkl": ours.load_object("pred.pkl")})
        for mse in (qlib_contrib.SignalMseRecord, templates.SignalMseRecord):
            with pytest.raises(FileNotFoundError):
                mse(rec).generate()
        assert rec.list_metrics() == {}


def test_multi_pass_port_ana_record_matches_qlib(qlib_market: QlibSession) -> None:
    import numpy as np
    from _qlib_support import market_calendar

    R = qlib_market.R
    cal = market_calendar()
    codes = [f"SH{600000 + i}" for i in range(12)]
    index = pd.MultiIndex.from_product([cal[5:40], codes], names=["datetime", "instrument"])
    pred = pd.DataFrame({"score": np.random.default_rng(5).normal(size=len(index))}, index=index)

    def run(module: Any, shuffle: bool, start: Any = None) -> Any:
        config = port_config()
        config["backtest"]["start_time"] = start
        with R.start(experiment_name="multi_pass"):
            rec = R.get_recorder()
            rec.save_objects(**{"pred.pkl": pred, "label.pkl": pred})
            record = module.MultiPassPortAnaRecord(
                rec,
                pass_num=3,
                shuffle_init_score=shuffle,
                config=config,
                risk_analysis_freq="day",
            )
            assert record.list() == ["multi_pass_port_analysis_1day.pkl"]
            np.random.seed(7)
            record.generate()
            record.check(include_self=True)
        return rec

    theirs, ours = run(qlib_records, False), run(templates, False)
    files = sorted(walk(theirs))
    assert sorted(walk(ours)) == files
    name = "portfolio_analysis/multi_pass_port_analysis_1day.pkl"
    assert name in files
    same_object(ours.load_object(name), theirs.load_object(name))
    mine, qlibs = ours.list_metrics(), theirs.list_metrics()
    assert "mean.excess_return_with_cost.annualized_return" in qlibs
    assert "std.excess_return_without_cost.information_ratio" in qlibs
    assert mine.keys() == qlibs.keys()
    for key, value in qlibs.items():
        assert mine[key] == pytest.approx(value, rel=1e-12, abs=1e-12, nan_ok=True), key
    # Each pass logged PortAnaRecord's metrics too: three points at step 0.
    key = "1day.excess_return_with_cost.annualized_return"
    assert len(ours.get_metric_history(key)) == 3
    # With the first day shuffled, qlib's fails on pandas 3 (read-only values; without a
    # start_time, NaT); ours varies the passes' starting positions.
    if int(pd.__version__.split(".")[0]) >= 3:
        with pytest.raises(ValueError, match="read-only"):
            run(qlib_records, True, start=cal[5])
        with pytest.raises(KeyError):
            run(qlib_records, True)
    shuffled = run(templates, True)
    result = shuffled.load_object(name)
    assert list(result.columns) == ["mean", "std", "mean_std"]
    assert (result["std"] > 0).any()
