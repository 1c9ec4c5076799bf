"""tracklite.check on stores corrupted on purpose, in both modes (report only, and fix)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _reliability import child_env, kill9, read_line, read_terminal, spawn

import tracklite
from tracklite import ExpManager, QlibRecorder, StoreError
from tracklite.maintenance import check as chk
from tracklite.store import layout

OLD = time.time() - chk.TEMP_STALE_AFTER - 60


def make_store(root: Path) -> tuple[str, str, str]:
    """A store with two finished runs (metrics in several segments, params, tags, objects),
    a deleted recorder and a deleted experiment. Returns (experiment id, recorder id, other id)."""
    r = QlibRecorder(ExpManager(uri=str(root)))
    with r.start(experiment_name="exp"):
        r.log_params(lr=0.1, layers=3)
        r.set_tags(kind="test")
        for step in range(5):
            r.log_metrics(step=step, loss=1.0 / (step + 1), acc=step / 10)
            r.flush()  # one segment per flush: several segments
        r.log_metrics(step=5, nan=float("nan"))
        r.save_objects(**{"pred.pkl": [1, 2, 3]}, artifact_path="sig")
        rec = r.get_recorder()
    with r.start(experiment_name="exp"):
        r.log_metrics(step=0, loss=2.0)
        other = r.get_recorder()
    with r.start(experiment_name="exp", recorder_name="to-delete"):
        r.log_metrics(step=0, x=1.0)
        doomed = r.get_recorder()
    r.get_exp(experiment_name="exp").delete_recorder(recorder_id=doomed.id)
    with r.start(experiment_name="gone"):
        r.log_metrics(step=0, y=1.0)
    r.delete_exp(experiment_name="gone")
    assert rec.id is not None and other.id is not None
    return rec.experiment_id, rec.id, other.id


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, str, str, str]:
    root = tmp_path / "store"
    return (root, *make_store(root))


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file's bytes (quarantine excluded), to prove a check changed nothing."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and layout.QUARANTINE_DIR not in path.parts:
            out[str(path.relative_to(root))] = path.read_bytes()
    return out


def test_clean_store_is_clean_in_both_modes(store: tuple[Path, str, str, str]) -> None:
    root = store[0]
    ExpManager(uri=str(root)).search_records()  # may leave the search cache: a known file
    before = snapshot(root)
    report = tracklite.check(root)
    assert report.clean and report.ok, str(report)
    assert str(report).endswith("clean")
    assert tracklite.check(root, fix=True).clean
    assert snapshot(root) == before
    assert not (root / layout.QUARANTINE_DIR).exists()


def test_check_knows_the_search_files_from_the_layout(store: tuple[Path, str, str, str]) -> None:
    root = store[0]
    tracklite.search_records(str(root))  # writes the search summary and its journals
    script = (
        "import sys, tracklite\n"
        f"report = tracklite.check({str(root)!r})\n"
        "print(report.clean, any(m.startswith('tracklite.search') for m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=child_env(root), capture_output=True, text=True
    )
    assert done.stdout.split() == ["True", "False"], done.stderr


def test_truncated_recorder_json(store: tuple[Path, str, str, str]) -> None:
    root, exp_id, rec_id, _ = store
    meta_path = root / exp_id / rec_id / layout.RECORDER_FILE
    original = meta_path.read_bytes()
    meta_path.write_bytes(original[: len(original) // 2])
    before = snapshot(root)

    report = tracklite.check(root)
    assert [(f.kind, f.path, f.fixed) for f in report] == [(chk.CORRUPT_METADATA, meta_path, False)]
    assert snapshot(root) == before  # report mode writes nothing

    report = tracklite.check(root, fix=True)
    assert report.kinds() == {chk.CORRUPT_METADATA: 1} and report.ok
    assert report.quarantine is not None
    kept = report.quarantine / exp_id / rec_id / layout.RECORDER_FILE
    assert kept.read_bytes() == original[: len(original) // 2]  # moved, never deleted
    meta = json.loads(meta_path.read_text())
    assert meta["status"] == "FAILED" and "tracklite.repair" in meta["tags"]
    # The summary is rebuilt from the segments, so nothing logged is lost.
    assert meta["metrics"]["loss"]["value"] == pytest.approx(0.2)
    assert meta["metrics"]["loss"]["step"] == 4
    recorder = (
        ExpManager(uri=str(root))
        .get_exp(experiment_id=exp_id, create=False)
        .get_recorder(recorder_id=rec_id, create=False)
    )
    assert recorder.list_metrics()["acc"] == pytest.approx(0.4)
    assert len(recorder.get_metric_history()) == 11
    assert recorder.load_object("sig/pred.pkl") == [1, 2, 3]
    assert tracklite.check(root).clean


def test_recorder_json_with_wrong_fields(store: tuple[Path, str, str, str]) -> None:
    root, exp_id, rec_id, _ = store
    meta_path = root / exp_id / rec_id / layout.RECORDER_FILE
    meta = json.loads(meta_path.read_text())
    meta["status"] = "EXPLODED"
    meta_path.write_text(json.dumps(meta))
    assert tracklite.check(root).kinds() == {chk.CORRUPT_METADATA: 1}
    assert tracklite.check(root, fix=True).ok
    fixed = json.loads(meta_path.read_text())
    # Salvaged: params and tags survive a malformed file; the status cannot be trusted.
    assert fixed["params"]["lr"] == "0.1" and fixed["tags"]["kind"] == "test"
    assert fixed["status"] == "FAILED"
    assert tracklite.check(root).clean


def test_truncated_experiment_json(store: tuple[Path, str, str, str]) -> None:
    root, exp_id, rec_id, _ = store
    path = root / exp_id / layout.EXPERIMENT_FILE
    path.write_bytes(b'{"format_version": 1, "id": "')
    assert tracklite.check(root).kinds() == {chk.CORRUPT_METADATA: 1}
    report = tracklite.check(root, fix=True)
    assert report.ok
    meta = json.loads(path.read_text())
    assert meta["id"] == exp_id and meta["lifecycle"] == "active"
    manager = ExpManager(uri=str(root))
    experiment = manager.get_exp(experiment_name=meta["name"], create=False)
    assert rec_id in experiment.list_recorders()
    assert tracklite.check(root).clean


def test_truncated_parquet_segment(store: tuple[Path, str, str, str]) -> None:
    root, exp_id, rec_id, _ = store
    metrics = root / exp_id / rec_id / layout.METRICS_DIR
    recorder = (
        ExpManager(uri=str(root))
        .get_exp(experiment_id=exp_id, create=False)
        .get_recorder(recorder_id=rec_id, create=False)
    )
    before = set(os.listdir(metrics))
    recorder.log_metrics(step=10, loss=0.01)  # a finished recorder: written at once
    recorder.flush()
    (victim,) = (metrics / n for n in set(os.listdir(metrics)) - before)
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) - 20])
    with pytest.raises(Exception):  # noqa: B017 - pyarrow's error class varies by version
        pd.read_parquet(metrics)

    report = tracklite.check(root)
    assert report.kinds() == {chk.CORRUPT_SEGMENT: 1, chk.SUMMARY_MISMATCH: 1}, str(report)
    assert victim.exists()

    report = tracklite.check(root, fix=True)
    assert report.ok, str(report)
    assert not victim.exists()
    assert report.quarantine is not None
    assert (report.quarantine / victim.relative_to(root)).read_bytes() == data[: len(data) - 20]
    frame = pd.read_parquet(metrics)  # readable again by plain pandas
    assert len(frame) == 11 and 10 not in set(frame["step"])
    meta = json.loads((root / exp_id / rec_id / layout.RECORDER_FILE).read_text())
    # The rebuilt summary agrees with what is left.
    assert meta["metrics"]["loss"]["step"] == 4
    assert tracklite.check(root).clean


def test_segment_with_foreign_schema(store: tuple[Path, str, str, str]) -> None:
    root, exp_id, rec_id, _ = store
    metrics = root / exp_id / rec_id / layout.METRICS_DIR
    pq.write_table(pa.table({"a": [1, 2]}), metrics / "zzzz.parquet")
    report = tracklite.check(root)
    assert [f.kind for f in report] == [chk.CORRUPT_SEGMENT]
    assert "no column" in report.findings[0].message


def test_stray_files_are_reported_and_left(store: tuple[Path, str, str, str]) -> None:
    root, exp_id, rec_id, _ = store
    strays = [
        root / "notes.txt",
        root / exp_id / "stray.csv",
        root / exp_id / rec_id / "extra.bin",
        root / exp_id / rec_id / layout.METRICS_DIR / "readme.txt",
    ]
    for path in strays:
        path.write_text("x")
    (root / exp_id / "not-an-id.dir").mkdir()
    for mode in (False, True):
        report = tracklite.check(root, fix=mode)
        assert report.kinds() == {chk.UNKNOWN_FILE: 5}
        assert not report.ok
    for path in strays:
        assert path.read_text() == "x"  # never moved, never deleted


def test_stale_temporary_files(store: tuple[Path, str, str, str]) -> None:
    root, exp_id, rec_id, _ = store
    rec_dir = root / exp_id / rec_id
    stale = [
        root / ".tmp-tracklite.json.123.0badf00d",
        rec_dir / ".tmp-recorder.json.4242.deadbeef",
        rec_dir / layout.METRICS_DIR / ".tmp-0190abcd.parquet.77.cafebabe",
        rec_dir / layout.ARTIFACTS_DIR / "sig" / ".tmp-pred.pkl.99.01234567",
        rec_dir / ".nfs0000000001a2b3c400000001",  # left by an NFS client that crashed
    ]
    for path in stale:
        path.write_bytes(b"partial")
        os.utime(path, (OLD, OLD))
    staging = root / exp_id / f".{rec_id[:-1]}0.creating"
    staging.mkdir()
    (staging / layout.RECORDER_FILE).write_text("{}")
    os.utime(staging, (OLD, OLD))
    fresh = rec_dir / ".tmp-recorder.json.4243.feedface"
    fresh.write_bytes(b"being written right now")

    report = tracklite.check(root)
    assert report.kinds() == {chk.STALE_TEMP: 6}
    assert all(p.exists() for p in stale) and staging.exists()

    report = tracklite.check(root, fix=True)
    assert report.kinds() == {chk.STALE_TEMP: 6} and report.ok
    assert not any(p.exists() for p in stale) and not staging.exists()
    assert fresh.exists()  # younger than the bound: a live writer's file is never touched
    assert tracklite.check(root).clean
    # With a zero bound it is stale too.
    assert tracklite.check(root, temp_age=-1).kinds() == {chk.STALE_TEMP: 1}


def test_summary_lagging_segments(store: tuple[Path, str, str, str]) -> None:
    """A writer killed between publishing a segment and updating recorder.json."""
    root, exp_id, rec_id, _ = store
    meta_path = root / exp_id / rec_id / layout.RECORDER_FILE
    meta = json.loads(meta_path.read_text())
    expected = meta["metrics"]
    meta["metrics"] = {"loss": expected["loss"]}
    meta["metrics"]["loss"] = dict(expected["loss"], step=3)
    meta_path.write_text(json.dumps(meta))
    report = tracklite.check(root)
    assert [f.kind for f in report] == [chk.SUMMARY_MISMATCH]
    assert "'acc' missing" in report.findings[0].message
    assert tracklite.check(root, fix=True).ok
    rebuilt = json.loads(meta_path.read_text())["metrics"]
    assert set(rebuilt) == set(expected)
    for key, entry in expected.items():
        assert rebuilt[key]["step"] == entry["step"]
        assert rebuilt[key]["timestamp"] == entry["timestamp"]
    assert tracklite.check(root).clean


def test_point_logged_below_the_highest_step(store: tuple[Path, str, str, str]) -> None:
    """A point logged after a higher step of its key: the footers' newest timestamp is not in
    the summary, so the points are read and compared, and a wrong value is still found."""
    root, exp_id, rec_id, _ = store
    recorder = (
        ExpManager(uri=str(root))
        .get_exp(experiment_id=exp_id, create=False)
        .get_recorder(recorder_id=rec_id, create=False)
    )
    time.sleep(0.01)  # a newer timestamp than every point so far
    recorder.log_metrics(step=1, loss=9.0)
    recorder.flush()
    assert tracklite.check(root).clean  # the summary keeps step 4: nothing wrong
    meta_path = root / exp_id / rec_id / layout.RECORDER_FILE
    meta = json.loads(meta_path.read_text())
    assert meta["metrics"]["loss"]["step"] == 4
    meta["metrics"]["loss"]["value"] = 123.0
    meta_path.write_text(json.dumps(meta))
    report = tracklite.check(root)
    assert [f.kind for f in report] == [chk.SUMMARY_MISMATCH], str(report)
    assert "'loss' is" in report.findings[0].message


def test_killed_writer_is_dead_then_failed(tmp_path: Path) -> None:
    root = tmp_path / "store"
    child = spawn(
        """
        from tracklite import R
        R.start_exp(experiment_name="k")
        for step in range(50):
            R.log_metrics(step=step, loss=float(step))
        R.flush()
        rec = R.get_recorder()
        print("READY", rec.experiment_id, rec.id, flush=True)
        import time
        time.sleep(600)
        """,
        root,
        tmp_path,
    )
    exp_id, rec_id = read_line(child, "READY").split()
    assert tracklite.check(root).clean  # alive: not dead, summary not judged
    kill9(child)

    report = tracklite.check(root)
    assert [f.kind for f in report] == [chk.DEAD_RUN]
    assert report.findings[0].path == root / exp_id / rec_id / layout.RECORDER_FILE
    report = tracklite.check(root, fix=True)
    assert report.kinds() == {chk.DEAD_RUN: 1} and report.ok
    meta = json.loads((root / exp_id / rec_id / layout.RECORDER_FILE).read_text())
    assert meta["status"] == "FAILED"
    assert "gone" in meta["tags"]["tracklite.dead"]
    assert meta["end_time"] is not None
    assert meta["metrics"]["loss"]["value"] == 49.0
    recorder = (
        ExpManager(uri=str(root))
        .get_exp(experiment_id=exp_id, create=False)
        .get_recorder(recorder_id=rec_id, create=False)
    )
    assert recorder.status == "FAILED"
    assert len(recorder.get_metric_history()) == 50
    # Compacted as end_run would have: plain pandas reads each point once.
    assert len(list((root / exp_id / rec_id / layout.METRICS_DIR).glob("*.parquet"))) == 1
    assert len(pd.read_parquet(root / exp_id / rec_id / layout.METRICS_DIR)) == 50
    assert tracklite.check(root).clean


def test_live_run_is_left_alone(tmp_path: Path) -> None:
    root = tmp_path / "store"
    r = QlibRecorder(ExpManager(uri=str(root)))
    r.start_exp(experiment_name="live")
    try:
        r.log_metrics(step=0, loss=1.0)
        r.flush()
        rec = r.get_recorder()
        meta_path = rec.ref.meta_path
        meta = json.loads(meta_path.read_text())
        meta["metrics"] = {}  # as if the writer had not folded its last flush in yet
        meta_path.write_text(json.dumps(meta))
        report = tracklite.check(root, fix=True)
        assert report.clean, str(report)
        assert json.loads(meta_path.read_text())["status"] == "RUNNING"
    finally:
        r.end_exp()


def test_marker_problems(store: tuple[Path, str, str, str]) -> None:
    root = store[0]
    marker = root / layout.MARKER
    marker.write_text('{"format_ver')
    assert tracklite.check(root).kinds() == {chk.MARKER: 1}
    assert tracklite.check(root, fix=True).ok
    assert json.loads(marker.read_text())["format_version"] == layout.FORMAT_VERSION
    marker.unlink()
    assert tracklite.check(root).kinds() == {chk.MARKER: 1}
    assert tracklite.check(root, fix=True).ok and marker.is_file()
    assert tracklite.check(root).clean

    marker.write_text(json.dumps({"format_version": layout.FORMAT_VERSION + 1}))
    (root / "junk").write_text("x")
    before = snapshot(root)
    report = tracklite.check(root, fix=True)
    assert [f.kind for f in report] == [chk.UNKNOWN_VERSION]  # nothing else looked at
    assert snapshot(root) == before


def test_newer_recorder_format_is_reported_not_touched(store: tuple[Path, str, str, str]) -> None:
    root, exp_id, rec_id, _ = store
    meta_path = root / exp_id / rec_id / layout.RECORDER_FILE
    meta = json.loads(meta_path.read_text())
    meta["format_version"] = layout.FORMAT_VERSION + 1
    meta_path.write_text(json.dumps(meta))
    before = snapshot(root)
    report = tracklite.check(root, fix=True)
    assert [f.kind for f in report] == [chk.UNKNOWN_VERSION] and not report.ok
    assert snapshot(root) == before


def test_missing_recorder_json(store: tuple[Path, str, str, str]) -> None:
    root, exp_id, rec_id, _ = store
    (root / exp_id / rec_id / layout.RECORDER_FILE).unlink()
    assert tracklite.check(root).kinds() == {chk.MISSING_METADATA: 1}
    assert tracklite.check(root, fix=True).ok
    meta = json.loads((root / exp_id / rec_id / layout.RECORDER_FILE).read_text())
    assert meta["name"] == "recovered" and meta["metrics"]["loss"]["step"] == 4
    assert tracklite.check(root).clean


def test_empty_id_folders_are_unknown_not_recovered(store: tuple[Path, str, str, str]) -> None:
    root, exp_id, _, _ = store
    (root / ("f" * 32)).mkdir()
    (root / exp_id / ("e" * 32)).mkdir()
    report = tracklite.check(root, fix=True)
    assert report.kinds() == {chk.UNKNOWN_FILE: 2} and not report.ok
    assert not any((root / exp_id / ("e" * 32)).iterdir())


def test_unsafe_artifact_link(store: tuple[Path, str, str, str], tmp_path: Path) -> None:
    root, exp_id, rec_id, _ = store
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    link = root / exp_id / rec_id / layout.ARTIFACTS_DIR / "leak"
    link.symlink_to(outside)
    report = tracklite.check(root)
    assert [f.kind for f in report] == [chk.UNSAFE_LINK]
    report = tracklite.check(root, fix=True)
    assert report.ok and not link.is_symlink()
    assert report.quarantine is not None
    assert (report.quarantine / link.relative_to(root)).is_symlink()
    assert outside.read_text() == "secret"  # the target is never touched
    assert tracklite.check(root).clean


def test_replaced_segments_left_by_a_dead_compaction(store: tuple[Path, str, str, str]) -> None:
    root, exp_id, rec_id, _ = store
    metrics = root / exp_id / rec_id / layout.METRICS_DIR
    names = sorted(p.name for p in metrics.glob("*.parquet"))
    history = (
        ExpManager(uri=str(root))
        .get_exp(experiment_id=exp_id, create=False)
        .get_recorder(recorder_id=rec_id, create=False)
        .get_metric_history()
    )
    merged = pa.concat_tables([pq.read_table(metrics / n) for n in names])
    merged = merged.replace_schema_metadata({b"tracklite.replaces": json.dumps(names).encode()})
    keep = [(metrics / n).read_bytes() for n in names]
    pq.write_table(merged, metrics / "ffffffffffffffffffffffffffffffff.parquet")
    for name in names:
        os.utime(metrics / name, (OLD, OLD))
    report = tracklite.check(root)
    assert report.kinds() == {chk.REPLACED_SEGMENT: len(names)}
    report = tracklite.check(root, fix=True)
    assert report.ok
    assert sorted(p.name for p in metrics.glob("*.parquet")) == [
        "ffffffffffffffffffffffffffffffff.parquet"
    ]
    assert report.quarantine is not None
    moved = [report.quarantine / (metrics / n).relative_to(root) for n in names]
    assert [path.read_bytes() for path in moved] == keep
    after = (
        ExpManager(uri=str(root))
        .get_exp(experiment_id=exp_id, create=False)
        .get_recorder(recorder_id=rec_id, create=False)
        .get_metric_history()
    )
    assert len(after) == len(history)
    assert tracklite.check(root).clean


def test_duplicate_experiment_names(store: tuple[Path, str, str, str]) -> None:
    root, exp_id, _, _ = store
    twin = root / ("0" * 31 + "1")
    twin.mkdir()
    meta = json.loads((root / exp_id / layout.EXPERIMENT_FILE).read_text())
    meta["id"] = twin.name
    (twin / layout.EXPERIMENT_FILE).write_text(json.dumps(meta))
    report = tracklite.check(root)
    assert [f.kind for f in report] == [chk.DUPLICATE_NAME]
    assert exp_id in report.findings[0].message and twin.name in report.findings[0].message


def test_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no store folder"):
        tracklite.check(tmp_path / "missing")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "file.txt").write_text("x")
    with pytest.raises(StoreError, match="not a tracklite store"):
        tracklite.check(tmp_path / "other", fix=True)
    assert sorted(os.listdir(tmp_path / "other")) == ["file.txt"]


def test_files_of_other_tracklite_modules_are_known(store: tuple[Path, str, str, str]) -> None:
    """The search cache is tracklite's own file: a check in a fresh process (the command line)
    must know it without anything else having imported the search module."""
    from tracklite.search.cache import LEGACY_SUMMARY_FILE
    from tracklite.store.changes import CHANGES_DIR

    root, exp_id, _, _ = store
    (root / exp_id / LEGACY_SUMMARY_FILE).write_bytes(b"cache")
    (root / exp_id / CHANGES_DIR).mkdir(exist_ok=True)
    (root / exp_id / CHANGES_DIR / "summary-000000000001.arrow").write_bytes(b"cache")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, tracklite; print(tracklite.check(sys.argv[1]))",
            str(root),
        ],
        capture_output=True,
        text=True,
        check=True,
        env=child_env(root),
    )
    assert done.stdout.strip().endswith("clean"), done.stdout


def test_check_reports_progress_per_recorder(store: tuple[Path, str, str, str]) -> None:
    root, _, _, _ = store
    calls: list[tuple[int, int]] = []
    assert tracklite.check(root, progress=lambda done, total: calls.append((done, total))).ok
    # Three recorders in "exp", one in the deleted experiment: each counted once, in order.
    assert [done for done, _ in calls] == [1, 2, 3, 4]
    assert all(done <= total for done, total in calls) and calls[-1] == (4, 4)


def test_check_shows_progress_on_a_terminal(store: tuple[Path, str, str, str]) -> None:
    root, _, _, _ = store
    master, slave = os.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tracklite", "--uri", str(root), "check"],
            stderr=slave,
            stdout=subprocess.PIPE,
            env=child_env(root),
            timeout=120,
            check=False,
        )
        os.close(slave)
        written = read_terminal(master)
    finally:
        os.close(master)
    assert done.returncode == 0
    assert b"checking" in written
