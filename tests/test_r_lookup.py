"""Finding things: the decision tables of ``start``/``get_exp``/``get_recorder``, listing, and
soft deletes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tracklite import (
    ExpAlreadyExistError,
    Experiment,
    ExpManager,
    NotFoundError,
    QlibRecorder,
    Recorder,
)

pytestmark = pytest.mark.usefixtures("clean_env")


def experiment_json(store_uri: str, experiment_id: str) -> dict[str, object]:
    data: dict[str, object] = json.loads(
        (Path(store_uri) / experiment_id / "experiment.json").read_text(encoding="utf-8")
    )
    return data


def run(R: QlibRecorder, status: str = "FINISHED", **kwargs: str) -> Recorder:
    """Start and end one run; returns its recorder."""
    R.start_exp(**kwargs)
    rec = R.get_recorder()
    R.end_exp(status)
    return rec


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# ---------------------------------------------------------------------- start


def test_start_creates_an_experiment_by_name_and_reuses_it(R: QlibRecorder) -> None:
    with R.start(experiment_name="a") as first:
        pass
    with R.start(experiment_name="a") as second:
        pass
    assert first.id == second.id
    assert list(R.list_experiments()) == ["a"]
    assert len(R.list_recorders(experiment_name="a")) == 2


def test_start_by_experiment_id_takes_that_experiment(R: QlibRecorder) -> None:
    target = R.get_exp(experiment_name="target")
    with R.start(experiment_id=target.id) as exp:
        assert exp.id == target.id and exp.name == "target"
    # An id wins over a name.
    with R.start(experiment_id=target.id, experiment_name="other") as exp:
        assert exp.id == target.id
    assert set(R.list_experiments()) == {"target"}
    assert len(target.list_recorders()) == 2


def test_start_with_an_unknown_experiment_id_raises_and_creates_nothing(
    R: QlibRecorder, store_uri: str
) -> None:
    R.get_exp(experiment_name="existing")
    before = tree(Path(store_uri))
    with pytest.raises(ValueError, match="No valid experiment"):
        R.start_exp(experiment_id="12345")
    assert R.exp_manager.active_experiment is None
    assert tree(Path(store_uri)) == before
    assert set(R.list_experiments()) == {"existing"}


def test_start_with_a_recorder_name(R: QlibRecorder) -> None:
    with R.start(experiment_name="e", recorder_name="named"):
        rec = R.get_recorder()
    assert rec.name == "named"
    assert rec.list_tags()["mlflow.runName"] == "named"


# ---------------------------------------------------------------------- get_exp


def test_get_exp_without_names_returns_the_active_one(R: QlibRecorder) -> None:
    with R.start(experiment_name="active") as exp:
        assert R.get_exp() is exp
        assert R.get_exp(create=False) is exp
        assert R.exp_manager.get_exp() is exp


def test_get_exp_without_names_and_nothing_active_uses_the_default(R: QlibRecorder) -> None:
    with pytest.raises(ValueError, match="No valid experiment"):
        R.get_exp(create=False)
    exp = R.get_exp()
    assert exp.name == "Experiment"
    assert R.exp_manager.active_experiment is None  # getting never activates
    assert exp.list_recorders() == {}
    assert R.get_exp(create=False).id == exp.id


def test_custom_default_experiment_name(store_uri: str) -> None:
    R = QlibRecorder(ExpManager(uri=store_uri, default_exp_name="mine"))
    with R.start() as exp:
        assert exp.name == "mine"


def test_get_exp_by_id_and_by_name(R: QlibRecorder) -> None:
    created = R.get_exp(experiment_name="x")
    by_id = R.get_exp(experiment_id=created.id, create=False)
    by_name = R.get_exp(experiment_name="x", create=False)
    assert by_id == created == by_name
    assert by_id.name == "x" and by_name.id == created.id
    with pytest.raises(ValueError, match="No valid experiment"):
        R.get_exp(experiment_name="missing", create=False)
    with pytest.raises(ValueError, match="No valid experiment"):
        R.get_exp(experiment_id="0" * 32, create=False)
    assert set(R.list_experiments()) == {"x"}


def test_get_exp_create_makes_a_missing_experiment(R: QlibRecorder) -> None:
    exp = R.get_exp(experiment_name="new")
    assert isinstance(exp, Experiment) and exp.name == "new"
    assert "new" in R.list_experiments()
    # An id that is not found, with a name: created by that name (qlib's _get_or_create_exp).
    by_name = R.get_exp(experiment_id="f" * 32, experiment_name="named")
    assert by_name.name == "named" and by_name.id != "f" * 32
    assert R.get_exp(experiment_id="f" * 32, experiment_name="named").id == by_name.id
    with pytest.raises(ValueError, match="No valid experiment"):
        R.exp_manager.get_exp(experiment_id="f" * 32)  # an id alone is never created
    assert set(R.list_experiments()) == {"new", "named"}


def test_manager_lookup_without_id_or_name_is_an_assertion(R: QlibRecorder) -> None:
    with pytest.raises(AssertionError):
        R.exp_manager._get_exp()
    with pytest.raises(AssertionError):
        R.exp_manager._get_or_create_exp()


def test_create_exp(R: QlibRecorder) -> None:
    exp = R.exp_manager.create_exp("made")
    assert exp.name == "made"
    with pytest.raises(ExpAlreadyExistError):
        R.exp_manager.create_exp("made")
    with pytest.raises(AssertionError):
        R.exp_manager.create_exp(None)
    assert list(R.list_experiments()) == ["made"]


# ---------------------------------------------------------------------- get_recorder


def test_get_recorder_returns_the_active_recorder(R: QlibRecorder) -> None:
    with R.start(experiment_name="e") as exp:
        active = exp.active_recorder
        assert R.get_recorder() is active
        assert exp.get_recorder() is active
        # Naming the experiment looks it up again (qlib): the latest "mlflow_recorder" in it.
        assert R.get_recorder(experiment_name="e") == active


def test_get_recorder_without_anything_active_takes_the_latest_default(R: QlibRecorder) -> None:
    with pytest.raises(ValueError, match="No valid experiment"):
        R.get_recorder()
    run(R, recorder_name="other")
    with pytest.raises(ValueError, match="No valid recorder"):
        R.get_recorder()
    run(R)
    latest = run(R)
    run(R, recorder_name="other")
    found = R.get_recorder()
    assert found.id == latest.id
    assert found.name == "mlflow_recorder"
    assert found.status == "FINISHED"


def test_get_recorder_by_id_and_by_name(R: QlibRecorder) -> None:
    first = run(R, experiment_name="e", recorder_name="r")
    second = run(R, experiment_name="e", recorder_name="r", status="FAILED")
    by_id = R.get_recorder(recorder_id=first.id, experiment_name="e")
    assert by_id.id == first.id and by_id.status == "FINISHED"
    assert by_id.experiment_id == R.get_exp(experiment_name="e").id
    by_name = R.get_recorder(recorder_name="r", experiment_name="e")
    assert by_name.id == second.id and by_name.status == "FAILED"
    with pytest.raises(ValueError, match="No valid recorder"):
        R.get_recorder(recorder_name="nope", experiment_name="e")
    with pytest.raises(ValueError, match="No valid recorder"):
        R.get_recorder(recorder_id="0" * 32, experiment_name="e")
    with pytest.raises(ValueError, match="No valid experiment"):
        R.get_recorder(recorder_id=first.id, experiment_name="missing")


def test_get_recorder_by_id_checks_the_experiment(R: QlibRecorder) -> None:
    rec = run(R, experiment_name="a")
    R.get_exp(experiment_name="b")
    with pytest.raises(ValueError, match="No valid recorder") as info:
        R.get_recorder(recorder_id=rec.id, experiment_name="b")
    assert isinstance(info.value, NotFoundError)
    exp_a = R.get_exp(experiment_name="a")
    found = R.get_recorder(recorder_id=rec.id, experiment_id=exp_a.id)
    assert found.experiment_id == exp_a.id


def test_experiment_get_recorder_table(R: QlibRecorder, store_uri: str) -> None:
    exp = R.get_exp(experiment_name="e")
    # create=True, nothing there: a new, unsaved recorder, not started without start=True.
    fresh = exp.get_recorder()
    assert fresh.id is None and fresh.status == "SCHEDULED"
    assert exp.active_recorder is None and exp.list_recorders() == {}
    # start=True on a new recorder: it becomes active and RUNNING.
    started = exp.get_recorder(recorder_name="s", create=True, start=True)
    assert exp.active_recorder is started and started.status == "RUNNING"
    started.end_run("FINISHED")
    exp.active_recorder = None
    # An existing recorder is returned as-is, never restarted or activated.
    again = exp.get_recorder(None, "s", True, True)
    assert again.id == started.id and again.status == "FINISHED"
    assert exp.active_recorder is None
    # create=True with an id that is not there: the id is ignored, a new unsaved one is made.
    made = exp.get_recorder(recorder_id="0" * 32)
    assert made.id is None and made.name == "mlflow_recorder"
    # Positional arguments: recorder_id, recorder_name, create, start.
    assert exp.get_recorder(started.id, None, False).id == started.id
    with pytest.raises(ValueError, match="No valid recorder"):
        exp.get_recorder(None, "missing", False)
    with pytest.raises(AssertionError):
        exp._get_recorder(None, None)


# ---------------------------------------------------------------------- listing


def test_list_experiments(R: QlibRecorder) -> None:
    assert R.list_experiments() == {}
    a = R.get_exp(experiment_name="a")
    b = R.get_exp(experiment_name="b")
    listed = R.list_experiments()
    assert listed == {"a": a, "b": b}
    assert all(isinstance(e, Experiment) for e in listed.values())
    R.delete_exp(experiment_name="a")
    assert list(R.list_experiments()) == ["b"]


def test_list_recorders_newest_first_keyed_by_id(R: QlibRecorder) -> None:
    ids = [run(R, experiment_name="e", recorder_name=f"r{i}").id for i in range(4)]
    listed = R.list_recorders(experiment_name="e")
    assert isinstance(listed, dict)
    assert list(listed) == ids[::-1]
    assert all(isinstance(r, Recorder) and r.id == k for k, r in listed.items())
    exp = R.get_exp(experiment_name="e")
    as_list = exp.list_recorders("list")
    assert isinstance(as_list, list)
    assert [r.id for r in as_list] == ids[::-1]
    assert list(exp.list_recorders(rtype=Experiment.RT_D)) == ids[::-1]
    assert list(R.list_recorders(experiment_id=exp.id)) == ids[::-1]
    assert [r.id for r in exp.list_recorders(Experiment.RT_L)] == ids[::-1]


def test_list_recorders_status_and_max_results(R: QlibRecorder) -> None:
    statuses = ["FINISHED", "FAILED", "FINISHED", "FAILED", "FINISHED"]
    ids = [run(R, status=s, experiment_name="e").id for s in statuses]
    exp = R.get_exp(experiment_name="e")
    failed = exp.list_recorders(status="FAILED")
    assert list(failed) == [ids[3], ids[1]]
    assert all(r.status == "FAILED" for r in failed.values())
    assert list(exp.list_recorders(max_results=2)) == [ids[4], ids[3]]
    assert list(exp.list_recorders(max_results=1, status="FINISHED")) == [ids[4]]
    assert exp.list_recorders(status="SCHEDULED") == {}
    assert len(exp.list_recorders(max_results=100)) == 5


def test_list_recorders_unknown_rtype(R: QlibRecorder) -> None:
    exp = R.get_exp(experiment_name="e")
    with pytest.raises(NotImplementedError):
        exp.list_recorders("tuple")


def test_list_recorders_includes_the_running_one(R: QlibRecorder) -> None:
    with R.start(experiment_name="e"):
        running = R.get_recorder()
        listed = R.list_recorders()
        assert list(listed) == [running.id]
        assert listed[running.id].status == "RUNNING"


def test_R_list_recorders_creates_a_missing_experiment(R: QlibRecorder) -> None:
    assert R.list_recorders(experiment_name="unknown") == {}
    assert "unknown" in R.list_experiments()
    assert R.list_recorders() == {}
    assert set(R.list_experiments()) == {"unknown", "Experiment"}
    assert R.exp_manager.active_experiment is None


# ---------------------------------------------------------------------- deleting


def test_delete_exp_is_soft_and_frees_the_name(R: QlibRecorder, store_uri: str) -> None:
    rec = run(R, experiment_name="gone")
    old = R.get_exp(experiment_name="gone")
    R.delete_exp(experiment_name="gone")
    assert "gone" not in R.list_experiments()
    with pytest.raises(ValueError, match="No valid experiment"):
        R.get_exp(experiment_name="gone", create=False)
    with pytest.raises(ValueError, match="No valid experiment"):
        R.get_exp(experiment_id=old.id, create=False)
    # Soft: the folder, its metadata and its recorders are still there.
    meta = experiment_json(store_uri, old.id)
    assert meta["lifecycle"] == "deleted" and meta["name"] == "gone"
    assert (Path(rec.get_local_dir()) / "recorder.json").is_file()
    # The name can be used again, for a new experiment.
    with R.start(experiment_name="gone") as new:
        pass
    assert new.id != old.id
    assert R.list_experiments()["gone"].id == new.id
    assert len(new.list_recorders()) == 1


def test_delete_exp_by_id_and_errors(R: QlibRecorder) -> None:
    exp = R.get_exp(experiment_name="x")
    with pytest.raises(AssertionError):
        R.delete_exp()
    R.delete_exp(experiment_id=exp.id)
    with pytest.raises(ValueError):
        R.delete_exp(experiment_id=exp.id)
    with pytest.raises(ValueError):
        R.delete_exp(experiment_name="never-existed")
    assert R.list_experiments() == {}


def test_delete_exp_leaves_the_active_pointers(R: QlibRecorder) -> None:
    with R.start(experiment_name="busy") as exp:
        R.delete_exp(experiment_name="busy")
        assert R.exp_manager.active_experiment is exp
        R.log_params(still="works")
        assert R.get_recorder().list_params()["still"] == "works"


def test_delete_recorder_by_id_and_by_name(R: QlibRecorder) -> None:
    keep = run(R, recorder_name="keep")
    by_id = run(R, recorder_name="x")
    older = run(R, recorder_name="dup")
    newer = run(R, recorder_name="dup")
    R.delete_recorder(recorder_id=by_id.id)
    R.delete_recorder(recorder_name="dup")  # the latest with that name
    listed = R.list_recorders()
    assert list(listed) == [older.id, keep.id]
    # Soft: still on disk, marked deleted; lookups skip it.
    meta = json.loads((Path(newer.get_local_dir()) / "recorder.json").read_text("utf-8"))
    assert meta["lifecycle"] == "deleted"
    assert R.get_recorder(recorder_name="dup").id == older.id
    with pytest.raises(ValueError, match="No valid recorder"):
        R.get_recorder(recorder_name="x")
    with pytest.raises(AssertionError):
        R.delete_recorder()
    with pytest.raises(ValueError, match="No valid recorder"):
        R.delete_recorder(recorder_name="never")


def test_experiment_delete_recorder_stays_in_its_experiment(R: QlibRecorder) -> None:
    rec = run(R, experiment_name="a", recorder_name="r")
    exp_b = R.get_exp(experiment_name="b")
    with pytest.raises(ValueError):
        exp_b.delete_recorder(recorder_id=rec.id)
    assert list(R.list_recorders(experiment_name="a")) == [rec.id]
    R.get_exp(experiment_name="a").delete_recorder(recorder_id=rec.id)
    assert R.list_recorders(experiment_name="a") == {}


def test_listed_recorders_show_what_get_recorder_shows(R: QlibRecorder) -> None:
    """Listed recorders convert their times to qlib's format only when read."""
    with R.start(experiment_name="times"):
        R.log_params(a=1)
    exp = R.get_exp(experiment_name="times")
    (listed,) = exp.list_recorders(rtype=exp.RT_L)
    fetched = R.get_recorder(recorder_id=listed.id, experiment_name="times")
    assert listed.info == fetched.info
    assert listed.start_time is not None and listed.end_time is not None
    listed.end_time = "set by hand"
    assert listed.info["end_time"] == "set by hand"


def test_a_recorder_pickled_by_an_earlier_release_unpickles(R: QlibRecorder) -> None:
    import pickle

    with R.start(experiment_name="old"):
        recorder = R.get_recorder()
    state = recorder.__getstate__()
    for key in ("_iso_times", "_local_times"):
        del state[key]
    state.update(start_time="2024-01-01 00:00:00", end_time=None)  # as earlier releases kept
    old = object.__new__(type(recorder))
    old.__setstate__(state)
    assert (old.start_time, old.end_time) == ("2024-01-01 00:00:00", None)
    assert pickle.loads(pickle.dumps(recorder)).info == recorder.info
