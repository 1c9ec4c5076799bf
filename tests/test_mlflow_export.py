"""Exports: recorder and metric tables (Parquet/CSV), and MLflow file stores read back by
tracklite's importer and, when an interpreter with MLflow is found, by MLflow's own client.

MLflow is never imported by tracklite. The MLflow checks run a script in an interpreter that has
it: ``$TRACKLITE_MLFLOW_PYTHON``, else this interpreter if it can import mlflow, else
``../mlflow-venv/bin/python`` beside the repository (``python3 -m venv ../mlflow-venv &&
../mlflow-venv/bin/pip install mlflow-skinny``). Without one those tests are skipped.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_mlflow_import import (
    FIXTURE,
    LGB,
    SCRATCH,
    SLASH,
    TO_DELETE,
    WORKFLOW,
    Mlruns,
    needs_fixture,
    tree,
)

import tracklite
from tracklite import ExpManager, QlibRecorder
from tracklite.errors import NotFoundError, StoreError
from tracklite.metrics import segments
from tracklite.mlflow_io import read_mlruns
from tracklite.mlflow_io.exporter import export_mlflow, export_table
from tracklite.mlflow_io.importer import import_mlflow
from tracklite.mlflow_io.meta_yaml import dump as dump_yaml
from tracklite.mlflow_io.meta_yaml import load as parse_mapping
from tracklite.store.clock import iso_to_ms
from tracklite.store.root import Store

REPO = Path(__file__).resolve().parents[1]

# Names that a careless YAML writer gets wrong: special words, numbers, dates, indicators,
# quotes, unicode, line separators.
TRICKY = [
    "yes",
    "No",
    "null",
    "~",
    "1.0",
    "0755",
    "2024-01-01",
    "1:20",
    "a: b",
    "#hash",
    "- dash",
    "'quoted'",
    '"double"',
    "trailing ",
    "多语言 ✓",
    "colon:end:",
    "line\u2028sep",
    "emoji 🚀",
    "=",
    "<<",
    ".inf",
    "back\\slash",
]


# ---------------------------------------------------------------------------- helpers


@functools.lru_cache(maxsize=1)
def mlflow_python() -> str | None:
    """An interpreter that can import mlflow, or None."""
    configured = os.environ.get("TRACKLITE_MLFLOW_PYTHON")
    candidates = [configured] if configured else []
    candidates += [sys.executable, str(REPO.parent / "mlflow-venv" / "bin" / "python")]
    for python in candidates:
        if not python or not Path(python).exists():
            if python == configured:
                pytest.fail(f"TRACKLITE_MLFLOW_PYTHON={configured} does not exist")
            continue
        probe = subprocess.run(
            [python, "-c", "import mlflow"], capture_output=True, timeout=120, check=False
        )
        if probe.returncode == 0:
            return python
        if python == configured:
            pytest.fail(f"TRACKLITE_MLFLOW_PYTHON={configured} cannot import mlflow")
    return None


def run_mlflow(script: str, *args: str) -> Any:
    """Run ``script`` under the MLflow interpreter; its stdout is JSON."""
    python = mlflow_python()
    if python is None:
        pytest.skip("no Python with mlflow (set TRACKLITE_MLFLOW_PYTHON)")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["MLFLOW_ALLOW_FILE_STORE"] = "true"  # MLflow 3 refuses file stores without it
    done = subprocess.run(
        [python, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


READ_WITH_MLFLOW = r"""
import hashlib, json, os, sys, tempfile
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

client = MlflowClient(tracking_uri="file:" + sys.argv[1])
out = {"experiments": {}, "runs": {}}

def files(run_id, path=None):
    for info in client.list_artifacts(run_id, path):
        if info.is_dir:
            yield from files(run_id, info.path)
        else:
            yield info.path

for exp in client.search_experiments(view_type=ViewType.ALL):
    out["experiments"][exp.experiment_id] = [exp.name, exp.lifecycle_stage]
    for found in client.search_runs([exp.experiment_id], run_view_type=ViewType.ALL):
        run = client.get_run(found.info.run_id)
        rid = run.info.run_id
        history = {
            key: [[m.timestamp, m.value, m.step] for m in client.get_metric_history(rid, key)]
            for key in run.data.metrics
        }
        artifacts = {}
        with tempfile.TemporaryDirectory() as tmp:
            for path in files(rid):
                local = client.download_artifacts(rid, path, tmp)
                with open(local, "rb") as f:
                    artifacts[path] = hashlib.sha256(f.read()).hexdigest()
        out["runs"][rid] = {
            "experiment_id": run.info.experiment_id,
            "name": run.info.run_name,
            "status": run.info.status,
            "lifecycle": run.info.lifecycle_stage,
            "start_time": run.info.start_time,
            "end_time": run.info.end_time,
            "params": run.data.params,
            "tags": run.data.tags,
            "metrics": run.data.metrics,
            "history": history,
            "artifacts": artifacts,
        }
print(json.dumps(out))
"""


def expected(store_root: Path, exp_ids: list[str]) -> dict[str, dict[str, Any]]:
    """What MLflow should report for each recorder of the given experiments."""
    store = Store(store_root)
    runs: dict[str, dict[str, Any]] = {}
    for exp_id in exp_ids:
        for meta in store.iter_recorders(exp_id, include_deleted=True):
            rec_dir = store_root / exp_id / meta["id"]
            points = segments.read_points(rec_dir / "metrics")
            history: dict[str, list[list[Any]]] = {}
            for key, stamp, value, step in zip(
                points.column("key").to_pylist(),
                points.column("timestamp").cast(pa.int64()).to_pylist(),
                points.column("value").to_pylist(),
                points.column("step").to_pylist(),
                strict=True,
            ):
                history.setdefault(str(key), []).append([stamp, value, step])
            artifacts = {
                p.relative_to(rec_dir / "artifacts").as_posix(): hashlib.sha256(
                    p.read_bytes()
                ).hexdigest()
                for p in (rec_dir / "artifacts").rglob("*")
                if p.is_file()
            }
            runs[meta["id"]] = {
                "experiment_id": exp_id,
                "name": meta["name"],
                "status": meta["status"],
                "lifecycle": meta["lifecycle"],
                "start_time": iso_to_ms(meta["start_time"]),
                "end_time": iso_to_ms(meta["end_time"]),
                "params": meta["params"],
                "tags": {**meta["tags"], "mlflow.runName": meta["name"]},
                "metrics": {k: v["value"] for k, v in meta["metrics"].items()},
                "history": history,
                "artifacts": artifacts,
            }
    return runs


def same(a: Any, b: Any) -> bool:
    """Equality that treats NaN as equal to NaN, through nested containers."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def tricky_store(root: Path) -> QlibRecorder:
    """A tracklite-native store with awkward names, keys and values."""
    R = QlibRecorder(ExpManager(uri=str(root)))
    for i, name in enumerate(TRICKY):
        with R.start(experiment_name=name, recorder_name=TRICKY[-1 - i]):
            R.log_params(**{"optim/lr": 0.001, "with space": "a\nb", "yes": name})
            R.set_tags(**{"team/owner": "量化", "note": name})
            R.log_metrics(step=0, **{"Rank IC": 0.1, "a.b.c": 1.5, "train/loss": 2.0})
            R.log_metrics(step=1, **{"train/loss": float("nan"), "edge": float("inf")})
            R.log_metrics(step=2, **{"train/loss": 1e-300, "edge": -0.0})
    with R.start(experiment_name="failing", recorder_name="boom"):
        R.log_metrics(x=1.0)
        R.end_exp("FAILED")
    return R


# ---------------------------------------------------------------------------- tables


@needs_fixture
@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export_table(tmp_path: Path, fmt: str) -> None:
    store = tmp_path / "store"
    import_mlflow(FIXTURE, store)
    out = tmp_path / "out"
    report = export_table(store, out, fmt=fmt)
    assert report.ok and [p.name for p in report.files] == [f"recorders.{fmt}", f"metrics.{fmt}"]
    read = pd.read_parquet if fmt == "parquet" else pd.read_csv
    recorders = read(out / f"recorders.{fmt}")
    metrics = read(out / f"metrics.{fmt}")
    assert list(recorders.columns[:6]) == [
        "run_id",
        "recorder_name",
        "experiment_id",
        "experiment_name",
        "status",
        "lifecycle",
    ]
    assert len(recorders) == report.recorders == 5  # the soft-deleted run is left out
    by_name = recorders.set_index("recorder_name")
    assert by_name.loc["slash_keys", "status"] == "KILLED"
    assert by_name.loc["lgb_train", "metrics.IC"] == pytest.approx(0.041)
    assert by_name.loc["lgb_train", "params.model.class"] == "LGBModel"
    assert set(recorders["experiment_name"]) == {"workflow", "实验 rolling 2024"}
    assert list(metrics.columns) == [
        "experiment_id",
        "experiment_name",
        "recorder_id",
        "recorder_name",
        "key",
        "step",
        "value",
        "timestamp",
    ]
    assert len(metrics) == report.points == 20 + 20 + 1 + 1 + 1 + 3 + 2 + 2
    lgb = metrics[(metrics["recorder_name"] == "lgb_train") & (metrics["key"] == "train_loss")]
    assert list(lgb["step"]) == list(range(20))
    assert pd.to_datetime(lgb["timestamp"], utc=True).is_monotonic_increasing
    assert TO_DELETE not in set(metrics["recorder_id"].astype(str))


@needs_fixture
def test_export_table_choice_of_experiments(tmp_path: Path) -> None:
    store = tmp_path / "store"
    import_mlflow(FIXTURE, store, include_deleted=True)
    report = export_table(store, tmp_path / "one", experiments="workflow")
    assert report.recorders == 3
    frame = pd.read_parquet(tmp_path / "one" / "recorders.parquet")
    assert set(frame["experiment_name"]) == {"workflow"}
    everything = export_table(store, tmp_path / "all", include_deleted=True, fmt="csv")
    assert everything.recorders == 7 and everything.experiments == 3
    frame = pd.read_csv(tmp_path / "all" / "recorders.csv", dtype={"experiment_id": str})
    assert set(frame.loc[frame["lifecycle"] == "deleted", "run_id"]) >= {TO_DELETE}
    # A deleted experiment is chosen by its id; its one run was deleted with it (MLflow marks
    # it so), so it shows only with include_deleted.
    by_id = export_table(store, tmp_path / "trash", experiments=[SCRATCH])
    assert by_id.experiments == 1 and by_id.recorders == 0
    by_id = export_table(store, tmp_path / "trash", experiments=[SCRATCH], include_deleted=True)
    assert by_id.experiments == 1 and by_id.recorders == 1 and by_id.points == 1
    with pytest.raises(NotFoundError, match="nope"):
        export_table(store, tmp_path / "x", experiments=["nope"])
    with pytest.raises(ValueError, match="fmt"):
        export_table(store, tmp_path / "x", fmt="xlsx")


# ---------------------------------------------------------------------------- MLflow layout


@needs_fixture
def test_export_mlflow_layout(tmp_path: Path) -> None:
    store = tmp_path / "store"
    import_mlflow(FIXTURE, store, include_deleted=True)
    out = tmp_path / "mlruns"
    report = export_mlflow(store, out, include_deleted=True)
    assert report.ok and report.experiments == 3 and report.recorders == 7
    # deleted recorders and experiments only when asked
    plain = export_mlflow(store, tmp_path / "plain")
    assert plain.experiments == 2 and plain.recorders == 5
    assert not (tmp_path / "plain" / WORKFLOW / TO_DELETE).exists()
    assert not (tmp_path / "plain" / ".trash" / SCRATCH).exists()
    run = out / WORKFLOW / LGB
    meta = parse_mapping((run / "meta.yaml").read_text(encoding="utf-8"))
    assert meta["run_id"] == LGB and meta["experiment_id"] == WORKFLOW
    assert meta["status"] == 3 and meta["run_name"] == "lgb_train"
    assert meta["artifact_uri"] == (run / "artifacts").as_uri()
    assert parse_mapping((out / WORKFLOW / SLASH / "meta.yaml").read_text())["status"] == 5
    deleted = parse_mapping((out / WORKFLOW / TO_DELETE / "meta.yaml").read_text())
    assert deleted["lifecycle_stage"] == "deleted" and isinstance(deleted["deleted_time"], int)
    assert (run / "tags" / "mlflow.runName").read_text() == "lgb_train"
    assert (run / "params" / "model.class").read_text() == "LGBModel"
    # metric files as MLflow writes them, byte for byte the same lines as the source
    assert (run / "metrics" / "train_loss").read_text() == (
        FIXTURE / WORKFLOW / LGB / "metrics" / "train_loss"
    ).read_text()
    assert (out / WORKFLOW / SLASH / "metrics" / "train" / "loss").is_file()
    assert (out / WORKFLOW / SLASH / "params" / "optim" / "lr").read_text() == "0.001"
    assert (run / "artifacts" / "extra" / "sub" / "notes.txt").read_text() == (
        "plain text artifact\n"
    )
    # the deleted experiment sits in .trash, MLflow's Default exists
    assert (out / ".trash" / SCRATCH / "meta.yaml").is_file() and not (out / SCRATCH).exists()
    assert parse_mapping((out / "0" / "meta.yaml").read_text())["name"] == "Default"
    for sub in ("metrics", "params", "tags", "artifacts"):  # MLflow needs all four
        assert (out / WORKFLOW / SLASH / sub).is_dir()
    # nothing temporary left beside or inside the destination
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".")]
    assert not [p for p in out.rglob(".*") if p.name != ".trash"]


@needs_fixture
def test_round_trip_fixture_import_export_import(tmp_path: Path) -> None:
    first = tmp_path / "first"
    import_mlflow(FIXTURE, first, include_deleted=True)
    export_mlflow(first, tmp_path / "mlruns", include_deleted=True)
    second = tmp_path / "second"
    report = import_mlflow(tmp_path / "mlruns", second, include_deleted=True)
    assert report.ok and report.runs_created == 7
    a, b = Store(first), Store(second)
    exps = {m["id"]: (m["name"], m["lifecycle"]) for m in a.iter_experiments(True)}
    assert {m["id"]: (m["name"], m["lifecycle"]) for m in b.iter_experiments(True)} == exps
    for exp_id in exps:
        assert sorted(a.recorder_ids(exp_id)) == sorted(b.recorder_ids(exp_id))
        for rec_id in a.recorder_ids(exp_id):
            ra, rb = a.read_recorder(exp_id, rec_id), b.read_recorder(exp_id, rec_id)
            assert ra is not None and rb is not None
            for key in ("name", "status", "lifecycle", "start_time", "end_time", "deleted_time"):
                assert ra[key] == rb[key], (rec_id, key)
            for key in ("params", "tags", "metrics"):
                assert ra[key] == rb[key], (rec_id, key)
            pa_ = segments.read_points(first / exp_id / rec_id / "metrics")
            pb_ = segments.read_points(second / exp_id / rec_id / "metrics")
            assert pa_.equals(pb_)
    assert (
        tree(first / WORKFLOW / LGB / "artifacts").keys()
        == tree(second / WORKFLOW / LGB / "artifacts").keys()
    )
    for rel in ("pred.pkl", "params.pkl", "extra/sub/notes.txt"):
        assert (first / WORKFLOW / LGB / "artifacts" / rel).read_bytes() == (
            second / WORKFLOW / LGB / "artifacts" / rel
        ).read_bytes()


def test_round_trip_native_store_through_tracklite_reader(tmp_path: Path) -> None:
    tricky_store(tmp_path / "store")
    out = tmp_path / "mlruns"
    report = export_mlflow(tmp_path / "store", out)
    assert report.ok, str(report)
    source = read_mlruns(out)
    names = {exp.name for exp in source}
    assert names == {*TRICKY, "failing", "Default"}
    back = tmp_path / "back"
    assert import_mlflow(out, back).ok
    want = expected(
        tmp_path / "store", [m["id"] for m in Store(tmp_path / "store").iter_experiments()]
    )
    got = expected(back, [m["id"] for m in Store(back).iter_experiments()])
    for rec_id, data in want.items():
        mine = got[rec_id]
        for key in ("name", "status", "lifecycle", "start_time", "end_time", "params"):
            assert mine[key] == data[key], (rec_id, key)
        assert same(mine["history"], data["history"]), rec_id
        assert same(mine["metrics"], data["metrics"]), rec_id


def test_export_again_replaces_runs(tmp_path: Path) -> None:
    R = tricky_store(tmp_path / "store")
    out = tmp_path / "mlruns"
    export_mlflow(tmp_path / "store", out, experiments=["failing"])
    rec = R.get_recorder(recorder_name="boom", experiment_name="failing")
    rec.set_tags(later="yes")
    report = export_mlflow(tmp_path / "store", out, experiments=["failing", "yes"])
    assert report.ok and report.recorders == 2
    exp_id = rec.experiment_id
    assert (out / exp_id / str(rec.id) / "tags" / "later").read_text() == "yes"
    assert [p.name for p in (out / exp_id).iterdir() if p.is_dir()] == [rec.id]
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".")]


def test_keys_that_cannot_be_mlflow_files_are_reported(tmp_path: Path) -> None:
    R = QlibRecorder(ExpManager(uri=str(tmp_path / "store")))
    with R.start(experiment_name="e", recorder_name="r"):
        R.log_metrics(step=0, **{"a": 1.0, "a/b": 2.0, "../up": 3.0, "ok": 4.0})
        R.log_params(**{"x//y": "1", "fine": "2"})
    report = export_mlflow(tmp_path / "store", tmp_path / "mlruns")
    assert not report.ok
    joined = "\n".join(report.skipped)
    assert "'a/b'" in joined and "'../up'" in joined and "'x//y'" in joined
    rec = R.get_recorder(recorder_name="r", experiment_name="e")
    run = tmp_path / "mlruns" / rec.experiment_id / str(rec.id)
    assert sorted(os.listdir(run / "metrics")) == ["a", "ok"]
    params = os.listdir(run / "params")
    assert "fine" in params and "x" not in params
    assert not (tmp_path / "up").exists() and not (tmp_path / "mlruns" / "up").exists()


def test_export_refuses_foreign_destinations(tmp_path: Path) -> None:
    tricky_store(tmp_path / "store")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(StoreError, match="not an MLflow file store"):
        export_mlflow(tmp_path / "store", foreign)
    with pytest.raises(StoreError, match="tracklite store"):
        export_mlflow(tmp_path / "store", tmp_path / "store")
    assert os.listdir(foreign) == ["thesis.tex"]
    # an existing MLflow folder is fine: exported experiments are added to it
    src = Mlruns(tmp_path / "existing")
    src.experiment("42", "kept")
    assert export_mlflow(tmp_path / "store", src.root, experiments=["failing"]).ok
    assert {exp.name for exp in read_mlruns(src.root)} == {"Default", "kept", "failing"}
    with pytest.raises(NotFoundError):
        export_mlflow(tmp_path / "store", tmp_path / "new", experiments=["missing"])


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(codec="utf-8"), max_size=40))  # any text but lone surrogates
def test_yaml_scalars_read_back(text: str) -> None:
    assert parse_mapping(dump_yaml({"name": text}).decode("utf-8")) == {"name": text}


def test_yaml_style_is_mlflow_like() -> None:
    text = dump_yaml(
        {"name": "workflow", "experiment_id": "354829718963721588", "run_id": LGB, "x": None}
    ).decode()
    assert text == (
        f"experiment_id: '354829718963721588'\nname: workflow\nrun_id: {LGB}\nx: null\n"
    )
    assert dump_yaml({"name": "实验 rolling 2024"}).decode() == "name: 实验 rolling 2024\n"
    assert dump_yaml({"name": "yes"}).decode() == "name: 'yes'\n"


# ---------------------------------------------------------------------------- real MLflow


@needs_fixture
def test_mlflow_reads_exported_fixture(tmp_path: Path) -> None:
    store = tmp_path / "store"
    import_mlflow(FIXTURE, store, include_deleted=True)
    out = tmp_path / "mlruns"
    export_mlflow(store, out, include_deleted=True)
    seen = run_mlflow(READ_WITH_MLFLOW, str(out))
    assert seen["experiments"] == {
        "0": ["Default", "active"],
        WORKFLOW: ["workflow", "active"],
        "984389808218596160": ["实验 rolling 2024", "active"],
        SCRATCH: ["scratch", "deleted"],
    }
    want = expected(store, [WORKFLOW, "984389808218596160", SCRATCH])
    assert seen["runs"].keys() == want.keys()
    for rec_id, data in want.items():
        assert same(seen["runs"][rec_id], data), rec_id
    assert seen["runs"][SLASH]["status"] == "KILLED"
    assert seen["runs"][SLASH]["history"]["train/loss"] == [
        [1795848266567, 1.0, 0],
        [1795848266567, 0.9, 1],
        [1795848266568, 0.8, 2],
    ]
    assert seen["runs"][TO_DELETE]["lifecycle"] == "deleted"
    assert set(seen["runs"][LGB]["artifacts"]) == {
        "pred.pkl",
        "params.pkl",
        "extra/sub/notes.txt",
    }


def test_mlflow_reads_exported_native_store(tmp_path: Path) -> None:
    tricky_store(tmp_path / "store")
    out = tmp_path / "mlruns"
    assert export_mlflow(tmp_path / "store", out).ok
    seen = run_mlflow(READ_WITH_MLFLOW, str(out))
    store = Store(tmp_path / "store")
    exps = list(store.iter_experiments())
    assert {name for name, _ in seen["experiments"].values()} == {*TRICKY, "failing", "Default"}
    want = expected(tmp_path / "store", [m["id"] for m in exps])
    assert seen["runs"].keys() == want.keys()
    for rec_id, data in want.items():
        # MLflow's own latest-value rule must agree with the summary tracklite keeps.
        assert same(seen["runs"][rec_id], data), (rec_id, seen["runs"][rec_id], data)
    statuses = {run["name"]: run["status"] for run in seen["runs"].values()}
    assert statuses["boom"] == "FAILED" and statuses["yes"] == "FINISHED"


def test_pyyaml_reads_what_dump_yaml_writes(tmp_path: Path) -> None:
    rng = random.Random(7)
    alphabet = "ab :#'\"-?[]{},&*!|>%@`\\\t\n\r\x85\u2028\ufeff0123456789.eEyYnN~_/=<αβ🚀"
    samples = TRICKY + [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))) for _ in range(500)
    ]
    folder = tmp_path / "yaml"
    folder.mkdir()
    for i, text in enumerate(samples):
        (folder / f"{i}.yaml").write_bytes(dump_yaml({"name": text, "n": i}))
    script = r"""
import json, os, sys, yaml
folder = sys.argv[1]
out = {}
for name in os.listdir(folder):
    with open(os.path.join(folder, name), encoding="utf-8") as f:
        data = yaml.safe_load(f)
    out[str(data["n"])] = data["name"]
print(json.dumps(out))
"""
    read = run_mlflow(script, str(folder))
    wrong = {i: (t, read[str(i)]) for i, t in enumerate(samples) if read[str(i)] != t}
    assert not wrong


def test_check_is_clean_after_import_of_export(tmp_path: Path) -> None:
    tricky_store(tmp_path / "store")
    export_mlflow(tmp_path / "store", tmp_path / "mlruns")
    import_mlflow(tmp_path / "mlruns", tmp_path / "back")
    assert tracklite.check(tmp_path / "back").clean
