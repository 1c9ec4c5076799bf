"""``tracklite.import_mlflow``: the real qlib/MLflow fixture and MLflow folders generated here.

The generated folders follow MLflow's file-store layout (qlib-r-api.md section 9): meta.yaml
files, ``metrics/<key>`` lines ``<timestamp_ms> <value> <step>``, ``params/``, ``tags/``,
``artifacts/``, deleted experiments in ``.trash/``; keys with ``/`` are sub-folders.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import tracklite
from tracklite import QlibRecorder
from tracklite.errors import StoreError
from tracklite.metrics import segments
from tracklite.mlflow_io.importer import ImportReport, import_mlflow
from tracklite.store.clock import ms_to_iso
from tracklite.store.root import Store

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "qlib-mlflow3-mlruns" / "mlruns"

WORKFLOW = "354829718963721588"
ROLLING = "984389808218596160"
SCRATCH = "804636644501876777"
LGB = "069d530129634dd4ac0d330f168bfa8f"
CRASHED = "9617834fc2594c7ca2061f5a6ab8443f"
TO_DELETE = "06db6d3778754e1d9141f1bbb8561562"
SLASH = "9b71a527556542c196240499bfe2f511"
ROLLING_RUNS = {"7a264b3ffc904476a186b0f4c1489b57", "af0b95a74b76447f8fc55e029403f1bd"}

needs_fixture = pytest.mark.skipif(not FIXTURE.is_dir(), reason="qlib mlruns fixture not found")


# ---------------------------------------------------------------------------- MLflow folders


class Mlruns:
    """Writes an MLflow file store the way MLflow lays it out (used by the export tests too)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / ".trash").mkdir(exist_ok=True)
        self.experiment("0", "Default")

    def experiment(self, exp_id: str, name: str, *, deleted: bool = False) -> Path:
        folder = (self.root / ".trash" / exp_id) if deleted else (self.root / exp_id)
        folder.mkdir(parents=True, exist_ok=True)
        stage = "deleted" if deleted else "active"
        _write(
            folder / "meta.yaml",
            f"artifact_location: file:///gone/mlruns/{exp_id}\n"
            "creation_time: 1700000000000\n"
            f"experiment_id: '{exp_id}'\n"
            "last_update_time: 1700000000500\n"
            f"lifecycle_stage: {stage}\n"
            f"name: {_quote(name)}\n",
        )
        return folder

    def run(
        self,
        exp_id: str,
        *,
        name: str | None = "run",
        run_id: str | None = None,
        status: int = 3,
        start: int | None = 1700000001000,
        end: int | None = 1700000002000,
        deleted: bool = False,
        in_trash: bool = False,
        params: dict[str, str] | None = None,
        tags: dict[str, str] | None = None,
        metrics: dict[str, list[tuple[int, float, int]]] | None = None,
        artifacts: dict[str, bytes] | None = None,
    ) -> Path:
        rid = run_id or uuid.uuid4().hex
        base = self.root / ".trash" / exp_id if in_trash else self.root / exp_id
        folder = base / rid
        for part in ("metrics", "params", "tags", "artifacts"):
            (folder / part).mkdir(parents=True, exist_ok=True)
        lines = [
            f"artifact_uri: file:///gone/mlruns/{exp_id}/{rid}/artifacts",
            f"end_time: {'null' if end is None else end}",
            "entry_point_name: ''",
            f"experiment_id: '{exp_id}'",
            f"lifecycle_stage: {'deleted' if deleted else 'active'}",
            f"run_id: {rid}",
            f"run_name: {'null' if name is None else _quote(name)}",
            "source_name: ''",
            "source_type: 4",
            "source_version: ''",
            f"start_time: {'null' if start is None else start}",
            f"status: {status}",
            "tags: []",
            "user_id: quant",
        ]
        if deleted:
            lines.insert(1, "deleted_time: 1700000003000")
        _write(folder / "meta.yaml", "\n".join(lines) + "\n")
        all_tags = dict(tags or {})
        if name is not None:
            all_tags.setdefault("mlflow.runName", name)
        for part, values in (("params", params or {}), ("tags", all_tags)):
            for key, value in values.items():
                _write(folder / part / key, value)
        for key, points in (metrics or {}).items():
            _write(folder / "metrics" / key, "".join(f"{t} {v} {s}\n" for t, v, s in points))
        for rel, data in (artifacts or {}).items():
            target = folder / "artifacts" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        return folder


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def tree(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every file under ``root``: (size, mtime_ns, inode), to prove nothing changed."""
    found: dict[str, tuple[int, int, int]] = {}
    for folder, _dirs, files in os.walk(root):
        for name in files:
            st = os.stat(os.path.join(folder, name))
            rel = os.path.relpath(os.path.join(folder, name), root)
            found[rel] = (st.st_size, st.st_mtime_ns, st.st_ino)
    return found


def recorder_json(store: Path, exp_id: str, rec_id: str) -> dict[str, Any]:
    meta: dict[str, Any] = json.loads(
        (store / exp_id / rec_id / "recorder.json").read_text(encoding="utf-8")
    )
    return meta


def history(store: Path, exp_id: str, rec_id: str) -> pd.DataFrame:
    return pd.read_parquet(store / exp_id / rec_id / "metrics")


def metric_file(run_dir: Path, key: str) -> list[tuple[int, float, int]]:
    lines = (run_dir / "metrics" / key).read_text().splitlines()
    return [(int(t), float(v), int(s)) for t, v, s in (line.split() for line in lines)]


# ---------------------------------------------------------------------------- the fixture


@pytest.fixture
def imported(tmp_path: Path) -> tuple[Path, ImportReport]:
    dst = tmp_path / "store"
    return dst, import_mlflow(FIXTURE, dst)


@needs_fixture
def test_fixture_experiments_and_runs(imported: tuple[Path, ImportReport]) -> None:
    dst, report = imported
    assert report.ok, str(report)
    assert (report.runs_created, report.runs_updated, report.runs_unchanged) == (6, 0, 0)
    store = Store(dst)
    exps = {m["id"]: m for m in store.iter_experiments(include_deleted=True)}
    # Ids kept; Default (no runs) and the trashed "scratch" are not imported.
    assert {i: m["name"] for i, m in exps.items()} == {
        WORKFLOW: "workflow",
        ROLLING: "实验 rolling 2024",
    }
    assert exps[WORKFLOW]["imported_from"]["experiment_id"] == WORKFLOW
    assert exps[WORKFLOW]["created"] == ms_to_iso(1795848266167)
    assert set(store.recorder_ids(WORKFLOW)) == {LGB, CRASHED, TO_DELETE, SLASH}
    assert set(store.recorder_ids(ROLLING)) == ROLLING_RUNS
    names = {m["id"]: m["name"] for m in store.iter_recorders(ROLLING)}
    assert list(names.values()) == ["rolling_model", "rolling_model"]  # same name, both kept


@needs_fixture
def test_fixture_run_metadata(imported: tuple[Path, ImportReport]) -> None:
    dst, _ = imported
    lgb = recorder_json(dst, WORKFLOW, LGB)
    assert lgb["name"] == "lgb_train"
    assert lgb["status"] == "FINISHED"
    assert lgb["lifecycle"] == "active"
    assert lgb["start_time"] == ms_to_iso(1795848266272)
    assert lgb["end_time"] == ms_to_iso(1795848266344)
    assert lgb["params"]["model.class"] == "LGBModel"
    assert lgb["params"]["model.kwargs.learning_rate"] == "0.05"
    assert lgb["params"]["dataset.segments"] == "[1, 2]"
    assert lgb["tags"]["online_status"] == "online"
    assert lgb["tags"]["mlflow.runName"] == "lgb_train"
    source = FIXTURE / WORKFLOW / LGB
    assert lgb["imported_from"]["path"] == str(source)
    assert len(lgb["imported_from"]["fingerprint"]) == 32
    assert recorder_json(dst, WORKFLOW, CRASHED)["status"] == "FAILED"
    slash = recorder_json(dst, WORKFLOW, SLASH)
    assert slash["status"] == "KILLED"
    assert slash["params"] == {"optim/lr": "0.001"}
    deleted = recorder_json(dst, WORKFLOW, TO_DELETE)
    assert deleted["lifecycle"] == "deleted"
    assert deleted["deleted_time"] == ms_to_iso(1795848266504)


@needs_fixture
def test_fixture_metric_histories(imported: tuple[Path, ImportReport]) -> None:
    dst, _ = imported
    source = FIXTURE / WORKFLOW / LGB
    assert len(segments.segment_names(dst / WORKFLOW / LGB / "metrics")) == 1  # one segment
    frame = history(dst, WORKFLOW, LGB)
    assert set(frame["key"]) == {"train_loss", "valid_loss", "IC", "ICIR"}
    for key in ("train_loss", "valid_loss", "IC"):
        got = frame[frame["key"] == key]
        want = metric_file(source, key)
        assert list(got["step"]) == [s for _, _, s in want]
        assert list(got["value"]) == [v for _, v, _ in want]
        stamps = got["timestamp"].dt.as_unit("ms").astype("int64")
        assert list(stamps) == [t for t, _, _ in want]
    assert len(frame[frame["key"] == "train_loss"]) == 20
    summary = recorder_json(dst, WORKFLOW, LGB)["metrics"]
    last = metric_file(source, "train_loss")[-1]
    assert summary["train_loss"] == {"value": last[1], "step": last[2], "timestamp": last[0]}
    slash = history(dst, WORKFLOW, SLASH)
    assert list(slash["key"]) == ["train/loss"] * 3
    assert list(slash["value"]) == [1.0, 0.9, 0.8]
    rolling = recorder_json(dst, ROLLING, "7a264b3ffc904476a186b0f4c1489b57")["metrics"]
    assert set(rolling) == {"Rank IC", "1day.excess_return_with_cost.annualized_return"}


@needs_fixture
def test_fixture_artifacts(imported: tuple[Path, ImportReport]) -> None:
    dst, report = imported
    artifacts = dst / WORKFLOW / LGB / "artifacts"
    source = FIXTURE / WORKFLOW / LGB / "artifacts"
    for rel in ("pred.pkl", "params.pkl", "extra/sub/notes.txt"):
        assert (artifacts / rel).read_bytes() == (source / rel).read_bytes()
        assert os.stat(artifacts / rel).st_ino != os.stat(source / rel).st_ino  # a copy
    assert (artifacts / "extra/sub/notes.txt").read_text() == "plain text artifact\n"
    assert report.artifacts_copied == 3 and report.artifacts_linked == 0
    assert not (dst / WORKFLOW / CRASHED / "artifacts").exists()


@needs_fixture
def test_fixture_readable_with_tracklite_r(
    global_R: QlibRecorder,
    store_uri: str,
) -> None:
    report = import_mlflow(FIXTURE, store_uri)
    assert report.ok
    R = global_R
    assert {"workflow", "实验 rolling 2024"} <= set(R.list_experiments())
    recorders = R.list_recorders(experiment_name="workflow")
    assert set(recorders) == {LGB, CRASHED, SLASH}  # the soft-deleted run is not listed
    assert recorders[SLASH].status == "KILLED"
    assert recorders[SLASH].info["status"] == "KILLED"
    rec = R.get_recorder(recorder_id=LGB, experiment_name="workflow")
    assert rec.name == "lgb_train" and rec.status == "FINISHED"
    # pred.pkl is a DataFrame pickled by pandas 3.1 (tests/fixtures/README.md); pandas before
    # 3.0 cannot unpickle its string columns, so the frame is checked only where it can be read.
    if int(pd.__version__.split(".")[0]) >= 3:
        pred = rec.load_object("pred.pkl")
        assert isinstance(pred, pd.DataFrame)
        assert list(pred.index.names) == ["datetime", "instrument"]
        assert len(pred) == 15
    assert rec.load_object("params.pkl") == {"num_leaves": 210, "lr": 0.05}
    assert rec.list_metrics()["IC"] == pytest.approx(0.041)
    assert rec.list_metrics()["train_loss"] == pytest.approx(0.05)
    assert rec.list_params()["model.class"] == "LGBModel"
    assert rec.list_tags()["hostname"] == "node-17"
    curve = rec.get_metric_history("train_loss")
    assert list(curve["step"]) == list(range(20))
    assert sorted(rec.list_artifacts()) == ["extra", "params.pkl", "pred.pkl"]
    exp = R.get_exp(experiment_name="workflow", create=False)
    killed = exp.list_recorders(rtype="list", status="KILLED")
    assert isinstance(killed, list) and [r.id for r in killed] == [SLASH]
    frame = R.search_records([WORKFLOW], filter_string="status = 'KILLED'")
    assert list(frame["run_id"]) == [SLASH]
    assert "metrics.train/loss" in frame.columns
    slash = R.get_recorder(recorder_id=SLASH, experiment_name="workflow")
    assert list(slash.get_metric_history("train/loss")["value"]) == [1.0, 0.9, 0.8]
    rolling = R.list_recorders(experiment_name="实验 rolling 2024")
    assert {r.name for r in rolling.values()} == {"rolling_model"}
    assert tracklite.check(store_uri).clean


@needs_fixture
def test_fixture_readable_with_pandas_alone(imported: tuple[Path, ImportReport]) -> None:
    dst, _ = imported
    # Everything a colleague needs without tracklite: JSON metadata and Parquet segments.
    frames = []
    for rec_json in dst.glob("*/*/recorder.json"):
        meta = json.loads(rec_json.read_text(encoding="utf-8"))
        seg = pd.read_parquet(rec_json.parent / "metrics")
        frames.append(seg.assign(run=meta["name"]))
    points = pd.concat(frames)
    assert len(points[points["run"] == "lgb_train"]) == 20 + 20 + 1 + 1
    assert str(points["timestamp"].dtype).startswith("datetime64[ms, UTC]")
    assert set(points["key"]) >= {"train/loss", "Rank IC"}


@needs_fixture
def test_fixture_is_never_written(tmp_path: Path) -> None:
    before = tree(FIXTURE)
    import_mlflow(FIXTURE, tmp_path / "a", include_deleted=True)
    import_mlflow(FIXTURE, tmp_path / "a", include_deleted=True, link=True)
    import_mlflow(FIXTURE, tmp_path / "b", include_deleted=True, link=True)
    assert tree(FIXTURE) == before


@needs_fixture
def test_fixture_deleted_experiment_only_when_asked(tmp_path: Path) -> None:
    dst = tmp_path / "store"
    import_mlflow(FIXTURE, dst)
    assert not (dst / SCRATCH).exists()
    report = import_mlflow(FIXTURE, dst, include_deleted=True)
    assert (report.runs_created, report.runs_unchanged) == (1, 6)
    store = Store(dst)
    scratch = store.read_experiment(SCRATCH)
    assert scratch is not None
    assert scratch["name"] == "scratch" and scratch["lifecycle"] == "deleted"
    assert scratch["deleted_time"] == ms_to_iso(1795848266557)
    assert "scratch" not in {m["name"] for m in store.iter_experiments()}
    (rec_id,) = store.recorder_ids(SCRATCH)
    assert recorder_json(dst, SCRATCH, rec_id)["metrics"]["x"]["value"] == 2.0


@needs_fixture
def test_fixture_reimport_is_idempotent(tmp_path: Path) -> None:
    dst = tmp_path / "store"
    first = import_mlflow(FIXTURE, dst, include_deleted=True)
    files = tree(dst)
    second = import_mlflow(FIXTURE, dst, include_deleted=True)
    assert second.ok
    assert (second.runs_created, second.runs_updated, second.runs_unchanged) == (0, 0, 7)
    assert second.experiments_created == [] and len(second.experiments_reused) == 3
    assert first.runs_created == 7
    assert tree(dst) == files  # not a byte, not an mtime changed


# ---------------------------------------------------------------------------- generated folders


def test_update_on_change_at_the_source(tmp_path: Path) -> None:
    src = Mlruns(tmp_path / "mlruns")
    src.experiment("1", "exp")
    run = src.run(
        "1",
        name="r",
        status=1,
        end=None,
        tags={"stage": "train"},
        metrics={"loss": [(1700000001000 + i, 1.0 / (i + 1), i) for i in range(5)]},
        artifacts={"a.txt": b"one"},
    )
    dst = tmp_path / "store"
    import_mlflow(src.root, dst)
    rid = run.name
    before = recorder_json(dst, "1", rid)
    assert before["status"] == "RUNNING" and before["end_time"] is None
    # A tag set on the tracklite side is kept by updates (nothing there is deleted).
    Store(dst).update_recorder("1", rid, lambda m: m["tags"].update(local="kept"))

    with open(run / "metrics" / "loss", "a") as f:
        f.write("1700000009000 0.01 5\n")
    (run / "tags" / "stage").write_text("done")
    (run / "artifacts" / "a.txt").write_bytes(b"two!")
    meta = (run / "meta.yaml").read_text()
    (run / "meta.yaml").write_text(
        meta.replace("status: 1", "status: 3").replace("end_time: null", "end_time: 1700000009500")
    )
    report = import_mlflow(src.root, dst)
    assert (report.runs_created, report.runs_updated, report.runs_unchanged) == (0, 1, 0)
    after = recorder_json(dst, "1", rid)
    assert after["status"] == "FINISHED"
    assert after["end_time"] == ms_to_iso(1700000009500)
    assert after["tags"]["stage"] == "done"
    assert after["tags"]["local"] == "kept"
    assert after["metrics"]["loss"] == {"value": 0.01, "step": 5, "timestamp": 1700000009000}
    assert after["imported_from"]["fingerprint"] != before["imported_from"]["fingerprint"]
    names = segments.segment_names(dst / "1" / rid / "metrics")
    assert len(names) == 1 and after["imported_from"]["segment"] == names[0]
    points = history(dst, "1", rid)
    assert list(points["step"]) == [0, 1, 2, 3, 4, 5]  # replaced, not appended twice
    assert (dst / "1" / rid / "artifacts" / "a.txt").read_bytes() == b"two!"
    assert Store(dst).recorder_ids("1") == [rid]
    assert tracklite.check(dst).clean
    # and now it is stable again
    assert import_mlflow(src.root, dst).runs_unchanged == 1


def test_update_keeps_points_logged_in_tracklite(tmp_path: Path) -> None:
    src = Mlruns(tmp_path / "mlruns")
    src.experiment("1", "exp")
    run = src.run("1", metrics={"loss": [(1700000001000, 0.5, 0)]})
    dst = tmp_path / "store"
    import_mlflow(src.root, dst)
    R = QlibRecorder(tracklite.ExpManager(uri=str(dst)))
    rec = R.get_recorder(recorder_id=run.name, experiment_id="1")
    rec.log_metrics(step=9, extra=3.0, loss=0.1)
    rec.flush()
    with open(run / "metrics" / "loss", "a") as f:
        f.write("1700000002000 0.25 1\n")
    assert import_mlflow(src.root, dst).runs_updated == 1
    points = history(dst, "1", run.name)
    # the imported points still read before the ones logged here afterwards
    assert list(points.loc[points["key"] == "loss", "step"]) == [0, 1, 9]
    assert list(points.loc[points["key"] == "extra", "step"]) == [9]
    summary = recorder_json(dst, "1", run.name)["metrics"]
    assert set(summary) == {"extra", "loss"} and summary["loss"]["value"] == 0.1
    assert len(segments.segment_names(dst / "1" / run.name / "metrics")) == 2
    assert tracklite.check(dst).clean


def test_update_after_a_crashed_update_does_not_duplicate_points(tmp_path: Path) -> None:
    src = Mlruns(tmp_path / "mlruns")
    src.experiment("1", "exp")
    run = src.run("1", metrics={"loss": [(1700000001000, 0.5, 0)]})
    dst = tmp_path / "store"
    import_mlflow(src.root, dst)
    metrics = dst / "1" / run.name / "metrics"
    (old,) = segments.segment_names(metrics)
    # What an update killed between publishing its segment and rewriting recorder.json
    # leaves: a new imported segment, the recorded one gone.
    os.rename(metrics / old, metrics / f"{'f' * 32}-mlflow.parquet")
    with open(run / "metrics" / "loss", "a") as f:
        f.write("1700000002000 0.25 1\n")
    assert import_mlflow(src.root, dst).runs_updated == 1
    assert list(history(dst, "1", run.name)["step"]) == [0, 1]
    assert len(segments.segment_names(metrics)) == 1


def test_update_after_compaction(tmp_path: Path) -> None:
    src = Mlruns(tmp_path / "mlruns")
    src.experiment("1", "exp")
    run = src.run("1", metrics={"loss": [(1700000001000, 0.5, 0)]})
    dst = tmp_path / "store"
    import_mlflow(src.root, dst)
    R = QlibRecorder(tracklite.ExpManager(uri=str(dst)))
    rec = R.get_recorder(recorder_id=run.name, experiment_id="1")
    rec.log_metrics(step=3, extra=1.0)
    rec.flush()
    assert tracklite.compact(dst).compacted == 1  # imported and logged points now in one file
    with open(run / "metrics" / "loss", "a") as f:
        f.write("1700000002000 0.25 1\n")
    assert import_mlflow(src.root, dst).runs_updated == 1
    points = history(dst, "1", run.name)
    # The compacted file held imported points, so it was replaced: the source's points are
    # all there exactly once (points logged here and compacted with them are the price).
    assert list(points.loc[points["key"] == "loss", "step"]) == [0, 1]
    assert tracklite.check(dst).clean


def test_malformed_runs_are_reported_and_skipped(tmp_path: Path) -> None:
    src = Mlruns(tmp_path / "mlruns")
    src.experiment("1", "exp")
    good = src.run("1", name="good", metrics={"m": [(1, 1.0, 0)]})
    no_status = src.run("1", name="no_status")
    meta = (no_status / "meta.yaml").read_text()
    (no_status / "meta.yaml").write_text(meta.replace("status: 3\n", ""))
    bad_metric = src.run("1", name="bad_metric", metrics={"m": [(1, 1.0, 0), (2, 2.0, 1)]})
    (bad_metric / "metrics" / "m").write_text("1 1.0 0\nnot a number\n2 2.0 1\n")
    empty_meta = src.run("1", name="empty_meta")
    (empty_meta / "meta.yaml").write_text("")
    dst = tmp_path / "store"
    report = import_mlflow(src.root, dst)
    assert not report.ok
    assert report.runs_created == 1
    reasons = {Path(item.path).name: item.reason for item in report.skipped}
    assert set(reasons) == {no_status.name, bad_metric.name, empty_meta.name}
    assert "status" in reasons[no_status.name]
    assert "line 2" in reasons[bad_metric.name]
    assert "empty" in reasons[empty_meta.name]
    assert Store(dst).recorder_ids("1") == [good.name]
    assert f"skipped: {bad_metric}" in str(report)
    # nothing half-made is left in the experiment folder
    assert sorted(os.listdir(dst / "1")) == sorted([good.name, "experiment.json"])


def test_failed_run_leaves_no_half_recorder(tmp_path: Path) -> None:
    src = Mlruns(tmp_path / "mlruns")
    src.experiment("1", "exp")
    ok = src.run("1", name="ok", artifacts={"x.bin": b"x"})
    broken = src.run("1", name="broken", metrics={"m": [(1, 1.0, 0)]}, artifacts={"a": b"a"})
    os.mkfifo(broken / "artifacts" / "pipe")  # copying a FIFO fails mid-recorder
    dst = tmp_path / "store"
    report = import_mlflow(src.root, dst)
    assert [Path(i.path).name for i in report.skipped] == [broken.name]
    assert sorted(os.listdir(dst / "1")) == sorted([ok.name, "experiment.json"])
    assert Store(dst).read_recorder("1", broken.name) is None


def test_torn_last_metric_line_is_skipped_with_a_note(tmp_path: Path) -> None:
    src = Mlruns(tmp_path / "mlruns")
    src.experiment("1", "exp")
    run = src.run("1")
    (run / "metrics" / "m").write_text("1 1.0 0\n2 2.0 1\n3 3.")
    report = import_mlflow(src.root, tmp_path / "store")
    assert report.ok and any("unreadable end of metric 'm'" in n for n in report.notes)
    assert list(history(tmp_path / "store", "1", run.name)["value"]) == [1.0, 2.0]


def test_link_mode_hard_links_artifacts(tmp_path: Path) -> None:
    src = Mlruns(tmp_path / "mlruns")
    src.experiment("1", "exp")
    run = src.run("1", artifacts={"pred.pkl": pickle.dumps([1, 2]), "d/e.txt": b"e"})
    before = tree(src.root)
    dst = tmp_path / "store"
    report = import_mlflow(src.root, dst, link=True)
    assert report.artifacts_linked == 2 and report.artifacts_copied == 0
    for rel in ("pred.pkl", "d/e.txt"):
        assert (
            os.stat(dst / "1" / run.name / "artifacts" / rel).st_ino
            == os.stat(run / "artifacts" / rel).st_ino
        )
    # The source gained a link count, nothing else: same bytes, same mtimes.
    assert {k: v[:2] for k, v in tree(src.root).items()} == {k: v[:2] for k, v in before.items()}
    copied = import_mlflow(src.root, tmp_path / "copy")
    assert copied.artifacts_copied == 2
    assert os.stat(tmp_path / "copy" / "1" / run.name / "artifacts" / "pred.pkl").st_ino != (
        os.stat(run / "artifacts" / "pred.pkl").st_ino
    )


def test_link_mode_falls_back_to_copy_across_filesystems(tmp_path: Path) -> None:
    other = Path("/dev/shm")
    if not other.is_dir() or os.stat(other).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second filesystem to import across")
    src_root = other / f"tracklite-test-{uuid.uuid4().hex}"
    try:
        src = Mlruns(src_root)
        src.experiment("1", "exp")
        run = src.run("1", artifacts={"a.txt": b"a", "b.txt": b"b"})
        report = import_mlflow(src.root, tmp_path / "store", link=True)
        assert report.ok and report.artifacts_copied == 2 and report.artifacts_linked == 0
        assert any("copied instead of hard-linked" in note for note in report.notes)
        assert (tmp_path / "store" / "1" / run.name / "artifacts" / "b.txt").read_bytes() == b"b"
    finally:
        shutil.rmtree(src_root, ignore_errors=True)


def test_killed_and_other_statuses(tmp_path: Path) -> None:
    src = Mlruns(tmp_path / "mlruns")
    src.experiment("1", "exp")
    runs = {status: src.run("1", name=f"s{status}", status=status) for status in range(1, 6)}
    dst = tmp_path / "store"
    import_mlflow(src.root, dst)
    stored = {s: recorder_json(dst, "1", r.name)["status"] for s, r in runs.items()}
    assert stored == {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
    R = QlibRecorder(tracklite.ExpManager(uri=str(dst)))
    listed = R.list_recorders(experiment_id="1")
    assert listed[runs[5].name].status == "KILLED"
    assert str(listed[runs[5].name])  # info renders
    assert tracklite.check(dst).clean


def test_deleted_experiments_and_runs(tmp_path: Path) -> None:
    src = Mlruns(tmp_path / "mlruns")
    src.experiment("1", "live")
    gone = src.run("1", name="gone", deleted=True)
    src.experiment("2", "trashed", deleted=True)
    src.run("2", name="in_trash", in_trash=True)
    dst = tmp_path / "store"
    report = import_mlflow(src.root, dst)
    store = Store(dst)
    assert store.read_experiment("2") is None
    assert report.runs_created == 1
    rec = recorder_json(dst, "1", gone.name)
    assert rec["lifecycle"] == "deleted" and rec["deleted_time"] == ms_to_iso(1700000003000)
    import_mlflow(src.root, dst, include_deleted=True)
    trashed = store.read_experiment("2")
    assert trashed is not None and trashed["lifecycle"] == "deleted"
    assert [m["name"] for m in store.iter_recorders("2")] == ["in_trash"]


def test_lifecycle_changes_at_the_source_follow(tmp_path: Path) -> None:
    src = Mlruns(tmp_path / "mlruns")
    src.experiment("1", "exp")
    run = src.run("1", name="r")
    dst = tmp_path / "store"
    import_mlflow(src.root, dst, include_deleted=True)
    # MLflow deletes an experiment by moving it to .trash and marking it deleted.
    shutil.move(str(src.root / "1"), str(src.root / ".trash" / "1"))
    meta = src.root / ".trash" / "1" / "meta.yaml"
    meta.write_text(meta.read_text().replace("lifecycle_stage: active", "lifecycle_stage: deleted"))
    run_meta = src.root / ".trash" / "1" / run.name / "meta.yaml"
    run_meta.write_text(
        run_meta.read_text().replace("lifecycle_stage: active", "lifecycle_stage: deleted")
    )
    report = import_mlflow(src.root, dst, include_deleted=True)
    assert report.runs_updated == 1 and report.experiments_created == []
    exp = Store(dst).read_experiment("1")
    assert exp is not None and exp["lifecycle"] == "deleted"
    assert recorder_json(dst, "1", run.name)["lifecycle"] == "deleted"


def test_unicode_names_and_keys_with_spaces_dots_slashes(tmp_path: Path) -> None:
    src = Mlruns(tmp_path / "mlruns")
    src.experiment("7", "研究 α/β: 'quoted'")
    run = src.run(
        "7",
        name="模型 №1 🚀",
        params={"optim/lr": "0.001", "model.kwargs.depth": "8", "with space": "yes"},
        tags={"team/owner": "量化", "note": "multi\nline"},
        metrics={
            "Rank IC": [(1, 0.1, 0)],
            "1day.excess_return_with_cost.annualized_return": [(1, 0.2, 0)],
            "train/loss/epoch": [(1, 0.9, 0), (2, 0.8, 1)],
        },
        artifacts={"子目录/结果 1.txt": "内容".encode()},
    )
    dst = tmp_path / "store"
    assert import_mlflow(src.root, dst).ok
    exp = Store(dst).read_experiment("7")
    assert exp is not None and exp["name"] == "研究 α/β: 'quoted'"
    rec = recorder_json(dst, "7", run.name)
    assert rec["name"] == "模型 №1 🚀"
    assert rec["params"] == {"optim/lr": "0.001", "model.kwargs.depth": "8", "with space": "yes"}
    assert rec["tags"]["team/owner"] == "量化" and rec["tags"]["note"] == "multi\nline"
    assert set(rec["metrics"]) == {
        "Rank IC",
        "1day.excess_return_with_cost.annualized_return",
        "train/loss/epoch",
    }
    R = QlibRecorder(tracklite.ExpManager(uri=str(dst)))
    got = R.get_recorder(recorder_name="模型 №1 🚀", experiment_name="研究 α/β: 'quoted'")
    assert list(got.get_metric_history("train/loss/epoch")["value"]) == [0.9, 0.8]
    assert (dst / "7" / run.name / "artifacts" / "子目录" / "结果 1.txt").read_bytes() == (
        "内容".encode()
    )


def test_default_experiment_only_with_runs(tmp_path: Path) -> None:
    src = Mlruns(tmp_path / "mlruns")
    src.experiment("1", "exp")
    dst = tmp_path / "store"
    import_mlflow(src.root, dst)
    store = Store(dst)
    assert store.read_experiment("0") is None
    assert store.read_experiment("1") is not None  # an empty non-default one is imported
    src.run("0", name="in_default")
    report = import_mlflow(src.root, dst)
    default = store.read_experiment("0")
    assert default is not None and default["name"] == "Default"
    assert report.experiments_created == ["0"] and report.runs_created == 1


def test_existing_experiment_with_that_name_receives_the_runs(tmp_path: Path) -> None:
    dst = tmp_path / "store"
    store = Store(dst)
    mine = store.create_experiment("workflow")
    src = Mlruns(tmp_path / "mlruns")
    src.experiment("5", "workflow")
    run = src.run("5", name="r")
    report = import_mlflow(src.root, dst)
    assert report.experiments_created == [] and report.experiments_reused == [mine["id"]]
    assert any("existing experiment" in note for note in report.notes)
    assert store.recorder_ids(mine["id"]) == [run.name]
    assert store.read_experiment("5") is None
    again = import_mlflow(src.root, dst)
    assert again.runs_unchanged == 1 and again.experiments_created == []
    assert [m["name"] for m in store.iter_experiments()] == ["workflow"]
    assert tracklite.check(dst).clean


def test_experiment_id_taken_by_another_experiment(tmp_path: Path) -> None:
    # Two mlruns folders numbered from 1 (old MLflow): the second "1" is another experiment.
    first = Mlruns(tmp_path / "a")
    first.experiment("1", "alpha")
    first.run("1", name="ra")
    second = Mlruns(tmp_path / "b")
    second.experiment("1", "beta")
    rb = second.run("1", name="rb")
    dst = tmp_path / "store"
    import_mlflow(first.root, dst)
    report = import_mlflow(second.root, dst)
    assert len(report.experiments_created) == 1
    new_id = report.experiments_created[0]
    assert new_id != "1" and any("used by another experiment" in n for n in report.notes)
    store = Store(dst)
    assert store.recorder_ids(new_id) == [rb.name]
    again = import_mlflow(second.root, dst)
    assert again.experiments_created == [] and again.runs_unchanged == 1
    assert sorted(m["name"] for m in store.iter_experiments()) == ["alpha", "beta"]


def test_progress_and_default_destination(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = Mlruns(tmp_path / "mlruns")
    src.experiment("1", "exp")
    for i in range(3):
        src.run("1", name=f"r{i}")
    dst = tmp_path / "from-env"
    monkeypatch.setenv("TRACKLITE_URI", str(dst))
    calls: list[tuple[int, int]] = []
    report = import_mlflow(f"file:{src.root}", progress=lambda d, t: calls.append((d, t)))
    assert report.destination == dst and len(Store(dst).recorder_ids("1")) == 3
    assert calls[0] == (0, 3) and calls[-1] == (3, 3)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_refuses_to_write_into_the_mlruns_folder(tmp_path: Path) -> None:
    src = Mlruns(tmp_path / "mlruns")
    src.experiment("1", "exp")
    src.run("1")
    before = tree(src.root)
    with pytest.raises(StoreError, match="MLflow"):
        import_mlflow(src.root, src.root)
    assert tree(src.root) == before


def test_nameless_run_and_duplicate_ids(tmp_path: Path) -> None:
    src = Mlruns(tmp_path / "mlruns")
    src.experiment("1", "one")
    src.experiment("2", "two")
    nameless = src.run("1", name=None)
    rid = uuid.uuid4().hex
    src.run("1", run_id=rid, name="first")
    # the same run folder copied into another experiment with its meta edited
    copy = src.root / "2" / rid
    shutil.copytree(src.root / "1" / rid, copy)
    (copy / "meta.yaml").write_text(
        (copy / "meta.yaml").read_text().replace("experiment_id: '1'", "experiment_id: '2'")
    )
    dst = tmp_path / "store"
    report = import_mlflow(src.root, dst)
    assert recorder_json(dst, "1", nameless.name)["name"] == "mlflow_recorder"
    assert [Path(i.path) for i in report.skipped] == [copy]
    assert "another run with this id" in report.skipped[0].reason
