"""``Recorder.log_batch``: many steps of many keys in one call, validated as a whole."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from _metric_support import new_R, on_disk, pairs, writer_settings

from tracklite import QlibRecorder, Recorder
from tracklite.metrics.writer import get_writer


@pytest.fixture
def rec(tmp_path: Path) -> Iterator[Recorder]:
    r = new_R(tmp_path)
    with writer_settings(flush_interval=60):
        r.start_exp(experiment_name="batch")
        yield r.get_recorder()
        if r.exp_manager.active_experiment is not None:
            r.end_exp("FAILED")


def test_dataframe_with_a_step_column(rec: Recorder) -> None:
    frame = pd.DataFrame({"step": [10, 20, 30], "loss": [0.3, 0.2, 0.1], "acc": [1, 2, 3]})
    assert rec.log_batch(frame) == 6
    assert pairs(rec.get_metric_history()) == [
        ("acc", 10, 1.0),
        ("acc", 20, 2.0),
        ("acc", 30, 3.0),
        ("loss", 10, 0.3),
        ("loss", 20, 0.2),
        ("loss", 30, 0.1),
    ]


def test_dataframe_steps_from_the_index(rec: Recorder) -> None:
    frame = pd.DataFrame({"loss": [1.0, 2.0]}, index=pd.Index([7, 3], dtype="int32"))
    rec.log_batch(frame)
    history = rec.get_metric_history()
    assert history["step"].tolist() == [7, 3]  # logging order, not sorted
    assert history["step"].dtype == np.int64


def test_dict_of_arrays_default_and_explicit_steps(rec: Recorder) -> None:
    assert rec.log_batch({"a": np.array([1, 2, 3], dtype=np.int16), "b": [True, False, True]}) == 6
    rec.log_batch({"c": np.array([5.0, 6.0])}, steps=np.array([100, 200], dtype=np.uint32))
    rec.log_batch({"d": [1.0, 2.0]}, steps=[4.0, 5.0])  # integral floats are steps too
    history = rec.get_metric_history()
    assert history["value"].dtype == np.float64
    assert pairs(history) == [
        ("a", 0, 1.0),
        ("a", 1, 2.0),
        ("a", 2, 3.0),
        ("b", 0, 1.0),
        ("b", 1, 0.0),
        ("b", 2, 1.0),
        ("c", 100, 5.0),
        ("c", 200, 6.0),
        ("d", 4, 1.0),
        ("d", 5, 2.0),
    ]


def test_int64_bounds_are_valid_steps(rec: Recorder) -> None:
    rec.log_batch({"a": [1.0]}, steps=np.array([2**63 - 1], dtype=np.uint64))
    rec.log_batch({"a": [2.0]}, steps=[-(2.0**63)])
    assert rec.get_metric_history()["step"].tolist() == [2**63 - 1, -(2**63)]


def test_nan_and_infinities_are_kept(rec: Recorder) -> None:
    rec.log_batch({"m": [math.nan, math.inf, -math.inf, 1.0]})
    values = rec.get_metric_history()["value"].tolist()
    assert math.isnan(values[0]) and values[1:] == [math.inf, -math.inf, 1.0]
    assert rec.list_metrics() == {"m": 1.0}


def test_batch_and_single_calls_mix_in_logging_order(rec: Recorder) -> None:
    rec.log_metrics(step=0, m=0.0)
    rec.log_batch({"m": [1.0, 2.0]}, steps=[1, 2])
    rec.log_metrics(step=3, m=3.0)
    history = rec.get_metric_history()
    assert history["step"].tolist() == [0, 1, 2, 3]
    assert history["value"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert rec.list_metrics() == {"m": 3.0}


def test_empty_batch_logs_nothing(rec: Recorder) -> None:
    assert rec.log_batch({}) == 0
    assert rec.log_batch({"a": []}) == 0
    assert rec.get_metric_history().empty


BAD: list[tuple[str, Any, Any, type[Exception], str]] = [
    ("lengths", {"a": [1.0, 2.0], "b": [1.0]}, None, ValueError, "'b'"),
    ("text values", {"a": [1.0], "b": ["x"]}, None, TypeError, "'b'"),
    ("object values", {"a": [1.0], "b": np.array([1.0], dtype=object)}, None, TypeError, "'b'"),
    ("complex values", {"a": [1.0], "b": np.array([1j])}, None, TypeError, "'b'"),
    ("datetimes", {"b": np.array(["2020-01-01"], dtype="datetime64[D]")}, None, TypeError, "'b'"),
    ("2-d", {"a": [1.0], "b": np.ones((1, 2))}, None, ValueError, "'b'"),
    ("0-d", {"b": np.float64(1.0)}, None, ValueError, "'b'"),
    ("fractional steps", {"a": [1.0, 2.0]}, [0.5, 1.0], TypeError, "steps"),
    ("nan steps", {"a": [1.0]}, [math.nan], TypeError, "steps"),
    ("text steps", {"a": [1.0]}, ["1"], TypeError, "steps"),
    ("step count", {"a": [1.0, 2.0]}, [1, 2, 3], ValueError, "steps"),
    ("2-d steps", {"a": [1.0, 2.0]}, [[1, 2]], ValueError, "steps"),
    ("uint64 steps", {"a": [1.0]}, np.array([2**63], dtype=np.uint64), ValueError, "steps"),
    ("huge float steps", {"a": [1.0]}, [1e19], ValueError, "steps"),
    ("non-str key", {"a": [1.0], 3: [1.0]}, None, TypeError, "3"),
    ("empty key", {"a": [1.0], "": [1.0]}, None, ValueError, "metric key"),
    ("control key", {"a": [1.0], "x\ny": [1.0]}, None, ValueError, "metric key"),
    ("not a mapping", [[1.0, 2.0]], None, TypeError, "list"),
]


@pytest.mark.parametrize(
    ("metrics", "steps", "error", "match"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_batches_raise_and_queue_nothing(
    rec: Recorder, metrics: Any, steps: Any, error: Any, match: str
) -> None:
    buf = get_writer().buffer(rec.ref)
    with pytest.raises(error, match=match):
        rec.log_batch(metrics, steps=steps)
    assert buf.pending() == 0
    assert rec.get_metric_history().empty
    assert rec.list_metrics() == {}
    rec.log_batch({"a": [1.0]})  # later batches work
    assert pairs(rec.get_metric_history()) == [("a", 0, 1.0)]


def test_dataframe_with_a_text_column_queues_nothing(rec: Recorder) -> None:
    frame = pd.DataFrame({"step": [0, 1], "loss": [0.5, 0.4], "note": ["a", "b"]})
    with pytest.raises(TypeError, match="'note'"):
        rec.log_batch(frame)
    frame = pd.DataFrame({"loss": [0.5]}, index=pd.DatetimeIndex(["2020-01-01"]))
    with pytest.raises(TypeError, match="steps"):
        rec.log_batch(frame)
    assert rec.get_metric_history().empty


def test_batch_into_a_recorder_not_running_here_is_written_at_once(tmp_path: Path) -> None:
    r = new_R(tmp_path)
    with r.start(experiment_name="batch"):
        rid = r.get_recorder().id
    other = new_R(tmp_path).get_recorder(recorder_id=rid, experiment_name="batch")
    other.log_batch({"late": np.arange(3.0)})
    assert pairs(on_disk(other.ref)) == [("late", 0, 0.0), ("late", 1, 1.0), ("late", 2, 2.0)]


def test_large_batch_round_trip(rec: Recorder, tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    values = {f"k{i}": rng.normal(size=50_000) for i in range(4)}
    assert rec.log_batch(values, steps=np.arange(50_000) * 2) == 200_000
    history = rec.get_metric_history()
    for key, column in values.items():
        part = history[history["key"] == key]
        assert part["value"].to_numpy().tobytes() == column.tobytes()
        assert (part["step"].to_numpy() == np.arange(50_000) * 2).all()


def test_r_and_recorder_share_one_queue(tmp_path: Path) -> None:
    """Batches and R.log_metrics into the active recorder land in one history."""
    r: QlibRecorder = new_R(tmp_path)
    with r.start(experiment_name="batch"):
        r.log_metrics(step=0, m=0.0)
        r.get_recorder().log_batch({"m": [1.0]}, steps=[1])
        rec = r.get_recorder()
    assert rec.get_metric_history()["step"].tolist() == [0, 1]
