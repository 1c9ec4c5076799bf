"""The background writer inside one process: read-your-writes, time-based flushes, many threads,
the latest-value summary, error surfacing, back-pressure, and the lazy import of tracklite."""

from __future__ import annotations

import functools
import json
import math
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _metric_support import new_R, on_disk, pairs, run, spawn, wait_until, writer_settings

import tracklite
from tracklite import MetricWriteError, QlibRecorder, Recorder
from tracklite.metrics.writer import get_writer


@pytest.fixture
def R(tmp_path: Path) -> Iterator[QlibRecorder]:
    r = new_R(tmp_path)
    yield r
    if r.exp_manager.active_experiment is not None:
        r.end_exp("FAILED")


def stored_summary(rec: Recorder) -> dict[str, dict[str, float]]:
    """The ``metrics`` summary in recorder.json, read without tracklite (no flush)."""
    return json.loads((rec.ref.dir / "recorder.json").read_text())["metrics"]


# ---------------------------------------------------------------------- read-your-writes


def test_reads_in_this_process_see_every_point_without_flush(R: QlibRecorder) -> None:
    with writer_settings(flush_interval=60), R.start(experiment_name="ryw"):
        rec = R.get_recorder()
        for step in range(50):
            R.log_metrics(step=step, loss=100.0 - step, acc=step / 100)
        assert on_disk(rec.ref).empty  # nothing written yet: the reads below must flush
        assert rec.list_metrics() == {"loss": 51.0, "acc": 0.49}
        R.log_metrics(step=50, loss=-1.0)
        history = rec.get_metric_history()
        assert len(history) == 101 and history["step"].max() == 50
        R.log_metrics(step=51, loss=-2.0)
        loaded = tracklite.load_metrics(R.get_uri(), experiments="ryw", keys="loss")
        assert loaded["step"].tolist() == list(range(52))


def test_searches_see_points_logged_before_them(R: QlibRecorder) -> None:
    with writer_settings(flush_interval=60), R.start(experiment_name="ryw") as exp:
        rid = R.get_recorder().id
        R.log_metrics(step=3, score=0.75)
        frame = R.search_records([exp.id])
        assert frame.loc[frame["run_id"] == rid, "metrics.score"].tolist() == [0.75]
        R.log_metrics(step=4, score=0.5)
        found = exp.list_recorders(filter_string="metrics.score < 0.6")
        assert list(found) == [rid]


def test_time_based_flush_is_seen_by_another_process(R: QlibRecorder, tmp_path: Path) -> None:
    """Points reach disk within about the flush interval, while the run is RUNNING, with no
    read or flush in the logging process."""
    interval = 0.25
    with writer_settings(flush_interval=interval), R.start(experiment_name="live"):
        rec = R.get_recorder()
        watcher = spawn(
            f"""
            import sys, time
            from tracklite import ExpManager, QlibRecorder
            from tracklite.metrics import segments
            rec = QlibRecorder(ExpManager(uri={R.get_uri()!r})).get_recorder(
                recorder_id={rec.id!r}, experiment_name="live")
            segments.read_points(rec.ref.metrics_dir)  # pyarrow loaded before the clock starts
            print("ready", flush=True)
            sys.stdin.readline()
            deadline = time.monotonic() + 60
            while segments.read_points(rec.ref.metrics_dir).num_rows < 200:
                if time.monotonic() > deadline:
                    sys.exit("the points never reached disk")
                time.sleep(0.005)
            print(rec.refresh().status, flush=True)
            """,
            tmp_path,
        )
        assert watcher.stdout is not None and watcher.stdin is not None
        assert watcher.stdout.readline().strip() == "ready"
        start = time.time()
        for step in range(100):
            R.log_metrics(step=step, a=float(step), b=-float(step))
        watcher.stdin.write("go\n")
        watcher.stdin.flush()
        status = watcher.stdout.readline().strip()
        assert watcher.wait(timeout=60) == 0, watcher.stderr.read() if watcher.stderr else ""
        assert status == "RUNNING"
        # When the flush wrote (the newest segment's mtime, read before the run's end compacts
        # them), not when the watcher, another process on a loaded machine, got to see it.
        written = max(p.stat().st_mtime for p in rec.ref.metrics_dir.glob("*.parquet"))
        assert written - start < interval + 1.0


# ---------------------------------------------------------------------- many threads


def test_many_threads_log_into_one_recorder(R: QlibRecorder) -> None:
    """8 threads, own and shared keys, while flushes and reads run: every point exactly once,
    with its value, and each thread's points in its logging order."""
    threads, calls = 8, 1500
    with writer_settings(flush_interval=0.01, flush_points=400, max_points=2000):
        R.start_exp(experiment_name="threads")
        rec = R.get_recorder()
        barrier = threading.Barrier(threads + 1)
        failures: list[BaseException] = []
        done = threading.Event()

        def log(index: int) -> None:
            try:
                barrier.wait()
                for j in range(calls):
                    value = index * 1_000_000 + j
                    R.log_metrics(step=j, **{f"t{index}": value, "shared": value})
                    if j % 500 == 0:
                        rec.flush()
            except BaseException as exc:  # pragma: no cover - reported below
                failures.append(exc)

        def read() -> None:
            try:
                barrier.wait()
                while not done.is_set():
                    frame = rec.get_metric_history()
                    shared = frame[frame["key"] == "shared"]
                    assert not shared["value"].duplicated().any()
                    assert not frame[frame["key"] != "shared"][["key", "step"]].duplicated().any()
            except BaseException as exc:  # pragma: no cover - reported below
                failures.append(exc)

        workers = [threading.Thread(target=log, args=(i,)) for i in range(threads)]
        reader = threading.Thread(target=read)
        for thread in [*workers, reader]:
            thread.start()
        for thread in workers:
            thread.join()
        done.set()
        reader.join()
        assert not failures, failures
        R.end_exp()
    frame = rec.get_metric_history()
    assert len(frame) == 2 * threads * calls
    for index in range(threads):
        own = frame[frame["key"] == f"t{index}"]
        assert own["step"].tolist() == list(range(calls))
        assert own["value"].tolist() == [index * 1_000_000 + j for j in range(calls)]
        shared = frame[(frame["key"] == "shared") & (frame["value"] // 1_000_000 == index)]
        assert shared["step"].tolist() == list(range(calls))
    assert rec.list_metrics()[f"t{threads - 1}"] == (threads - 1) * 1_000_000 + calls - 1


# ---------------------------------------------------------------------- latest-value summary


def test_latest_value_is_highest_step_then_newest(R: QlibRecorder) -> None:
    with writer_settings(flush_interval=60), R.start(experiment_name="latest"):
        rec = R.get_recorder()
        R.log_metrics(step=5, loss=1.0)
        R.flush()
        R.log_metrics(step=3, loss=2.0)  # later, but a lower step
        R.flush()
        assert rec.list_metrics() == {"loss": 1.0}
        time.sleep(0.002)
        R.log_metrics(step=5, loss=0.5)  # same step, newer timestamp
        assert rec.list_metrics() == {"loss": 0.5}
        # Within one flush as well: the batch is ranked the same way.
        R.log_metrics(step=9, loss=7.0)
        R.log_metrics(step=8, loss=8.0)
        time.sleep(0.002)
        R.log_metrics(step=9, loss=math.nan)  # newer: a NaN is a value like any other
        R.log_metrics(step=2, loss=9.0)
        latest = rec.list_metrics()
        assert math.isnan(latest["loss"])
        assert stored_summary(rec)["loss"]["step"] == 9


def test_latest_value_ties_go_to_the_largest_value(R: QlibRecorder) -> None:
    """One batch call stamps every point alike: same step and time, so the largest value wins
    (MLflow's last criterion), in any order."""
    with writer_settings(flush_interval=60), R.start(experiment_name="latest"):
        rec = R.get_recorder()
        rec.log_batch({"m": np.array([1.0, 3.0, 2.0])}, steps=[4, 4, 4])
        assert rec.list_metrics() == {"m": 3.0}


@pytest.mark.parametrize(
    ("columns", "kept"),
    [
        # A signal between the appends of the very first call: its points, no run.
        (([0, 1], [1.0, 2.0], [], [], []), ([], [], [], [], [])),
        # One whole call, then a call cut short after its points, or after its step.
        (([0, 1, 0], [1.0, 2.0, 3.0], [2], [5], [7]), ([0, 1], [1.0, 2.0], [2], [5], [7])),
        (([0, 1, 0], [1.0, 2.0, 3.0], [2], [5, 6], [7]), ([0, 1], [1.0, 2.0], [2], [5], [7])),
        # Columns put back after a failed write, whichever is longer: only whole calls stay.
        (([0, 1, 0], [1.0, 2.0, 3.0], [2, 1], [5], [7]), ([0, 1], [1.0, 2.0], [2], [5], [7])),
        (([0, 1, 0], [1.0, 2.0, 3.0], [2, 1], [5, 6], [7]), ([0, 1], [1.0, 2.0], [2], [5], [7])),
        (([0, 1, 0], [1.0, 2.0, 3.0], [2, 1], [5, 6], [7, 8]), None),
    ],
)
def test_only_whole_calls_are_written(columns: tuple[list[Any], ...], kept: Any) -> None:
    """A call cut short by a signal never returned, so it was never accepted: the flush keeps
    the calls whose points, size, step and time are all there."""
    from array import array

    from tracklite.metrics.writer import _aligned

    typecodes = ("i", "d", "i", "q", "q")
    taken = tuple(array(code, values) for code, values in zip(typecodes, columns, strict=True))
    aligned = _aligned(taken)
    assert [list(column) for column in aligned] == [list(c) for c in (kept or columns)]


# ---------------------------------------------------------------------- errors


def break_metrics_dir(rec: Recorder) -> Path:
    """Make every segment write of ``rec`` fail: its metrics/ folder becomes a regular file."""
    metrics = rec.ref.metrics_dir
    aside = metrics.with_name("metrics.aside")
    if metrics.exists():
        metrics.rename(aside)
    else:
        aside.mkdir()
    metrics.write_text("not a folder")
    return aside


def repair_metrics_dir(rec: Recorder, aside: Path) -> None:
    rec.ref.metrics_dir.unlink()
    aside.rename(rec.ref.metrics_dir)


def test_write_error_raised_by_next_call_and_points_kept(R: QlibRecorder) -> None:
    """The thread's failure is raised by a later call; every call that returned is kept and
    written once (none lost, none doubled) after the folder is repaired."""
    with writer_settings(flush_interval=0.02):
        R.start_exp(experiment_name="errors")
        rec = R.get_recorder()
        accepted = []
        for step in range(10):
            R.log_metrics(step=step, loss=float(step))
            accepted.append(step)
        R.flush()
        aside = break_metrics_dir(rec)
        raised: MetricWriteError | None = None
        step = 10
        deadline = time.monotonic() + 60
        # Keep logging after the report, too, until 30 calls in all were accepted: the thread
        # fails again every 0.02 s and each failure refuses one call, so on a loaded machine
        # (slow iterations) more of a fixed number of calls would be refused.
        while raised is None or len(accepted) < 30:
            assert time.monotonic() < deadline, f"raised {raised!r}, accepted {len(accepted)}"
            try:
                R.log_metrics(step=step, loss=float(step))
                accepted.append(step)
            except MetricWriteError as exc:
                raised = raised or exc  # a refused call is not kept
            step += 1
            time.sleep(0.002)
        assert rec.id in str(raised)
        assert isinstance(raised.__cause__, OSError)
        assert f"failed: {raised.__cause__}; the points are kept" in str(raised)
        # Earlier points are safe on disk (set aside), later ones still in memory.
        assert sorted(on_disk(aside)["step"]) == list(range(10))
        repair_metrics_dir(rec, aside)
        flush_after_repair(R)
        R.end_exp()
    frame = rec.get_metric_history()
    assert frame["step"].tolist() == accepted
    assert frame["value"].tolist() == [float(s) for s in accepted]
    assert rec.list_metrics() == {"loss": float(accepted[-1])}
    assert rec.refresh().status == "FINISHED"


def flush_after_repair(R: QlibRecorder) -> None:
    """Flush; a failure the thread met just before the repair may be reported once more."""
    try:
        R.flush()
    except MetricWriteError:
        R.flush()


def test_write_error_raised_by_flush_other_recorders_go_on(R: QlibRecorder) -> None:
    with writer_settings(flush_interval=60):
        R.start_exp(experiment_name="errors")
        broken = R.get_recorder()
        other = R.get_exp().create_recorder("other").start_run()
        R.log_metrics(step=0, loss=0.0)
        R.flush()
        aside = break_metrics_dir(broken)
        R.log_metrics(step=1, loss=1.0)
        other.log_metrics(step=1, x=1.0)
        with pytest.raises(MetricWriteError, match=broken.id) as caught:
            broken.flush()
        # The message names the cause, and the error the file that could not be written.
        cause = caught.value.__cause__
        assert isinstance(cause, OSError) and cause.filename is not None
        assert f"to {broken.ref.dir} failed: {cause}; the points are kept" in str(caught.value)
        assert caught.value.path == cause.filename
        assert caught.value.recorder_id == broken.id
        with pytest.raises(MetricWriteError, match=broken.id):
            R.flush()  # every recorder is tried; the broken one is reported
        other.log_metrics(step=2, x=2.0)
        other.flush()
        assert pairs(on_disk(other.ref)) == [("x", 1, 1.0), ("x", 2, 2.0)]
        other.end_run("FINISHED")
        assert other.refresh().status == "FINISHED"
        repair_metrics_dir(broken, aside)
        R.log_metrics(step=2, loss=2.0)
        R.end_exp()
    assert pairs(broken.get_metric_history()) == [("loss", s, float(s)) for s in range(3)]


def test_write_error_raised_by_end_run_then_points_written(R: QlibRecorder) -> None:
    with writer_settings(flush_interval=60):
        R.start_exp(experiment_name="errors")
        rec = R.get_recorder()
        R.log_metrics(step=0, loss=0.0)
        R.flush()
        aside = break_metrics_dir(rec)
        R.log_metrics(step=1, loss=1.0)
        with pytest.raises(MetricWriteError, match=rec.id):
            R.end_exp()
        assert rec.refresh().status == "FAILED"  # the run did not end well
        repair_metrics_dir(rec, aside)
        # The accepted point is still queued and reaches disk once writing works again.
        get_writer().configure(flush_interval=0.05)
        wait_until(lambda: len(on_disk(rec.ref)) == 2)
    assert pairs(rec.get_metric_history()) == [("loss", 0, 0.0), ("loss", 1, 1.0)]


# ---------------------------------------------------------------------- back-pressure


@pytest.mark.parametrize("keys_per_call", [1, 10])
def test_back_pressure_bounds_the_buffer(R: QlibRecorder, keys_per_call: int) -> None:
    max_points = 256
    calls = 6000 // keys_per_call
    keys = [f"k{i}" for i in range(keys_per_call)]
    with writer_settings(flush_interval=60, flush_points=64, max_points=max_points):
        R.start_exp(experiment_name="pressure")
        rec = R.get_recorder()
        buf = get_writer().buffer(rec.ref)
        highest = 0
        for step in range(calls):
            R.log_metrics(step=step, **dict.fromkeys(keys, float(step)))
            highest = max(highest, buf.pending())
        assert highest <= max_points + keys_per_call
        R.end_exp()
    frame = rec.get_metric_history()
    assert len(frame) == calls * keys_per_call
    assert frame.groupby("key")["step"].apply(list).tolist() == [list(range(calls))] * len(keys)


def test_back_pressure_with_a_batch_larger_than_the_buffer(R: QlibRecorder) -> None:
    with writer_settings(flush_interval=60, flush_points=64, max_points=128):
        R.start_exp(experiment_name="pressure")
        rec = R.get_recorder()
        buf = get_writer().buffer(rec.ref)
        assert rec.log_batch({"a": np.arange(5000.0), "b": np.ones(5000)}) == 10_000
        assert buf.pending() == 0  # written by the caller, not left to grow
        R.end_exp()
    assert len(rec.get_metric_history()) == 10_000


def test_back_pressure_while_writes_fail(R: QlibRecorder) -> None:
    """A full buffer that cannot be written: calls raise, a call that raised is not kept (a
    retry must not double it), and memory stays bounded."""
    with writer_settings(flush_interval=60, flush_points=4, max_points=8):
        R.start_exp(experiment_name="pressure")
        rec = R.get_recorder()
        buf = get_writer().buffer(rec.ref)
        aside = break_metrics_dir(rec)
        accepted, refused = [], []
        for step in range(100):
            try:
                R.log_metrics(step=step, loss=float(step))
                accepted.append(step)
            except MetricWriteError:
                refused.append(step)
        assert refused, "the failing writes were never reported"
        highest = buf.pending()
        repair_metrics_dir(rec, aside)
        flush_after_repair(R)
        R.end_exp()
    assert rec.get_metric_history()["step"].tolist() == accepted
    assert highest <= 8 + 1


def test_configure_rejects_bad_bounds() -> None:
    writer = get_writer()
    with pytest.raises(ValueError, match="flush_interval"):
        writer.configure(flush_interval=0)
    with pytest.raises(ValueError, match="flush_points"):
        writer.configure(flush_points=0)
    with pytest.raises(ValueError, match="max_points"):
        writer.configure(max_points=writer.flush_points - 1)


# ---------------------------------------------------------------------- import cost


def test_import_tracklite_loads_no_heavy_module(tmp_path: Path) -> None:
    done = run(
        """
        import sys
        import tracklite
        from tracklite import R
        heavy = ("pandas", "pyarrow", "numpy", "qlib", "mlflow")
        print(sorted(m for m in sys.modules if m.split(".")[0] in heavy))
        """,
        tmp_path,
    )
    assert done.stdout.strip() == "[]"
    assert "pandas" in sys.modules  # sanity: the check itself can see a loaded module


@pytest.mark.parametrize("broken", ["segment", "metadata"])
def test_params_and_tags_queued_before_a_failed_flush_are_kept(
    R: QlibRecorder, broken: str
) -> None:
    """A flush that fails (writing the segment, or rewriting recorder.json after it) keeps the
    params and tags it took: the next flush that works writes them."""
    with writer_settings(flush_interval=60):
        R.start_exp(experiment_name="errors")
        rec = R.get_recorder()
        R.log_metrics(step=0, loss=0.0)
        R.flush()
        meta_file = rec.ref.meta_path
        saved = meta_file.read_bytes()
        if broken == "segment":
            aside = break_metrics_dir(rec)
        else:
            meta_file.unlink()
            meta_file.mkdir()  # the locked rewrite cannot read it
        R.log_params(lr=0.5)
        R.set_tags(model="lgb")
        R.log_metrics(step=1, loss=1.0)
        with pytest.raises(MetricWriteError, match=rec.id):
            R.flush()
        if broken == "segment":
            repair_metrics_dir(rec, aside)
        else:
            meta_file.rmdir()
            meta_file.write_bytes(saved)
        R.flush()
        R.end_exp()
    again = R.get_recorder(recorder_id=rec.id, experiment_name="errors")
    assert again.list_params()["lr"] == "0.5"
    assert again.list_tags()["model"] == "lgb"
    assert pairs(again.get_metric_history()) == [("loss", 0, 0.0), ("loss", 1, 1.0)]


@pytest.mark.parametrize("how", ["flush", "recorder_flush", "end_exp", "end_run"])
def test_the_retried_write_warning_points_at_the_callers_line(R: QlibRecorder, how: str) -> None:
    """The documented RuntimeWarning: the writer thread failed, the caller's own write then
    succeeds; nothing was lost, so it warns instead of raising. However the caller reaches the
    retried write (a flush, the end of the run, through ``R`` or the recorder), the warning
    names the caller's own line."""
    with writer_settings(flush_interval=0.02):
        R.start_exp(experiment_name="errors")
        rec = R.get_recorder()
        R.log_metrics(step=0, loss=0.0)
        R.flush()
        aside = break_metrics_dir(rec)
        R.log_metrics(step=1, loss=1.0)
        buf = get_writer().buffer(rec.ref)
        wait_until(lambda: buf.error is not None)
        get_writer().configure(flush_interval=60)
        repair_metrics_dir(rec, aside)
        calls = {
            "flush": R.flush,
            "recorder_flush": rec.flush,
            "end_exp": R.end_exp,
            "end_run": functools.partial(rec.end_run, "FINISHED"),
        }
        match = f"earlier background write of recorder {rec.id}"
        with pytest.warns(RuntimeWarning, match=match) as caught:
            line = sys._getframe().f_lineno + 1
            calls[how]()
        assert (caught[0].filename, caught[0].lineno) == (__file__, line)
        if how != "end_exp":
            R.end_exp()
    assert pairs(rec.get_metric_history()) == [("loss", 0, 0.0), ("loss", 1, 1.0)]


@pytest.mark.parametrize("what", ["params", "tags"])
def test_params_or_tags_alone_reach_disk_without_a_flush(R: QlibRecorder, what: str) -> None:
    """The writer thread writes a running recorder's params or tags by themselves (no point
    logged), within its flush interval."""
    with writer_settings(flush_interval=0.02), R.start(experiment_name="meta"):
        rec = R.get_recorder()
        wait_until(lambda: (rec.ref.dir / "recorder.json").exists())
        if what == "params":
            R.log_params(lr=0.5)
        else:
            R.set_tags(phase="warm")
        expected = {"lr": "0.5"} if what == "params" else {"phase": "warm"}

        def stored() -> dict[str, str]:
            meta = json.loads((rec.ref.dir / "recorder.json").read_text())
            return {k: v for k, v in meta[what].items() if k in expected}

        wait_until(lambda: stored() == expected)


def test_deleting_a_tag_of_a_running_recorder(R: QlibRecorder) -> None:
    with writer_settings(flush_interval=60), R.start(experiment_name="tags"):
        rec = R.get_recorder()
        R.set_tags(keep="1", drop="2")
        R.flush()
        rec.delete_tags("drop", "never-set")
        R.flush()
        on_file = json.loads(rec.ref.meta_path.read_text())["tags"]
        assert on_file.get("keep") == "1" and "drop" not in on_file


def test_the_writer_thread_beats_while_nothing_is_flushed(
    R: QlibRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In this process: the heartbeat's mtime moves on every beat interval although the flush
    interval is a minute and points are pending."""
    from tracklite.metrics import writer as writer_module

    monkeypatch.setattr(writer_module, "HEARTBEAT_INTERVAL", 0.1)
    with writer_settings(flush_interval=60), R.start(experiment_name="beat"):
        rec = R.get_recorder()
        R.log_metrics(step=0, loss=1.0)  # pending: nothing is flushed meanwhile
        heartbeat = rec.ref.dir / "heartbeat"
        past = time.time() - 1000
        os.utime(heartbeat, (past, past))
        wait_until(lambda: heartbeat.stat().st_mtime > past + 500)
        assert not list(rec.ref.metrics_dir.glob("*.parquet"))
        names = [t.name for t in threading.enumerate()]
        assert "tracklite-writer" in names  # findable in a stack dump
