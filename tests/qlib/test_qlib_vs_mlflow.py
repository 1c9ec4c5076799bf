"""One qlib script, run once with qlib's MLflow experiment manager and once with tracklite's:
what it stores must read back the same (recorders in order, statuses, params, latest metrics,
tags other than the ``mlflow.*``/``tracklite.*`` system tags, artifact files)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("qlib.workflow")

from tracklite import ExpManager, QlibRecorder

SCRIPT = r'''
"""Drives qlib's R through runs of every kind, then reads everything back through qlib's R."""
import json, os, sys
from pathlib import Path

import qlib

kind, uri, out = os.environ["COMPARE_KIND"], os.environ["COMPARE_URI"], os.environ["COMPARE_OUT"]
module = {"mlflow": "qlib.workflow.expm", "tracklite": "tracklite.qlib"}[kind]
name = {"mlflow": "MLflowExpManager", "tracklite": "TrackliteExpManager"}[kind]
qlib.init(provider_uri=os.environ["COMPARE_PROVIDER"], exp_manager={
    "class": name, "module_path": module, "kwargs": {"uri": uri, "default_exp_name": "Experiment"}})

from qlib.workflow import R
from qlib.workflow.online.utils import OnlineToolR
from qlib.workflow.record_temp import HFSignalRecord, SigAnaRecord, SignalRecord
from _qlib_support import FixedModel, panel

folder = Path("inputs")
(folder / "sub").mkdir(parents=True)
(folder / "top.txt").write_text("top")
(folder / "sub" / "f.txt").write_text("nested")

# Files first, then the asynchronous logs: qlib+MLflow's logger thread races the file store
# when a save follows a log ("Metric ... is malformed").
with R.start(experiment_name="compare", recorder_name="plain"):
    R.save_objects(artifact_path="objs", **{"a.pkl": [1, 2], "b": {"k": "v"}})
    R.save_objects(local_path=str(folder), artifact_path="dircopy")
    R.save_objects(local_path=str(folder / "top.txt"))
    R.log_params(lr=0.1, layers=[1, 2], name="plain")
    R.set_tags(stage="train", note="x")
    for step in range(5):
        R.log_metrics(step=step, loss=1.0 / (step + 1), acc=step / 10)
    plain = R.get_recorder().id

try:
    with R.start(experiment_name="compare", recorder_name="failed"):
        R.log_params(p=1)
        raise RuntimeError("boom")
except RuntimeError:
    pass

pred, label = panel(3)
with R.start(experiment_name="compare", recorder_name="signals"):
    rec = R.get_recorder()
    SignalRecord(FixedModel(pred["score"]), None, rec).generate()
    rec.save_objects(**{"label.pkl": label})
    SigAnaRecord(rec, ana_long_short=True).generate()
    HFSignalRecord(rec).generate()

with R.start(experiment_name="compare", recorder_id=plain, resume=True):
    R.log_metrics(step=7, loss=0.01)
    R.set_tags(stage="resumed")

R.start_exp(experiment_name="compare", recorder_name="scheduled")
R.log_params(s=1)
R.end_exp("SCHEDULED")

with R.start(experiment_name="compare", recorder_name="to-delete"):
    pass
R.get_exp(experiment_name="compare").delete_recorder(recorder_name="to-delete")

R.log_metrics(implicit=1.0)  # starts the default experiment and recorder
R.end_exp()

OnlineToolR("compare").reset_online_tag(R.get_recorder(recorder_id=plain,
                                                      experiment_name="compare"))

def files(rec, path=None):
    for entry in rec.list_artifacts(path):
        children = rec.list_artifacts(entry)
        if children and children != [entry]:
            yield from files(rec, entry)
        else:
            yield entry

SYSTEM = ("mlflow.", "tracklite.")
summary = {}
for exp_name, exp in sorted(R.list_experiments().items()):
    summary[exp_name] = [
        {
            "name": rec.name,
            "status": rec.status,
            "params": rec.list_params(),
            "metrics": rec.list_metrics(),
            "tags": {k: v for k, v in rec.list_tags().items() if not k.startswith(SYSTEM)},
            "artifacts": sorted(files(rec)),
            "id": rec.id,
        }
        for rec in exp.list_recorders(rtype="list")
    ]
Path(out).write_text(json.dumps(summary, indent=1, sort_keys=True))
'''


def run(kind: str, tmp_path: Path, python: Callable[..., Any], market: Path) -> dict[str, Any]:
    """Run SCRIPT with one manager (same file, same command line); its summary."""
    script_dir = tmp_path / "script"
    script_dir.mkdir(exist_ok=True)
    (script_dir / "compare.py").write_text(SCRIPT, encoding="utf-8")
    for attempt in range(2):
        work = tmp_path / f"{kind}-{attempt}"
        work.mkdir()
        uri = str(work / "store") if kind == "tracklite" else "file:" + str(work / "mlruns")
        out = work / "summary.json"
        env = {
            "COMPARE_KIND": kind,
            "COMPARE_URI": uri,
            "COMPARE_OUT": str(out),
            "COMPARE_PROVIDER": str(market),
            "MLFLOW_ALLOW_FILE_STORE": "true",
        }
        done = python("exec(open('../script/compare.py').read())", work, env=env)
        if done.returncode == 0:
            summary: dict[str, Any] = json.loads(out.read_text())
            summary["_uri"] = uri
            return summary
        # qlib+MLflow's documented race (spec 3.2): retry once, only for that failure.
        if kind != "mlflow" or "malformed" not in done.stderr:
            break
    raise AssertionError(f"{kind} run failed:\n{done.stderr[-5000:]}")


def comparable(summary: dict[str, Any]) -> dict[str, Any]:
    """Everything but ids; MLflow's own "Default" experiment (id 0) is not qlib's."""
    return {
        exp: [{k: v for k, v in rec.items() if k != "id"} for rec in recs]
        for exp, recs in summary.items()
        if exp not in ("Default", "_uri")
    }


def test_same_script_same_results(
    tmp_path: Path, python: Callable[..., Any], market: Path, workdir: Path
) -> None:
    mlflow_summary = run("mlflow", tmp_path, python, market)
    ours = run("tracklite", tmp_path, python, market)
    assert "Default" in mlflow_summary and "Default" not in ours
    expected, got = comparable(mlflow_summary), comparable(ours)
    assert sorted(got) == sorted(expected) == ["Experiment", "compare"]
    names = [r["name"] for r in expected["compare"]]
    assert names == ["scheduled", "signals", "failed", "plain"]
    assert [r["status"] for r in expected["compare"]] == [
        "SCHEDULED",
        "FINISHED",
        "FAILED",
        "FINISHED",
    ]
    plain = expected["compare"][-1]
    assert plain["metrics"] == {"loss": 0.01, "acc": 0.4}
    assert plain["tags"] == {"stage": "resumed", "note": "x", "online_status": "online"}
    assert "dircopy/sub/f.txt" in plain["artifacts"] and "top.txt" in plain["artifacts"]
    assert "hg_sig_analysis/long_pre.pkl" in expected["compare"][1]["artifacts"]
    for exp_name, recs in expected.items():
        assert len(got[exp_name]) == len(recs), exp_name
        for theirs, mine in zip(recs, got[exp_name], strict=True):
            for field in ("name", "status", "params", "tags"):
                assert mine[field] == theirs[field], (exp_name, theirs["name"], field)
            # tracklite adds a Parquet copy beside each of qlib's analysis pickles (the page
            # reads those without unpickling): every other file is the same.
            copies = [a for a in mine["artifacts"] if a.endswith(".parquet")]
            assert all(a[: -len(".parquet")] + ".pkl" in theirs["artifacts"] for a in copies)
            assert [a for a in mine["artifacts"] if a not in copies] == theirs["artifacts"]
            assert mine["metrics"].keys() == theirs["metrics"].keys()
            for key, value in theirs["metrics"].items():
                assert mine["metrics"][key] == pytest.approx(value, rel=1e-12, abs=1e-12), key

    # The store qlib wrote through tracklite.qlib is an ordinary tracklite store.
    reader = QlibRecorder(ExpManager(uri=ours["_uri"]))
    for exp_name, recs in ours.items():
        if exp_name == "_uri":
            continue
        listed = reader.list_recorders(experiment_name=exp_name)
        assert list(listed) == [r["id"] for r in recs]
        for rec in recs:
            mine = listed[rec["id"]]
            assert (mine.name, mine.status) == (rec["name"], rec["status"])
            assert mine.list_params() == rec["params"]
            assert mine.list_metrics() == rec["metrics"]
