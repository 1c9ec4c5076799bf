"""Recorders, experiments, managers and ``R`` pickle at any moment (running, with points queued,
tagged after the run) and work after unpickling, in this process and in another one; nothing
queued is lost or written twice."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import tracklite
from tracklite import ExpManager, QlibRecorder


def test_recorder_tagged_after_its_run_pickles(R: QlibRecorder) -> None:
    # qlib's TrainerR/DelayTrainerR tag every recorder they return, after its run ended.
    with R.start(experiment_name="e"):
        R.log_metrics(step=0, loss=1.0)
        rec = R.get_recorder()
    rec.set_tags(train_status="end_task_train")
    rec.log_metrics(step=1, loss=0.5)
    copy = pickle.loads(pickle.dumps(rec))
    assert copy == rec and copy.status == "FINISHED"
    assert copy.list_tags()["train_status"] == "end_task_train"
    copy.log_metrics(step=2, loss=0.25)
    assert list(rec.get_metric_history("loss")["step"]) == [0, 1, 2]


def test_objects_pickled_mid_run_work_in_another_process(
    R: QlibRecorder, store_uri: str, run_script: Callable[..., Any], tmp_path: Path
) -> None:
    R.start_exp(experiment_name="e")
    for step in range(3):
        R.log_metrics(step=step, loss=float(step))
    rec = R.get_recorder()
    (tmp_path / "objs.pkl").write_bytes(pickle.dumps((R, rec)))
    code = """
import pickle, sys
R, rec = pickle.loads(open(sys.argv[1], "rb").read())
assert R.get_recorder() == rec
print(list(rec.get_metric_history("loss")["step"]))
R.log_metrics(step=10, loss=10.0)
R.end_exp()  # the run belongs to the process that started it: only these points are written
"""
    done = run_script(code, tmp_path / "cwd", args=[str(tmp_path / "objs.pkl")])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[0, 1, 2]"  # queued points were written once, at pickling
    assert rec.refresh().status == "RUNNING"
    R.log_metrics(step=3, loss=3.0)
    same = pickle.loads(pickle.dumps(R))  # a copy in this process shares the running recorder
    same.log_metrics(step=4, loss=4.0)
    R.end_exp()
    assert rec.refresh().status == "FINISHED"
    steps = list(rec.get_metric_history("loss")["step"])
    assert sorted(steps) == [0, 1, 2, 3, 4, 10]


def test_global_r_pickles_as_the_loading_process_r() -> None:
    assert pickle.loads(pickle.dumps(tracklite.R)) is tracklite.R
    own = QlibRecorder(ExpManager(uri="somewhere"))
    copy = pickle.loads(pickle.dumps(own))
    assert copy is not own and copy.get_uri() == own.get_uri()
