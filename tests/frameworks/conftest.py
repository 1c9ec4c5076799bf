"""Fixtures for the tests against real training frameworks (LightGBM, XGBoost, PyTorch
Lightning, transformers).

Every test module here starts with ``pytest.importorskip`` of its framework, so the main suite
skips what is not installed; ``.ci/run-frameworks`` builds a venv with all four and sets
``TRACKLITE_REQUIRE_FRAMEWORKS=1``, which turns a missing or broken framework into an error.
Nothing is downloaded: models are built from configs, and the hub is switched off.
"""

from __future__ import annotations

import importlib
import os

FRAMEWORKS = ("lightgbm", "xgboost", "lightning.pytorch", "transformers", "torch")

if os.environ.get("TRACKLITE_REQUIRE_FRAMEWORKS"):
    for _name in FRAMEWORKS:
        importlib.import_module(_name)  # CI: a missing framework fails here, loudly

# Any model or tokenizer lookup that would reach the hub fails at once instead.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
