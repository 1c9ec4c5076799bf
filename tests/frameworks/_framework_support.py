"""Helpers for the framework tests: read a store back, run a script in a fresh interpreter."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import tracklite


def points(uri: str, key: str | None = None) -> pd.DataFrame:
    """Every metric point of the store, read back by a fresh reader."""
    frame = tracklite.load_metrics(uri)
    if key is not None:
        frame = frame[frame["key"] == key]
    return frame.reset_index(drop=True)


def runs(uri: str) -> pd.DataFrame:
    """Every recorder of the store (all experiments), as ``search_records`` lists them."""
    manager = tracklite.ExpManager(uri=uri)
    ids = [e.id for e in manager.list_experiments().values()]
    return manager.search_records(ids) if ids else pd.DataFrame()


def run_python(code: str, cwd: Path, env: dict[str, str], timeout: float = 240) -> str:
    """Run ``code`` in a fresh interpreter of this venv; returns its output, fails loudly."""
    script = cwd / f"script_{len(list(cwd.glob('script_*.py')))}.py"
    script.write_text(code, encoding="utf-8")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLITE_")}
    full_env.update(env)
    # A session of its own, so a hung launcher is killed with every worker it started.
    with subprocess.Popen(
        [sys.executable, str(script)],
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            pytest.fail(f"script timed out after {timeout}s:\n{out[-3000:]}\n{err[-5000:]}")
    assert process.returncode == 0, f"script failed:\n{out[-3000:]}\n{err[-5000:]}"
    return out


LIGHTNING_MODEL = '''
import torch
import lightning.pytorch as L


class Tiny(L.LightningModule):
    """y = 2 x0 - x1 with a 2-layer net; fails at training step ``fail_at`` if given."""

    def __init__(self, lr: float = 0.05, hidden: int = 4, fail_at: int = -1) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(3, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1)
        )

    def _loss(self, batch):
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def training_step(self, batch, batch_idx):
        if self.global_step == self.hparams.fail_at:
            raise RuntimeError("diverged")
        loss = self._loss(batch)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self._loss(batch))

    def test_step(self, batch, batch_idx):
        self.log("test_loss", self._loss(batch))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def loader(seed: int = 0, rows: int = 32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, 3, generator=g)
    y = (2 * x[:, :1] - x[:, 1:2])
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
'''


BERT_MODEL = """
import torch
import transformers


def tiny_bert():
    config = transformers.BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=16, num_labels=2,
    )
    torch.manual_seed(0)
    return transformers.BertForSequenceClassification(config)


def examples(rows=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 50, (rows, 8), generator=g)
    return [
        {"input_ids": ids[i], "attention_mask": torch.ones(8, dtype=torch.long),
         "labels": torch.tensor(int(ids[i, 0] > 25))}
        for i in range(rows)
    ]
"""
