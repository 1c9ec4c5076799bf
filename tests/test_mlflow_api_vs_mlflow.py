"""The same scripts against real MLflow (its file store) and against ``tracklite.mlflow``.

Each script body is run twice in a fresh process: once with ``mlflow`` bound to MLflow itself
(``MLFLOW_ALLOW_FILE_STORE=true``, an ``mlruns`` folder), once with ``import tracklite.mlflow as
mlflow`` (a tracklite store). Both end with the same dump, written with the API under test:
experiments, runs (by name), statuses, params, latest metrics, histories, user tags, parent
links, artifact paths, and the results the body collected (searches in order, errors). The two
dumps must be equal. Run ids differ between the two worlds, so everything is keyed by name.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mlflow") is None, reason="MLflow (mlflow-skinny) is not installed"
)

PRELUDE = """
import json, os, sys, time
RESULTS = []

def note(label, value):
    RESULTS.append([label, value])

def error(label, call):
    try:
        call()
    except Exception as exc:
        RESULTS.append([label, type(exc).__name__, getattr(exc, "error_code", None), str(exc)])
    else:
        RESULTS.append([label, "no error"])

def pause():
    time.sleep(0.005)  # MLflow's start times are milliseconds: keep the runs' order strict
"""

DUMP = """
from mlflow import MlflowClient
from mlflow.entities import ViewType

client = MlflowClient()
out = {"results": RESULTS, "experiments": [], "runs": {}}
exps = client.search_experiments(view_type=ViewType.ALL, order_by=["name ASC"])
exp_names = {e.experiment_id: e.name for e in exps}
out["experiments"] = [[e.name, e.lifecycle_stage, sorted(e.tags.items())] for e in exps]
runs = client.search_runs(list(exp_names), run_view_type=ViewType.ALL, max_results=1000)
names = {r.info.run_id: r.info.run_name for r in runs}

def artifact_paths(run_id, path=None):
    found = []
    for info in client.list_artifacts(run_id, path):
        if info.is_dir:
            found += artifact_paths(run_id, info.path)
        else:
            found.append([info.path, info.file_size])
    return found

for r in runs:
    tags = r.data.tags
    out["runs"][r.info.run_name] = {
        "experiment": exp_names[r.info.experiment_id],
        "status": r.info.status,
        "lifecycle": r.info.lifecycle_stage,
        "ended": r.info.end_time is not None,
        "params": r.data.params,
        "metrics": r.data.metrics,
        # By step (stable): MLflow writes synchronous=False points in no fixed order.
        "history": {
            key: sorted(
                ([m.step, m.value] for m in client.get_metric_history(r.info.run_id, key)),
                key=lambda point: point[0],
            )
            for key in sorted(r.data.metrics)
        },
        "tags": {k: v for k, v in tags.items() if not k.startswith(("mlflow.", "tracklite."))},
        "parent": names.get(tags.get("mlflow.parentRunId")),
        "user from tag": r.info.user_id == tags.get("mlflow.user", "unknown"),
        "artifacts": artifact_paths(r.info.run_id),
    }
out["order"] = [r.info.run_name for r in runs]
print("DUMP:" + json.dumps(out, sort_keys=True, default=str))
"""

FLUENT = """
mlflow.set_experiment("fluent")
with mlflow.start_run(run_name="parent", tags={"team": "quant", "seed": 7}) as parent:
    mlflow.log_param("lr", 0.05)
    mlflow.log_params({"leaves": 64, "model": "lgb", "long": "x" * 7000})
    for step in range(4):
        mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"train/acc": 0.5 + step / 10, "val acc": 0.4 + step / 20}, step=step)
    mlflow.log_metric("loss", 0.9, step=1)  # an older step logged last: not the latest
    history = MlflowClient().get_metric_history(mlflow.active_run().info.run_id, "loss")
    note("logging order", [[m.step, m.value] for m in history])
    mlflow.set_tag("stage", "dev")
    mlflow.set_tags({"a": 1, "b": None})
    mlflow.delete_tag("a")
    pause()
    with mlflow.start_run(run_name="child-1", nested=True):
        mlflow.log_metric("x", 1)
        pause()
        with mlflow.start_run(run_name="grandchild", nested=True):
            mlflow.log_metric("x", 2)
    pause()
    with mlflow.start_run(run_name="child-2", nested=True):
        mlflow.log_metric("x", 3, step=5)
    mlflow.log_text("hello", "notes/readme.txt")
    mlflow.log_dict({"depth": 6, "items": [1, 2]}, "config.json")
    note("active", mlflow.active_run().info.run_name)
note("after", mlflow.active_run())
note("last", mlflow.last_active_run().info.run_name)
pause()
try:
    with mlflow.start_run(run_name="crashes"):
        mlflow.log_metric("loss", 3.0)
        raise ZeroDivisionError
except ZeroDivisionError:
    pass
pause()
mlflow.start_run(run_name="killed")
mlflow.log_metric("nan", float("nan"))
mlflow.log_metric("inf", float("inf"), step=2)
mlflow.end_run("KILLED")
pause()
with mlflow.start_run(run_name="deleted") as doomed:
    mlflow.log_param("p", 1)
mlflow.delete_run(doomed.info.run_id)
pause()
run = mlflow.start_run(run_name="resumed")
mlflow.log_metric("m", 1.0, step=0)
mlflow.end_run()
with mlflow.start_run(run_id=run.info.run_id) as again:
    note("resumed status", again.info.status)
    mlflow.log_metric("m", 2.0, step=1)
note("uri kind", mlflow.get_artifact_uri is not None)
"""

ARTIFACTS = """
import tempfile
work = tempfile.mkdtemp()
with open(os.path.join(work, "model.txt"), "w") as handle:
    handle.write("weights")
os.makedirs(os.path.join(work, "ckpt", "sub"))
with open(os.path.join(work, "ckpt", "sub", "w.bin"), "wb") as handle:
    handle.write(b"0123456789")
with open(os.path.join(work, "ckpt", "top.txt"), "w") as handle:
    handle.write("t")
with mlflow.start_run(run_name="files") as run:
    mlflow.log_artifact(os.path.join(work, "model.txt"))
    mlflow.log_artifact(os.path.join(work, "model.txt"), artifact_path="models/v1")
    mlflow.log_artifacts(os.path.join(work, "ckpt"), artifact_path="checkpoint")
    mlflow.log_artifacts(os.path.join(work, "ckpt"))
    mlflow.log_text("a,b\\n1,2\\n", "tables/t.csv")
    uri = mlflow.get_artifact_uri("models")
    note("uri tail", uri.split(run.info.run_id)[-1])
client = MlflowClient()
note("list root", [[f.path, f.is_dir, f.file_size] for f in client.list_artifacts(run.info.run_id)])
note("list sub", [f.path for f in client.list_artifacts(run.info.run_id, "checkpoint/sub")])
local = client.download_artifacts(run.info.run_id, "checkpoint/sub/w.bin")
note("downloaded", open(local, "rb").read().decode())
dst = tempfile.mkdtemp()
copied = client.download_artifacts(run.info.run_id, "models", dst)
note("copied", sorted(os.listdir(os.path.join(copied, "v1"))))
"""

CLIENT = """
client = MlflowClient()
exp_id = client.create_experiment("lightning", tags={"owner": "ml"})
note("by name", client.get_experiment_by_name("lightning").name)
note("missing", client.get_experiment_by_name("nope"))
run = client.create_run(exp_id, tags={"mlflow.runName": "version_0", "mode": "fit"})
rid = run.info.run_id
note("created", [run.info.status, run.info.run_name, run.info.lifecycle_stage])
t0 = 1_700_000_000_000
client.log_batch(
    rid,
    metrics=[Metric("train_loss", 1.0 / (i + 1), t0 + i, i) for i in range(20)],
    params=[Param("lr", "0.001"), Param("batch_size", "32")],
    tags=[RunTag("phase", "train")],
)
client.log_batch(rid, metrics=[Metric("val_loss", 0.5, t0 + 100, 19)])
client.log_metric(rid, "epoch", 0, timestamp=t0 + 1, step=0)
client.log_metric(rid, "epoch", 1, timestamp=t0 + 2, step=10)
client.log_param(rid, "lr", "0.001")
client.set_tag(rid, "phase", "done")
hist = client.get_metric_history(rid, "train_loss")
note("history", [[m.step, m.value, m.timestamp] for m in hist])
note("epochs", [[m.step, m.value, m.timestamp] for m in client.get_metric_history(rid, "epoch")])
note("latest", {m: v for m, v in client.get_run(rid).data.metrics.items()})
client.set_terminated(rid, "FINISHED")
note("terminated", client.get_run(rid).info.status)
other = client.create_run(exp_id, run_name="version_1")
client.set_terminated(other.info.run_id, "FAILED", end_time=t0 + 5000)
got = client.get_run(other.info.run_id)
note("failed", [got.info.status, got.info.end_time])
client.delete_run(other.info.run_id)
note("deleted", client.get_run(other.info.run_id).info.lifecycle_stage)
client.restore_run(other.info.run_id)
note("restored", client.get_run(other.info.run_id).info.lifecycle_stage)
third = client.create_run(exp_id, run_name="version_2")
client.delete_run(third.info.run_id)
client.set_experiment_tag(exp_id, "purpose", "demo")
gone = client.create_experiment("gone")
client.create_run(gone, run_name="in-gone")
kept = client.create_run(gone, run_name="deleted-first")
client.delete_run(kept.info.run_id)
client.delete_experiment(gone)
error("delete twice", lambda: client.delete_experiment(gone))
note("search deleted", [r.info.run_name for r in client.search_runs([gone])])
client.restore_experiment(gone)
error("restore twice", lambda: client.restore_experiment(gone))
note("after restore", sorted(r.info.run_name for r in client.search_runs([gone])))
dropped = client.create_experiment("dropped")
client.create_run(dropped, run_name="in-dropped")
client.delete_experiment(dropped)
"""

SEARCH = """
mlflow.set_experiment("grid")
grid = [(0.1, "lgb", 0.03), (0.01, "lgb", 0.07), (0.001, "mlp", 0.06), (0.05, "mlp", None)]
for i, (lr, model, ic) in enumerate(grid):
    kind = "grid" if i % 2 else "base"
    with mlflow.start_run(run_name=f"run-{i}", tags={"model": model, "kind": kind}):
        mlflow.log_params({"lr": lr, "model": model, "i": i})
        if ic is not None:
            mlflow.log_metric("ic", ic)
            mlflow.log_metric("loss", 1 - ic, step=i)
    pause()
exp = mlflow.get_experiment_by_name("grid")

def names(**kwargs):
    return [r.info.run_name for r in mlflow.search_runs(output_format="list", **kwargs)]

note("default", names())
note("ic desc", names(order_by=["metrics.ic DESC"]))
note("ic asc", names(order_by=["metrics.ic ASC"]))
note("param asc", names(order_by=["params.lr ASC"]))
note("name desc", names(order_by=["attributes.run_name DESC"]))
note("two keys", names(order_by=["tags.model ASC", "metrics.loss DESC"]))
note("filter", names(filter_string="metrics.ic > 0.05"))
note("and", names(filter_string="params.model = 'lgb' and metrics.ic >= 0.03"))
note("like", names(filter_string="tags.kind LIKE 'gr%'"))
note("ilike", names(filter_string="attributes.run_name ILIKE 'RUN-1'"))
note("not equal", names(filter_string="params.model != 'lgb'"))
note("status", names(filter_string="attributes.status = 'FINISHED'", max_results=2))
note("by name", names(experiment_names=["grid"], max_results=3))
note("by ids", names(experiment_ids=[exp.experiment_id], order_by=["metrics.loss ASC"]))
frame = mlflow.search_runs(order_by=["metrics.ic DESC"])
note("frame names", list(frame["tags.mlflow.runName"]))
note("frame ic", [None if v != v else v for v in frame["metrics.ic"]])
note("frame lr", list(frame["params.lr"]))
note("frame columns", sorted(c for c in frame.columns if c.startswith(("metrics.", "params."))))
note("frame tags", sorted(c for c in frame.columns if c in ("tags.model", "tags.kind")))
note("frame statuses", list(frame["status"]))
note("experiments", [e.name for e in mlflow.search_experiments(order_by=["name ASC"])])
note("exp filter", [e.name for e in mlflow.search_experiments(filter_string="name = 'grid'")])
"""

ERRORS = """
client = MlflowClient()
with mlflow.start_run(run_name="strict") as run:
    mlflow.log_param("lr", 0.1)
    error("change param", lambda: mlflow.log_param("lr", 0.2))
    error("bad key", lambda: mlflow.log_metric("bad!key", 1.0))
    error("dot key", lambda: mlflow.log_metric("a/../b", 1.0))
    error("text value", lambda: mlflow.log_metric("loss", "high"))
    error("too many params", lambda: client.log_batch(
        run.info.run_id, params=[Param(f"p{i}", "v") for i in range(101)]))
    error("duplicate params", lambda: client.log_batch(
        run.info.run_id, params=[Param("a", "1"), Param("a", "2")]))
    error("nested without flag", lambda: mlflow.start_run())
    error("missing tag", lambda: mlflow.delete_tag("never-set"))
error("missing run", lambda: client.get_run("0123456789abcdef0123456789abcdef"))
error("missing experiment", lambda: client.get_experiment("123456789"))
error("both ids", lambda: mlflow.set_experiment("a", "1"))
client.create_experiment("dup")
error("duplicate experiment", lambda: client.create_experiment("dup"))
error("delete default", lambda: client.delete_experiment("0"))
error("run name clash", lambda: client.create_run(
    "0", run_name="a", tags={"mlflow.runName": "b"}))
"""

CALLBACKS = """
# What transformers' MLflowCallback and Lightning's MLFlowLogger call, in their order.
from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME
from mlflow.tracking import context

os.environ["MLFLOW_EXPERIMENT_NAME"] = "hf"
limit = mlflow.utils.validation.MAX_PARAMS_TAGS_PER_BATCH
note("limits", [limit, mlflow.utils.validation.MAX_PARAM_VAL_LENGTH])
note("uri set", mlflow.is_tracking_uri_set())
if mlflow.active_run() is None:
    mlflow.set_experiment(os.environ["MLFLOW_EXPERIMENT_NAME"])
    mlflow.start_run(run_name="trainer", nested=False)
params = {f"arg_{i}": i for i in range(230)}
items = list(params.items())
for i in range(0, len(items), limit):
    mlflow.log_params(dict(items[i : i + limit]), synchronous=False)
mlflow.set_tags({"release.candidate": "RC1"})
for step in range(1, 6):
    mlflow.log_metrics({"loss": 1.0 / step, "learning_rate": 0.001}, step=step, synchronous=False)
mlflow.end_run()
del os.environ["MLFLOW_EXPERIMENT_NAME"]
pause()

client = MlflowClient()
exp = client.get_experiment_by_name("lightning_logs")
exp_id = exp.experiment_id if exp is not None else client.create_experiment("lightning_logs")
resolve_tags = context.registry.resolve_tags
run = client.create_run(exp_id, tags=resolve_tags({MLFLOW_RUN_NAME: "version_0"}))
rid = run.info.run_id
client.log_batch(rid, params=[Param("hidden", "32"), Param("lr", "0.01")])
for step in range(3):
    client.log_batch(
        rid, metrics=[Metric("train_loss", 0.5 / (step + 1), 1_700_000_000_000 + step, step)]
    )
client.log_batch(rid, metrics=[Metric("val/acc", 0.9, 1_700_000_000_100, 2)])
note("lightning run", client.get_run(rid).info.run_name)
client.set_terminated(rid, "FINISHED")
"""

SCRIPTS = {
    "callbacks": CALLBACKS,
    "fluent": FLUENT,
    "artifacts": ARTIFACTS,
    "client": CLIENT,
    "search": SEARCH,
    "errors": ERRORS,
}


def _run(body: str, flavour: str, folder: Path, uri: str | None = None) -> dict[str, Any]:
    if flavour == "mlflow":
        head = "import mlflow\n"
        uri = uri or (folder / "mlruns").as_uri()
    else:
        head = "import tracklite.mlflow as mlflow\n"
        uri = uri or (folder / "store").as_uri()
    head += "from mlflow import MlflowClient\nfrom mlflow.entities import Metric, Param, RunTag\n"
    if flavour == "tracklite":
        head = head.replace("from mlflow", "from tracklite.mlflow")
    script = head + PRELUDE + f"mlflow.set_tracking_uri({uri!r})\n" + body + DUMP
    if flavour == "tracklite":
        script = script.replace("from mlflow", "from tracklite.mlflow")
    work = folder / "cwd"
    work.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "TRACKLITE_"))}
    env["MLFLOW_ALLOW_FILE_STORE"] = "true"
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=work,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, f"{flavour} failed:\n{done.stderr[-3000:]}"
    line = next(line for line in done.stdout.splitlines() if line.startswith("DUMP:"))
    return json.loads(line[len("DUMP:") :])  # type: ignore[no-any-return]


# Run ids (32 hex digits in both) and experiment ids (MLflow's long numbers, tracklite's hex).
_RUN_ID = re.compile(r"\b(?:[0-9a-f]{32}|[0-9]{15,20})\b")
_MILLIS = re.compile(r"\b1[0-9]{12}\b")


def _normalised(value: Any) -> Any:
    """Ids and current times in messages, which differ between any two runs, become
    placeholders; NaN becomes a string (NaN is not equal to itself)."""
    if isinstance(value, dict):
        return {k: _normalised(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalised(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, str):
        return _MILLIS.sub("<now>", _RUN_ID.sub("<id>", value))
    return value


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_same_script_same_store(name: str, tmp_path: Path) -> None:
    body = textwrap.dedent(SCRIPTS[name])
    real = _normalised(_run(body, "mlflow", tmp_path / "mlflow"))
    ours = _normalised(_run(body, "tracklite", tmp_path / "tracklite"))
    for section in ("experiments", "order", "runs"):
        assert ours[section] == real[section], section
    assert len(ours["results"]) == len(real["results"])
    for mine, theirs in zip(ours["results"], real["results"], strict=True):
        assert mine == theirs


@pytest.mark.parametrize("name", ["client", "fluent"])
def test_imported_history_reads_the_same(name: str, tmp_path: Path) -> None:
    """The migration path: what MLflow wrote, imported with ``tracklite import-mlflow``, reads
    the same through ``tracklite.mlflow`` as through MLflow."""
    import tracklite

    real = _normalised(_run(textwrap.dedent(SCRIPTS[name]), "mlflow", tmp_path / "mlflow"))
    report = tracklite.import_mlflow(
        tmp_path / "mlflow" / "mlruns", tmp_path / "imported", include_deleted=True
    )
    assert report.ok
    seen = _normalised(
        _run("", "tracklite", tmp_path / "read", uri=(tmp_path / "imported").as_uri())
    )
    for section in ("experiments", "order", "runs"):
        assert seen[section] == real[section], section
