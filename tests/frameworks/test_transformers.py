"""TransformersCallback with a real transformers Trainer and a tiny BERT built from a config
(nothing downloaded). The trainer's own ``state.log_history`` is the peer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _framework_support import BERT_MODEL, points, run_python, runs

from tracklite import QlibRecorder

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tracklite.integrations import TransformersCallback  # noqa: E402

namespace: dict[str, Any] = {}
exec(compile(BERT_MODEL, "tiny_bert", "exec"), namespace)
tiny_bert, examples = namespace["tiny_bert"], namespace["examples"]


def arguments(out: Path, **kwargs: Any) -> Any:
    options: dict[str, Any] = {
        "output_dir": str(out),
        "max_steps": 6,
        "per_device_train_batch_size": 4,
        "per_device_eval_batch_size": 8,
        "logging_steps": 2,
        "eval_strategy": "steps",
        "eval_steps": 3,
        "save_steps": 3,
        "learning_rate": 1e-3,
        "report_to": "none",
        "use_cpu": True,
        "disable_tqdm": True,
    }
    options.update(kwargs)
    return transformers.TrainingArguments(**options)


def test_train_logs_trainer_history_at_global_step(global_R: QlibRecorder, tmp_path: Path) -> None:
    callback = TransformersCallback(experiment_name="bert", log_checkpoints=True)
    trainer = transformers.Trainer(
        model=tiny_bert(),
        args=arguments(tmp_path / "out"),
        train_dataset=examples(),
        eval_dataset=examples(8, seed=1),
        callbacks=[callback],
    )
    trainer.train()
    uri = global_R.get_uri()
    history = trainer.state.log_history
    for key in ("loss", "eval_loss", "learning_rate"):
        expected = [(entry["step"], entry[key]) for entry in history if key in entry]
        got = points(uri, key)
        assert got["step"].tolist() == [step for step, _ in expected]
        assert got["value"].tolist() == pytest.approx([value for _, value in expected])
    assert points(uri, "loss")["step"].tolist() == [2, 4, 6]
    assert points(uri, "eval_loss")["step"].tolist() == [3, 6]
    assert points(uri, "train_runtime")["step"].tolist() == [6]
    listed = runs(uri)
    assert len(listed) == 1
    row = listed.iloc[0]
    assert row["status"] == "FINISHED"
    assert row["params.hidden_size"] == "16"  # from the model's config
    assert row["params.learning_rate"] == "0.001"  # from the training arguments
    assert row["params.max_steps"] == "6"
    assert global_R.exp_manager.active_experiment is None
    recorder = global_R.get_recorder(
        experiment_name="bert", recorder_name=row["tags.mlflow.runName"]
    )
    assert recorder.list_artifacts() == ["checkpoint-3", "checkpoint-6"]
    assert "checkpoint-6/model.safetensors" in recorder.list_artifacts("checkpoint-6")
    copy = recorder.download_artifact("checkpoint-6", str(tmp_path))
    reloaded = transformers.BertForSequenceClassification.from_pretrained(copy)
    assert reloaded.config.hidden_size == 16


def test_r_active_run_is_used_and_left_open(global_R: QlibRecorder, tmp_path: Path) -> None:
    with global_R.start(experiment_name="mine", recorder_name="bert-sweep"):
        transformers.Trainer(
            model=tiny_bert(),
            args=arguments(tmp_path / "out", eval_strategy="no", save_strategy="no"),
            train_dataset=examples(),
            callbacks=[TransformersCallback(experiment_name="ignored")],
        ).train()
        assert global_R.get_recorder().status == "RUNNING"
    listed = runs(global_R.get_uri())
    assert len(listed) == 1
    assert listed.loc[0, "tags.mlflow.runName"] == "bert-sweep"
    assert listed.loc[0, "status"] == "FINISHED"
    assert points(global_R.get_uri(), "loss")["step"].tolist() == [2, 4, 6]


DDP = (
    BERT_MODEL
    + """
import os
import sys
from tracklite.integrations import TransformersCallback

args = transformers.TrainingArguments(
    output_dir=sys.argv[1], max_steps=4, per_device_train_batch_size=2, logging_steps=1,
    save_strategy="no", report_to="none", use_cpu=True, ddp_backend="gloo", disable_tqdm=True,
)
trainer = transformers.Trainer(
    model=tiny_bert(), args=args, train_dataset=examples(),
    callbacks=[TransformersCallback(experiment_name="ddp", run_name="ddp")],
)
trainer.train()
# One write of the whole line: both workers share the launcher's pipe, unbuffered, and a
# print of several pieces can be cut by the other worker's output.
sys.stdout.write(f"done on process {args.process_index} of {args.world_size}\\n")
sys.stdout.flush()
# As torch's documentation asks of every worker.
if torch.distributed.is_initialized():
    torch.distributed.destroy_process_group()
# Even so, torch aborts a worker now and then while the interpreter finalizes ("terminate
# called without an active exception", SIGABRT; about one run in ten here, with or without
# tracklite). The work is done and the callback has ended its run: leave without finalizing,
# which also shows that nothing of the run waits for the exit hooks.
os._exit(0)
"""
)


def test_ddp_logs_from_world_process_zero_only(tmp_path: Path, store_uri: str) -> None:
    script = DDP.replace("sys.argv[1]", repr(str(tmp_path / "out")))
    argv = ["torchrun", "--standalone", "--nproc_per_node=2", str(tmp_path / "ddp.py")]
    launcher = (
        f"import runpy, sys\nsys.argv = {argv!r}\n"
        "runpy.run_module('torch.distributed.run', run_name='__main__')\n"
    )
    (tmp_path / "ddp.py").write_text(script, encoding="utf-8")
    out = run_python(launcher, tmp_path, {"TRACKLITE_URI": store_uri, "OMP_NUM_THREADS": "1"})
    assert "done on process 0 of 2" in out and "done on process 1 of 2" in out, out[-3000:]
    listed = runs(store_uri)
    assert len(listed) == 1  # process 1 started no run
    assert listed.loc[0, "status"] == "FINISHED"
    assert points(store_uri, "loss")["step"].tolist() == [1, 2, 3, 4]
