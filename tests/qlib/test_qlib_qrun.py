"""qlib's ``qrun`` end to end with a workflow config whose ``qlib_init`` names tracklite's
manager (the worked example of ``docs/qlib.md``), on the synthetic market: LightGBM, then
qlib's SignalRecord, SigAnaRecord and PortAnaRecord, all stored in the tracklite store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("qlib.workflow")

from _qlib_support import market_task, port_config

from tracklite import ExpManager, QlibRecorder


def workflow_config(market: Path, experiment_name: str | None) -> dict[str, Any]:
    task = market_task()
    task["model"] = {
        "class": "LGBModel",
        "module_path": "qlib.contrib.model.gbdt",
        "kwargs": {"num_leaves": 4, "num_boost_round": 15, "min_data_in_leaf": 5, "verbose": -1},
    }
    task["record"].append(
        {
            "class": "PortAnaRecord",
            "module_path": "qlib.workflow.record_temp",
            "kwargs": {"config": port_config(), "risk_analysis_freq": "day"},
        }
    )
    config: dict[str, Any] = {
        "qlib_init": {
            "provider_uri": str(market),
            "region": "cn",
            "exp_manager": {
                "class": "TrackliteExpManager",
                "module_path": "tracklite.qlib",
                "kwargs": {"uri": "./tracklite-store", "default_exp_name": "Experiment"},
            },
        },
        "task": task,
    }
    if experiment_name is not None:
        config["experiment_name"] = experiment_name
    return config


def qrun(config: dict[str, Any], workdir: Path, *args: str) -> None:
    path = workdir.parent / "workflow.yaml"
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")  # JSON is YAML
    qrun_script = Path(sys.executable).parent / "qrun"
    done = subprocess.run(
        [str(qrun_script), str(path), *args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.parametrize("named_by", ["config", "option"])
def test_qrun_with_tracklites_manager(named_by: str, market: Path, workdir: Path) -> None:
    if named_by == "config":
        config = workflow_config(market, "lgb_synthetic")
        qrun(config, workdir)
    else:
        config = workflow_config(market, None)
        qrun(config, workdir, "--experiment_name", "lgb_synthetic")
    assert sorted(p.name for p in workdir.iterdir()) == ["tracklite-store"]  # no ./mlruns
    view = QlibRecorder(ExpManager(uri=str(workdir / "tracklite-store")))
    assert list(view.list_experiments()) == ["lgb_synthetic"]
    (rec,) = view.list_recorders(experiment_name="lgb_synthetic").values()
    assert rec.status == "FINISHED" and rec.name == "mlflow_recorder"
    assert {
        "config",
        "task",
        "params.pkl",
        "dataset",
        "pred.pkl",
        "label.pkl",
        "sig_analysis",
        "portfolio_analysis",
    } <= set(rec.list_artifacts())
    assert rec.load_object("config") == json.loads(json.dumps(config))
    assert rec.list_params()["model.class"] == "LGBModel"
    metrics = rec.list_metrics()
    assert {"IC", "ICIR", "Rank IC", "Long-Short Ann Sharpe", "l2.train", "l2.valid"} <= set(
        metrics
    )
    assert "1day.excess_return_with_cost.annualized_return" in metrics
    assert list(rec.get_metric_history("l2.train")["step"]) == list(range(15))
