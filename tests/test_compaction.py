"""Compaction: one file per recorder after end_run and on demand, readers that never see a point
twice or miss one while it runs, leftover replaced segments, and the stored size per point."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _metric_support import new_R, pairs, segment_files, spawn, writer_settings

import tracklite
from tracklite import QlibRecorder, Recorder
from tracklite.metrics import compaction, segments


@pytest.fixture
def R(tmp_path: Path) -> Iterator[QlibRecorder]:
    r = new_R(tmp_path)
    with writer_settings(flush_interval=60):
        yield r
        if r.exp_manager.active_experiment is not None:
            r.end_exp("FAILED")


def log_segments(rec: Recorder, count: int, key: str = "loss", start: int = 0) -> None:
    """``count`` segments of two points each (one flush per call)."""
    for step in range(start, start + count):
        rec.log_metrics(step=step, **{key: float(step), f"{key}_sq": float(step * step)})
        rec.flush()


def read_pairs(rec: Recorder) -> list[tuple[str, int, float]]:
    return pairs(segments.read_points(rec.ref.metrics_dir).to_pandas())


def test_end_run_leaves_one_file(R: QlibRecorder) -> None:
    R.start_exp(experiment_name="c")
    rec = R.get_recorder()
    log_segments(rec, 20)
    assert len(segment_files(rec)) == 20
    before = rec.get_metric_history()
    R.end_exp()
    assert len(segment_files(rec)) == 1
    after = rec.get_metric_history()
    pd.testing.assert_frame_equal(
        before.sort_values(["key", "step"], kind="stable").reset_index(drop=True),
        after.sort_values(["key", "step"], kind="stable").reset_index(drop=True),
    )
    plain = pd.read_parquet(rec.ref.metrics_dir)
    assert pairs(plain) == pairs(after)
    # Each key's rows stay in logging order in the merged file.
    assert after[after["key"] == "loss"]["step"].tolist() == list(range(20))


def test_compact_a_whole_store(R: QlibRecorder) -> None:
    assert tracklite.compact is compaction.compact
    recs = []
    for exp_name in ("a", "b"):
        exp = R.get_exp(experiment_name=exp_name)
        for index in range(2):
            rec = exp.create_recorder(f"r{index}").start_run()
            log_segments(rec, 8, key=f"k{index}")
            recs.append(rec)
    expected = {rec.id: read_pairs(rec) for rec in recs}

    report = compaction.compact(R.get_uri(), experiment_id="a")
    assert (report.recorders, report.compacted, report.segments_removed) == (2, 2, 16)
    assert [len(segment_files(rec)) for rec in recs] == [1, 1, 8, 8]

    report = compaction.compact(R.get_uri())
    assert (report.recorders, report.compacted, report.segments_removed) == (4, 2, 16)
    assert report.errors == []
    for rec in recs:
        assert segment_files(rec) == segments.segment_names(rec.ref.metrics_dir)
        assert len(segment_files(rec)) == 1
        assert read_pairs(rec) == expected[rec.id]
        history = rec.get_metric_history()
        assert history[history["key"].str.endswith("_sq")]["step"].tolist() == list(range(8))
        rec.end_run("FINISHED")
    assert compaction.compact(R.get_uri()).segments_removed == 0


def test_compact_unknown_experiment_raises(R: QlibRecorder) -> None:
    R.get_exp(experiment_name="known")
    with pytest.raises(ValueError, match="nope"):
        compaction.compact(R.get_uri(), experiment_id="nope")


# ---------------------------------------------------------------------- concurrency


class Compactor:
    """Compacts one recorder in a loop, in a thread of this process or in another process."""

    def __init__(self, rec: Recorder, where: str, tmp_path: Path) -> None:
        self.removed = 0
        self._stop = tmp_path / "stop"
        self._thread: threading.Thread | None = None
        self._proc = None
        if where == "thread":
            self._thread = threading.Thread(target=self._loop, args=(rec,))
            self._thread.start()
            return
        self._proc = spawn(
            f"""
            import os
            from pathlib import Path
            from tracklite.metrics.compaction import compact_recorder
            from tracklite.store.ref import RecorderRef
            ref = RecorderRef(Path({str(rec.ref.root)!r}), {rec.experiment_id!r}, {rec.id!r})
            removed = compact_recorder(ref)
            print("ready", flush=True)
            while not os.path.exists({str(self._stop)!r}):
                removed += compact_recorder(ref)
            print(removed)
            """,
            tmp_path,
        )
        assert self._proc.stdout is not None
        assert self._proc.stdout.readline().strip() == "ready", self._proc.stderr.read()

    def _loop(self, rec: Recorder) -> None:
        # At least one pass, as the process does before "ready": a thread first scheduled
        # after the stop file appeared still compacts.
        while True:
            self.removed += compaction.compact_recorder(rec.ref)
            if self._stop.exists():
                break

    def stop(self) -> int:
        """Stop the loop; returns the number of segments it removed."""
        self._stop.touch()
        if self._thread is not None:
            self._thread.join()
            return self.removed
        assert self._proc is not None
        out, err = self._proc.communicate(timeout=60)
        assert self._proc.returncode == 0, err
        return int(out)


def check_read(frame: pd.DataFrame, published: int, limit: int) -> None:
    """Every point of steps < published, none twice, nothing beyond what was logged, and each
    key's rows in logging (= step) order."""
    for key in ("loss", "loss_sq"):
        steps = frame.loc[frame["key"] == key, "step"].tolist()
        assert len(steps) == len(set(steps)), f"{key}: a point seen twice"
        assert set(range(published)) <= set(steps), f"{key}: a published point missed"
        assert max(steps, default=-1) < limit
        assert steps == sorted(steps), f"{key}: not in logging order"


@pytest.mark.parametrize("where", ["thread", "process"])
def test_readers_during_compaction(R: QlibRecorder, tmp_path: Path, where: str) -> None:
    """This process publishes a segment per call while a compaction loop runs; readers (raw
    segment reads and get_metric_history) never see a point twice, never miss one, and see
    each key in logging order."""
    R.start_exp(experiment_name="c")
    rec = R.get_recorder()
    # A large first segment makes each compaction slow enough for segments to be published
    # while it runs, every time.
    base = np.arange(50_000)
    rec.log_batch({"loss": base.astype(float), "loss_sq": (base * base).astype(float)})
    log_segments(rec, 4, start=len(base))
    compactor = Compactor(rec, where, tmp_path)
    published = len(base) + 4
    failures: list[BaseException] = []
    done = threading.Event()

    def read(kind: str) -> None:
        try:
            while not done.is_set():
                before = published
                if kind == "raw":
                    frame = segments.read_points(rec.ref.metrics_dir).to_pandas()
                else:
                    frame = rec.get_metric_history()
                check_read(frame, before, published + 1)
        except BaseException as exc:
            failures.append(exc)

    readers = [threading.Thread(target=read, args=(kind,)) for kind in ("raw", "history")]
    for thread in readers:
        thread.start()
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and not failures:
        log_segments(rec, 1, start=published)
        published += 1
    done.set()
    for thread in readers:
        thread.join()
    removed = compactor.stop()
    assert not failures, failures[0]
    assert removed > 0, "the compactor never compacted anything"
    R.end_exp()
    check_read(rec.get_metric_history(), published, published)
    assert len(segment_files(rec)) == 1


def test_segments_from_another_process_survive_compaction(R: QlibRecorder, tmp_path: Path) -> None:
    """Another process logs (flushing every 5 ms) while this one compacts in a loop."""
    R.start_exp(experiment_name="c")
    rec = R.get_recorder()
    writer = spawn(
        f"""
        import time
        from tracklite import ExpManager, QlibRecorder
        exp = QlibRecorder(ExpManager(uri={R.get_uri()!r})).get_exp(experiment_name="c")
        rec = exp.get_recorder(recorder_id={rec.id!r}, create=False)
        rec.start_run()
        for step in range(300):
            rec.log_metrics(step=step, loss=float(step), loss_sq=float(step * step))
            time.sleep(0.001)
        rec.flush()
        print("flushed", flush=True)
        input()
        """,
        tmp_path,
        TRACKLITE_FLUSH_INTERVAL="0.005",
    )
    removed = 0
    assert writer.stdout is not None and writer.stdin is not None
    while writer.poll() is None:
        removed += compaction.compact_recorder(rec.ref)
        frame = segments.read_points(rec.ref.metrics_dir).to_pandas()
        assert not frame.duplicated(["key", "step"]).any()
        if len(frame) == 600:
            break
    assert writer.stdout.readline().strip() == "flushed"
    compaction.compact_recorder(rec.ref)
    writer.communicate("\n", timeout=60)
    assert removed > 0
    assert read_pairs(rec) == sorted(
        [("loss", s, float(s)) for s in range(300)]
        + [("loss_sq", s, float(s * s)) for s in range(300)]
    )
    assert len(segment_files(rec)) == 1


# ---------------------------------------------------------------------- leftovers


def test_leftover_replaced_segments_are_skipped(R: QlibRecorder, tmp_path: Path) -> None:
    """A replaced segment that survives its compaction (a killed compactor, a restore from a
    backup) is skipped by tracklite's readers, and removed by the next compaction."""
    R.start_exp(experiment_name="c")
    rec = R.get_recorder()
    log_segments(rec, 3)
    first = segment_files(rec)[0]
    backup = tmp_path / "backup"
    backup.mkdir()
    shutil.copy(rec.ref.metrics_dir / first, backup / first)
    compaction.compact_recorder(rec.ref)
    merged_once = segment_files(rec)[0]
    shutil.copy(rec.ref.metrics_dir / merged_once, backup / merged_once)
    log_segments(rec, 2, start=3)
    compaction.compact_recorder(rec.ref)  # replaces the first merge, and what it replaced
    expected = read_pairs(rec)
    assert len(expected) == 10
    for name in (first, merged_once):
        shutil.copy(backup / name, rec.ref.metrics_dir / name)
    assert len(segment_files(rec)) == 3
    assert read_pairs(rec) == expected
    assert pairs(rec.get_metric_history()) == expected
    assert pairs(tracklite.load_metrics(R.get_uri())) == expected
    # A plain pandas read does not know about replaced segments (docs/format.md).
    assert len(pd.read_parquet(rec.ref.metrics_dir)) == 10 + 2 + 6
    R.end_exp()
    assert len(segment_files(rec)) == 1
    assert pairs(pd.read_parquet(rec.ref.metrics_dir)) == expected


# ---------------------------------------------------------------------- size


def test_stored_size_is_at_most_12_bytes_per_point(R: QlibRecorder) -> None:
    """The documented target, with incompressible random float64 values: 10 keys a call."""
    rng = np.random.default_rng(1)
    calls, keys = 10_000, [f"metric_{i}" for i in range(10)]
    values = rng.random((calls, len(keys)))
    R.start_exp(experiment_name="size")
    rec = R.get_recorder()
    for step in range(calls):
        R.log_metrics(step=step, **dict(zip(keys, values[step].tolist(), strict=True)))
        if step % 2500 == 2499:
            R.flush()  # several segments before the final compaction
    R.end_exp()
    files = segment_files(rec)
    assert len(files) == 1
    size = (rec.ref.metrics_dir / files[0]).stat().st_size
    points = calls * len(keys)
    assert size / points <= 12.0, f"{size / points:.2f} bytes per point"
    stored = rec.get_metric_history(key="metric_3")["value"].to_numpy()
    assert stored.tobytes() == values[:, 3].tobytes()
