"""Reading metrics back: one recorder's history, downsampling, and load_metrics across recorders
(long and wide frames, selection by experiment, recorder and key)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from _metric_support import new_R, writer_settings
from hypothesis import given, settings
from hypothesis import strategies as st

import tracklite
from tracklite import ExpManager, QlibRecorder, Recorder
from tracklite.metrics.history import downsample
from tracklite.search.history import load_metrics

LONG_COLUMNS = [
    "experiment_id",
    "experiment_name",
    "recorder_id",
    "recorder_name",
    "key",
    "step",
    "value",
    "timestamp",
]


@pytest.fixture
def R(tmp_path: Path) -> Iterator[QlibRecorder]:
    r = new_R(tmp_path)
    with writer_settings(flush_interval=60):
        yield r
        if r.exp_manager.active_experiment is not None:
            r.end_exp("FAILED")


def run_with(R: QlibRecorder, experiment: str, name: str, points: dict[str, list[float]]) -> str:
    """A finished recorder holding ``points`` (key -> values at steps 0, 1, ...)."""
    with R.start(experiment_name=experiment, recorder_name=name):
        for key, values in points.items():
            for step, value in enumerate(values):
                R.log_metrics(step=step, **{key: value})
        return str(R.get_recorder().id)


# ---------------------------------------------------------------------- one recorder


def test_history_columns_dtypes_and_logging_order(R: QlibRecorder) -> None:
    with R.start(experiment_name="h"):
        rec = R.get_recorder()
        for step in (5, 3, 9, 3):
            R.log_metrics(step=step, loss=float(step), acc=step / 10)
        R.flush()
        R.log_metrics(step=1, loss=-1.0)  # a second segment, still in logging order
        frame = rec.get_metric_history()
    assert list(frame.columns) == ["key", "step", "value", "timestamp"]
    assert frame["step"].dtype == np.int64
    assert frame["value"].dtype == np.float64
    assert str(frame["timestamp"].dtype) == "datetime64[ms, UTC]"
    assert frame["key"].map(type).eq(str).all()
    for history in (frame, rec.get_metric_history()):  # before and after end_run's compaction
        loss = history[history["key"] == "loss"]
        assert loss["step"].tolist() == [5, 3, 9, 3, 1]
        assert loss["value"].tolist() == [5.0, 3.0, 9.0, 3.0, -1.0]
        assert loss["timestamp"].is_monotonic_increasing
    only = rec.get_metric_history("acc")
    assert only["key"].unique().tolist() == ["acc"] and len(only) == 4


def test_history_of_unknown_key_or_empty_recorder_is_empty(R: QlibRecorder) -> None:
    with R.start(experiment_name="h"):
        rec = R.get_recorder()
        empty = rec.get_metric_history()
        R.log_metrics(step=0, a=1.0)
        missing = rec.get_metric_history("b")
    for frame in (empty, missing):
        assert frame.empty
        assert list(frame.columns) == ["key", "step", "value", "timestamp"]
        assert frame["step"].dtype == np.int64 and frame["value"].dtype == np.float64


def test_history_max_points_keeps_first_and_last(R: QlibRecorder) -> None:
    with R.start(experiment_name="h"):
        rec = R.get_recorder()
        rec.log_batch({"long": np.arange(1000.0)})
        rec.log_batch({"short": np.arange(10.0)})
    full = rec.get_metric_history()
    thin = rec.get_metric_history(max_points=50)
    long = thin[thin["key"] == "long"]
    assert 2 <= len(long) <= 50
    assert long["step"].iloc[0] == 0 and long["step"].iloc[-1] == 999
    assert long["step"].is_monotonic_increasing
    assert (long["value"] == long["step"]).all()  # real points, not interpolations
    assert len(thin[thin["key"] == "short"]) == 10
    assert len(full) == 1010
    one = rec.get_metric_history("long", max_points=2)
    assert one["step"].tolist() == [0, 999]


@pytest.mark.parametrize("bad", [0, 1, -5, 2.5, True, "10"])
def test_max_points_must_be_an_integer_of_at_least_two(R: QlibRecorder, bad: object) -> None:
    with R.start(experiment_name="h"):
        R.log_metrics(step=0, a=1.0)
        R.log_metrics(step=1, a=1.0)
        R.log_metrics(step=2, a=1.0)
        with pytest.raises(ValueError, match="max_points"):
            R.get_recorder().get_metric_history(max_points=bad)  # type: ignore[arg-type]


@settings(max_examples=30, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=300), min_size=1, max_size=4),
    max_points=st.integers(min_value=2, max_value=60),
)
def test_downsample_bounds_and_endpoints(sizes: list[int], max_points: int) -> None:
    keys = [f"k{i}" for i, size in enumerate(sizes) for _ in range(size)]
    steps = [step for size in sizes for step in range(size)]
    table = pa.table({"key": keys, "step": pa.array(steps, pa.int64())})
    thin = downsample(table, max_points, ["key"]).to_pandas()
    for index, size in enumerate(sizes):
        kept = thin.loc[thin["key"] == f"k{index}", "step"].tolist()
        if size == 0:
            assert kept == []
            continue
        assert len(kept) == min(size, max_points)
        assert kept[0] == 0 and kept[-1] == size - 1
        assert kept == sorted(set(kept))


# ---------------------------------------------------------------------- load_metrics


@pytest.fixture
def store(R: QlibRecorder) -> dict[str, str]:
    """Two experiments, three recorders; returns recorder ids by name."""
    return {
        "a1": run_with(R, "alpha", "a1", {"loss": [3.0, 2.0, 1.0], "acc": [0.1, 0.2, 0.3]}),
        "a2": run_with(R, "alpha", "a2", {"loss": [4.0, 5.0]}),
        "b1": run_with(R, "beta", "b1", {"loss": [9.0], "lr": [0.01, 0.02]}),
    }


def test_load_metrics_long_frame(R: QlibRecorder, store: dict[str, str]) -> None:
    frame = load_metrics(R.get_uri())
    assert tracklite.load_metrics is load_metrics
    assert list(frame.columns) == LONG_COLUMNS
    assert frame["step"].dtype == np.int64 and frame["value"].dtype == np.float64
    assert str(frame["timestamp"].dtype) == "datetime64[ms, UTC]"
    assert len(frame) == 6 + 2 + 3
    a1 = frame[frame["recorder_id"] == store["a1"]]
    assert set(a1["recorder_name"]) == {"a1"} and set(a1["experiment_name"]) == {"alpha"}
    alpha_id = R.get_exp(experiment_name="alpha", create=False).id
    assert set(a1["experiment_id"]) == {alpha_id}
    assert a1[a1["key"] == "loss"]["value"].tolist() == [3.0, 2.0, 1.0]


def test_load_metrics_selection(R: QlibRecorder, store: dict[str, str]) -> None:
    uri = R.get_uri()
    beta_id = R.get_exp(experiment_name="beta", create=False).id
    by_name = load_metrics(uri, experiments="alpha")
    assert set(by_name["recorder_name"]) == {"a1", "a2"}
    by_id = load_metrics(uri, experiments=[beta_id])
    assert set(by_id["recorder_name"]) == {"b1"}
    mixed = load_metrics(uri, experiments=["alpha", beta_id], recorders=[store["a2"], store["b1"]])
    assert set(mixed["recorder_name"]) == {"a2", "b1"}
    loss = load_metrics(uri, keys="loss")
    assert set(loss["key"]) == {"loss"} and len(loss) == 6
    some = load_metrics(uri, keys=["acc", "lr"], recorders=store["b1"])
    assert some["key"].tolist() == ["lr", "lr"]
    none = load_metrics(uri, keys="nothing")
    assert none.empty and list(none.columns) == LONG_COLUMNS


def test_load_metrics_unknown_experiment_raises(R: QlibRecorder, store: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="'nope'"):
        load_metrics(R.get_uri(), experiments=["alpha", "nope"])


def test_load_metrics_wide(R: QlibRecorder, store: dict[str, str]) -> None:
    wide = load_metrics(R.get_uri(), wide=True)
    assert list(wide.index.names) == ["recorder_id", "step"]
    assert sorted(wide.columns) == ["acc", "loss", "lr"]
    assert wide.loc[(store["a1"], 2), "loss"] == 1.0
    assert wide.loc[(store["a1"], 1), "acc"] == 0.2
    assert wide.loc[(store["b1"], 1), "lr"] == 0.02
    assert np.isnan(wide.loc[(store["b1"], 1), "loss"])
    assert np.isnan(wide.loc[(store["a2"], 0), "acc"])
    assert len(wide) == 3 + 2 + 2


def test_load_metrics_wide_keeps_the_last_value_logged_at_a_step(R: QlibRecorder) -> None:
    with R.start(experiment_name="w"):
        rid = R.get_recorder().id
        R.log_metrics(step=1, m=1.0)
        R.log_metrics(step=1, m=2.0)
    wide = load_metrics(R.get_uri(), experiments="w", wide=True)
    assert wide.loc[(rid, 1), "m"] == 2.0


def test_load_metrics_max_points_per_recorder_and_key(R: QlibRecorder) -> None:
    ids = [run_with(R, "many", f"r{i}", {"x": list(range(100)), "y": [0.0, 1.0]}) for i in range(2)]
    thin = load_metrics(R.get_uri(), experiments="many", max_points=10)
    for rid in ids:
        x = thin[(thin["recorder_id"] == rid) & (thin["key"] == "x")]["step"].tolist()
        assert len(x) <= 10 and x[0] == 0 and x[-1] == 99
        y = thin[(thin["recorder_id"] == rid) & (thin["key"] == "y")]
        assert len(y) == 2


def test_load_metrics_sees_unflushed_points_and_running_recorders(R: QlibRecorder) -> None:
    R.start_exp(experiment_name="live")
    rid = R.get_recorder().id
    R.log_metrics(step=0, a=1.0)
    frame = load_metrics(R.get_uri(), experiments="live")
    assert frame["recorder_id"].tolist() == [rid]
    R.end_exp()


def test_load_metrics_default_store_and_deleted_experiments(
    R: QlibRecorder,
    store: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRACKLITE_URI", R.get_uri())
    assert len(load_metrics()) == 11
    R.delete_exp(experiment_name="beta")
    assert set(load_metrics()["experiment_name"]) == {"alpha"}
    assert set(load_metrics(include_deleted=True)["experiment_name"]) == {"alpha", "beta"}


def test_history_of_a_recorder_fetched_by_id(R: QlibRecorder, store: dict[str, str]) -> None:
    rec = new_R_for(R).get_recorder(recorder_id=store["a1"], experiment_name="alpha")
    assert isinstance(rec, Recorder)
    frame = rec.get_metric_history()
    assert frame.groupby("key")["step"].apply(list).to_dict() == {
        "acc": [0, 1, 2],
        "loss": [0, 1, 2],
    }
    pd.testing.assert_frame_equal(
        frame.reset_index(drop=True),
        load_metrics(R.get_uri(), recorders=store["a1"])[list(frame.columns)].reset_index(
            drop=True
        ),
    )


def new_R_for(R: QlibRecorder) -> QlibRecorder:
    return QlibRecorder(ExpManager(uri=R.get_uri()))
