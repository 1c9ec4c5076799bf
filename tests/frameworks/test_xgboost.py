"""XGBoostCallback with real XGBoost on tiny data: train, cv, early stop, the model, rank 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _framework_support import points, runs

from tracklite import QlibRecorder

xgb = pytest.importorskip("xgboost")

from tracklite.integrations import XGBoostCallback  # noqa: E402  (needs the framework)

PARAMS = {"objective": "reg:squarederror", "max_depth": 2, "eta": 0.3, "nthread": 1}


def matrices(seed: int = 0) -> tuple[xgb.DMatrix, xgb.DMatrix]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, 4))
    y = x[:, 0] * 2 + rng.normal(scale=0.1, size=200)
    return xgb.DMatrix(x[:150], y[:150]), xgb.DMatrix(x[150:], y[150:])


def test_train_logs_each_round_at_its_epoch_and_saves_the_model(
    global_R: QlibRecorder, tmp_path: Path
) -> None:
    dtrain, dvalid = matrices()
    history: dict[str, dict[str, list[float]]] = {}
    xgb.train(
        PARAMS,
        dtrain,
        num_boost_round=5,
        evals=[(dtrain, "train"), (dvalid, "valid")],
        evals_result=history,
        verbose_eval=False,
        callbacks=[XGBoostCallback(experiment_name="xgb", log_model=True)],
    )
    uri = global_R.get_uri()
    for data in ("train", "valid"):
        got = points(uri, f"{data}-rmse")
        assert got["step"].tolist() == [0, 1, 2, 3, 4]
        assert got["value"].tolist() == pytest.approx(history[data]["rmse"])
    listed = runs(uri)
    assert len(listed) == 1
    assert listed.loc[0, "status"] == "FINISHED"
    assert listed.loc[0, "tags.mlflow.runName"] == "xgboost"
    assert global_R.exp_manager.active_experiment is None
    recorder = global_R.get_recorder(experiment_name="xgb", recorder_name="xgboost")
    saved = recorder.download_artifact("model.json", str(tmp_path))
    reloaded = xgb.Booster(model_file=saved)
    assert reloaded.num_boosted_rounds() == 5


def test_continued_training_in_r_active_run(global_R: QlibRecorder) -> None:
    dtrain, dvalid = matrices(1)
    first = xgb.train(PARAMS, dtrain, num_boost_round=3, verbose_eval=False)
    with global_R.start(experiment_name="resume"):
        xgb.train(
            PARAMS,
            dtrain,
            num_boost_round=2,
            evals=[(dvalid, "valid")],
            xgb_model=first,
            verbose_eval=False,
            callbacks=[XGBoostCallback()],
        )
        assert global_R.get_recorder().status == "RUNNING"  # left to the with block
    # XGBoost numbers the rounds of each call from 0 (as its own log prints them).
    assert points(global_R.get_uri(), "valid-rmse")["step"].tolist() == [0, 1]
    listed = runs(global_R.get_uri())
    assert len(listed) == 1
    assert listed.loc[0, "tags.mlflow.runName"] == "mlflow_recorder"


def test_cv_logs_mean_and_std(global_R: QlibRecorder) -> None:
    dtrain, _ = matrices(2)
    table = xgb.cv(
        PARAMS, dtrain, num_boost_round=4, nfold=3, seed=0, callbacks=[XGBoostCallback()]
    )
    uri = global_R.get_uri()
    for column in ("train-rmse-mean", "train-rmse-std", "test-rmse-mean", "test-rmse-std"):
        got = points(uri, column)
        assert got["step"].tolist() == [0, 1, 2, 3]
        assert got["value"].tolist() == pytest.approx(table[column].tolist())
    assert runs(uri).loc[0, "status"] == "FINISHED"


def test_early_stop_is_tagged(global_R: QlibRecorder) -> None:
    dtrain, _ = matrices(3)
    rng = np.random.default_rng(5)
    noise = xgb.DMatrix(rng.normal(size=(60, 4)), rng.normal(size=60))
    booster = xgb.train(
        PARAMS,
        dtrain,
        num_boost_round=50,
        evals=[(noise, "noise")],
        early_stopping_rounds=2,
        verbose_eval=False,
        callbacks=[XGBoostCallback()],
    )
    listed = runs(global_R.get_uri())
    assert listed.loc[0, "tags.best_iteration"] == str(booster.best_iteration)
    assert points(global_R.get_uri(), "noise-rmse")["step"].max() == booster.best_iteration + 2


WORKER = """
import sys
import numpy as np
import xgboost as xgb
from xgboost import collective
from tracklite.integrations import XGBoostCallback

args = dict(a.split("=", 1) for a in sys.argv[1:])
args["dmlc_tracker_port"] = int(args["dmlc_tracker_port"])
with collective.CommunicatorContext(**args):
    rank = collective.get_rank()
    rng = np.random.default_rng(rank)
    x = rng.normal(size=(100, 4))
    d = xgb.DMatrix(x, x[:, 0])
    xgb.train({"max_depth": 2, "nthread": 1}, d, num_boost_round=3, evals=[(d, "train")],
              verbose_eval=False, callbacks=[XGBoostCallback()])
    print("trained on rank", rank)
"""


def test_collective_training_logs_from_rank_zero_only(tmp_path: Path, store_uri: str) -> None:
    from xgboost.tracker import RabitTracker

    script = tmp_path / "worker.py"
    script.write_text(WORKER, encoding="utf-8")
    tracker = RabitTracker(host_ip="127.0.0.1", n_workers=2)
    tracker.start()
    args = [f"{k}={v}" for k, v in tracker.worker_args().items()]
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), *args],
            cwd=tmp_path,
            env={**os.environ, "TRACKLITE_URI": store_uri},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [w.communicate(timeout=120) for w in workers]
    tracker.wait_for(timeout=60)
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err[-3000:]
    assert sorted(line for out, _ in outputs for line in out.split("\n") if "rank" in line) == [
        "trained on rank 0",
        "trained on rank 1",
    ]
    assert len(runs(store_uri)) == 1
    assert points(store_uri, "train-rmse")["step"].tolist() == [0, 1, 2]


def test_scikit_learn_estimator_fitted_twice_makes_two_runs(global_R: QlibRecorder) -> None:
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(4)
    x = rng.normal(size=(80, 3))
    model = xgb.XGBRegressor(n_estimators=3, max_depth=2, callbacks=[XGBoostCallback()])
    for _ in range(2):
        model.fit(x, x[:, 0], eval_set=[(x, x[:, 0])], verbose=False)
    listed = runs(global_R.get_uri())
    assert listed["status"].tolist() == ["FINISHED", "FINISHED"]
    history = points(global_R.get_uri(), "validation_0-rmse")
    assert sorted(history.groupby("recorder_id")["step"].apply(list).tolist()) == [[0, 1, 2]] * 2
