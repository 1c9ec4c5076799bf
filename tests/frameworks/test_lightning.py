"""LightningLogger with a real PyTorch Lightning Trainer and a tiny torch model.

Lightning's own CSVLogger runs beside it as the peer: both must see the same metrics at the
same steps.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import pytest
from _framework_support import LIGHTNING_MODEL, points, run_python, runs

from tracklite import QlibRecorder

torch = pytest.importorskip("torch")
L = pytest.importorskip("lightning.pytorch")

from lightning.pytorch.callbacks import ModelCheckpoint  # noqa: E402
from lightning.pytorch.loggers import CSVLogger  # noqa: E402

from tracklite.integrations import LightningLogger  # noqa: E402

namespace: dict[str, Any] = {}
exec(compile(LIGHTNING_MODEL, "tiny_lightning_model", "exec"), namespace)
Tiny, loader = namespace["Tiny"], namespace["loader"]


def trainer(root: Path, *loggers: Any, **kwargs: Any) -> Any:
    options: dict[str, Any] = {
        "max_epochs": 2,
        "accelerator": "cpu",
        "devices": 1,
        "log_every_n_steps": 2,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "default_root_dir": str(root),
    }
    options.update(kwargs)
    return L.Trainer(logger=list(loggers), **options)


def csv_points(csv_logger: Any, key: str) -> list[tuple[int, float]]:
    with open(os.path.join(csv_logger.log_dir, "metrics.csv"), encoding="utf-8") as f:
        return [(int(row["step"]), float(row[key])) for row in csv.DictReader(f) if row[key]]


def test_fit_logs_like_lightning_own_csv_logger(global_R: QlibRecorder, tmp_path: Path) -> None:
    logger = LightningLogger(experiment_name="tiny", log_model=True)
    peer = CSVLogger(str(tmp_path / "csv"))
    trainer(tmp_path, logger, peer).fit(Tiny(), loader(0), loader(1))
    uri = global_R.get_uri()
    for key in ("train_loss", "val_loss", "epoch"):
        got = points(uri, key)
        expected = csv_points(peer, key)
        assert got["step"].tolist() == [step for step, _ in expected]
        assert got["value"].tolist() == pytest.approx([value for _, value in expected])
    assert points(uri, "train_loss")["step"].tolist() == [1, 3, 5, 7]  # never all 0
    listed = runs(uri)
    assert len(listed) == 1
    row = listed.iloc[0]
    assert row["status"] == "FINISHED"
    assert (row["params.lr"], row["params.hidden"]) == ("0.05", "4")
    assert (logger.name, logger.version) == (row["experiment_id"], row["run_id"])
    assert global_R.exp_manager.active_experiment is None
    # The checkpoint Lightning wrote into <root>/<experiment id>/<recorder id>/checkpoints is an
    # artifact now, and loads back.
    written = tmp_path / logger.name / logger.version / "checkpoints" / "epoch=1-step=8.ckpt"
    assert written.is_file()
    recorder = global_R.get_recorder(experiment_name="tiny", recorder_name="lightning")
    assert recorder.list_artifacts("checkpoints") == ["checkpoints/epoch=1-step=8.ckpt"]
    assert recorder.list_tags()["best_checkpoint"] == "checkpoints/epoch=1-step=8.ckpt"
    copy = recorder.download_artifact("checkpoints/epoch=1-step=8.ckpt", str(tmp_path))
    assert Tiny.load_from_checkpoint(copy).hparams.hidden == 4
    # After training, the logger's experiment is the same recorder, and stays FINISHED.
    note = tmp_path / "notes.txt"
    note.write_text("tiny", encoding="utf-8")
    logger.experiment.log_artifact(note)
    assert logger.experiment.id == recorder.id
    assert recorder.list_artifacts() == ["checkpoints", "notes.txt"]
    assert recorder.refresh().status == "FINISHED"


def test_fit_then_test_continue_the_same_run(global_R: QlibRecorder, tmp_path: Path) -> None:
    logger = LightningLogger(run_name="fit-and-test")
    fitter = trainer(tmp_path, logger)
    model = Tiny()
    fitter.fit(model, loader(0))
    fitter.test(model, loader(2), verbose=False)
    listed = runs(global_R.get_uri())
    assert len(listed) == 1
    assert listed.loc[0, "status"] == "FINISHED"
    assert points(global_R.get_uri(), "test_loss")["step"].tolist() == [8]


def test_failed_training_ends_the_run_failed(global_R: QlibRecorder, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="diverged"):
        trainer(tmp_path, LightningLogger()).fit(Tiny(fail_at=5), loader(0))
    listed = runs(global_R.get_uri())
    assert listed.loc[0, "status"] == "FAILED"
    assert points(global_R.get_uri(), "train_loss")["step"].tolist() == [1, 3]
    assert global_R.exp_manager.active_experiment is None


def test_log_model_all_saves_each_checkpoint_as_written(
    global_R: QlibRecorder, tmp_path: Path
) -> None:
    every_epoch = ModelCheckpoint(save_top_k=-1)
    logger = LightningLogger(log_model="all", save_dir=tmp_path / "local")
    trainer(tmp_path, logger, callbacks=[every_epoch]).fit(Tiny(), loader(0))
    assert logger.log_dir == os.path.join(tmp_path / "local", logger.name, logger.version)
    assert os.path.isdir(os.path.join(logger.log_dir, "checkpoints"))
    recorder = global_R.get_recorder(recorder_name="lightning")
    assert recorder.list_artifacts("checkpoints") == [
        "checkpoints/epoch=0-step=4.ckpt",
        "checkpoints/epoch=1-step=8.ckpt",
    ]


def test_r_active_run_is_used_and_left_open(global_R: QlibRecorder, tmp_path: Path) -> None:
    with global_R.start(experiment_name="mine", recorder_name="sweep-1"):
        trainer(tmp_path, LightningLogger(experiment_name="ignored")).fit(Tiny(), loader(0))
        assert global_R.get_recorder().status == "RUNNING"
        global_R.log_metrics(step=8, final_score=0.5)
    listed = runs(global_R.get_uri())
    assert len(listed) == 1
    assert listed.loc[0, "tags.mlflow.runName"] == "sweep-1"
    assert listed.loc[0, "metrics.train_loss"] > 0
    assert listed.loc[0, "metrics.final_score"] == 0.5


DDP = (
    LIGHTNING_MODEL
    + """
import sys
from tracklite.integrations import LightningLogger

if __name__ == "__main__":
    trainer = L.Trainer(
        max_epochs=1, accelerator="cpu", devices=2, strategy="ddp", log_every_n_steps=1,
        enable_progress_bar=False, enable_model_summary=False,
        logger=LightningLogger(experiment_name="ddp"), default_root_dir=sys.argv[1],
    )
    trainer.fit(Tiny(), loader(0))
    print("done on rank", trainer.global_rank)
"""
)


def test_ddp_logs_from_rank_zero_only(tmp_path: Path, store_uri: str) -> None:
    out = run_python(
        DDP.replace("sys.argv[1]", repr(str(tmp_path))), tmp_path, {"TRACKLITE_URI": store_uri}
    )
    assert "done on rank 0" in out
    listed = runs(store_uri)
    assert len(listed) == 1  # rank 1 started no run
    assert listed.loc[0, "status"] == "FINISHED"
    # 32 rows over 2 processes in batches of 8: 2 optimizer steps.
    assert points(store_uri, "train_loss")["step"].tolist() == [0, 1]


def test_nested_hyperparams_and_prefix(global_R: QlibRecorder, tmp_path: Path) -> None:
    from argparse import Namespace

    logger = LightningLogger(prefix="stage1")
    logger.log_hyperparams(Namespace(optim={"lr": 0.1, "betas": [0.9, 0.99]}, name="tiny"))
    trainer(tmp_path, logger, max_epochs=1).fit(Tiny(), loader(0))
    row = runs(global_R.get_uri()).iloc[0]
    assert (row["params.optim/lr"], row["params.optim/betas"]) == ("0.1", "[0.9, 0.99]")
    assert row["params.name"] == "tiny"
    assert row["params.hidden"] == "4"  # the module's own, logged by Lightning
    assert points(global_R.get_uri(), "stage1-train_loss")["step"].tolist() == [1, 3]
