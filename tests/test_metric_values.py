"""Metric values and steps at the call: what is accepted (as float64), what raises, and that a
refused call leaves nothing behind."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _metric_support import new_R, pairs, writer_settings

from tracklite import QlibRecorder, Recorder

Log = Callable[..., None]


@pytest.fixture
def R(tmp_path: Path) -> Iterator[QlibRecorder]:
    r = new_R(tmp_path)
    # A long interval: nothing reaches disk unless a read or end_run flushes it.
    with writer_settings(flush_interval=60):
        r.start_exp(experiment_name="values")
        yield r
        if r.exp_manager.active_experiment is not None:
            r.end_exp("FAILED")


@pytest.fixture(params=["R.log_metrics", "Recorder.log_metrics"])
def log(request: pytest.FixtureRequest, R: QlibRecorder) -> Log:
    """Both entry points: R's fast path and the Recorder method."""
    if request.param == "R.log_metrics":
        return R.log_metrics
    return R.get_recorder().log_metrics


def history(R: QlibRecorder) -> Any:
    return R.get_recorder().get_metric_history()


GOOD = [
    (3, 3.0),
    (-7, -7.0),
    (2.5, 2.5),
    (True, 1.0),
    (False, 0.0),
    (np.int8(-4), -4.0),
    (np.uint64(2**53), float(2**53)),
    (np.int64(123456789), 123456789.0),
    (np.float32(0.5), 0.5),
    (np.float64(1e300), 1e300),
    (np.bool_(True), 1.0),
    (np.array(4.25), 4.25),
    (np.array(7, dtype=np.int16), 7.0),
    (10**20, 1e20),
]


def test_numbers_are_stored_as_float64(R: QlibRecorder, log: Log) -> None:
    log(step=1, **{f"m{i:02d}": value for i, (value, _) in enumerate(GOOD)})
    frame = history(R)
    assert frame["value"].dtype == np.float64
    assert pairs(frame) == [(f"m{i:02d}", 1, stored) for i, (_, stored) in enumerate(GOOD)]


def test_nan_and_infinities_are_values(R: QlibRecorder, log: Log) -> None:
    log(step=0, a=math.nan, b=math.inf, c=-math.inf, d=np.float32("nan"))
    frame = history(R).set_index("key")["value"]
    assert math.isnan(frame["a"]) and math.isnan(frame["d"])
    assert frame["b"] == math.inf and frame["c"] == -math.inf
    latest = R.get_recorder().list_metrics()
    assert math.isnan(latest["a"]) and latest["b"] == math.inf and latest["c"] == -math.inf


def _ids(cases: list[Any]) -> list[str]:
    values = [case.values if hasattr(case, "values") else case for case in cases]
    return [f"{name}-{value!r}"[:32] for value, name in values]


BAD = [
    ("text", "str"),
    (None, "NoneType"),
    ([1.0], "list"),
    ((1.0,), "tuple"),
    (1 + 2j, "complex"),
    ({"x": 1}, "dict"),
    (b"1", "bytes"),
    (np.str_("1"), "str_"),
    (np.array([1.0]), "ndarray"),
    (np.array([1.0, 2.0]), "ndarray"),
    # Both have __float__, which the hot path's C-level append would use: they must still
    # be refused ("1" is no number, and a complex would lose its imaginary part).
    (np.array("1"), "ndarray"),
    (np.complex128(1 + 2j), "complex128"),
    (np.array(1 + 2j), "ndarray"),
    (np.datetime64("2020-01-01"), "datetime64"),
    (object(), "object"),
]


@pytest.mark.parametrize(("value", "type_name"), BAD, ids=_ids(BAD))
def test_non_numbers_raise_naming_key_and_type_and_keep_nothing(
    R: QlibRecorder,
    log: Log,
    value: Any,
    type_name: str,
) -> None:
    log(step=0, ok=0.0)
    with pytest.raises(TypeError) as raised:
        log(step=1, before=1.0, bad_key=value, after=2.0)
    message = str(raised.value)
    assert "bad_key" in message and type_name in message
    # Nothing of the refused call, not even its valid keys; later calls still work.
    log(step=2, before=3.0)
    assert pairs(history(R)) == [("before", 2, 3.0), ("ok", 0, 0.0)]
    assert R.get_recorder().list_metrics() == {"ok": 0.0, "before": 3.0}


def test_an_int_beyond_the_float_range_raises_naming_key_and_keeps_nothing(
    R: QlibRecorder, log: Log
) -> None:
    log(step=0, ok=0.0)
    with pytest.raises(ValueError, match=r"metric 'huge' value .* is outside the float range"):
        log(step=1, before=1.0, huge=10**400, after=2.0)
    log(step=2, before=3.0)
    assert pairs(history(R)) == [("before", 2, 3.0), ("ok", 0, 0.0)]


def test_refused_call_in_a_new_key_shape_keeps_nothing(R: QlibRecorder, log: Log) -> None:
    """The first call with a set of keys is refused; the same keys then log fine."""
    with pytest.raises(TypeError, match="'y'"):
        log(step=5, x=1.0, y="bad")
    log(step=6, x=2.0, y=3.0)
    assert pairs(history(R)) == [("x", 6, 2.0), ("y", 6, 3.0)]


def test_exact_rationals_are_rejected_or_exact(R: QlibRecorder, log: Log) -> None:
    """A value is never silently approximated into something else than float(value)."""
    try:
        log(step=0, third=Fraction(1, 3))
    except TypeError as exc:
        assert "third" in str(exc)
        assert history(R).empty
    else:
        assert pairs(history(R)) == [("third", 0, 1 / 3)]


def test_step_none_means_zero(R: QlibRecorder, log: Log) -> None:
    log(a=1.0)
    log(step=None, b=2.0)
    frame = history(R)
    assert frame["step"].dtype == np.int64
    assert pairs(frame) == [("a", 0, 1.0), ("b", 0, 2.0)]


@pytest.mark.parametrize(
    "step", [np.int64(7), np.int32(7), np.uint8(7), np.array(7), 7.0, np.float64(7.0)]
)
def test_integral_steps_are_accepted(R: QlibRecorder, log: Log, step: Any) -> None:
    log(step=step, a=1.0)
    assert pairs(history(R)) == [("a", 7, 1.0)]


@pytest.mark.parametrize(
    "step", [1.5, np.float64(2.5), math.nan, math.inf, "3", b"3", [3], True, np.array([3]), 3j]
)
def test_non_integer_steps_raise_and_keep_nothing(
    R: QlibRecorder,
    log: Log,
    step: Any,
) -> None:
    with pytest.raises((TypeError, ValueError), match="step"):
        log(step=step, a=1.0)
    log(step=1, a=2.0)
    assert pairs(history(R)) == [("a", 1, 2.0)]


@pytest.mark.parametrize("step", [2**63, -(2**63) - 1, np.uint64(2**63), 10**30])
def test_steps_outside_int64_raise_and_keep_nothing(
    R: QlibRecorder,
    log: Log,
    step: Any,
) -> None:
    """A refused step must not leave its values behind: they would shift onto later steps."""
    log(step=0, a=0.0, b=0.5)
    with pytest.raises((TypeError, ValueError, OverflowError)):
        log(step=step, a=1.0, b=1.5)
    log(step=1, a=2.0, b=2.5)
    log(step=2, a=3.0)
    assert pairs(history(R)) == [
        ("a", 0, 0.0),
        ("a", 1, 2.0),
        ("a", 2, 3.0),
        ("b", 0, 0.5),
        ("b", 1, 2.5),
    ]


def test_int64_bounds_are_valid_steps(R: QlibRecorder, log: Log) -> None:
    log(step=2**63 - 1, a=1.0)
    log(step=-(2**63), a=2.0)
    assert sorted(history(R)["step"]) == [-(2**63), 2**63 - 1]


def test_bad_keys_raise_and_keep_nothing(R: QlibRecorder, log: Log) -> None:
    with pytest.raises(ValueError, match="metric key"):
        log(step=0, **{"good": 1.0, "": 2.0})
    with pytest.raises(ValueError, match="control character"):
        log(step=0, **{"good": 1.0, "tab\there": 2.0})
    log(step=1, good=3.0)
    assert pairs(history(R)) == [("good", 1, 3.0)]


def test_empty_call_logs_nothing(R: QlibRecorder, log: Log) -> None:
    log(step=3)
    assert history(R).empty


def test_timestamp_is_taken_at_the_call(R: QlibRecorder, log: Log) -> None:
    before = time.time()
    log(step=0, a=1.0)
    after = time.time()
    time.sleep(0.3)  # the flush (at the read below) comes later; the stamp must not move
    stamp = history(R)["timestamp"].iloc[0].timestamp()
    assert before - 0.001 <= stamp <= after + 0.001


def test_values_survive_the_round_trip_exactly(R: QlibRecorder, log: Log) -> None:
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(size=200), [5e-324, -0.0, 1.7976931348623157e308]])
    for step, value in enumerate(values):
        log(step=step, v=value)
    stored = history(R)["value"].to_numpy()
    assert stored.tobytes() == values.astype(np.float64).tobytes()


def test_recorder_not_running_here_writes_at_once(tmp_path: Path) -> None:
    """A recorder fetched by id (not started in this process) is written synchronously, with
    the same validation."""
    r = new_R(tmp_path)
    with r.start(experiment_name="values"):
        rid = r.get_recorder().id
    rec = new_R(tmp_path).get_recorder(recorder_id=rid, experiment_name="values")
    assert isinstance(rec, Recorder)
    with pytest.raises(TypeError, match="'bad'"):
        rec.log_metrics(step=1, fine=1.0, bad="x")
    rec.log_metrics(step=2, fine=np.float32(2.0))
    from tracklite.metrics import segments

    stored = segments.read_points(rec.ref.metrics_dir).to_pandas()  # no flush: already there
    assert pairs(stored) == [("fine", 2, 2.0)]
