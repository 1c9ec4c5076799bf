"""Code written for MLflow, run on tracklite: Lightning's own ``MLFlowLogger`` and transformers'
own ``MLflowCallback``, in a child process where ``tracklite.mlflow.install_as_mlflow()`` makes
``import mlflow`` give ``tracklite.mlflow`` (real MLflow is installed in this venv too, and must
not be the one used). The runs must land in a tracklite store with the metrics at the steps the
frameworks' own records show, their params, tags and statuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _framework_support import BERT_MODEL, LIGHTNING_MODEL, points, run_python, runs

pytest.importorskip("torch")

ALIAS = """
import tracklite.mlflow
tracklite.mlflow.install_as_mlflow()  # before anything imports mlflow
"""

LIGHTNING = (
    ALIAS
    + LIGHTNING_MODEL
    + """
import csv, json, sys
from lightning.pytorch.loggers import CSVLogger, MLFlowLogger

store, root, fail_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
logger = MLFlowLogger(experiment_name="lightning", run_name=f"mlflow-{fail_at}",
                      tracking_uri=f"file:{store}", log_model=True, tags={"team": "vision"})
peer = CSVLogger(root + "/csv")
trainer = L.Trainer(max_epochs=2, log_every_n_steps=2, logger=[logger, peer],
                    enable_progress_bar=False, enable_model_summary=False,
                    default_root_dir=root, accelerator="cpu")
try:
    trainer.fit(Tiny(fail_at=fail_at), loader(0))
except RuntimeError as exc:
    print("training failed:", exc)
with open(peer.log_dir + "/metrics.csv") as f:
    rows = [(int(r["step"]), float(r["train_loss"])) for r in csv.DictReader(f) if r["train_loss"]]
import mlflow
print(json.dumps({"mlflow": mlflow.__name__, "run_id": logger.run_id, "peer": rows}))
"""
)


def _last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("fail_at", [-1, 5], ids=["finished", "failed"])
def test_lightning_mlflow_logger(tmp_path: Path, fail_at: int) -> None:
    pytest.importorskip("lightning.pytorch")
    store = tmp_path / "store"
    script = LIGHTNING.replace(
        "sys.argv[1], sys.argv[2], int(sys.argv[3])",
        f"{str(store)!r}, {str(tmp_path / 'root')!r}, {fail_at}",
    )
    report = _last_json(run_python(script, tmp_path, {}))
    assert report["mlflow"] == "tracklite.mlflow"
    listed = runs(str(store))
    assert len(listed) == 1
    row = listed.iloc[0]
    assert row["run_id"] == report["run_id"]
    assert row["tags.mlflow.runName"] == f"mlflow-{fail_at}"
    assert row["tags.team"] == "vision"
    assert (row["params.lr"], row["params.hidden"]) == ("0.05", "4")
    loss = points(str(store), "train_loss")
    assert loss["step"].tolist() == [step for step, _ in report["peer"]]
    assert loss["value"].tolist() == pytest.approx([value for _, value in report["peer"]])
    if fail_at < 0:
        assert row["status"] == "FINISHED"
        assert loss["step"].tolist() == [1, 3, 5, 7]
        # log_model=True: MLflow's logger saves the last checkpoint under its own name.
        import tracklite

        recorder = (
            tracklite.ExpManager(uri=str(store))
            .get_exp(experiment_name="lightning", create=False)
            .get_recorder(recorder_id=row["run_id"], create=False)
        )
        assert "epoch=1-step=8/epoch=1-step=8.ckpt" in recorder.list_artifacts("epoch=1-step=8")
    else:
        assert row["status"] == "FAILED"
        assert loss["step"].tolist() == [1, 3]


TRANSFORMERS = (
    ALIAS
    + BERT_MODEL
    + """
import json, sys
args = transformers.TrainingArguments(
    output_dir=sys.argv[1], run_name="bert-mlflow", max_steps=6, per_device_train_batch_size=4,
    logging_steps=2, eval_strategy="steps", eval_steps=3, save_strategy="no",
    learning_rate=1e-3, report_to="mlflow", use_cpu=True, disable_tqdm=True,
)
trainer = transformers.Trainer(model=tiny_bert(), args=args, train_dataset=examples(),
                               eval_dataset=examples(8, seed=1))
names = [type(c).__name__ for c in trainer.callback_handler.callbacks]
trainer.train()
import mlflow
print(json.dumps({"mlflow": mlflow.__name__, "callbacks": names,
                  "active": mlflow.active_run() is not None,
                  "history": trainer.state.log_history}))
"""
)


def test_transformers_mlflow_callback(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    store = tmp_path / "store"
    env = {
        "MLFLOW_TRACKING_URI": str(store),
        "MLFLOW_EXPERIMENT_NAME": "bert",
        "MLFLOW_TAGS": json.dumps({"team": "nlp"}),
    }
    script = TRANSFORMERS.replace("sys.argv[1]", repr(str(tmp_path / "out")))
    report = _last_json(run_python(script, tmp_path, env))
    assert report["mlflow"] == "tracklite.mlflow"
    assert "MLflowCallback" in report["callbacks"]  # report_to="mlflow", transformers' own
    assert report["active"] is False  # the callback ended the run it started
    listed = runs(str(store))
    assert len(listed) == 1
    row = listed.iloc[0]
    assert row["status"] == "FINISHED"
    assert row["tags.mlflow.runName"] == "bert-mlflow"
    assert row["tags.team"] == "nlp"
    assert row["params.hidden_size"] == "16"
    assert row["params.learning_rate"] == "0.001"
    for key in ("loss", "eval_loss", "grad_norm"):
        expected = [(e["step"], e[key]) for e in report["history"] if key in e]
        got = points(str(store), key)
        assert got["step"].tolist() == [step for step, _ in expected]
        assert got["value"].tolist() == pytest.approx([value for _, value in expected])
    assert points(str(store), "loss")["step"].tolist() == [2, 4, 6]
    assert set(points(str(store), "loss")["experiment_name"]) == {"bert"}
