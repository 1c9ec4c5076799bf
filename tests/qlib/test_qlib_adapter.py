"""qlib's own ``R`` pointed at a tracklite store through ``tracklite.qlib``: qlib's data-free
workflow scenarios, its type checks and exceptions, and the store read back by tracklite."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("qlib.workflow")

import qlib
from conftest import QlibSession, tracklite_manager
from qlib.tests.config import CSI300_GBDT_TASK
from qlib.utils import exceptions as qlib_errors
from qlib.utils import flatten_dict
from qlib.workflow.exp import Experiment as QlibExperiment
from qlib.workflow.recorder import Recorder as QlibRecorderBase

import tracklite
import tracklite.qlib as adapter
from tracklite import ExpManager, QlibRecorder


def test_import_tracklite_leaves_qlib_and_mlflow_alone() -> None:
    # Here qlib and MLflow are installed, so an accidental import would really happen.
    code = (
        "import sys, tracklite, tracklite.templates, tracklite.online\n"
        "from tracklite import R\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('qlib', 'mlflow')))\n"
        "import tracklite.qlib\n"
        "print('qlib' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert done.stdout.split("\n")[:2] == ["[]", "True"]


def test_qlib_accepts_the_manager_and_its_objects(qlib_tracklite: QlibSession) -> None:
    R = qlib_tracklite.R
    assert type(R.exp_manager) is adapter.TrackliteExpManager
    assert repr(R.exp_manager) == f"TrackliteExpManager(uri={qlib_tracklite.uri})"
    with R.start(experiment_name="types") as exp:
        assert isinstance(exp, QlibExperiment) and isinstance(exp, tracklite.Experiment)
        rec = R.get_recorder()
        assert isinstance(rec, QlibRecorderBase) and isinstance(rec, tracklite.Recorder)
        assert rec.info["status"] == "RUNNING" and rec.name == "mlflow_recorder"
    listed = R.list_recorders(experiment_name="types")
    assert list(listed) == [rec.id]
    assert all(isinstance(r, QlibRecorderBase) for r in listed.values())
    assert isinstance(R.list_experiments()["types"], QlibExperiment)
    found = R.get_recorder(recorder_id=rec.id, experiment_name="types")
    assert isinstance(found, QlibRecorderBase) and found.status == "FINISHED"
    assert isinstance(
        R.get_exp(experiment_name="types").list_recorders("list")[0], QlibRecorderBase
    )


def test_qlib_catches_the_adapter_errors(qlib_tracklite: QlibSession) -> None:
    R = qlib_tracklite.R
    with R.start(experiment_name="errors"):
        rec = R.get_recorder()
        with pytest.raises(qlib_errors.LoadObjectError) as caught:
            rec.load_object("missing.pkl")
        assert isinstance(caught.value, tracklite.LoadObjectError)
        with pytest.raises(qlib_errors.LoadObjectError):
            R.load_object("missing.pkl")
    with pytest.raises(qlib_errors.ExpAlreadyExistError) as exists:
        R.exp_manager.create_exp("errors")
    assert isinstance(exists.value, tracklite.ExpAlreadyExistError)
    with pytest.raises(ValueError, match="No valid experiment"):
        R.get_exp(experiment_name="absent", create=False)
    with pytest.raises(ValueError, match="No valid recorder"):
        R.get_recorder(recorder_name="absent", experiment_name="errors")


def test_get_local_dir_scenario(qlib_tracklite: QlibSession) -> None:
    """qlib's tests/test_workflow.py::test_get_local_dir, both spellings of its URI."""
    R = qlib_tracklite.R
    tmp_path = Path("./.mlruns_tmp/.trash")
    tmp_path.mkdir(parents=True, exist_ok=True)
    for uri in (str(tmp_path), tmp_path.resolve().as_uri()):
        with R.start(uri=uri):
            pass
        with R.uri_context(uri=uri):
            resume_recorder = R.get_recorder()
            local = Path(resume_recorder.get_local_dir())
        assert local.is_dir() and local.parent.parent == tmp_path.resolve()
        assert resume_recorder.status == "FINISHED"
    # The bare path and the file: URI name the same store: two runs of the default experiment.
    with R.uri_context(uri=str(tmp_path)):
        assert len(R.list_recorders()) == 2
    assert R.get_uri() == qlib_tracklite.uri
    shutil.rmtree(tmp_path)


def fake_experiment(R: Any) -> tuple[bool, bool, str]:
    """qlib's tests/test_all_pipeline.py::fake_experiment."""
    default_uri = R.get_uri()
    current_uri = "file:./temp-test-exp-mag"
    with R.start(experiment_name="fake_workflow_for_expm", uri=current_uri):
        R.log_params(**flatten_dict(CSI300_GBDT_TASK))
        current_uri_to_check = R.get_uri()
    default_uri_to_check = R.get_uri()
    return default_uri == default_uri_to_check, current_uri == current_uri_to_check, current_uri


def test_expmanager_scenario(qlib_tracklite: QlibSession) -> None:
    """qlib's tests/test_all_pipeline.py::test_2_expmanager."""
    R = qlib_tracklite.R
    pass_default, pass_current, uri_path = fake_experiment(R)
    assert pass_default, "default uri is incorrect"
    assert pass_current, "current uri is incorrect"
    store = Path(uri_path.strip("file:")).resolve()
    assert (store / "tracklite.json").is_file()
    reader = QlibRecorder(ExpManager(uri=uri_path))
    (rec,) = reader.list_recorders(experiment_name="fake_workflow_for_expm").values()
    expected = {str(k) for k in flatten_dict(CSI300_GBDT_TASK)} | {"cmd-sys.argv"}
    assert set(rec.list_params()) == expected
    assert rec.list_params()["model.kwargs.num_leaves"] == str(
        CSI300_GBDT_TASK["model"]["kwargs"]["num_leaves"]
    )
    shutil.rmtree(str(store))
    assert not Path("temp-test-exp-mag").exists()


def test_default_uri_lives_in_qlib_config(qlib_tracklite: QlibSession, tmp_path: Path) -> None:
    from qlib.config import C

    R = qlib_tracklite.R
    assert C.exp_manager["kwargs"]["uri"] == qlib_tracklite.uri
    other = str(tmp_path / "other-store")
    with R.uri_context(uri=other):
        assert C.exp_manager["kwargs"]["uri"] == other and R.get_uri() == other
    assert R.get_uri() == qlib_tracklite.uri
    R.set_uri(other)
    assert C.exp_manager["kwargs"]["uri"] == other
    # qlib's worker processes rebuild the manager from C: they find the same store.
    from qlib.utils import init_instance_by_config

    rebuilt = init_instance_by_config(C["exp_manager"])
    assert type(rebuilt) is adapter.TrackliteExpManager and rebuilt.uri == other
    R.set_uri(qlib_tracklite.uri)


def test_run_lifecycle_through_qlib(qlib_tracklite: QlibSession) -> None:
    R = qlib_tracklite.R
    with pytest.raises(RuntimeError, match="boom"), R.start(experiment_name="life"):
        failed = R.get_recorder()
        raise RuntimeError("boom")
    with R.start(experiment_name="life", recorder_name="kept"):
        R.log_metrics(step=0, loss=1.0)
        kept = R.get_recorder()
    # qlib's end_task_train pattern: resume by id in a later start.
    with R.start(experiment_name="life", recorder_id=kept.info["id"], resume=True):
        R.log_metrics(step=1, loss=0.5)
        R.set_tags(train_status="end_task_train")
        assert R.get_recorder().id == kept.id
    exp = R.get_exp(experiment_name="life")
    assert exp.list_recorders(status="FAILED") == {failed.id: exp.list_recorders()[failed.id]}
    again = R.get_recorder(recorder_id=kept.id, experiment_name="life")
    assert again.status == "FINISHED" and again.list_metrics() == {"loss": 0.5}
    assert again.list_tags()["train_status"] == "end_task_train"
    runs = R.search_records([exp.id], filter_string="metrics.loss < 1")
    assert [run.info.run_id for run in runs] == [kept.id]
    # No active run: R looks in the default experiment, which does not hold it (qlib+MLflow
    # would delete a run of any experiment here; tracklite checks the experiment).
    with pytest.raises(ValueError, match="No valid recorder"):
        R.delete_recorder(recorder_id=failed.id)
    assert failed.id in R.list_recorders(experiment_name="life")
    exp.delete_recorder(failed.id)
    assert list(R.list_recorders(experiment_name="life")) == [kept.id]
    # An implicit run started by R.log_* and ended by R.end_exp.
    R.log_params(implicit=True)
    implicit = R.get_recorder()
    R.end_exp()
    assert R.get_recorder(recorder_id=implicit.id, experiment_name="Experiment").status == (
        "FINISHED"
    )


def test_reinit_while_active_is_refused(qlib_tracklite: QlibSession, tmp_path: Path) -> None:
    R = qlib_tracklite.R
    R.start_exp(experiment_name="busy")
    with pytest.raises(qlib_errors.RecorderInitializationError):
        qlib.init(
            provider_uri=qlib_tracklite.provider_uri,
            exp_manager=tracklite_manager(str(tmp_path / "else")),
        )
    R.end_exp()


def test_store_written_by_qlib_is_read_by_tracklite(
    qlib_tracklite: QlibSession, tmp_path: Path
) -> None:
    R = qlib_tracklite.R
    source = tmp_path / "local.txt"
    source.write_text("hello")
    with R.start(experiment_name="shared", recorder_name="r1"):
        R.log_params(lr=0.1, layers=[1, 2])
        for step in range(3):
            R.log_metrics(step=step, loss=1.0 / (step + 1))
        R.set_tags(owner="qlib")
        R.save_objects(**{"pred.pkl": {"a": 1}})
        R.save_objects(local_path=str(source), artifact_path="files")
        rid = R.get_recorder().id
    reader = QlibRecorder(ExpManager(uri=qlib_tracklite.uri))
    rec = reader.get_recorder(recorder_id=rid, experiment_name="shared")
    # Once qlib is in use, tracklite's objects are also qlib's (qlib checks isinstance).
    assert isinstance(rec, tracklite.Recorder) and isinstance(rec, QlibRecorderBase)
    assert rec.status == "FINISHED" and rec.name == "r1"
    assert rec.list_params()["layers"] == "[1, 2]" and rec.list_metrics() == {"loss": 1 / 3}
    assert list(rec.get_metric_history("loss")["step"]) == [0, 1, 2]
    assert rec.list_tags()["owner"] == "qlib"
    assert rec.load_object("pred.pkl") == {"a": 1}
    assert rec.list_artifacts("files") == ["files/local.txt"]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tracklite",
            "--uri",
            qlib_tracklite.uri,
            "--format",
            "json",
            "runs",
            "shared",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert rid in json.dumps(rows) and "FINISHED" in json.dumps(rows)


def test_qlib_in_another_process_reads_and_writes(
    qlib_tracklite: QlibSession, workdir: Path, python: Callable[..., Any]
) -> None:
    R = qlib_tracklite.R
    with R.start(experiment_name="procs"):
        R.log_metrics(score=1.0)
        rid = R.get_recorder().id
    code = f"""
import sys, qlib
qlib.init(provider_uri={qlib_tracklite.provider_uri!r}, exp_manager={{
    "class": "TrackliteExpManager", "module_path": "tracklite.qlib",
    "kwargs": {{"uri": {qlib_tracklite.uri!r}, "default_exp_name": "Experiment"}}}})
from qlib.workflow import R
rec = R.get_recorder(recorder_id=sys.argv[1], experiment_name="procs")
rec.set_tags(seen_by="child")
rec.log_metrics(score=2.0, step=1)
with R.start(experiment_name="procs", recorder_name="child"):
    R.log_params(pid=1)
print(rec.list_metrics()["score"], rec.status)
"""
    done = python(code, workdir, args=[rid])
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-2:] == ["2.0", "FINISHED"]
    again = R.get_recorder(recorder_id=rid, experiment_name="procs")
    assert again.list_tags()["seen_by"] == "child" and again.list_metrics() == {"score": 2.0}
    names = [r.name for r in R.list_recorders(experiment_name="procs").values()]
    assert names == ["child", "mlflow_recorder"]


def test_short_scripts_in_qlibs_environment_end_cleanly(
    tmp_path: Path, workdir: Path, python: Callable[..., Any]
) -> None:
    """qlib's environment has redis, which portalocker imports; a first import of it while the
    interpreter shuts down failed and lost the run's last points. And pyarrow is MLflow's <26."""
    import pyarrow

    assert int(pyarrow.__version__.split(".")[0]) < 26  # MLflow's pin: tracklite runs on it
    store = tmp_path / "short-store"
    for _ in range(3):
        done = python(
            "from tracklite import R\nR.log_metrics(m=1.0)\n",
            workdir,
            env={"TRACKLITE_URI": str(store)},
        )
        assert done.returncode == 0 and done.stderr == ""
    runs = QlibRecorder(ExpManager(uri=str(store))).list_recorders()
    assert [r.status for r in runs.values()] == ["FINISHED"] * 3
    assert all(r.list_metrics() == {"m": 1.0} for r in runs.values())
    assert all(len(r.get_metric_history("m")) == 1 for r in runs.values())


def run_two(R: Any) -> list[str]:
    ids = []
    for loss in (0.5, 0.25):
        with R.start(experiment_name="shape"):
            # Saving first: qlib's MLflow recorder may read a metric file its logging thread
            # is still writing and fail ("malformed"), a race of qlib's, not of this test.
            R.save_objects(**{"pred.pkl": [loss]})
            for step in range(3):
                R.log_metrics(step=step, loss=loss + step)
            R.log_params(lr=loss)
            ids.append(R.get_recorder().id)
    return ids


def test_search_records_gives_qlib_code_runs(
    qlib_tracklite: QlibSession, qlib_mlflow: QlibSession
) -> None:
    """qlib's R.search_records returns MLflow Run objects (qlib code reads r.info.run_id and
    r.data.metrics); through the adapter the same shape, and its default arguments work."""
    # (The two fixtures each call qlib.init: qlib's R is now on MLflow, then back on tracklite.)
    mlflow_R = qlib_mlflow.R
    mlflow_ids = run_two(mlflow_R)
    exp_id = mlflow_R.get_exp(experiment_name="shape").id
    with pytest.raises(Exception, match="50000"):
        mlflow_R.search_records([exp_id])  # qlib's default max_results: MLflow refuses
    theirs = mlflow_R.search_records([exp_id], max_results=50000, order_by=["metrics.loss ASC"])

    R = init_qlib_tracklite(qlib_tracklite)
    ids = run_two(R)
    exp_id = R.get_exp(experiment_name="shape").id
    ours = R.search_records([exp_id], order_by=["metrics.loss ASC"])
    assert isinstance(ours, list) and len(ours) == len(theirs) == 2
    assert [r.info.run_id for r in ours] == ids[::-1]
    assert [r.info.run_id for r in theirs] == mlflow_ids[::-1]
    for mine, qlibs in zip(ours, theirs, strict=True):
        assert mine.data.metrics == qlibs.data.metrics
        assert mine.data.params["lr"] == qlibs.data.params["lr"]
        assert mine.info.status == qlibs.info.status == "FINISHED"
        assert mine.data.tags["mlflow.runName"] == qlibs.data.tags["mlflow.runName"]
    assert [r.info.run_id for r in R.search_records([exp_id])] == ids[::-1]  # no failure
    frame = R.search_records([exp_id], output_format="pandas")
    assert list(frame["run_id"]) == ids[::-1]


def test_recorder_client(qlib_tracklite: QlibSession, qlib_mlflow: QlibSession) -> None:
    """rec.client: get_metric_history, get_run, list_artifacts, download_artifacts, as on
    qlib's MLflow recorders."""
    mlflow_R = qlib_mlflow.R
    (theirs_id, _) = run_two(mlflow_R)
    theirs = mlflow_R.get_recorder(recorder_id=theirs_id, experiment_name="shape")
    R = init_qlib_tracklite(qlib_tracklite)
    (ours_id, _) = run_two(R)
    ours = R.get_recorder(recorder_id=ours_id, experiment_name="shape")
    dst = Path("downloads")
    dst.mkdir()
    for rec in (theirs, ours):
        history = rec.client.get_metric_history(rec.id, "loss")
        assert [(m.step, m.value) for m in history] == [(0, 0.5), (1, 1.5), (2, 2.5)]
        assert all(m.key == "loss" and m.timestamp > 0 for m in history)
        run = rec.client.get_run(rec.id)
        assert run.info.run_id == rec.id and run.data.metrics == {"loss": 2.5}
        listed = {f.path: f.is_dir for f in rec.client.list_artifacts(rec.id)}
        assert listed["pred.pkl"] is False
        local = rec.client.download_artifacts(rec.id, "pred.pkl", str(dst / rec.id))
        with open(local, "rb") as handle:
            assert pickle.load(handle) == [0.5]
    assert R.list_experiments().keys() == {"shape"}  # the client added no "Default"


def init_qlib_tracklite(session: QlibSession) -> Any:
    from conftest import init_qlib

    return init_qlib(session.provider_uri, tracklite_manager(session.uri))
