"""``tracklite.mlflow``: MLflow's fluent API and client over a tracklite store, seen from ``R``
and the command line, and ``R``'s runs seen from it."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tracklite.mlflow as mlflow
from tracklite import ExpManager, QlibRecorder
from tracklite.mlflow import MlflowClient, MlflowException
from tracklite.mlflow.entities import FileInfo, Metric, Param, Run, RunTag, ViewType
from tracklite.mlflow.tracking import fluent
from tracklite.mlflow.utils import validation


@pytest.fixture
def uri(store_uri: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``tracklite.mlflow`` pointed at this test's store, its process state reset afterwards."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    mlflow.set_tracking_uri(store_uri)
    yield store_uri
    while mlflow.active_run() is not None:
        mlflow.end_run("FAILED")
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
    fluent._active_experiment_id = None
    fluent._last_active_run_id = None


def test_fluent_run_is_a_recorder_of_r(uri: str) -> None:
    mlflow.set_experiment("lgb")
    with mlflow.start_run(run_name="first", tags={"kind": "baseline"}) as run:
        mlflow.log_param("lr", 0.05)
        mlflow.log_params({"leaves": 64, "model": "lgb"})
        for step in range(3):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"ic": 0.07, "rank ic": 0.06}, step=2)
        mlflow.set_tags({"stage": "dev"})
        mlflow.log_text("hello", "notes/readme.txt")
    R = QlibRecorder(ExpManager(uri=uri))
    rec = R.get_recorder(recorder_id=run.info.run_id, experiment_name="lgb")
    assert rec.name == "first"
    assert rec.status == "FINISHED"
    assert rec.list_params() == {"lr": "0.05", "leaves": "64", "model": "lgb"}
    assert rec.list_metrics() == {"loss": pytest.approx(1 / 3), "ic": 0.07, "rank ic": 0.06}
    tags = rec.list_tags()
    assert tags["kind"] == "baseline" and tags["stage"] == "dev"
    assert tags["mlflow.runName"] == "first"
    assert tags["mlflow.source.name"] and tags["mlflow.user"]
    history = rec.get_metric_history("loss")
    assert history["step"].tolist() == [0, 1, 2]
    assert rec.list_artifacts() == ["notes"]
    assert (Path(rec.get_local_dir()) / "artifacts/notes/readme.txt").read_text() == "hello"
    frame = R.search_records(filter_string="params.model = 'lgb'")
    assert frame["run_id"].tolist() == [run.info.run_id]
    import tracklite

    assert tracklite.check(uri).clean  # a store tracklite's own checker finds nothing wrong in


def test_r_recorder_is_an_mlflow_run(uri: str) -> None:
    R = QlibRecorder(ExpManager(uri=uri))
    with R.start(experiment_name="qlib", recorder_name="r1"):
        R.log_params(lr=0.1)
        R.log_metrics(step=4, IC=0.05)
        R.set_tags(team="quant")
        rec = R.get_recorder()
    client = MlflowClient(uri)
    run = client.get_run(rec.id)
    assert run.info.run_name == "r1"
    assert run.info.status == "FINISHED"
    assert run.info.experiment_id == rec.experiment_id
    assert run.data.params["lr"] == "0.1"
    assert run.data.metrics == {"IC": 0.05}
    assert run.data.tags["team"] == "quant"
    assert run.data.tags["mlflow.runName"] == "r1"
    (point,) = client.get_metric_history(rec.id, "IC")
    assert (point.step, point.value) == (4, 0.05)
    exp = mlflow.get_experiment_by_name("qlib")
    assert exp is not None and exp.experiment_id == rec.experiment_id
    found = mlflow.search_runs([exp.experiment_id], output_format="list")
    assert [r.info.run_id for r in found] == [rec.id]
    # and the client writes into R's recorder
    client.log_metric(rec.id, "IC", 0.06, step=5)
    client.set_tag(rec.id, "reviewed", "yes")
    assert R.get_recorder(recorder_id=rec.id, experiment_name="qlib").list_metrics() == {"IC": 0.06}


def test_cli_lists_fluent_runs(uri: str) -> None:
    with mlflow.start_run(run_name="cli-visible") as run:
        mlflow.log_metric("acc", 0.9)
    done = subprocess.run(
        [sys.executable, "-m", "tracklite", "runs", "Default", "--uri", uri, "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert run.info.run_id in done.stdout and "0.9" in done.stdout


def test_nested_runs_and_failure_status(uri: str) -> None:
    with pytest.raises(ZeroDivisionError), mlflow.start_run(run_name="parent") as parent:
        with mlflow.start_run(run_name="child", nested=True) as child:
            assert mlflow.active_run() is child
        assert mlflow.active_run() is parent
        1 / 0  # noqa: B018
    assert mlflow.active_run() is None
    client = MlflowClient()
    assert client.get_run(parent.info.run_id).info.status == "FAILED"
    done = client.get_run(child.info.run_id)
    assert done.info.status == "FINISHED"
    assert done.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert mlflow.last_active_run().info.run_id == parent.info.run_id  # type: ignore[union-attr]
    assert client.get_parent_run(child.info.run_id).info.run_id == parent.info.run_id  # type: ignore[union-attr]


def test_second_run_without_nested_is_refused(uri: str) -> None:
    with mlflow.start_run() as run:  # noqa: SIM117
        with pytest.raises(Exception, match=f"Run with UUID {run.info.run_id} is already active"):
            mlflow.start_run()


def test_resume_run_by_id(uri: str) -> None:
    with mlflow.start_run(run_name="again") as run:
        mlflow.log_metric("loss", 1.0, step=0)
    with mlflow.start_run(run_id=run.info.run_id) as resumed:
        assert resumed.info.status == "RUNNING"
        mlflow.log_metric("loss", 0.5, step=1)
    history = MlflowClient().get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 1.0), (1, 0.5)]
    assert mlflow.get_run(run.info.run_id).info.status == "FINISHED"


def test_client_run_lifecycle_and_batch(uri: str) -> None:
    client = MlflowClient(uri)
    exp_id = client.create_experiment("lightning")
    assert client.get_experiment_by_name("lightning").experiment_id == exp_id  # type: ignore[union-attr]
    run = client.create_run(exp_id, tags={"mlflow.runName": "v0", "team": "a"})
    assert run.info.run_name == "v0" and run.info.status == "RUNNING"
    rid = run.info.run_id
    client.log_batch(
        rid,
        metrics=[Metric("loss", 0.5, 1_700_000_000_000 + i, i) for i in range(5)],
        params=[Param("lr", "0.1"), Param("bs", "32")],
        tags=[RunTag("phase", "train")],
    )
    client.log_param(rid, "lr", "0.1")  # the same value again is fine
    with pytest.raises(MlflowException, match="Changing param values is not allowed") as err:
        client.log_param(rid, "lr", "0.2")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    client.delete_tag(rid, "phase")
    with pytest.raises(MlflowException, match="No tag with name: phase"):
        client.delete_tag(rid, "phase")
    client.set_terminated(rid, "KILLED", end_time=1_700_000_100_000)
    got = client.get_run(rid)
    assert got.info.status == "KILLED" and got.info.end_time == 1_700_000_100_000
    assert got.data.params == {"lr": "0.1", "bs": "32"}
    assert "phase" not in got.data.tags
    history = client.get_metric_history(rid, "loss")
    assert [m.timestamp for m in history] == [1_700_000_000_000 + i for i in range(5)]
    client.delete_run(rid)
    assert client.search_runs([exp_id]) == []
    assert [r.info.run_id for r in client.search_runs([exp_id], run_view_type=ViewType.ALL)] == [
        rid
    ]
    with pytest.raises(MlflowException, match="must be in the 'active' state"):
        client.log_metric(rid, "loss", 1.0)
    client.restore_run(rid)
    assert client.get_run(rid).info.lifecycle_stage == "active"


def test_batch_limits_and_key_rules(uri: str) -> None:
    client = MlflowClient(uri)
    rid = client.create_run("0").info.run_id
    # As MLflow's file store: a batch beyond the server's limits is accepted.
    many = [Param(f"p{i}", "v") for i in range(validation.MAX_PARAMS_TAGS_PER_BATCH + 1)]
    client.log_batch(rid, params=many)
    with pytest.raises(MlflowException, match="Duplicate parameter keys"):
        client.log_batch(rid, params=[Param("a", "1"), Param("a", "2")])
    with pytest.raises(MlflowException, match="Names may only contain"):
        client.log_metric(rid, "bad!key", 1.0)
    with pytest.raises(MlflowException, match="would resolve to"):
        client.log_metric(rid, "a/../b", 1.0)
    with pytest.raises(MlflowException, match="valid double"):
        client.log_metric(rid, "loss", "not a number")  # type: ignore[arg-type]
    long_value = "x" * (validation.MAX_PARAM_VAL_LENGTH + 10)
    client.log_param(rid, "long", long_value)  # MLflow truncates long values
    assert client.get_run(rid).data.params["long"] == long_value[: validation.MAX_PARAM_VAL_LENGTH]
    client.set_terminated(rid)
    params = client.get_run(rid).data.params
    assert "a" not in params  # nothing of the refused batch
    assert len(params) == validation.MAX_PARAMS_TAGS_PER_BATCH + 2


def test_metric_values_are_converted_as_mlflow_does(uri: str) -> None:
    np = pytest.importorskip("numpy")
    with mlflow.start_run() as run:
        mlflow.log_metric("a", np.float32(0.5))
        mlflow.log_metric("b", np.array([2.0]))
        mlflow.log_metric("c", True)
        mlflow.log_metric("d", "3.5")  # type: ignore[arg-type]
        with pytest.raises(MlflowException, match="valid double"):
            mlflow.log_metric("e", [1, 2])  # type: ignore[arg-type]
        with pytest.raises(MlflowException, match="Step must be a valid long"):
            mlflow.log_metric("e", 1.0, step="first")  # type: ignore[arg-type]
    assert mlflow.get_run(run.info.run_id).data.metrics == {"a": 0.5, "b": 2.0, "c": 1.0, "d": 3.5}


@pytest.mark.parametrize(
    "bad",
    ["http://localhost:5000", "https://mlflow.example", "databricks", "sqlite:///mlflow.db",
     "postgresql://u@h/db", "databricks://profile"],
)  # fmt: skip
def test_server_uris_are_refused_with_one_sentence(bad: str, uri: str) -> None:
    with pytest.raises(MlflowException, match="needs an MLflow server or database") as err:
        mlflow.set_tracking_uri(bad)
    assert str(err.value).count(". ") == 0  # one sentence
    with pytest.raises(MlflowException, match="needs an MLflow server"):
        MlflowClient(bad)
    assert mlflow.get_tracking_uri() == uri  # unchanged


def test_store_deleted_and_used_again(uri: str) -> None:
    import shutil

    with mlflow.start_run():
        mlflow.log_metric("x", 1.0)
    shutil.rmtree(uri)
    with mlflow.start_run() as run:  # a new store, with its Default experiment again
        mlflow.log_metric("x", 2.0)
    assert mlflow.get_run(run.info.run_id).data.metrics == {"x": 2.0}


def test_tracking_uri_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uri: str
) -> None:
    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
    assert not mlflow.is_tracking_uri_set()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"file:{tmp_path / 'env-store'}")
    assert mlflow.is_tracking_uri_set()
    with mlflow.start_run() as run:
        mlflow.log_metric("x", 1.0)
    assert (tmp_path / "env-store" / "0" / run.info.run_id / "recorder.json").is_file()


def _after_millisecond(created_ms: int) -> None:
    """Wait until the clock has left the millisecond ``created_ms`` (and the next one)."""
    while time.time() * 1000 < created_ms + 2:
        time.sleep(0.001)


def test_default_experiment_and_search_experiments(uri: str) -> None:
    client = MlflowClient(uri)
    default = client.get_experiment("0")
    assert default.name == "Default" and default.lifecycle_stage == "active"
    # Experiments made in one millisecond tie on creation_time and then come by id, ascending
    # (MLflow's rule): let the clock move between creations so that "newest first" decides.
    _after_millisecond(default.creation_time)
    a = client.create_experiment("alpha", tags={"owner": "me"})
    _after_millisecond(client.get_experiment(a).creation_time)
    client.create_experiment("beta")
    with pytest.raises(MlflowException, match="Experiment 'alpha' already exists") as err:
        client.create_experiment("alpha")
    assert err.value.error_code == "RESOURCE_ALREADY_EXISTS"
    names = [e.name for e in client.search_experiments()]
    assert names == ["beta", "alpha", "Default"]  # newest first
    assert [e.name for e in client.search_experiments(filter_string="name LIKE 'al%'")] == ["alpha"]
    assert [e.name for e in client.search_experiments(filter_string="tags.owner = 'me'")] == [
        "alpha"
    ]
    assert [e.name for e in client.search_experiments(order_by=["name ASC"])] == [
        "Default",
        "alpha",
        "beta",
    ]
    client.delete_experiment(a)
    assert [e.name for e in client.search_experiments(view_type=ViewType.DELETED_ONLY)] == ["alpha"]
    with pytest.raises(MlflowException, match="Cannot delete the default experiment"):
        client.delete_experiment("0")
    with pytest.raises(MlflowException, match="Cannot set a deleted experiment"):
        mlflow.set_experiment("alpha")
    with pytest.raises(MlflowException, match="Could not find experiment with ID nope"):
        client.get_experiment("nope")
    assert client.get_experiment_by_name("missing") is None


def test_search_runs_pandas_and_list_agree(uri: str) -> None:
    mlflow.set_experiment("grid")
    for lr in (0.1, 0.01, 0.001):
        with mlflow.start_run(run_name=f"lr={lr}"):
            mlflow.log_param("lr", lr)
            mlflow.log_metric("ic", lr * 10)
    frame = mlflow.search_runs(filter_string="metrics.ic > 0.05", order_by=["metrics.ic DESC"])
    runs = mlflow.search_runs(
        filter_string="metrics.ic > 0.05", order_by=["metrics.ic DESC"], output_format="list"
    )
    assert frame["params.lr"].tolist() == ["0.1", "0.01"]
    assert [r.data.params["lr"] for r in runs] == ["0.1", "0.01"]
    assert frame["run_id"].tolist() == [r.info.run_id for r in runs]
    assert mlflow.search_runs(experiment_names=["grid"], max_results=1).shape[0] == 1
    with pytest.raises(MlflowException, match="Invalid filter"):
        mlflow.search_runs(filter_string="metrics.ic >> 1")


def test_artifacts(uri: str, tmp_path: Path) -> None:
    local = tmp_path / "model.txt"
    local.write_text("weights")
    folder = tmp_path / "ckpt"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "w.bin").write_bytes(b"\x00\x01")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(local))
        mlflow.log_artifact(str(local), artifact_path="models")
        mlflow.log_artifacts(str(folder), artifact_path="checkpoint")
        mlflow.log_dict({"a": [1, 2]}, "config.json")
        assert mlflow.get_artifact_uri("models/model.txt").endswith(
            f"{run.info.run_id}/artifacts/models/model.txt"
        )
    client = MlflowClient()
    rid = run.info.run_id
    assert client.list_artifacts(rid) == [
        FileInfo("checkpoint", True, None),
        FileInfo("config.json", False, len(json.dumps({"a": [1, 2]}, indent=2))),
        FileInfo("model.txt", False, 7),
        FileInfo("models", True, None),
    ]
    assert [f.path for f in client.list_artifacts(rid, "checkpoint/sub")] == [
        "checkpoint/sub/w.bin"
    ]
    local_copy = client.download_artifacts(rid, "checkpoint/sub/w.bin")
    assert Path(local_copy).read_bytes() == b"\x00\x01"
    dst = tmp_path / "dst"
    copied = client.download_artifacts(rid, "models", str(dst))
    assert (Path(copied) / "model.txt").read_text() == "weights"
    assert json.loads(Path(client.download_artifacts(rid, "config.json")).read_text()) == {
        "a": [1, 2]
    }
    with pytest.raises(ValueError, match="climbs out"):
        client.log_text(rid, "x", "../escape.txt")
    repo = client._tracking_client._get_artifact_repo(rid)  # what qlib's recorder asks for
    assert Path(repo.artifact_dir, "model.txt").read_text() == "weights"
    assert repo.artifact_uri == mlflow.get_run(rid).info.artifact_uri


def test_log_figure_with_matplotlib(uri: str) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    with mlflow.start_run() as run:
        mlflow.log_figure(fig, "plots/curve.png")
    path = MlflowClient().download_artifacts(run.info.run_id, "plots/curve.png")
    assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_entities_behave_like_mlflow_ones() -> None:
    metric = Metric("loss", 0.5, 123, 2)
    assert metric == Metric("loss", 0.5, 123, 2) and hash(metric) == hash(
        Metric("loss", 0.5, 123, 2)
    )
    assert dict(metric)["step"] == 2
    assert repr(Param("lr", "0.1")) == "<Param: key='lr', value='0.1'>"
    assert Param("lr", "0.1") == Param("lr", "0.2")  # MLflow compares params by key
    err = MlflowException("boom", error_code=3002)
    assert err.error_code == "RESOURCE_DOES_NOT_EXIST" and err.get_http_status_code() == 404
    again = pickle.loads(pickle.dumps(err))
    assert (again.message, again.error_code) == ("boom", "RESOURCE_DOES_NOT_EXIST")
    assert isinstance(err, __import__("tracklite").TrackliteError)
    assert mlflow.entities.RunStatus.to_string(mlflow.entities.RunStatus.KILLED) == "KILLED"
    from tracklite.mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST, ErrorCode

    assert err.error_code == ErrorCode.Name(RESOURCE_DOES_NOT_EXIST)


def test_run_objects_pickle(uri: str) -> None:
    with mlflow.start_run() as run:
        mlflow.log_metric("x", 1.0)
        copy = pickle.loads(pickle.dumps(run))
        assert type(copy) is Run and copy.info.run_id == run.info.run_id
    got = MlflowClient().get_run(run.info.run_id)
    again = pickle.loads(pickle.dumps(got))
    assert isinstance(again, Run) and again.info == got.info and again.data.metrics == {"x": 1.0}


def test_import_is_light_and_never_imports_mlflow() -> None:
    code = (
        "import sys, tracklite\n"
        "assert not any(m.split('.')[0] == 'mlflow' or m.startswith('tracklite.mlflow') "
        "for m in sys.modules), 'import tracklite loaded mlflow'\n"
        "import tracklite.mlflow as mlflow\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('mlflow', 'pandas'))\n"
        "print(bad)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]"


def test_run_left_active_ends_at_exit(store_uri: str, tmp_path: Path) -> None:
    code = (
        "import tracklite.mlflow as mlflow, sys\n"
        f"mlflow.set_tracking_uri({store_uri!r})\n"
        "run = mlflow.start_run()\n"
        "mlflow.log_metric('x', 1.0)\n"
        "print(run.info.run_id)\n"
        "if sys.argv[1] == 'raise':\n"
        "    raise RuntimeError('boom')\n"
    )
    ok = subprocess.run(
        [sys.executable, "-c", code, "ok"], capture_output=True, text=True, timeout=120
    )
    bad = subprocess.run(
        [sys.executable, "-c", code, "raise"], capture_output=True, text=True, timeout=120
    )
    client = MlflowClient(store_uri)
    assert client.get_run(ok.stdout.split()[-1]).info.status == "FINISHED"
    failed = client.get_run(bad.stdout.split()[-1])
    assert failed.info.status == "FAILED" and failed.data.metrics == {"x": 1.0}


def test_install_as_mlflow_shares_one_state(store_uri: str) -> None:
    code = (
        "import sys, tracklite.mlflow\n"
        "tracklite.mlflow.install_as_mlflow()\n"
        "import mlflow\n"
        "from mlflow.tracking import MlflowClient\n"
        "from mlflow.tracking.context.registry import resolve_tags\n"
        "from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME\n"
        "from mlflow.entities import Metric\n"
        f"mlflow.set_tracking_uri({store_uri!r})\n"
        "client = MlflowClient()\n"
        "run = client.create_run('0', tags=resolve_tags({MLFLOW_RUN_NAME: 'lit'}))\n"
        "client.log_batch(run.info.run_id, metrics=[Metric('m', 1.0, 1, 0)])\n"
        "client.set_terminated(run.info.run_id)\n"
        "assert MlflowClient is tracklite.mlflow.MlflowClient\n"
        "assert 'mlflow.user' in run.data.tags\n"
        "assert mlflow.utils.validation.MAX_PARAMS_TAGS_PER_BATCH == 100\n"
        "print(run.info.run_id)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    run = MlflowClient(store_uri).get_run(done.stdout.split()[-1])
    assert run.info.run_name == "lit" and run.data.metrics == {"m": 1.0}


def test_install_as_mlflow_refuses_after_real_mlflow() -> None:
    pytest.importorskip("mlflow")
    code = (
        "import mlflow, tracklite.mlflow\n"
        "try:\n"
        "    tracklite.mlflow.install_as_mlflow()\n"
        "except RuntimeError as exc:\n"
        "    print('refused:', exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "MLFLOW_ALLOW_FILE_STORE": "true"},
    )
    assert "refused: MLflow itself is already imported" in done.stdout, done.stderr


def test_killed_process_reads_killed(uri: str) -> None:
    code = (
        "import os, signal, tracklite.mlflow as mlflow\n"
        f"mlflow.set_tracking_uri({uri!r})\n"
        "run = mlflow.start_run(run_name='doomed')\n"
        "mlflow.log_metric('x', 1.0)\n"
        "mlflow.flush_async_logging()\n"
        "print(run.info.run_id, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == -9
    run_id = done.stdout.split()[-1]
    got = MlflowClient().get_run(run_id)
    assert got.info.status == "KILLED" and got.data.metrics == {"x": 1.0}
    frame = mlflow.search_runs()
    assert frame.loc[frame["run_id"] == run_id, "status"].tolist() == ["KILLED"]
    # A filter on status sees what the run reads, in both search calls.
    killed = "attributes.status = 'KILLED'"
    assert mlflow.search_runs(filter_string=killed)["run_id"].tolist() == [run_id]
    assert mlflow.search_runs(filter_string="status = 'RUNNING'").empty
    exp_id = got.info.experiment_id
    found = MlflowClient().search_runs([exp_id], filter_string=killed)
    assert [(r.info.run_id, r.info.status) for r in found] == [(run_id, "KILLED")]
    assert MlflowClient().search_runs([exp_id], filter_string="status != 'KILLED'") == []


def test_fluent_logging_after_the_client_ended_the_run(uri: str) -> None:
    with mlflow.start_run() as run:
        MlflowClient().set_terminated(run.info.run_id, "KILLED")
        mlflow.log_metric("late", 2.0)  # written at once: the run is no longer this process's
        assert MlflowClient().get_run(run.info.run_id).data.metrics == {"late": 2.0}


def test_runs_are_per_thread(uri: str) -> None:
    import threading

    seen: dict[str, object] = {}

    def worker() -> None:
        seen["before"] = mlflow.active_run()
        with mlflow.start_run(run_name="in-thread") as inner:
            mlflow.log_metric("t", 1.0)
        seen["id"] = inner.info.run_id

    with mlflow.start_run(run_name="main") as outer:
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        assert mlflow.active_run() is outer
    assert seen["before"] is None  # as in MLflow: each thread has its own active run
    inner_run = mlflow.get_run(str(seen["id"]))
    assert inner_run.data.metrics == {"t": 1.0}
    assert "mlflow.parentRunId" not in inner_run.data.tags


def test_dashboard_shows_fluent_runs(uri: str) -> None:
    pytest.importorskip("plotly")
    import threading
    import urllib.request

    from tracklite.ui.server import serve

    mlflow.set_experiment("seen")
    with mlflow.start_run(run_name="on-the-page") as run:
        mlflow.log_param("lr", 0.1)
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_text("x", "notes.txt")
    srv = serve(uri, "127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = srv.server_address[:2]

        def get(path: str) -> Any:
            url = f"http://{host}:{port}{path}&token={srv.token}"
            with urllib.request.urlopen(url, timeout=60) as response:
                return json.loads(response.read())

        runs = get("/api/runs?exps=seen")
        assert [r["name"] for r in runs["rows"]] == ["on-the-page"]
        page = get(f"/api/run?id={run.info.run_id}")
        assert page["params"] == {"lr": "0.1"} and page["tags"]["mlflow.runName"] == "on-the-page"
        assert [a["path"] for a in page["artifacts"]] == ["notes.txt"]
        (curve,) = get(f"/api/series?runs={run.info.run_id}&key=loss")["series"]
        assert curve["step"] == [0, 1, 2, 3, 4]
    finally:
        srv.shutdown()
        srv.server_close()


def test_default_experiment_made_through_r_is_used(store_uri: str, uri: str) -> None:
    from tracklite.api.stores import store_for
    from tracklite.mlflow import _backend

    other = str(Path(store_uri).parent / "other")
    QlibRecorder(ExpManager(uri=other)).get_exp(experiment_name="Default")
    _backend._defaults_made.discard(Path(other))
    mlflow.set_tracking_uri(other)
    with mlflow.start_run() as run:
        pass
    found = store_for(other).find_experiment("Default")
    assert found is not None and run.info.experiment_id == found["id"] != "0"


def test_forked_child_leaves_the_parents_run(uri: str) -> None:
    import os as _os

    if not hasattr(_os, "fork"):
        pytest.skip("no fork on this platform")
    with mlflow.start_run() as run:
        mlflow.log_metric("parent", 1.0)
        mlflow.flush_async_logging()
        child = _os.fork()
        if child == 0:  # the child logs, then leaves through sys.exit (atexit hooks run)
            mlflow.log_metric("child", 2.0)
            fluent._end_all("FINISHED")
            _os._exit(0)
        _os.waitpid(child, 0)
        got = MlflowClient().get_run(run.info.run_id)
        assert got.info.status == "RUNNING"
        assert got.data.metrics == {"parent": 1.0, "child": 2.0}
    assert MlflowClient().get_run(run.info.run_id).info.status == "FINISHED"


def test_processes_racing_to_set_one_experiment(uri: str) -> None:
    code = (
        "import sys, time, tracklite.mlflow as mlflow\n"
        f"mlflow.set_tracking_uri({uri!r})\n"
        "time.sleep(max(0.0, float(sys.argv[1]) - time.time()))\n"
        "exp = mlflow.set_experiment('shared')\n"
        "with mlflow.start_run():\n"
        "    mlflow.log_metric('x', 1.0)\n"
        "print(exp.experiment_id)\n"
    )
    import time

    start = str(time.time() + 2.0)  # all processes import first, then race
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, start],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err for _, err in outs]
    ids = {out.split()[-1] for out, _ in outs}
    assert len(ids) == 1  # one experiment, whoever created it
    assert len(mlflow.search_runs(experiment_ids=list(ids), output_format="list")) == 4


def test_sigterm_ends_the_active_run_failed(uri: str) -> None:
    import signal
    import time

    code = (
        "import time, tracklite.mlflow as mlflow\n"
        f"mlflow.set_tracking_uri({uri!r})\n"
        "with mlflow.start_run() as run:\n"
        "    mlflow.log_metric('x', 1.0)\n"
        "    print(run.info.run_id, flush=True)\n"
        "    time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 143
    got = MlflowClient().get_run(run_id)
    assert got.info.status == "FAILED" and got.data.metrics == {"x": 1.0}
