"""Recorders, experiments, managers and ``R`` pickled at any moment and used in another process:
qlib's ``OnlineManager.to_pickle``/``load`` between the first training and the routine, as
qlib's ``examples/online_srv/rolling_online_management.py`` does, on the synthetic market."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("qlib.workflow")

from _qlib_support import market_task
from conftest import QlibSession

from tracklite import ExpManager, QlibRecorder


def init_code(session: QlibSession) -> str:
    return f"""
import pickle, sys, qlib
qlib.init(provider_uri={session.provider_uri!r}, exp_manager={{
    "class": "TrackliteExpManager", "module_path": "tracklite.qlib",
    "kwargs": {{"uri": {session.uri!r}, "default_exp_name": "Experiment"}}}})
from qlib.workflow import R
"""


def test_rolling_online_manager_to_pickle_and_routine_elsewhere(
    qlib_market: QlibSession, workdir: Path, python: Callable[..., Any]
) -> None:
    from qlib.model.trainer import TrainerR
    from qlib.workflow.online.manager import OnlineManager
    from qlib.workflow.online.strategy import RollingStrategy
    from qlib.workflow.task.gen import RollingGen

    task = market_task()
    task["dataset"]["kwargs"]["handler"]["kwargs"]["end_time"] = None
    strategy = RollingStrategy("rolling", task, RollingGen(step=10, rtype=RollingGen.ROLL_SD))
    manager = OnlineManager(strategy, trainer=TrainerR())
    manager.first_train()  # TrainerR tags each recorder after its run has ended
    first = {r.id for r in strategy.tool.online_models()}
    assert len(first) == 2
    saved = workdir / ".rolling_manager"
    manager.to_pickle(str(saved))

    code = (
        init_code(qlib_market)
        + """
from qlib.workflow.online.manager import OnlineManager
manager = OnlineManager.load(sys.argv[1])
manager.routine()
print(*sorted(r.id for r in manager.strategies[0].tool.online_models()))
manager.to_pickle(sys.argv[1])
"""
    )
    done = python(code, workdir, args=[str(saved)])
    assert done.returncode == 0, done.stderr
    online = set(done.stdout.split("\n")[-2].split())
    assert online and online.isdisjoint(first)

    again = OnlineManager.load(str(saved))
    assert {r.id for r in again.strategies[0].tool.online_models()} == online
    view = QlibRecorder(ExpManager(uri=qlib_market.uri))
    recs = view.list_recorders(experiment_name="rolling")
    assert len(recs) == len(first) + len(online)
    for rec in recs.values():
        assert rec.status == "FINISHED"
        assert rec.list_tags()["train_status"] == "end_task_train"
        assert "pred.pkl" in rec.list_artifacts()
        # Every metric point once: nothing pending was lost or written twice by the copies.
        history = rec.get_metric_history()
        assert not history.duplicated(["key", "step"]).any()
        assert set(history["key"]) == set(rec.list_metrics())


def test_recorder_pickled_mid_run_with_pending_points(
    qlib_tracklite: QlibSession, workdir: Path, python: Callable[..., Any]
) -> None:
    R = qlib_tracklite.R
    with R.start(experiment_name="pickled"):
        for step in range(5):
            R.log_metrics(step=step, loss=float(step))
        rec = R.get_recorder()
        blob = pickle.dumps((rec, R.get_exp(), R.exp_manager))
        (workdir / "objects.pkl").write_bytes(blob)
        code = (
            init_code(qlib_tracklite)
            + """
rec, exp, manager = pickle.loads(open(sys.argv[1], "rb").read())
assert exp.active_recorder.id == rec.id and manager.active_experiment.id == exp.id
print(list(rec.get_metric_history("loss")["step"]), rec.status)
rec.log_metrics(step=100, loss=100.0)
rec.set_tags(child="yes")
exp.end("FINISHED")  # the run is its starter's to end: only the child's points are written
"""
        )
        done = python(code, workdir, args=[str(workdir / "objects.pkl")])
        assert done.returncode == 0, done.stderr
        assert done.stdout.split("\n")[-2] == "[0, 1, 2, 3, 4] RUNNING"
        R.log_metrics(step=5, loss=5.0)
        copy = pickle.loads(pickle.dumps(rec))  # same process: the same running recorder
        copy.log_metrics(step=6, loss=6.0)
        assert R.get_recorder().status == "RUNNING"
    rec = R.get_recorder(recorder_id=rec.id, experiment_name="pickled")
    assert rec.status == "FINISHED" and rec.list_tags()["child"] == "yes"
    assert list(rec.get_metric_history("loss")["step"]) == [0, 1, 2, 3, 4, 100, 5, 6]
    assert rec.list_metrics() == {"loss": 100.0}
