"""tracklite.integrations without the frameworks: nothing imported eagerly, a clear error naming
the missing framework. (The integrations themselves are tested against the real frameworks in
tests/frameworks, in CI's frameworks venv.)"""

from __future__ import annotations

import importlib.util
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tracklite.integrations import FrameworkRequiredError
from tracklite.integrations.lightgbm import evaluation_metrics, lightgbm_rank

FRAMEWORKS = {
    "XGBoostCallback": ("xgboost", "XGBoost"),
    "LightningLogger": ("lightning", "PyTorch Lightning"),
    "TransformersCallback": ("transformers", "transformers"),
}


def test_import_loads_no_framework(tmp_path: Path, run_script: Callable[..., Any]) -> None:
    done = run_script(
        "import sys\n"
        "import tracklite, tracklite.integrations\n"
        "from tracklite.integrations import LightGBMCallback\n"
        "heavy = ('lightgbm', 'xgboost', 'torch', 'lightning', 'transformers', 'pandas')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n",
        tmp_path / "cwd",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("name", sorted(FRAMEWORKS))
def test_missing_framework_is_named(name: str) -> None:
    module, framework = FRAMEWORKS[name]
    if importlib.util.find_spec(module) is not None:
        pytest.skip(f"{module} is installed here")
    import tracklite.integrations as integrations

    with pytest.raises(FrameworkRequiredError, match=f"needs {framework}.*pip install {module}"):
        getattr(integrations, name)
    with pytest.raises(ImportError):  # also an ImportError, for code that guards imports
        getattr(integrations, name)
    assert module not in sys.modules


def test_lightgbm_results_become_keys() -> None:
    train = [("training", "l2", 0.5, False), ("valid_0", "auc", 0.9, True)]
    assert evaluation_metrics(train) == {"training-l2": 0.5, "valid_0-auc": 0.9}
    cv = [("valid", "l2", 0.4, False, 0.01)]
    assert evaluation_metrics(cv) == {"valid-l2-mean": 0.4, "valid-l2-stdv": 0.01}


def test_lightgbm_rank_is_the_position_of_this_machine() -> None:
    assert lightgbm_rank({}) == 0
    assert lightgbm_rank({"machines": "127.0.0.1:1,127.0.0.1:2", "num_machines": 1}) == 0
    two = {"machines": "127.0.0.1:12400,127.0.0.1:12401", "num_machines": 2}
    assert lightgbm_rank({**two, "local_listen_port": 12400}) == 0
    assert lightgbm_rank({**two, "local_port": 12401}) == 1
    # LightGBM's aliases, and its default port 12400.
    assert lightgbm_rank({"workers": "localhost:7,127.0.0.1:12400", "num_machines": 2}) == 1
    # An address of another machine is never this process (documentation ranges, unassigned
    # on this machine: checked by binding, as the code itself does).
    far, farther = _remote_addresses()
    remote = {"machines": f"{far}:12400,127.0.0.1:12400", "num_machines": 2}
    assert lightgbm_rank(remote) == 1
    assert lightgbm_rank({**remote, "machines": f"{far}:12400,{farther}:12400"}) == -1
    by_name = {"machines": [f"{far}:9", "localhost:9"], "num_machines": 2, "port": 9}
    assert lightgbm_rank(by_name) == 1


def _remote_addresses() -> list[str]:
    remote = []
    for address in ("192.0.2.1", "198.51.100.1", "203.0.113.1", "192.0.2.254"):
        with socket.socket() as probe:
            try:
                probe.bind((address, 0))
            except OSError:
                remote.append(address)
    if len(remote) < 2:
        pytest.skip("this machine holds the documentation address ranges")
    return remote[:2]
