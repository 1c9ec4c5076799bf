"""Tests for tracklite.mlflow_io: the real qlib/MLflow 3 fixture, plus stores written here."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracklite.mlflow_io import (
    MalformedRun,
    MlflowExperiment,
    MlflowFormatError,
    MlflowRun,
    read_mlruns,
)

# Every read goes through PyYAML, which the mlflow extra installs.
yaml = pytest.importorskip("yaml", reason="PyYAML (the mlflow extra) is not installed")

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "qlib-mlflow3-mlruns" / "mlruns"
needs_fixture = pytest.mark.skipif(not FIXTURE.is_dir(), reason="shared fixture not present")

WORKFLOW = "354829718963721588"
ROLLING = "984389808218596160"
SCRATCH = "804636644501876777"
LGB_TRAIN = "069d530129634dd4ac0d330f168bfa8f"


def good_runs(exp: MlflowExperiment, **kwargs: bool) -> dict[str, MlflowRun]:
    """Runs by name; fails on a malformed one (the fixture has none)."""
    out: dict[str, MlflowRun] = {}
    for run in exp.runs(**kwargs):
        assert isinstance(run, MlflowRun), run
        assert run.name is not None
        out[run.name] = run
    return out


# --- the real fixture (read in place: reading never writes) ----------------------------------


@needs_fixture
def test_fixture_experiments_and_trash() -> None:
    store = read_mlruns(FIXTURE)
    assert {e.experiment_id: e.name for e in store} == {
        "0": "Default",
        WORKFLOW: "workflow",
        ROLLING: "实验 rolling 2024",
    }
    assert next(iter(store)).experiment_id == "0"
    assert all(e.lifecycle_stage == "active" for e in store)
    assert store.malformed == ()
    named = {e.name: e for e in store}
    assert named["实验 rolling 2024"].experiment_id == ROLLING
    assert "scratch" not in named

    with_deleted = read_mlruns(FIXTURE, include_deleted=True)
    [scratch] = [e for e in with_deleted if e.name == "scratch"]
    assert scratch.experiment_id == SCRATCH
    assert scratch.lifecycle_stage == "deleted"
    assert Path(scratch.path).parent.name == ".trash"
    assert scratch.creation_time == 1795848266511
    assert scratch.last_update_time == 1795848266557
    (run,) = list(scratch.runs())
    assert isinstance(run, MlflowRun)
    assert run.lifecycle_stage == "deleted"
    assert run.name == "mlflow_recorder"
    assert run.metric_history()["x"].values == (2.0,)
    assert list(with_deleted.get("0").runs()) == []


@needs_fixture
def test_fixture_workflow_runs_statuses_and_lifecycle() -> None:
    runs = good_runs(read_mlruns(FIXTURE).get(WORKFLOW))
    assert {name: (r.status, r.lifecycle_stage) for name, r in runs.items()} == {
        "lgb_train": ("FINISHED", "active"),
        "crashed": ("FAILED", "active"),
        "to_delete": ("FINISHED", "deleted"),
        "slash_keys": ("KILLED", "active"),
    }
    assert runs["to_delete"].deleted_time == 1795848266504
    assert runs["lgb_train"].deleted_time is None
    assert runs["slash_keys"].user_id == "unknown"
    lgb = runs["lgb_train"]
    assert lgb.run_id == LGB_TRAIN
    assert lgb.experiment_id == WORKFLOW
    assert (lgb.start_time, lgb.end_time) == (1795848266272, 1795848266344)
    assert lgb.user_id == "root"
    assert lgb.path == str(FIXTURE / WORKFLOW / LGB_TRAIN)
    assert lgb.params == {
        "cmd-sys.argv": "train.py /cluster/home/quant/alpha-research/out",
        "dataset.segments": "[1, 2]",
        "model.class": "LGBModel",
        "model.kwargs.learning_rate": "0.05",
    }
    assert lgb.tags["online_status"] == "online"
    assert lgb.tags["train_status"] == "end_task_train"
    assert lgb.tags["hostname"] == "node-17"
    assert lgb.tags["mlflow.runName"] == "lgb_train"


@needs_fixture
def test_fixture_full_histories() -> None:
    lgb = good_runs(read_mlruns(FIXTURE).get(WORKFLOW))["lgb_train"]
    assert sorted(lgb.metric_history()) == ["IC", "ICIR", "train_loss", "valid_loss"]
    hist = lgb.metric_history()
    assert set(hist) == {"IC", "ICIR", "train_loss", "valid_loss"}
    train, valid = hist["train_loss"], hist["valid_loss"]
    assert train.steps == tuple(range(20)) == valid.steps
    assert train.values == pytest.approx([1.0 / (s + 1) for s in range(20)])
    assert valid.values == pytest.approx([1.2 / (s + 1) + 0.01 * s for s in range(20)])
    assert list(train.timestamps) == sorted(train.timestamps)
    assert all(1795848266000 < t < 1795848267000 for t in train.timestamps)
    assert not train.torn and train.dropped_tail is None
    assert (hist["IC"].values, hist["IC"].steps) == ((0.041,), (0,))
    assert hist["ICIR"].values == (0.35,)
    assert lgb.metric_history(["IC"]) == {"IC": hist["IC"]}
    with pytest.raises(KeyError):
        lgb.metric_history(["no_such_metric"])
    with pytest.raises(KeyError):
        lgb.metric_history(["../meta.yaml"])


@needs_fixture
def test_fixture_slash_keys_become_folders() -> None:
    run = good_runs(read_mlruns(FIXTURE).get(WORKFLOW))["slash_keys"]
    assert sorted(run.metric_history()) == ["train/loss"]
    loss = run.metric_history()["train/loss"]
    assert loss.key == "train/loss"
    assert loss.values == (1.0, 0.9, 0.8)
    assert loss.steps == (0, 1, 2)
    assert run.params == {"optim/lr": "0.001"}
    assert run.tags == {"mlflow.runName": "slash_keys"}


@needs_fixture
def test_fixture_unicode_experiment_with_two_same_named_runs() -> None:
    exp = read_mlruns(FIXTURE).get(ROLLING)
    runs = [r for r in exp.runs() if isinstance(r, MlflowRun)]
    assert len(runs) == 2
    assert {r.name for r in runs} == {"rolling_model"}
    assert len({r.run_id for r in runs}) == 2
    assert sorted(r.params["seed"] for r in runs) == ["0", "1"]
    for run in runs:
        keys = sorted(run.metric_history())
        assert keys == ["1day.excess_return_with_cost.annualized_return", "Rank IC"]
        hist = run.metric_history()
        seed = int(run.params["seed"])
        assert hist["Rank IC"].values == pytest.approx([0.02 + seed / 100])
        assert hist["1day.excess_return_with_cost.annualized_return"].values == pytest.approx(
            [0.1 * seed]
        )


@needs_fixture
def test_fixture_artifacts_are_local_not_artifact_uri() -> None:
    runs = good_runs(read_mlruns(FIXTURE).get(WORKFLOW))
    lgb = runs["lgb_train"]
    assert lgb.artifacts_dir == str(FIXTURE / WORKFLOW / LGB_TRAIN / "artifacts")
    assert not lgb.artifacts_dir.startswith("/cluster")
    assert list(lgb.iter_artifacts()) == ["extra/sub/notes.txt", "params.pkl", "pred.pkl"]
    notes = Path(lgb.artifacts_dir, "extra", "sub", "notes.txt").read_text()
    assert notes == "plain text artifact\n"
    assert Path(lgb.artifacts_dir, "pred.pkl").stat().st_size > 0
    assert runs["crashed"].artifacts_dir is None
    assert list(runs["crashed"].iter_artifacts()) == []


@needs_fixture
def test_fixture_read_metrics_eagerly_and_build_arrow() -> None:
    pa = pytest.importorskip("pyarrow")
    lazy = good_runs(read_mlruns(FIXTURE).get(WORKFLOW))
    eager = good_runs(read_mlruns(FIXTURE).get(WORKFLOW), read_metrics=True)
    for name, run in eager.items():
        assert run.metric_history() == lazy[name].metric_history()
        assert run.fingerprint() == lazy[name].fingerprint()
    cols = eager["lgb_train"].metric_history()["valid_loss"]
    table = pa.table(
        {"step": cols.steps, "value": cols.values, "timestamp": cols.timestamps},
    )
    assert table.num_rows == 20
    assert table.column("step").type == pa.int64()
    assert table.column("value").type == pa.float64()


def fingerprints(root: Path) -> dict[str, str]:
    runs = good_runs(read_mlruns(root).get(WORKFLOW))
    return {run.run_id: run.fingerprint() for run in runs.values()}


@needs_fixture
def test_fixture_fingerprint_stable_and_sensitive(tmp_path: Path) -> None:
    first = fingerprints(FIXTURE)
    again = fingerprints(FIXTURE)
    assert first == again
    assert len(set(first.values())) == len(first)

    copy = tmp_path / "mlruns"
    shutil.copytree(FIXTURE, copy)  # copy2 keeps mtimes, so fingerprints carry over
    for path in copy.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)  # the shared copy is read-only
    copied = fingerprints(copy)
    assert copied == first

    run_dir = copy / WORKFLOW / LGB_TRAIN
    with open(run_dir / "metrics" / "IC", "a") as f:
        f.write("1795848266999 0.05 1\n")
    (run_dir / "tags" / "online_status").write_text("offline")
    after = fingerprints(copy)
    assert after[LGB_TRAIN] != first[LGB_TRAIN]
    assert {k: v for k, v in after.items() if k != LGB_TRAIN} == {
        k: v for k, v in first.items() if k != LGB_TRAIN
    }
    lgb = next(r for r in read_mlruns(copy).get(WORKFLOW).runs() if r.run_id == LGB_TRAIN)
    assert isinstance(lgb, MlflowRun)
    assert lgb.tags["online_status"] == "offline"
    assert lgb.metric_history()["IC"].steps == (0, 1)


@needs_fixture
def test_fixture_root_as_file_uri() -> None:
    store = read_mlruns("file:" + str(FIXTURE))
    assert store.root == str(FIXTURE)
    assert len(store) == 3


# --- stores written by the tests, in MLflow's layout -----------------------------------------


def exp_meta(exp_id: str, name: str, stage: str = "active") -> str:
    return (
        f"artifact_location: file:///gone/mlruns/{exp_id}\n"
        "creation_time: 1700000000000\n"
        "effective_trace_archival_retention: null\n"
        f"experiment_id: '{exp_id}'\n"
        "last_update_time: 1700000000001\n"
        f"lifecycle_stage: {stage}\n"
        f"name: {name}\n"
        "trace_location: null\n"
        "workspace: default\n"
    )


def run_meta(exp_id: str, run_id: str, name: str = "r", status: int | str = 3) -> str:
    return (
        f"artifact_uri: file:///gone/mlruns/{exp_id}/{run_id}/artifacts\n"
        "end_time: 1700000000500\n"
        "entry_point_name: ''\n"
        f"experiment_id: '{exp_id}'\n"
        "lifecycle_stage: active\n"
        f"run_id: {run_id}\n"
        f"run_name: {name}\n"
        "source_name: ''\n"
        "source_type: 4\n"
        "source_version: ''\n"
        "start_time: 1700000000000\n"
        f"status: {status}\n"
        "tags: []\n"
        "user_id: tester\n"
    )


def make_exp(root: Path, exp_id: str = "1", name: str = "exp", **kw: str) -> Path:
    exp_dir = root / exp_id
    exp_dir.mkdir(parents=True)
    (exp_dir / "meta.yaml").write_text(exp_meta(exp_id, name, **kw), encoding="utf-8")
    return exp_dir


def make_run(
    exp_dir: Path,
    run_id: str,
    *,
    meta: str | bytes | None = None,
    metrics: dict[str, str | bytes] | None = None,
    params: dict[str, str] | None = None,
    tags: dict[str, str] | None = None,
    name: str = "r",
) -> Path:
    run_dir = exp_dir / run_id
    run_dir.mkdir()
    if meta is None:
        meta = run_meta(exp_dir.name, run_id, name)
    if isinstance(meta, str):
        meta = meta.encode("utf-8")
    (run_dir / "meta.yaml").write_bytes(meta)
    for sub, values in (("metrics", metrics), ("params", params), ("tags", tags)):
        if values is None:
            continue
        (run_dir / sub).mkdir()
        for key, value in values.items():
            path = run_dir / sub / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(value.encode() if isinstance(value, str) else value)
    return run_dir


def rid(n: int) -> str:
    # hex like a uuid, with letters: an all-digit id would need quoting, as PyYAML does
    return f"{n:030x}ab"


def only_run(exp: MlflowExperiment, **kw: bool) -> MlflowRun | MalformedRun:
    (run,) = list(exp.runs(**kw))
    return run


@pytest.mark.parametrize(
    ("meta", "reason"),
    [
        (b"", "empty"),
        (b"\0\0\0\0", "empty"),
        (b"artifact_uri: file:///x\nend_time: 17000\nexperiment_id: '1'\nlifecy", "not readable"),
        (b"- just\n- a list\n", "not readable"),
        (b"\xff\xfe garbage", "not UTF-8"),
        (b"run_id: 'unterminated\n", "not readable"),
        (run_meta("1", rid(1), status=9).encode(), "unknown status 9"),
        (run_meta("1", rid(1), status="BOGUS").encode(), "unknown status"),
        (run_meta("1", rid(1)).replace("status: 3\n", "").encode(), "no status"),
        (run_meta("1", rid(2)).encode(), "does not match the folder"),
        (run_meta("7", rid(1)).encode(), "experiment_id '7'"),
        (run_meta("1", rid(1)).replace("start_time: 1700000000000", "start_time: abc").encode(),
         "start_time is not an integer"),
        (run_meta("1", rid(1)).replace("active", "archived").encode(), "lifecycle_stage"),
        (b"experiment_id: '1'\nstatus: 3\n", "no run_id"),
    ],
)  # fmt: skip
def test_malformed_meta_is_reported_not_raised(tmp_path: Path, meta: bytes, reason: str) -> None:
    exp_dir = make_exp(tmp_path)
    make_run(exp_dir, rid(1), meta=meta, metrics={"loss": "1 0.5 0\n"})
    make_run(exp_dir, rid(3), metrics={"loss": "1 0.5 0\n"})
    runs = list(read_mlruns(tmp_path).get("1").runs())
    assert len(runs) == 2
    bad, good = runs
    assert isinstance(bad, MalformedRun), bad
    assert reason in bad.reason
    assert bad.run_id == rid(1)
    assert bad.path == str(exp_dir / rid(1))
    assert isinstance(good, MlflowRun)
    assert good.metric_history()["loss"].values == (0.5,)


def test_run_folder_without_meta_is_malformed_but_stray_folder_is_skipped(tmp_path: Path) -> None:
    exp_dir = make_exp(tmp_path)
    (exp_dir / rid(5) / "metrics").mkdir(parents=True)  # lost its meta.yaml
    (exp_dir / "named_run" / "params").mkdir(parents=True)  # not hex, but has run parts
    (exp_dir / "random_stuff").mkdir()
    (exp_dir / "random_stuff" / "file.txt").write_text("x")
    (exp_dir / ".ipynb_checkpoints").mkdir()
    (exp_dir / "notes.txt").write_text("a file, not a folder")
    # folders MLflow itself keeps next to runs, some with their own meta.yaml
    (exp_dir / "tags").mkdir()
    (exp_dir / "tags" / "mlflow.note.content").write_text("hello")
    (exp_dir / "datasets" / "d41d8cd98f00b204").mkdir(parents=True)
    (exp_dir / "datasets" / "d41d8cd98f00b204" / "meta.yaml").write_text("name: ds\n")
    (exp_dir / "traces" / "tr-1").mkdir(parents=True)
    (exp_dir / "traces" / "tr-1" / "trace_info.yaml").write_text("request_id: tr-1\n")
    (exp_dir / "models" / "m-1").mkdir(parents=True)
    (exp_dir / "models" / "m-1" / "meta.yaml").write_text("model_id: m-1\n")
    make_run(exp_dir, rid(1))
    exp = read_mlruns(tmp_path).get("1")
    runs = list(exp.runs())
    assert [type(r).__name__ for r in runs] == ["MlflowRun", "MalformedRun", "MalformedRun"]
    assert {os.path.basename(r.path) for r in runs[1:]} == {rid(5), "named_run"}
    assert all("meta.yaml is missing" in r.reason for r in runs[1:] if isinstance(r, MalformedRun))
    assert exp.tags() == {"mlflow.note.content": "hello"}


def test_stray_root_folders_and_malformed_experiments(tmp_path: Path) -> None:
    make_exp(tmp_path, "0", "Default")
    make_exp(tmp_path, "12", "twelve")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "meta.yaml").write_text(exp_meta("x", "ghost"))
    (tmp_path / "models" / "my_model").mkdir(parents=True)  # the file model registry
    (tmp_path / "models" / "my_model" / "meta.yaml").write_text("name: my_model\n")
    (tmp_path / "models" / "meta.yaml").write_text("name: not an experiment\n")
    (tmp_path / "backup").mkdir()
    (tmp_path / "README").write_text("not a folder")
    (tmp_path / "55").mkdir()
    (tmp_path / "55" / "meta.yaml").write_text("name: [unclosed\n")
    (tmp_path / "56").mkdir()
    (tmp_path / "56" / "meta.yaml").write_text(exp_meta("57", "wrong id"))
    (tmp_path / "58").mkdir()
    (tmp_path / "58" / "meta.yaml").write_text("experiment_id: '58'\n")
    store = read_mlruns(tmp_path)  # no .trash folder at all: fine
    assert [(e.experiment_id, e.name) for e in store] == [("0", "Default"), ("12", "twelve")]
    reasons = {Path(m.path).name: m.reason for m in store.malformed}
    assert set(reasons) == {"55", "56", "58"}
    assert "not readable" in reasons["55"]
    assert "does not match" in reasons["56"]
    assert "no name" in reasons["58"]
    with pytest.raises(NotADirectoryError):
        read_mlruns(tmp_path / "nope")


def test_deleted_experiment_in_place_and_in_trash(tmp_path: Path) -> None:
    make_exp(tmp_path, "1", "live")
    make_exp(tmp_path, "2", "half-deleted", stage="deleted")  # crash before the move to .trash
    make_exp(tmp_path / ".trash", "3", "gone")
    assert [e.name for e in read_mlruns(tmp_path)] == ["live"]
    store = read_mlruns(tmp_path, include_deleted=True)
    assert [(e.name, e.lifecycle_stage) for e in store] == [
        ("live", "active"),
        ("half-deleted", "deleted"),
        ("gone", "deleted"),
    ]


def test_nested_mlflow3_experiment_meta_and_folded_name(tmp_path: Path) -> None:
    exp_dir = tmp_path / "9"
    exp_dir.mkdir()
    long_name = "a rather long experiment name " * 4
    long_name = long_name.strip()
    folded = "\n    ".join(long_name.rsplit(" ", 3))  # continuation lines, as PyYAML folds
    (exp_dir / "meta.yaml").write_text(
        "artifact_location: file:///gone/9\n"
        "creation_time: 1700000000000\n"
        "experiment_id: '9'\n"
        "last_update_time: 1700000000000\n"
        "lifecycle_stage: active\n"
        f"name: {folded}\n"
        "tags:\n"
        "- key: team\n"
        "  value: quant\n"
        "trace_location:\n"
        "  type: MLFLOW_EXPERIMENT\n"
        "  mlflow_experiment:\n"
        "    experiment_id: '9'\n"
        "workspace: default\n"
    )
    (exp,) = read_mlruns(tmp_path)
    assert exp.name == long_name
    assert exp.creation_time == 1700000000000


def test_name_status_and_old_fields(tmp_path: Path) -> None:
    exp_dir = make_exp(tmp_path)
    meta = run_meta("1", rid(1)).replace("run_name: r\n", "run_name: ''\n")
    meta = meta.replace("status: 3", "status: 'failed'").replace("run_id:", "run_uuid:")
    make_run(exp_dir, rid(1), meta=meta, tags={"mlflow.runName": "from tag"})
    make_run(exp_dir, rid(2), meta=run_meta("1", rid(2), name="'2024'", status=2))
    make_run(exp_dir, rid(3), meta=run_meta("1", rid(3), name="x", status=1))
    a, b, c = read_mlruns(tmp_path).get("1").runs()
    assert isinstance(a, MlflowRun) and isinstance(b, MlflowRun) and isinstance(c, MlflowRun)
    assert (a.run_id, a.name, a.status) == (rid(1), "from tag", "FAILED")
    assert (b.name, b.status) == ("2024", "SCHEDULED")
    assert (c.name, c.status, c.user_id) == ("x", "RUNNING", "tester")
    assert c.params == {} and c.tags == {} and sorted(c.metric_history()) == []
    assert c.metric_history() == {}
    assert c.artifacts_dir is None
    assert len(c.fingerprint()) == 32


def test_params_tags_deep_keys_raw_values_and_junk_files(tmp_path: Path) -> None:
    exp_dir = make_exp(tmp_path)
    run_dir = make_run(
        exp_dir,
        rid(1),
        params={"a/b/c": "deep", "lr": "0.1", "text": "line one\nline two\n", "empty": ""},
        tags={"mlflow.note.content": "ünïcode ✓", ".DS_Store": "junk"},
        metrics={"x/y/z": "1 2.5 3\n", ".DS_Store": b"\0\x01binary"},
    )
    (run_dir / "params" / "._lr").write_bytes(b"\0appledouble")
    run = only_run(read_mlruns(tmp_path).get("1"), read_metrics=True)
    assert isinstance(run, MlflowRun)
    assert run.params == {"a/b/c": "deep", "lr": "0.1", "text": "line one\nline two\n", "empty": ""}
    assert run.tags == {"mlflow.note.content": "ünïcode ✓"}
    assert run.metric_history()["x/y/z"].steps == (3,)


def test_two_field_lines_nan_inf_and_unterminated_complete_line(tmp_path: Path) -> None:
    exp_dir = make_exp(tmp_path)
    make_run(
        exp_dir,
        rid(1),
        metrics={
            "old": "1000 0.5\n1001 0.25\n",
            "special": "1 nan 0\n2 inf 1\n3 -inf 2\n4 -0.0 3\n5 1e-300 4\n6 NaN 5\n",
            "no_newline": "1 1.0 0\n2 2.0 1",
            "empty": "",
            "negative_step": "1 1.0 -1\n",
        },
    )
    run = only_run(read_mlruns(tmp_path).get("1"))
    assert isinstance(run, MlflowRun)
    hist = run.metric_history()
    assert hist["old"].steps == (0, 0)
    assert hist["old"].values == (0.5, 0.25)
    assert hist["old"].timestamps == (1000, 1001)
    special = hist["special"].values
    assert math.isnan(special[0]) and math.isnan(special[5])
    assert special[1:3] == (math.inf, -math.inf)
    assert math.copysign(1.0, special[3]) == -1.0
    assert special[4] == 1e-300
    assert hist["no_newline"].steps == (0, 1) and not hist["no_newline"].torn
    assert len(hist["empty"]) == 0 and not hist["empty"].torn
    assert hist["negative_step"].steps == (-1,)


@pytest.mark.parametrize(
    ("text", "kept", "dropped"),
    [
        (b"1 1.0 0\n2 2.0 1\n3 3.0", 2, "3 3.0"),  # step cut off: not an old two-field line
        (b"1 1.0 0\n2 2.0 1\n17000", 2, "17000"),
        (b"1 1.0 0\n2 2.0 1\n3 3.", 2, "3 3."),
        (b"1 1.0 0\n2 2.0 1\n3 3.0 2 9", 2, "3 3.0 2 9"),
        (b"1 1.0 0\n2 2.0 1\n\n", 2, ""),  # an empty last line
        (b"1 1.0 0\n2 2.0 1\n" + b"\0" * 64, 2, "\0" * 64),  # NUL padding after a crash
        (b"1 1.0 0\n2 2.0 1\n3 3.0\x00\x00", 2, "3 3.0\0\0"),
        (b"1 1.0 0\n2 2.0 1\n3 x 2\n", 2, "3 x 2"),
        (b"17", 0, "17"),
    ],
)
def test_torn_last_line_is_skipped_and_reported(
    tmp_path: Path, text: bytes, kept: int, dropped: str
) -> None:
    exp_dir = make_exp(tmp_path)
    make_run(exp_dir, rid(1), metrics={"loss": text})
    exp = read_mlruns(tmp_path).get("1")
    for read_metrics in (False, True):
        run = only_run(exp, read_metrics=read_metrics)
        assert isinstance(run, MlflowRun)
        cols = run.metric_history()["loss"]
        assert len(cols) == kept
        assert cols.steps == tuple(range(kept))
        assert cols.torn
        assert cols.dropped_tail == dropped


@pytest.mark.parametrize(
    "text",
    [
        b"1 1.0 0\ngarbage\n3 3.0 2\n",
        b"1 1.0 0\n\n3 3.0 2\n",
        b"1 1.0 0\n2 2.0 1 9\n3 3.0 2\n",
        b"1 1.0 0\n2 two 1\n3 3.0 2\n",
    ],
)
def test_bad_line_in_the_middle_makes_the_run_malformed(tmp_path: Path, text: bytes) -> None:
    exp_dir = make_exp(tmp_path)
    make_run(exp_dir, rid(1), metrics={"ok": "1 1.0 0\n", "sub/loss": text})
    make_run(exp_dir, rid(2), metrics={"ok": "1 1.0 0\n"})
    exp = read_mlruns(tmp_path).get("1")

    lazy = next(exp.runs())
    assert isinstance(lazy, MlflowRun)  # metadata alone is fine
    with pytest.raises(MlflowFormatError) as info:
        lazy.metric_history()
    assert info.value.path.endswith(os.path.join("metrics", "sub", "loss"))
    assert "line 2" in info.value.reason
    assert lazy.metric_history(["ok"])["ok"].values == (1.0,)

    bad, good = exp.runs(read_metrics=True)
    assert isinstance(bad, MalformedRun)
    assert bad.reason.startswith(os.path.join("metrics", "sub", "loss") + ": line 2")
    assert isinstance(good, MlflowRun)
    assert good.metric_history()["ok"].steps == (0,)


def test_old_two_field_file_with_unterminated_last_line_is_kept(tmp_path: Path) -> None:
    exp_dir = make_exp(tmp_path)
    make_run(exp_dir, rid(1), metrics={"old": "1 1.0\n2 2.0"})
    run = only_run(read_mlruns(tmp_path).get("1"))
    assert isinstance(run, MlflowRun)
    cols = run.metric_history()["old"]
    assert cols.values == (1.0, 2.0) and not cols.torn


def test_runs_are_read_lazily_one_at_a_time(tmp_path: Path) -> None:
    exp_dir = make_exp(tmp_path)
    for n in (1, 2, 3):
        make_run(exp_dir, rid(n))
    store = read_mlruns(tmp_path)
    # breaking a run after listing experiments does not matter until that run is reached
    (exp_dir / rid(3) / "meta.yaml").write_text("garbled: [")
    it = store.get("1").runs()
    first = next(it)
    assert isinstance(first, MlflowRun) and first.run_id == rid(1)
    (exp_dir / rid(2) / "meta.yaml").write_bytes(b"")  # changed after run 1 was read
    second, third = list(it)
    assert isinstance(second, MalformedRun) and "empty" in second.reason
    assert isinstance(third, MalformedRun) and "not readable" in third.reason


def test_fingerprint_tracks_changes(tmp_path: Path) -> None:
    exp_dir = make_exp(tmp_path)
    run_dir = make_run(exp_dir, rid(1), metrics={"loss": "1 1.0 0\n"}, params={"lr": "0.1"})

    def fp() -> str:
        run = only_run(read_mlruns(tmp_path).get("1"))
        assert isinstance(run, MlflowRun)
        return run.fingerprint()

    seen = {fp()}
    assert fp() in seen  # stable
    with open(run_dir / "metrics" / "loss", "a") as f:
        f.write("2 0.5 1\n")
    seen.add(fp())
    (run_dir / "params" / "seed").write_text("1")
    seen.add(fp())
    (run_dir / "artifacts").mkdir()
    (run_dir / "artifacts" / "model.bin").write_bytes(b"x" * 10)
    seen.add(fp())
    meta = (
        (run_dir / "meta.yaml")
        .read_text()
        .replace("lifecycle_stage: active", "lifecycle_stage: deleted")
    )
    (run_dir / "meta.yaml").write_text(meta)
    seen.add(fp())
    assert len(seen) == 5

    # read_metrics=True captures the fingerprint before reading: a later append shows up
    eager = only_run(read_mlruns(tmp_path).get("1"), read_metrics=True)
    assert isinstance(eager, MlflowRun)
    before = eager.fingerprint()
    with open(run_dir / "metrics" / "loss", "a") as f:
        f.write("3 0.25 2\n")
    os.utime(run_dir / "metrics" / "loss", ns=(1, 1))
    assert eager.fingerprint() == before  # the snapshot the data belongs to
    assert eager.metric_history()["loss"].steps == (0, 1)
    assert fp() != before


def test_reading_a_thousand_runs(tmp_path: Path) -> None:
    exp_dir = make_exp(tmp_path)
    for n in range(1000):
        make_run(
            exp_dir,
            rid(n),
            params={f"p{i}": str(i) for i in range(5)},
            tags={"mlflow.runName": "r", "mlflow.user": "u", "k": "v"},
            metrics={"loss": "1 1.0 0\n2 0.5 1\n", "acc": "1 0.1 0\n"},
        )
    runs = [r for exp in read_mlruns(tmp_path) for r in exp.runs()]
    assert len(runs) == 1000 and all(isinstance(r, MlflowRun) for r in runs)
    assert {r.params["p4"] for r in runs} == {"4"}


points = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=2**62),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(2**62), max_value=2**62),
    ),
    max_size=30,
)


@settings(max_examples=100, deadline=None)
@given(points=points, old_format=st.booleans())
def test_metric_lines_round_trip(
    tmp_path_factory: pytest.TempPathFactory,
    points: list[tuple[int, float, int]],
    old_format: bool,
) -> None:
    root = tmp_path_factory.mktemp("metrics")
    if old_format:
        text = "".join(f"{t} {v}\n" for t, v, _ in points)
    else:
        text = "".join(f"{t} {v} {s}\n" for t, v, s in points)  # str(float), as MLflow writes
    make_run(make_exp(root), rid(1), metrics={"m": text})
    run = only_run(read_mlruns(root).get("1"))
    assert isinstance(run, MlflowRun)
    cols = run.metric_history()["m"]
    assert not cols.torn
    assert cols.timestamps == tuple(t for t, _, _ in points)
    assert cols.steps == tuple(0 if old_format else s for _, _, s in points)
    assert [str(v) for v in cols.values] == [str(v) for _, v, _ in points]  # nan-safe


# --- meta.yaml as PyYAML writes it -----------------------------------------------------------

# Names that a hand-written YAML reader gets wrong: line and paragraph separators, NEL and BOM
# inside quoted strings, YAML 1.1 booleans and octals, numbers that must stay strings.
AWKWARD_NAMES = [
    "a\u2028b",
    "\u2029",
    "x\x85y",
    "\ufeffbom",
    "tab\there",
    "line\nbreak",
    "yes",
    "Off",
    "0755",
    "1e3",
    "~",
    "null",
    "a: b",
    "# x",
    " padded ",
    "实验 rolling 2024",
    "🚀",
]
names = st.one_of(st.sampled_from(AWKWARD_NAMES), st.text(st.characters(codec="utf-8"), min_size=1))


# MLflow writes with PyYAML's C dumper when PyYAML has it; the pure-Python one writes NEL
# (U+0085) unescaped inside quotes, which every reader, PyYAML included, folds into a space.
C_DUMPER = getattr(yaml, "CSafeDumper", None)


def dumped(fields: dict[str, object], **style: object) -> str:
    if C_DUMPER is None and any("\x85" in str(v) for v in fields.values()):
        pytest.skip("PyYAML without libyaml cannot write NEL inside a string")
    text: str = yaml.dump(fields, Dumper=C_DUMPER or yaml.SafeDumper, **style)
    return text


@pytest.mark.parametrize("name", AWKWARD_NAMES)
@pytest.mark.parametrize("allow_unicode", [True, False])
def test_names_written_by_pyyaml_read_back(tmp_path: Path, name: str, allow_unicode: bool) -> None:
    exp_dir = tmp_path / "1"
    exp_dir.mkdir()
    fields = {"experiment_id": "1", "name": name, "lifecycle_stage": "active"}
    (exp_dir / "meta.yaml").write_text(dumped(fields, allow_unicode=allow_unicode), "utf-8")
    run_id = rid(1)
    run = {"run_id": run_id, "experiment_id": "1", "run_name": name, "status": 3}
    (exp_dir / run_id).mkdir()
    (exp_dir / run_id / "meta.yaml").write_text(dumped(run, allow_unicode=allow_unicode), "utf-8")
    store = read_mlruns(tmp_path)
    assert store.malformed == ()
    assert store.get("1").name == name
    assert isinstance(found := only_run(store.get("1")), MlflowRun)
    assert found.name == name


def test_safe_dump_line_separator_inside_quotes(tmp_path: Path) -> None:
    text = yaml.safe_dump({"experiment_id": "1", "name": "a\u2028b", "lifecycle_stage": "active"})
    assert "name: 'a" in text or 'name: "a' in text  # written inside quotes
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "meta.yaml").write_text(text, encoding="utf-8")
    assert read_mlruns(tmp_path).get("1").name == "a\u2028b"


@settings(max_examples=300, deadline=None)
@given(
    name=names,
    start=st.integers(min_value=0, max_value=2**53),
    user=st.one_of(st.none(), names),
    flow=st.booleans(),
)
def test_generated_run_meta_reads_as_pyyaml_reads_it(
    tmp_path_factory: pytest.TempPathFactory, name: str, start: int, user: str | None, flow: bool
) -> None:
    root = tmp_path_factory.mktemp("gen")
    exp_dir = make_exp(root)
    fields = {
        "run_id": rid(1),
        "experiment_id": "1",
        "run_name": name,
        "status": "FINISHED",
        "start_time": start,
        "user_id": user,
        "tags": [],
    }
    text = dumped(fields, default_flow_style=flow, allow_unicode=True, width=20)
    make_run(exp_dir, rid(1), meta=text)
    run = only_run(read_mlruns(root).get("1"))
    assert isinstance(run, MlflowRun), run
    assert (run.name, run.start_time, run.user_id, run.status) == (name, start, user, "FINISHED")


def test_without_pyyaml_the_error_names_the_extra(tmp_path: Path) -> None:
    make_run(make_exp(tmp_path), rid(1))
    script = (
        "import sys; sys.modules['yaml'] = None\n"
        "from tracklite.errors import ExtraRequiredError\n"
        "from tracklite.mlflow_io import read_mlruns\n"
        "try:\n    read_mlruns(sys.argv[1])\n"
        "except ExtraRequiredError as exc:\n    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, check=True
    )
    assert 'pip install "tracklite[mlflow]"' in done.stdout, done.stderr


@settings(max_examples=100, deadline=None)
@given(meta=st.binary(max_size=200), metric=st.binary(max_size=100))
def test_any_bytes_give_a_run_or_a_malformed_run(
    tmp_path_factory: pytest.TempPathFactory, meta: bytes, metric: bytes
) -> None:
    root = tmp_path_factory.mktemp("fuzz")
    exp_dir = make_exp(root)
    make_run(exp_dir, rid(1), meta=meta, metrics={"m": metric})
    make_run(exp_dir, rid(2), metrics={"m": metric})
    for run in read_mlruns(root).get("1").runs(read_metrics=True):
        assert isinstance(run, (MlflowRun, MalformedRun))
