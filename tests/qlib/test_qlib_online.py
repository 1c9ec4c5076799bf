"""qlib's trainer, ``OnlineToolR`` and ``RecorderCollector`` on a tracklite store, and
tracklite's ``OnlineToolR`` next to qlib's: the same tags across processes, and the same
prediction update (qlib's ``PredUpdater`` on the synthetic market)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("qlib.workflow")

import pandas as pd
from _qlib_support import market_calendar, market_task, same_object
from conftest import QlibSession
from qlib.model.trainer import task_train
from qlib.utils import exceptions as qlib_errors
from qlib.workflow.online.utils import OnlineToolR as QlibOnlineToolR
from qlib.workflow.task.collect import RecorderCollector

from tracklite import ExpManager, QlibRecorder
from tracklite.online import OnlineToolR


def tracklite_view(session: QlibSession) -> QlibRecorder:
    """tracklite's own R on the store qlib writes."""
    return QlibRecorder(ExpManager(uri=session.uri))


def test_trainer_online_tool_and_collector(qlib_market: QlibSession) -> None:
    R = qlib_market.R
    task = market_task()
    recs = [task_train(task, "online_srv") for _ in range(3)]
    with pytest.raises(RuntimeError), R.start(experiment_name="online_srv"):
        raise RuntimeError("a failed training")
    for rec in recs:
        assert rec.list_tags()["hostname"] and rec.list_params()["model.class"] == "LinearModel"
        assert {"pred.pkl", "label.pkl", "task", "params.pkl", "dataset"} <= set(
            rec.list_artifacts()
        )
        assert "Long-Short Ann Sharpe" in rec.list_metrics()

    qlib_tool = QlibOnlineToolR("online_srv")
    assert qlib_tool.online_models() == []
    qlib_tool.reset_online_tag(recs[1])
    assert [r.id for r in qlib_tool.online_models()] == [recs[1].id]
    assert [qlib_tool.get_online_tag(r) for r in recs] == ["offline", "online", "offline"]
    ours = OnlineToolR("online_srv", api=tracklite_view(qlib_market))
    assert [r.id for r in ours.online_models()] == [recs[1].id]
    ours.reset_online_tag(
        ours.api.get_recorder(recorder_id=recs[2].id, experiment_name="online_srv")
    )
    assert [r.id for r in qlib_tool.online_models()] == [recs[2].id]

    collector = RecorderCollector(
        "online_srv",
        artifacts_path={"pred": "pred.pkl", "IC": "sig_analysis/ic.pkl", "none": "nope.pkl"},
    )
    collected = collector()
    finished = {r.id for r in recs}
    assert set(collected["pred"]) == set(collected["IC"]) == finished  # FINISHED only
    assert "none" not in collected  # qlib caught the adapter's LoadObjectError
    same_object(collected["pred"][recs[0].id], recs[0].load_object("pred.pkl"))
    with pytest.raises(qlib_errors.LoadObjectError):
        collector.collect(artifacts_key="none", only_exist=False)
    online = RecorderCollector(
        "online_srv",
        artifacts_path={"pred": "pred.pkl"},
        list_kwargs={"filter_string": "tags.online_status = 'online'"},
    )()
    assert list(online["pred"]) == [recs[2].id]
    everything = RecorderCollector(
        "online_srv",
        artifacts_path={"pred": "pred.pkl"},
        status=None,
        artifacts_key=[RecorderCollector.ART_KEY_RAW],
    )()
    assert len(everything[RecorderCollector.ART_KEY_RAW]) == 4


def test_delayed_trainer_resumes_recorders(qlib_market: QlibSession) -> None:
    """qlib's DelayTrainerR: begin_task_train now, end_task_train later by resuming each
    recorder by id (R.start(recorder_id=..., resume=True) and R.load_object("task"))."""
    from qlib.model.trainer import DelayTrainerR

    trainer = DelayTrainerR(experiment_name="delayed")
    recs = trainer.train([market_task(), market_task()])
    assert [r.list_tags()["train_status"] for r in recs] == ["begin_task_train"] * 2
    assert all("pred.pkl" not in r.list_artifacts() for r in recs)
    recs = trainer.end_train(recs)
    view = tracklite_view(qlib_market)
    for rec in recs:
        again = view.get_recorder(recorder_id=rec.id, experiment_name="delayed")
        assert again.status == "FINISHED"
        assert again.list_tags()["train_status"] == "end_task_train"
        assert {"task", "pred.pkl", "label.pkl", "sig_analysis"} <= set(again.list_artifacts())
        assert "IC" in again.list_metrics()
    assert len(view.list_recorders(experiment_name="delayed")) == 2


def test_update_online_pred_qlib_and_tracklite_agree(qlib_market: QlibSession) -> None:
    task = market_task()
    theirs = task_train(task, "update_qlib")
    ours = task_train(task, "update_tracklite")
    assert ours.load_object("pred.pkl").equals(theirs.load_object("pred.pkl"))
    before = theirs.load_object("pred.pkl").index.get_level_values("datetime").max()
    # Online models without a prediction are skipped with a warning by both.
    with qlib_market.R.start(experiment_name="update_qlib", recorder_name="no-pred"):
        pass
    with qlib_market.R.start(experiment_name="update_tracklite", recorder_name="no-pred"):
        pass
    qlib_tool = QlibOnlineToolR("update_qlib")
    qlib_tool.set_online_tag(
        "online", qlib_market.R.list_recorders(experiment_name="update_qlib").values()
    )
    qlib_tool.update_online_pred()
    tool = OnlineToolR("update_tracklite", api=tracklite_view(qlib_market))
    tool.set_online_tag(
        "online", tool.api.list_recorders(experiment_name="update_tracklite").values()
    )
    tool.update_online_pred()
    updated = theirs.load_object("pred.pkl")
    after = updated.index.get_level_values("datetime").max()
    assert after > before and after == market_calendar()[-1]
    same_object(ours.load_object("pred.pkl"), updated)
    old_rows = updated.index.get_level_values("datetime") <= before
    assert isinstance(updated, pd.DataFrame) and old_rows.sum() < len(updated)


def test_online_tags_across_processes(
    qlib_tracklite: QlibSession, workdir: Path, python: Callable[..., Any]
) -> None:
    R = qlib_tracklite.R
    ids = []
    for i in range(3):
        with R.start(experiment_name="models", recorder_name=f"m{i}"):
            ids.append(R.get_recorder().id)
    code = f"""
import sys, qlib
qlib.init(provider_uri={qlib_tracklite.provider_uri!r}, exp_manager={{
    "class": "TrackliteExpManager", "module_path": "tracklite.qlib",
    "kwargs": {{"uri": {qlib_tracklite.uri!r}, "default_exp_name": "Experiment"}}}})
from qlib.workflow import R
from qlib.workflow.online.utils import OnlineToolR
tool = OnlineToolR("models")
tool.reset_online_tag(R.get_recorder(recorder_id=sys.argv[1], experiment_name="models"))
print(*[r.id for r in tool.online_models()])
"""
    done = python(code, workdir, args=[ids[0]])
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [ids[0]]
    ours = OnlineToolR("models", api=tracklite_view(qlib_tracklite))
    assert [r.id for r in ours.online_models()] == [ids[0]]
    assert [r.status for r in ours.online_models()] == ["FINISHED"]
    qlib_tool = QlibOnlineToolR("models")
    assert [r.id for r in qlib_tool.online_models()] == [ids[0]]
    ours.reset_online_tag(ours.api.get_recorder(recorder_id=ids[2], experiment_name="models"))
    assert [
        qlib_tool.get_online_tag(r) for r in R.list_recorders(experiment_name="models").values()
    ] == ["online", "offline", "offline"]
