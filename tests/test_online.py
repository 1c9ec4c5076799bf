"""``tracklite.online.OnlineToolR`` without qlib: the ``online_status`` tag, untagged recorders
counting as offline, reset, listing, and switching finished recorders from other processes."""

from __future__ import annotations

import importlib.util
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

import tracklite
from tracklite import ExpManager, QlibRecorder, Recorder
from tracklite.online import OnlineToolR
from tracklite.templates import QlibRequiredError

pytestmark = pytest.mark.usefixtures("clean_env")

_spec = importlib.util.find_spec("qlib")
HAS_QLIB = _spec is not None and _spec.origin is not None  # tests/qlib is not qlib


def train(R: QlibRecorder, n: int, exp: str = "models") -> list[Recorder]:
    """``n`` finished recorders, oldest first."""
    recs = []
    for i in range(n):
        with R.start(experiment_name=exp, recorder_name=f"m{i}"):
            R.log_metrics(score=float(i))
            recs.append(R.get_recorder())
    return recs


def fresh(store_uri: str) -> QlibRecorder:
    """Another view of the store, as another process would have."""
    return QlibRecorder(ExpManager(uri=store_uri))


def test_constants_and_experiment_name(R: QlibRecorder) -> None:
    assert (OnlineToolR.ONLINE_KEY, OnlineToolR.ONLINE_TAG, OnlineToolR.OFFLINE_TAG) == (
        "online_status",
        "online",
        "offline",
    )
    with pytest.raises(ValueError, match="Both default_exp_name and exp_name are None"):
        OnlineToolR(api=R).online_models()
    assert OnlineToolR(api=R).online_models(exp_name="brand-new") == []
    # Looking an experiment up creates it, as qlib's list_recorders does.
    assert "brand-new" in R.list_experiments()


def test_tags_untagged_is_offline_and_set_does_not_switch_others(
    R: QlibRecorder, store_uri: str
) -> None:
    m0, m1, m2 = train(R, 3)
    tool = OnlineToolR("models", api=R)
    assert [tool.get_online_tag(r) for r in (m0, m1, m2)] == ["offline"] * 3
    assert tool.online_models() == []
    tool.set_online_tag("online", m0)
    tool.set_online_tag(OnlineToolR.ONLINE_TAG, [m1, m2])
    assert [r.id for r in tool.online_models()] == [m2.id, m1.id, m0.id]  # newest first
    assert (
        fresh(store_uri)
        .get_recorder(recorder_id=m1.id, experiment_name="models")
        .list_tags()["online_status"]
        == "online"
    )
    tool.set_online_tag("offline", (r for r in [m1]))
    assert [r.id for r in tool.online_models()] == [m2.id, m0.id]
    assert tool.get_online_tag(m1) == "offline"
    assert all(r.status == "FINISHED" for r in tool.online_models())


def test_reset_makes_exactly_the_given_models_online(R: QlibRecorder) -> None:
    recs = train(R, 4)
    tool = OnlineToolR("models", api=R)
    tool.set_online_tag("online", recs)
    tool.reset_online_tag(recs[1])
    assert [r.id for r in tool.online_models()] == [recs[1].id]
    assert [tool.get_online_tag(r) for r in recs] == ["offline", "online", "offline", "offline"]
    tool.reset_online_tag([recs[0], recs[3]], exp_name="models")
    assert [r.id for r in tool.online_models()] == [recs[3].id, recs[0].id]
    other = train(R, 1, exp="elsewhere")[0]
    tool.reset_online_tag(other, exp_name="elsewhere")  # another experiment is untouched
    assert [r.id for r in tool.online_models()] == [recs[3].id, recs[0].id]
    assert [r.id for r in tool.online_models("elsewhere")] == [other.id]


def test_tags_on_a_recorder_object_kept_across_a_resume(R: QlibRecorder, store_uri: str) -> None:
    """qlib's trainers keep the recorder object of a first run, resume the recorder by id in a
    second run (a new object), then tag the kept object: the tag must reach the disk."""
    (rec,) = train(R, 1)
    tool = OnlineToolR("models", api=R)
    tool.set_online_tag("offline", rec)
    with R.start(experiment_name="models", recorder_id=rec.id, resume=True):
        R.log_metrics(score=5.0)
    tool.set_online_tag("online", rec)
    rec.log_metrics(score=6.0, step=1)
    again = fresh(store_uri).get_recorder(recorder_id=rec.id, experiment_name="models")
    assert again.list_tags()["online_status"] == "online"
    assert again.list_metrics() == {"score": 6.0}
    assert [r.id for r in tool.online_models()] == [rec.id]


def test_bad_arguments(R: QlibRecorder) -> None:
    (rec,) = train(R, 1)
    tool = OnlineToolR("models", api=R)
    with pytest.raises(ValueError, match="'online' or 'offline'"):
        tool.set_online_tag("Online", rec)
    with pytest.raises(TypeError, match="Recorder"):
        tool.set_online_tag("online", ["not a recorder"])  # type: ignore[list-item]
    assert tool.get_online_tag(rec) == "offline"


def test_uses_the_global_R_by_default(global_R: QlibRecorder) -> None:
    (rec,) = train(global_R, 1)
    tool = OnlineToolR("models")
    assert tool.api is tracklite.R
    tool.reset_online_tag(rec)
    assert [r.id for r in tool.online_models()] == [rec.id]


def test_across_processes(
    R: QlibRecorder,
    store_uri: str,
    tmp_path: Path,
    run_script: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    trainer = f"""
from tracklite import ExpManager, QlibRecorder
R = QlibRecorder(ExpManager(uri={store_uri!r}))
for i in range(3):
    with R.start(experiment_name="models", recorder_name=f"m{{i}}"):
        R.log_metrics(score=float(i))
        print(R.get_recorder().id)
"""
    done = run_script(trainer, tmp_path / "cwd")
    assert done.returncode == 0, done.stderr
    ids = done.stdout.split()
    switcher = f"""
import sys
from tracklite import ExpManager, QlibRecorder
from tracklite.online import OnlineToolR
R = QlibRecorder(ExpManager(uri={store_uri!r}))
tool = OnlineToolR("models", api=R)
rec = R.get_recorder(recorder_id=sys.argv[1], experiment_name="models")
tool.reset_online_tag(rec)
print(rec.status, [r.id for r in tool.online_models()])
"""
    done = run_script(switcher, tmp_path / "cwd", args=[ids[1]])
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "FINISHED"
    tool = OnlineToolR("models", api=R)
    assert [r.id for r in tool.online_models()] == [ids[1]]
    assert [r.status for r in tool.online_models()] == ["FINISHED"]
    done = run_script(switcher, tmp_path / "cwd", args=[ids[2]])
    assert done.returncode == 0, done.stderr
    assert [r.id for r in tool.online_models()] == [ids[2]]
    assert tool.get_online_tag(R.get_recorder(recorder_id=ids[1], experiment_name="models")) == (
        "offline"
    )


@pytest.mark.skipif(HAS_QLIB, reason="qlib is installed: tests/qlib runs update_online_pred")
def test_update_online_pred_says_it_needs_qlib(R: QlibRecorder) -> None:
    (rec,) = train(R, 1)
    tool = OnlineToolR("models", api=R)
    tool.reset_online_tag(rec)
    with pytest.raises(QlibRequiredError, match="pyqlib"):
        tool.update_online_pred()
    with pytest.raises(ValueError, match="exp_name are None"):
        OnlineToolR(api=R).update_online_pred()
