"""LightGBMCallback with real LightGBM on tiny data: train, cv, R's active run, distribution."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _framework_support import points, runs

from tracklite import QlibRecorder

lgb = pytest.importorskip("lightgbm")

from tracklite.integrations import LightGBMCallback  # noqa: E402  (needs the framework)

PARAMS = {"objective": "regression", "learning_rate": 0.3, "num_leaves": 4, "verbose": -1}
ROUNDS = 6


def data(seed: int = 0, rows: int = 200) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 4))
    return x, x[:, 0] * 2 + rng.normal(scale=0.1, size=rows)


def test_train_logs_every_round_at_lightgbm_round_number(global_R: QlibRecorder) -> None:
    x, y = data()
    train, valid = lgb.Dataset(x[:150], y[:150]), lgb.Dataset(x[150:], y[150:])
    recorded: dict[str, dict[str, list[float]]] = {}
    lgb.train(
        PARAMS,
        train,
        num_boost_round=ROUNDS,
        valid_sets=[train, valid],
        valid_names=["train", "valid"],
        callbacks=[lgb.record_evaluation(recorded), LightGBMCallback(experiment_name="lgb")],
    )
    uri = global_R.get_uri()
    listed = runs(uri)
    assert len(listed) == 1
    assert listed.loc[0, "status"] == "FINISHED"
    assert listed.loc[0, "tags.mlflow.runName"] == "lightgbm"
    assert listed.loc[0, "params.num_leaves"] == "4"
    assert global_R.exp_manager.active_experiment is None  # its own run ended with training
    for data_name in ("train", "valid"):
        got = points(uri, f"{data_name}-l2")
        assert got["step"].tolist() == list(range(1, ROUNDS + 1))
        assert got["value"].tolist() == pytest.approx(recorded[data_name]["l2"])
        assert (got["experiment_name"] == "lgb").all()


def test_cv_logs_mean_and_stdv(global_R: QlibRecorder) -> None:
    x, y = data(1)
    result = lgb.cv(
        {**PARAMS, "metric": "l2"},
        lgb.Dataset(x, y),
        num_boost_round=4,
        nfold=3,
        stratified=False,
        callbacks=[LightGBMCallback()],
    )
    uri = global_R.get_uri()
    mean, stdv = points(uri, "valid-l2-mean"), points(uri, "valid-l2-stdv")
    assert mean["step"].tolist() == [1, 2, 3, 4]
    assert mean["value"].tolist() == pytest.approx(result["valid l2-mean"])
    assert stdv["value"].tolist() == pytest.approx(result["valid l2-stdv"])
    assert (stdv["value"] > 0).all()
    assert runs(uri).loc[0, "status"] == "FINISHED"


def test_active_run_of_r_is_used_and_left_to_its_owner(global_R: QlibRecorder) -> None:
    x, y = data(2)
    with global_R.start(experiment_name="outer", recorder_name="mine"):
        global_R.log_params(stage="tuning")
        lgb.train(
            PARAMS,
            lgb.Dataset(x, y),
            num_boost_round=3,
            valid_sets=[lgb.Dataset(x, y)],
            callbacks=[LightGBMCallback(experiment_name="ignored")],
        )
        recorder = global_R.get_recorder()
        assert recorder.status == "RUNNING"  # training over, the run is still the caller's
        assert recorder.list_metrics()["valid_0-l2"] > 0
    listed = runs(global_R.get_uri())
    assert len(listed) == 1
    assert listed.loc[0, "tags.mlflow.runName"] == "mine"
    assert listed.loc[0, "params.stage"] == "tuning"
    assert listed.loc[0, "status"] == "FINISHED"


def test_early_stop_round_is_logged_and_the_run_blocks_nothing(global_R: QlibRecorder) -> None:
    x, y = data(3)
    noise = np.random.default_rng(9).normal(size=len(y))  # a validation set it cannot learn
    callback = LightGBMCallback()
    booster = lgb.train(
        PARAMS,
        lgb.Dataset(x, y),
        num_boost_round=50,
        valid_sets=[lgb.Dataset(x, noise)],
        callbacks=[callback, lgb.early_stopping(2, verbose=False)],
    )
    uri = global_R.get_uri()
    stopped_at = booster.best_iteration + 2  # the round whose check stopped training
    assert stopped_at < 50
    assert points(uri, "valid_0-l2")["step"].max() == stopped_at
    assert runs(uri)["status"].tolist() == ["RUNNING"]  # LightGBM told no callback it stopped
    # R is free for the caller's own run, which the stopped training does not write into.
    with global_R.start(experiment_name="mine"):
        global_R.log_metrics(step=1, mine=1.0)
    # The next training with the same callback ends the stopped run and starts its own.
    lgb.train(
        PARAMS,
        lgb.Dataset(x, y),
        num_boost_round=2,
        valid_sets=[lgb.Dataset(x, y)],
        callbacks=[callback],
    )
    listed = runs(uri).sort_values("start_time")
    assert listed["status"].tolist() == ["FINISHED", "FINISHED", "FINISHED"]
    per_run = points(uri).groupby("recorder_name")["key"].unique().map(sorted).to_dict()
    assert per_run == {"lightgbm": ["valid_0-l2"], "mlflow_recorder": ["mine"]}


EARLY_STOP_THEN_EXIT = """
import numpy as np
import lightgbm as lgb
from tracklite.integrations import LightGBMCallback

rng = np.random.default_rng(3)
x = rng.normal(size=(200, 4))
lgb.train({"objective": "regression", "verbose": -1}, lgb.Dataset(x, x[:, 0]), 50,
          valid_sets=[lgb.Dataset(x, rng.normal(size=200))],
          callbacks=[LightGBMCallback(), lgb.early_stopping(2, verbose=False)])
{ending}
"""


@pytest.mark.parametrize(
    ("ending", "status"), [("", "FINISHED"), ("raise RuntimeError('after training')", "FAILED")]
)
def test_early_stopped_run_ends_with_the_process(
    tmp_path: Path, store_uri: str, ending: str, status: str
) -> None:
    script = tmp_path / "train.py"
    script.write_text(EARLY_STOP_THEN_EXIT.replace("{ending}", ending), encoding="utf-8")
    subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env={**os.environ, "TRACKLITE_URI": store_uri},
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert runs(store_uri)["status"].tolist() == [status]


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


DISTRIBUTED = """
import sys
import numpy as np
import lightgbm as lgb
from tracklite.integrations import LightGBMCallback

rank, ports = int(sys.argv[1]), [int(p) for p in sys.argv[2].split(",")]
rng = np.random.default_rng(rank)
x = rng.normal(size=(300, 4))
y = x[:, 0] * 2
params = {
    "objective": "regression", "verbose": -1, "num_leaves": 4, "tree_learner": "data",
    "num_machines": 2, "machines": ",".join(f"127.0.0.1:{p}" for p in ports),
    "local_listen_port": ports[rank], "time_out": 2,
}
train = lgb.Dataset(x, y)
lgb.train(params, train, num_boost_round=4, valid_sets=[train], callbacks=[LightGBMCallback()])
print("trained", rank)
"""


def test_distributed_training_logs_from_rank_zero_only(tmp_path: Path, store_uri: str) -> None:
    script = tmp_path / "worker.py"
    script.write_text(DISTRIBUTED, encoding="utf-8")
    ports = ",".join(map(str, _free_ports(2)))
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), str(rank), ports],
            cwd=tmp_path,
            env={**os.environ, "TRACKLITE_URI": store_uri},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    outputs = [w.communicate(timeout=120) for w in workers]
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err[-3000:]
    listed = runs(store_uri)
    assert len(listed) == 1  # the second machine started no run
    assert points(store_uri, "training-l2")["step"].tolist() == [1, 2, 3, 4]


def test_scikit_learn_estimator_fitted_twice_makes_two_runs(global_R: QlibRecorder) -> None:
    pytest.importorskip("sklearn")
    x, y = data(4, rows=80)
    valid_x, valid_y = data(5, rows=40)
    model = lgb.LGBMRegressor(n_estimators=3, num_leaves=4, verbose=-1)
    for _ in range(2):
        callback = LightGBMCallback()
        model.fit(x, y, eval_X=(valid_x,), eval_y=(valid_y,), callbacks=[callback])
    assert callback.order == 25  # LightGBM did not override it
    listed = runs(global_R.get_uri())
    assert listed["status"].tolist() == ["FINISHED", "FINISHED"]
    history = points(global_R.get_uri(), "valid_0-l2")
    assert sorted(history.groupby("recorder_id")["step"].apply(list).tolist()) == [[1, 2, 3]] * 2
