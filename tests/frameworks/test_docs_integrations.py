"""The ```py examples of docs/integrations.md run, in order, as one script.

They use the frameworks, so they are fenced ```py (the main suite's tests/test_docs_examples.py
runs only ```python blocks) and run here, where the frameworks are installed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from _framework_support import run_python

for _module in ("lightgbm", "xgboost", "lightning.pytorch", "transformers"):
    pytest.importorskip(_module)

PAGE = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"
BLOCK = re.compile(r"^```py\n(.*?)^```", re.DOTALL | re.MULTILINE)


def test_integrations_page_examples_run(tmp_path: Path) -> None:
    blocks = BLOCK.findall(PAGE.read_text(encoding="utf-8"))
    assert len(blocks) >= 5, "one example per framework, and one of code written for MLflow"
    out = run_python("\n\n".join(blocks), tmp_path, {"HF_HUB_OFFLINE": "1"})
    assert "FINISHED 4" in out  # the LightGBM run, ended with training, and its params
    assert "['valid-l2-mean', 'valid-l2-stdv']" in out
    assert "['model.json']" in out
    assert "checkpoints/epoch=1-step=" in out
    assert out.rstrip().endswith("FINISHED")  # the run of MLflow's own Lightning logger
