"""The one-line switch: a qlib script whose only change is ``from tracklite import R``.

qlib's own code (``LGBModel.fit`` logging ``l2.train``/``l2.valid``, qlib's ``SignalRecord``,
``SigAnaRecord``, ``PortAnaRecord``; ``task_train``, ``OnlineToolR``, ``RecorderCollector``)
then records into the tracklite store, whether ``qlib.init``
came before or after the import, and nothing is created outside the store (no ``./mlruns``,
no ``./tmp/.../filelock``). Each script runs in a fresh interpreter: the switch is per process.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("qlib.workflow")

from tracklite import ExpManager, QlibRecorder
from tracklite.ui.data import StoreData

SCRIPT = """
import json, sys
from _qlib_support import market_task, port_config

ORDER = sys.argv[1]
if ORDER == "qlib-first":
    import qlib
    qlib.init(provider_uri=sys.argv[2])
from tracklite import R  # the only change to the script
if ORDER == "run-first":  # a run started before qlib is even imported
    R.start_exp(experiment_name="lgb")
if ORDER != "qlib-first":
    import qlib
    qlib.init(provider_uri=sys.argv[2])
if ORDER != "run-first":
    R.start_exp(experiment_name="lgb")

from qlib.utils import init_instance_by_config
from qlib.workflow import R as qlib_R
from qlib.workflow.record_temp import PortAnaRecord, SigAnaRecord, SignalRecord

task = market_task()
model = init_instance_by_config({
    "class": "LGBModel", "module_path": "qlib.contrib.model.gbdt",
    "kwargs": {"num_leaves": 4, "num_boost_round": 15, "min_data_in_leaf": 5, "verbose": -1},
})
dataset = init_instance_by_config(task["dataset"])
evals = {}
model.fit(dataset, evals_result=evals)
rec = R.get_recorder()
assert qlib_R.get_recorder() is rec
SignalRecord(model, dataset, rec).generate()
SigAnaRecord(rec, ana_long_short=True).generate()  # loads pred.pkl from the root
PortAnaRecord(rec, port_config(), "day").generate()
SigAnaRecord(rec).check(include_self=True)
qlib_R.save_objects(**{"extra.pkl": 1})
assert qlib_R.load_object("extra.pkl") == 1
R.end_exp()

# qlib's trainer, online tool and collector, unchanged, on the same R.
from qlib.model.trainer import task_train
from qlib.workflow.online.utils import OnlineToolR
from qlib.workflow.task.collect import RecorderCollector

trained = task_train(market_task(), "online")
OnlineToolR("online").reset_online_tag(trained)
assert [r.id for r in OnlineToolR("online").online_models()] == [trained.id]
collected = RecorderCollector("online", artifacts_path={"pred": "pred.pkl"})()
assert list(collected["pred"]) == [trained.id]
# qlib's R.search_records gives qlib code Run objects; tracklite's R keeps the DataFrame.
exp_id = qlib_R.get_exp(experiment_name="online").id
assert [r.info.run_id for r in qlib_R.search_records([exp_id])] == [trained.id]
assert list(R.search_records([exp_id])["run_id"]) == [trained.id]
print(json.dumps({"id": rec.id, "evals": {k: v["l2"] for k, v in evals.items()}}))
"""


@pytest.mark.parametrize("order", ["qlib-first", "tracklite-first", "run-first"])
def test_qlib_code_records_into_the_tracklite_run(
    order: str, market: Path, tmp_path: Path, workdir: Path, python: Callable[..., Any]
) -> None:
    store = tmp_path / "store"
    done = python(SCRIPT, workdir, args=[order, str(market)], env={"TRACKLITE_URI": str(store)})
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # Nothing outside the store: no ./mlruns, no ./tmp/<path>/mlruns/filelock, no stray file.
    assert list(workdir.iterdir()) == []
    assert not list(tmp_path.rglob("mlruns")) and not list(tmp_path.rglob("filelock"))

    reader = QlibRecorder(ExpManager(uri=str(store)))
    (rec,) = reader.list_recorders(experiment_name="lgb").values()
    assert rec.id == result["id"] and rec.status == "FINISHED"
    for split in ("train", "valid"):
        history = rec.get_metric_history(f"l2.{split}")
        assert list(history["step"]) == list(range(len(result["evals"][split])))
        assert list(history["value"]) == pytest.approx(result["evals"][split], rel=1e-12)
    metrics = rec.list_metrics()
    assert {"IC", "Rank ICIR", "Long-Short Ann Sharpe"} <= set(metrics)
    assert "1day.excess_return_with_cost.annualized_return" in metrics
    assert {"pred.pkl", "label.pkl", "extra.pkl", "sig_analysis", "portfolio_analysis"} <= set(
        rec.list_artifacts()
    )
    assert rec.list_params()["cmd-sys.argv"]
    # qlib's own SigAnaRecord/PortAnaRecord left Parquet copies: the page reads no pickle.
    data = StoreData(str(store))
    panels = data.qlib_panels(data.ref(rec.id))
    assert panels is not None and {"ic", "returns", "drawdowns", "risk"} <= set(panels)
    (online,) = reader.list_recorders(experiment_name="online").values()
    assert online.list_tags()["online_status"] == "online" and "IC" in online.list_metrics()


def test_an_explicit_manager_in_qlib_init_is_kept(
    market: Path, tmp_path: Path, workdir: Path, python: Callable[..., Any]
) -> None:
    """With qlib.init(exp_manager=...) naming a manager, qlib's R stays on that manager."""
    code = f"""
import qlib
from tracklite import R
qlib.init(provider_uri={str(market)!r}, exp_manager={{
    "class": "TrackliteExpManager", "module_path": "tracklite.qlib",
    "kwargs": {{"uri": {str(tmp_path / "qlib-store")!r}}}}})
from qlib.workflow import R as qlib_R
with qlib_R.start(experiment_name="theirs"):
    qlib_R.log_metrics(m=1.0)
with R.start(experiment_name="ours"):
    R.log_metrics(m=2.0)
print(type(qlib_R.exp_manager).__name__)
"""
    done = python(code, workdir, env={"TRACKLITE_URI": str(tmp_path / "store")})
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-1] == "TrackliteExpManager"
    theirs = QlibRecorder(ExpManager(uri=str(tmp_path / "qlib-store")))
    ours = QlibRecorder(ExpManager(uri=str(tmp_path / "store")))
    assert list(theirs.list_experiments()) == ["theirs"]
    assert list(ours.list_experiments()) == ["ours"]
