"""Starting and ending runs: ``R.start``/``start_exp``/``end_exp``, statuses, ``info``, implicit
starts, resume, and what a run records (params, tags, metrics) as seen through the API."""

from __future__ import annotations

import inspect
import json
import math
import os
import platform
import re
import socket
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

import tracklite
from tracklite import (
    ExpAlreadyExistError,
    Experiment,
    ExpManager,
    LoadObjectError,
    MetricWriteError,
    NotFoundError,
    QlibRecorder,
    Recorder,
    RecorderInitializationError,
    StoreError,
    TrackliteError,
    UsageError,
)

pytestmark = pytest.mark.usefixtures("clean_env")

TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
STATUSES = ["SCHEDULED", "RUNNING", "FINISHED", "FAILED"]


def on_disk(uri: str, recorder_id: str, experiment_name: str = "Experiment") -> Recorder:
    """The recorder as another process would see it: a new manager on the same store."""
    fresh = QlibRecorder(ExpManager(uri=uri))
    return fresh.get_recorder(recorder_id=recorder_id, experiment_name=experiment_name)


# ---------------------------------------------------------------------- R.start


def test_start_yields_the_experiment_with_default_names(R: QlibRecorder, store_uri: str) -> None:
    with R.start() as exp:
        assert isinstance(exp, Experiment)
        assert exp.name == "Experiment"
        rec = R.get_recorder()
        assert isinstance(rec, Recorder)
        assert rec.name == "mlflow_recorder"
        assert exp.active_recorder is rec
        assert rec.status == "RUNNING"
        assert on_disk(store_uri, rec.id).status == "RUNNING"
    assert on_disk(store_uri, rec.id).status == "FINISHED"
    assert R.exp_manager.active_experiment is None


def test_start_arguments_are_keyword_only(R: QlibRecorder) -> None:
    for method in (R.start, R.start_exp, R.get_exp, R.get_recorder):
        params = inspect.signature(method).parameters.values()
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params), method
    with pytest.raises(TypeError), R.start("Experiment"):  # type: ignore[misc]
        pass


def test_normal_exit_finishes_and_sets_end_time(R: QlibRecorder, store_uri: str) -> None:
    with R.start(experiment_name="e"):
        rec_id = R.get_recorder().id
    rec = on_disk(store_uri, rec_id, "e")
    assert rec.status == "FINISHED"
    assert rec.end_time is not None and TIME_RE.match(rec.end_time)


def test_return_inside_the_block_finishes(R: QlibRecorder, store_uri: str) -> None:
    def body() -> str:
        with R.start(experiment_name="e"):
            rec_id = R.get_recorder().id
            assert rec_id is not None
            return rec_id
        raise AssertionError("unreachable")

    rec_id = body()
    assert on_disk(store_uri, rec_id, "e").status == "FINISHED"
    assert R.exp_manager.active_experiment is None


def test_break_inside_the_block_finishes(R: QlibRecorder, store_uri: str) -> None:
    ids = []
    for _ in range(3):
        with R.start(experiment_name="e"):
            ids.append(R.get_recorder().id)
            break
    assert len(ids) == 1
    assert on_disk(store_uri, ids[0], "e").status == "FINISHED"


def test_exception_fails_the_run_and_is_reraised(R: QlibRecorder, store_uri: str) -> None:
    rec_ids = []
    with pytest.raises(RuntimeError, match="boom"), R.start(experiment_name="e"):
        rec_ids.append(R.get_recorder().id)
        raise RuntimeError("boom")
    assert on_disk(store_uri, rec_ids[0], "e").status == "FAILED"
    assert R.exp_manager.active_experiment is None
    # The manager is usable again straight away.
    with R.start(experiment_name="e"):
        pass


def test_keyboard_interrupt_fails_the_run_and_is_reraised(R: QlibRecorder, store_uri: str) -> None:
    rec_ids = []
    with pytest.raises(KeyboardInterrupt), R.start(experiment_name="e"):
        rec_ids.append(R.get_recorder().id)
        raise KeyboardInterrupt
    assert on_disk(store_uri, rec_ids[0], "e").status == "FAILED"
    assert R.exp_manager.active_experiment is None


def test_system_exit_inside_the_block_fails_the_run(R: QlibRecorder, store_uri: str) -> None:
    rec_ids = []
    with pytest.raises(SystemExit), R.start(experiment_name="e"):
        rec_ids.append(R.get_recorder().id)
        raise SystemExit(0)
    assert on_disk(store_uri, rec_ids[0], "e").status == "FAILED"
    assert R.exp_manager.active_experiment is None


def test_start_exp_returns_the_active_experiment_and_does_not_end(
    R: QlibRecorder, store_uri: str
) -> None:
    exp = R.start_exp(experiment_name="e", recorder_name="r")
    assert isinstance(exp, Experiment)
    assert R.exp_manager.active_experiment is exp
    rec = R.get_recorder()
    assert rec.name == "r"
    assert on_disk(store_uri, rec.id, "e").status == "RUNNING"
    R.end_exp()
    assert on_disk(store_uri, rec.id, "e").status == "FINISHED"


def test_starting_while_a_run_is_active_is_refused_and_keeps_the_first(
    R: QlibRecorder, store_uri: str
) -> None:
    with R.start(experiment_name="first"):
        first = R.get_recorder()
        with pytest.raises(UsageError, match="already active"):
            R.start_exp(experiment_name="second")
        assert R.get_recorder() is first
        assert "second" not in R.list_experiments()
    assert on_disk(store_uri, first.id, "first").status == "FINISHED"


# ---------------------------------------------------------------------- statuses and end_exp


def test_status_constants() -> None:
    assert [Recorder.STATUS_S, Recorder.STATUS_R, Recorder.STATUS_FI, Recorder.STATUS_FA] == (
        STATUSES
    )


@pytest.mark.parametrize("status", STATUSES)
def test_end_exp_stores_any_of_the_four_statuses(
    R: QlibRecorder, store_uri: str, status: str
) -> None:
    R.start_exp(experiment_name="e")
    rec_id = R.get_recorder().id
    R.end_exp(status)
    assert on_disk(store_uri, rec_id, "e").status == status
    assert R.exp_manager.active_experiment is None


def test_end_exp_with_an_invalid_status_raises_and_keeps_the_run(
    R: QlibRecorder, store_uri: str
) -> None:
    R.start_exp(experiment_name="e")
    rec_id = R.get_recorder().id
    with pytest.raises(AssertionError) as info:
        R.end_exp("DONE")
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, TrackliteError)
    assert "DONE" in str(info.value)
    # Nothing was ended: the run is still active and RUNNING, and can be ended properly.
    assert R.exp_manager.active_experiment is not None
    assert on_disk(store_uri, rec_id, "e").status == "RUNNING"
    R.end_exp()
    assert on_disk(store_uri, rec_id, "e").status == "FINISHED"


def test_invalid_status_is_refused_at_every_layer(R: QlibRecorder) -> None:
    exp = R.start_exp(experiment_name="e")
    rec = R.get_recorder()
    for call in (
        lambda: rec.end_run("done"),
        lambda: exp.end("x"),
        lambda: R.exp_manager.end_exp("finished"),
    ):
        with pytest.raises(AssertionError):
            call()
    R.end_exp()


def test_end_exp_with_nothing_active_is_a_noop(R: QlibRecorder, store_uri: str) -> None:
    R.end_exp()
    R.end_exp("FAILED")
    R.exp_manager.end_exp()
    assert not Path(store_uri).exists()


def test_default_end_status_per_layer() -> None:
    def default(func: Callable[..., object], parameter: str) -> object:
        return inspect.signature(func).parameters[parameter].default

    assert default(QlibRecorder.end_exp, "recorder_status") == "FINISHED"
    assert default(ExpManager.end_exp, "recorder_status") == "SCHEDULED"
    assert default(Experiment.end, "recorder_status") == "SCHEDULED"
    assert default(Recorder.end_run, "status") == "SCHEDULED"


def test_manager_end_exp_default_stores_scheduled(R: QlibRecorder, store_uri: str) -> None:
    R.start_exp(experiment_name="e")
    rec_id = R.get_recorder().id
    R.exp_manager.end_exp()
    assert on_disk(store_uri, rec_id, "e").status == "SCHEDULED"


# ---------------------------------------------------------------------- info


def test_recorder_info_keys_and_time_format(R: QlibRecorder) -> None:
    before = time.time()
    with R.start(experiment_name="e", recorder_name="r") as exp:
        rec = R.get_recorder()
        info = rec.info
        assert set(info) == {
            "class",
            "id",
            "name",
            "experiment_id",
            "start_time",
            "end_time",
            "status",
        }
        assert info["class"] == "Recorder"
        assert info["id"] == rec.id and info["name"] == "r"
        assert info["experiment_id"] == exp.id
        assert info["status"] == "RUNNING"
        assert info["end_time"] is None
        assert TIME_RE.match(info["start_time"])
        # Local time, to the second.
        started = datetime.strptime(info["start_time"], "%Y-%m-%d %H:%M:%S").timestamp()
        assert before - 2 <= started <= time.time() + 1
        assert str(rec) == str(info)
    done = R.get_recorder(recorder_id=rec.id, experiment_name="e").info
    assert done["status"] == "FINISHED"
    assert TIME_RE.match(done["end_time"])
    assert done["end_time"] >= done["start_time"]


def test_unsaved_recorder_info(R: QlibRecorder) -> None:
    exp = R.get_exp(experiment_name="e")
    rec = exp.create_recorder()
    assert rec.info == {
        "class": "Recorder",
        "id": None,
        "name": "mlflow_recorder",
        "experiment_id": exp.id,
        "start_time": None,
        "end_time": None,
        "status": "SCHEDULED",
    }
    assert R.list_recorders(experiment_name="e") == {}


def test_ending_an_unsaved_recorder_keeps_it_scheduled(R: QlibRecorder, store_uri: str) -> None:
    exp = R.get_exp(experiment_name="e")
    before = sorted(p.name for p in Path(store_uri).rglob("*"))
    rec = exp.create_recorder("never-started")
    rec.end_run("FINISHED")
    assert rec.status == "SCHEDULED" and rec.id is None
    assert rec.end_time is not None and TIME_RE.match(rec.end_time)
    assert sorted(p.name for p in Path(store_uri).rglob("*")) == before


def test_experiment_info(R: QlibRecorder) -> None:
    with R.start(experiment_name="e") as exp:
        rec = R.get_recorder()
        info = exp.info
        assert info == {
            "class": "Experiment",
            "id": exp.id,
            "name": "e",
            "active_recorder": rec.id,
            "recorders": [rec.id],
        }
    assert exp.info["active_recorder"] is None


def test_recorder_equality_and_hash(R: QlibRecorder) -> None:
    with R.start(experiment_name="e"):
        rec = R.get_recorder()
    again = R.get_recorder(recorder_id=rec.id, experiment_name="e")
    assert again == rec and hash(again) == hash(rec)
    assert rec != rec.id
    assert len({rec, again}) == 1


# ---------------------------------------------------------------------- implicit start


@pytest.mark.parametrize(
    "call", ["log_params", "log_metrics", "set_tags", "log_artifact", "save_objects"]
)
def test_logging_with_nothing_active_starts_the_default_run(
    R: QlibRecorder, store_uri: str, tmp_path: Path, call: str
) -> None:
    some_file = tmp_path / "f.txt"
    some_file.write_text("x")
    actions = {
        "log_params": lambda: R.log_params(p=1),
        "log_metrics": lambda: R.log_metrics(m=1.0),
        "set_tags": lambda: R.set_tags(t="v"),
        "log_artifact": lambda: R.log_artifact(some_file),
        "save_objects": lambda: R.save_objects(obj=1),
    }
    actions[call]()
    exp = R.exp_manager.active_experiment
    assert exp is not None and exp.name == "Experiment"
    rec = R.get_recorder()
    assert rec.name == "mlflow_recorder"
    assert on_disk(store_uri, rec.id).status == "RUNNING"
    # A second call reuses the same run.
    R.log_params(q=2)
    assert R.get_recorder() is rec
    assert len(R.list_recorders()) == 1
    R.end_exp()
    assert on_disk(store_uri, rec.id).status == "FINISHED"
    # The implicit run is really ended: a new run can start.
    with R.start():
        assert R.get_recorder().id != rec.id


def test_implicit_start_uses_the_active_run(R: QlibRecorder) -> None:
    with R.start(experiment_name="e", recorder_name="mine"):
        R.log_params(a=1)
        R.set_tags(t="v")
        R.log_metrics(step=3, m=2.5)
        rec = R.get_recorder()
        assert rec.list_params()["a"] == "1"
        assert rec.list_tags()["t"] == "v"
        assert rec.list_metrics() == {"m": 2.5}
    assert list(R.list_experiments()) == ["e"]


def test_get_exp_start_activates_only_when_nothing_is_active(R: QlibRecorder) -> None:
    exp = R.get_exp(experiment_name="e", start=True)
    assert R.exp_manager.active_experiment is exp
    rec = R.get_recorder()
    assert rec.name == "mlflow_recorder" and rec.status == "RUNNING"
    other = R.get_exp(experiment_name="other", start=True)
    assert R.exp_manager.active_experiment is exp
    assert other.list_recorders() == {}
    R.end_exp()


def test_register_while_active_is_refused(R: QlibRecorder, tmp_path: Path) -> None:
    R.start_exp()
    with pytest.raises(RecorderInitializationError):
        R.register(ExpManager(uri=str(tmp_path / "other")))
    R.end_exp()
    replacement = ExpManager(uri=str(tmp_path / "other"))
    R.register(replacement)
    assert R.exp_manager is replacement


def test_exception_classes_share_one_base() -> None:
    for cls in (
        LoadObjectError,
        ExpAlreadyExistError,
        RecorderInitializationError,
        NotFoundError,
        UsageError,
        StoreError,
        MetricWriteError,
    ):
        assert issubclass(cls, TrackliteError)
        assert getattr(tracklite, cls.__name__) is cls
    assert issubclass(TrackliteError, Exception)
    assert issubclass(NotFoundError, ValueError)
    assert issubclass(UsageError, ValueError) and issubclass(UsageError, AssertionError)


# ---------------------------------------------------------------------- resume


def test_resume_by_name_takes_the_latest_started(R: QlibRecorder, store_uri: str) -> None:
    ids = []
    for value in (1.0, 2.0):
        with R.start(experiment_name="e", recorder_name="r"):
            R.log_metrics(step=int(value), m=value)
            ids.append(R.get_recorder().id)
    with R.start(experiment_name="e", recorder_name="other"):
        pass
    assert ids[0] != ids[1]  # resume=False always makes a new recorder, names are not unique
    with R.start(experiment_name="e", recorder_name="r", resume=True):
        rec = R.get_recorder()
        assert rec.id == ids[1]
        assert rec.status == "RUNNING"
        disk = on_disk(store_uri, ids[1], "e")
        assert disk.status == "RUNNING" and disk.end_time is None
        R.log_metrics(step=5, m=5.0)
    disk = on_disk(store_uri, ids[1], "e")
    assert disk.status == "FINISHED"
    assert disk.list_metrics() == {"m": 5.0}
    history = disk.get_metric_history("m")
    assert sorted(history["step"].tolist()) == [2, 5]
    assert on_disk(store_uri, ids[0], "e").list_metrics() == {"m": 1.0}
    assert len(R.list_recorders(experiment_name="e")) == 3


def test_resume_by_id(R: QlibRecorder, store_uri: str) -> None:
    with R.start(experiment_name="e"):
        R.log_params(a=1)
        first = R.get_recorder().id
    with R.start(experiment_name="e"):
        pass
    with (
        pytest.raises(ValueError, match="x"),
        R.start(experiment_name="e", recorder_id=first, resume=True),
    ):
        assert R.get_recorder().id == first
        R.log_params(b=2)
        raise ValueError("x")
    rec = on_disk(store_uri, first, "e")
    assert rec.status == "FAILED"
    assert {"a": "1", "b": "2"}.items() <= rec.list_params().items()
    with R.start(experiment_name="e", recorder_id=first, resume=True):
        assert R.get_recorder().id == first
    assert on_disk(store_uri, first, "e").status == "FINISHED"
    assert len(R.list_recorders(experiment_name="e")) == 2


def test_resume_of_a_missing_recorder_creates_one(R: QlibRecorder) -> None:
    with R.start(experiment_name="e", recorder_name="fresh", resume=True):
        assert R.get_recorder().name == "fresh"
    # An unknown id is ignored: a new recorder with the default name is created.
    with R.start(experiment_name="e", recorder_id="0" * 32, resume=True):
        rec = R.get_recorder()
        assert rec.name == "mlflow_recorder" and rec.id != "0" * 32
    assert len(R.list_recorders(experiment_name="e")) == 2


def test_resume_keeps_the_first_start_time(R: QlibRecorder, store_uri: str) -> None:
    with R.start(experiment_name="e"):
        rec_id = R.get_recorder().id
    first = json.loads(
        (Path(store_uri) / R.get_exp(experiment_name="e").id / rec_id / "recorder.json").read_text(
            "utf-8"
        )
    )["start_time"]
    time.sleep(0.01)
    with R.start(experiment_name="e", recorder_id=rec_id, resume=True):
        pass
    again = json.loads(
        (Path(store_uri) / R.get_exp(experiment_name="e").id / rec_id / "recorder.json").read_text(
            "utf-8"
        )
    )
    assert again["start_time"] == first
    assert again["end_time"] > first


# ---------------------------------------------------------------------- params, tags, metrics


def test_a_param_logged_again_takes_the_new_value(R: QlibRecorder) -> None:
    with R.start():
        R.log_params(lr=0.1)
        R.log_params(lr=0.2)
        assert R.get_recorder().list_params()["lr"] == "0.2"


def test_logging_into_a_finished_recorder_found_again(R: QlibRecorder, store_uri: str) -> None:
    with R.start(experiment_name="e"):
        rec_id = R.get_recorder().id
    found = R.get_recorder(recorder_id=rec_id, experiment_name="e")
    assert R.exp_manager.active_experiment is None
    found.log_params(late="p")
    found.set_tags(late="t")
    found.log_metrics(step=2, late=1.5)
    found.save_objects(late_obj=3)
    disk = on_disk(store_uri, rec_id, "e")
    assert disk.status == "FINISHED"
    assert disk.list_params()["late"] == "p"
    assert disk.list_tags()["late"] == "t"
    assert disk.list_metrics() == {"late": 1.5}
    assert disk.load_object("late_obj") == 3
    with pytest.raises(TypeError, match="'bad'"):
        found.log_metrics(bad="x")
    assert R.exp_manager.active_experiment is None


def test_params_are_stringified(R: QlibRecorder) -> None:
    with R.start():
        R.log_params(lst=[1, 2], none=None, num=1.5, text="t", flag=True)
        params = R.get_recorder().list_params()
    assert {
        "lst": "[1, 2]",
        "none": "None",
        "num": "1.5",
        "text": "t",
        "flag": "True",
    }.items() <= params.items()
    assert all(isinstance(v, str) for v in params.values())


def test_system_tags(R: QlibRecorder) -> None:
    import sys

    with R.start(recorder_name="tagged"):
        R.set_tags(mine=3)
        tags = R.get_recorder().list_tags()
    assert tags["mlflow.runName"] == "tagged"
    assert tags["mlflow.user"]
    assert tags["mlflow.source.name"] == (sys.argv[0] or "<interactive>")
    assert tags["mlflow.source.type"] == "LOCAL"
    assert tags["tracklite.host"] == socket.gethostname()
    assert tags["tracklite.pid"] == str(os.getpid())
    assert tags["tracklite.python"] == platform.python_version()
    assert tags["tracklite.version"] == tracklite.__version__
    assert tags["mine"] == "3"


def test_delete_tags(R: QlibRecorder, store_uri: str) -> None:
    with R.start():
        R.set_tags(a=1, b=2, c=3)
        rec = R.get_recorder()
        rec.delete_tags("a", "c", "not-there")
    tags = on_disk(store_uri, rec.id).list_tags()
    assert "a" not in tags and "c" not in tags
    assert tags["b"] == "2"
    assert "mlflow.runName" in tags


def test_list_metrics_latest_by_step_then_time(R: QlibRecorder) -> None:
    with R.start():
        rec = R.get_recorder()
        R.log_metrics(step=5, m=1.0)
        R.log_metrics(step=2, m=2.0)  # logged later, lower step: not the latest
        assert rec.list_metrics() == {"m": 1.0}
        time.sleep(0.002)
        R.log_metrics(step=5, m=3.0)  # same step, newer: the latest
        assert rec.list_metrics() == {"m": 3.0}
        R.log_metrics(n=7)  # step None is step 0
        R.log_metrics(step=1, x=3, y=float("nan"))
        metrics = rec.list_metrics()
    assert metrics["n"] == 7.0 and isinstance(metrics["n"], float)
    assert metrics["x"] == 3.0 and math.isnan(metrics["y"])
    assert set(metrics) == {"m", "n", "x", "y"}
    assert rec.get_metric_history("n")["step"].tolist() == [0]


def test_reads_see_every_log_made_before_them(R: QlibRecorder, store_uri: str) -> None:
    with R.start(experiment_name="e"):
        rec = R.get_recorder()
        for i in range(60):
            R.log_metrics(step=i, loss=float(i))
            R.log_params(**{f"p{i}": i})
        other = R.get_recorder(recorder_id=rec.id, experiment_name="e")
        assert other is not rec
        # Both the active object and a second handle see everything, immediately.
        for handle in (rec, other, on_disk(store_uri, rec.id, "e")):
            assert handle.list_metrics() == {"loss": 59.0}
            assert {f"p{i}" for i in range(60)} <= set(handle.list_params())
            assert len(handle.get_metric_history("loss")) == 60


def test_a_bad_metric_is_rejected_at_the_call_and_later_logs_work(R: QlibRecorder) -> None:
    with R.start():
        rec = R.get_recorder()
        with pytest.raises(TypeError, match="'bad_key'"):
            R.log_metrics(step=0, bad_key="not a number")
        with pytest.raises(TypeError, match="'nothing'"):
            R.log_metrics(nothing=None)
        with pytest.raises(TypeError, match="'seq'"):
            R.log_metrics(seq=[1.0])
        R.log_metrics(step=1, loss=0.5)
        R.log_params(after="yes")
        R.set_tags(after="yes")
        assert rec.list_metrics() == {"loss": 0.5}
    assert rec.status == "FINISHED"
    assert rec.list_params()["after"] == "yes"
    assert rec.list_tags()["after"] == "yes"


def test_numpy_metric_values_are_accepted(R: QlibRecorder) -> None:
    np = pytest.importorskip("numpy")
    with R.start():
        R.log_metrics(step=np.int64(2), a=np.float64(1.25), b=np.int32(4), c=np.float32(0.5))
        metrics = R.get_recorder().list_metrics()
    assert metrics == {"a": 1.25, "b": 4.0, "c": 0.5}


def test_load_object_without_an_active_run_reads_the_latest_default(
    R: QlibRecorder, store_uri: str
) -> None:
    with pytest.raises(LoadObjectError):
        R.load_object("x")
    # Nothing was created by the failed load (no experiment, no run, not even the store).
    assert not Path(store_uri).exists()
    R.get_exp(experiment_name="other")
    with pytest.raises(LoadObjectError):
        R.load_object("x")
    assert list(R.list_experiments()) == ["other"]
    with R.start():
        R.save_objects(x="old")
    with R.start():
        R.save_objects(x="new")
    assert R.exp_manager.active_experiment is None
    assert R.load_object("x") == "new"
    assert R.exp_manager.active_experiment is None
    assert len(R.list_recorders()) == 2
    assert set(R.list_experiments()) == {"other", "Experiment"}


def test_global_R_implicit_run_and_register(global_R: QlibRecorder, tmp_path: Path) -> None:
    tracklite.R.log_params(x=1)
    rec = tracklite.R.get_recorder()
    assert rec.status == "RUNNING" and rec.name == "mlflow_recorder"
    with pytest.raises(RecorderInitializationError):
        tracklite.R.register(ExpManager(uri=str(tmp_path / "elsewhere")))
    tracklite.R.end_exp()
    assert tracklite.R.get_recorder().status == "FINISHED"
    tracklite.R.register(ExpManager(uri=str(tmp_path / "elsewhere")))
    assert tracklite.R.get_uri() == str(tmp_path / "elsewhere")
    assert tracklite.R.list_experiments() == {}


def test_global_R_is_a_qlib_recorder(global_R: QlibRecorder, store_uri: str) -> None:
    assert global_R is tracklite.R
    assert isinstance(global_R, QlibRecorder)
    with tracklite.R.start(experiment_name="global") as exp:
        tracklite.R.log_metrics(step=1, m=1.0)
        rec_id = tracklite.R.get_recorder().id
    assert exp.name == "global"
    assert on_disk(store_uri, rec_id, "global").list_metrics() == {"m": 1.0}
    assert tracklite.R.get_uri() == store_uri
    assert repr(tracklite.R).startswith("QlibRecorder(manager=ExpManager(uri=")
