"""The metric writer's thread in this process: one writer made on first use, its named thread,
beats no more often than the heartbeat interval, reports what it cannot do on stderr and goes
on, and ``tracklite.configure`` sets its bounds."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _metric_support import new_R, on_disk, pairs, wait_until, writer_settings

import tracklite
from tracklite import MetricWriteError, QlibRecorder
from tracklite.metrics import writer as writer_module
from tracklite.metrics.writer import MetricWriter, get_writer
from tracklite.store import layout


@pytest.fixture
def R(tmp_path: Path) -> Iterator[QlibRecorder]:
    r = new_R(tmp_path)
    yield r
    if r.exp_manager.active_experiment is not None:
        r.end_exp("FAILED")


def test_the_first_use_makes_one_writer_with_a_named_thread(
    R: QlibRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As in a process that has not used tracklite yet: no writer.
    monkeypatch.setattr(writer_module, "_writer", None)
    writer = get_writer()
    assert isinstance(writer, MetricWriter) and get_writer() is writer
    assert writer._thread is None  # nothing started until a recorder is used
    try:
        with R.start(experiment_name="fresh"):
            rec = R.get_recorder()
            thread = writer._thread
            assert thread is not None and thread.is_alive() and thread.daemon
            assert thread.name == "tracklite-writer"  # findable in a stack dump
            R.log_metrics(step=0, loss=0.5)
            R.flush()
            assert pairs(on_disk(rec.ref)) == [("loss", 0, 0.5)]
    finally:
        writer.close()
    thread.join(timeout=60)
    assert not thread.is_alive()


def beating_writer(monkeypatch: pytest.MonkeyPatch, interval: float) -> MetricWriter:
    """A writer thread of its own that beats every ``interval`` seconds and flushes only
    when asked (the caller closes it)."""
    monkeypatch.setattr(writer_module, "HEARTBEAT_INTERVAL", interval)
    monkeypatch.setattr(writer_module, "_writer", None)  # a writer thread started here
    writer = get_writer()
    writer.configure(flush_interval=60)
    return writer


def test_beats_come_no_more_often_than_the_interval(
    R: QlibRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = beating_writer(monkeypatch, 5.0)
    try:
        with R.start(experiment_name="beat"):
            heartbeat = R.get_recorder().ref.dir / layout.HEARTBEAT_FILE
            past = time.time_ns() - 1000 * 10**9
            os.utime(heartbeat, ns=(past, past))
            wait_until(lambda: heartbeat.stat().st_mtime_ns != past)  # one beat
            last = writer._last_beat
            os.utime(heartbeat, ns=(past, past))
            time.sleep(0.5)  # the next beat is due about 5 s after the last one
            untouched = heartbeat.stat().st_mtime_ns == past
            # Judged while the next beat was not due yet: a test stalled for seconds sees it.
            if time.monotonic() < last + 5.0:
                assert untouched
    finally:
        writer.close()


def test_a_heartbeat_that_cannot_be_written_is_reported_and_the_writer_goes_on(
    R: QlibRecorder, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    writer = beating_writer(monkeypatch, 0.05)
    try:
        with R.start(experiment_name="beat"):
            rec = R.get_recorder()
            heartbeat = rec.ref.dir / layout.HEARTBEAT_FILE
            # Put in place in one rename: the thread beats every 0.05 s and would recreate
            # the file between an unlink and a symlink.
            link = rec.ref.dir / "heartbeat-link"
            link.symlink_to(rec.ref.dir / "elsewhere")  # never followed: the beat fails
            os.replace(link, heartbeat)
            seen = ""

            def reported() -> bool:
                nonlocal seen
                seen += capfd.readouterr().err
                return "tracklite: metric writer error:" in seen

            wait_until(reported)
            assert not (rec.ref.dir / "elsewhere").exists()
            heartbeat.unlink()
            R.log_metrics(step=1, loss=2.0)
            R.flush()
            assert pairs(on_disk(rec.ref)) == [("loss", 1, 2.0)]
            assert writer._thread is not None and writer._thread.is_alive()
            wait_until(heartbeat.exists)  # beating again
    finally:
        writer.close()


def test_a_background_failure_names_the_recorder_and_its_folder(R: QlibRecorder) -> None:
    with writer_settings(flush_interval=0.02), R.start(experiment_name="errors"):
        rec = R.get_recorder()
        metrics = rec.ref.metrics_dir
        if metrics.exists():
            metrics.rename(metrics.with_name("metrics.aside"))
        metrics.write_text("not a folder")  # every segment write fails
        R.log_metrics(step=0, loss=1.0)
        buf = get_writer().buffer(rec.ref)
        wait_until(lambda: buf.error is not None)
        get_writer().configure(flush_interval=60)
        with pytest.raises(MetricWriteError) as caught:
            R.log_metrics(step=1, loss=2.0)
        assert f"recorder {rec.id} to {rec.ref.dir} failed" in str(caught.value)
        assert caught.value.recorder_id == rec.id
        metrics.unlink()
        R.flush()
    assert pairs(rec.get_metric_history()) == [("loss", 0, 1.0)]


def test_a_point_stamped_before_1970_is_kept(R: QlibRecorder) -> None:
    with writer_settings(flush_interval=60), R.start(experiment_name="old"):
        rec = R.get_recorder()
        get_writer().buffer(rec.ref).log(3, {"m": 1.0}, stamp=-86_400_000)
        R.flush()
        stored = on_disk(rec.ref)
        assert stored["timestamp"].astype("int64").tolist() == [-86_400_000]


def test_configure_sets_the_writers_bounds() -> None:
    writer = get_writer()
    saved = (writer.flush_interval, writer.flush_points, writer.max_points)
    try:
        tracklite.configure(flush_interval=7, flush_points=11, max_points=13)
        assert (writer.flush_interval, writer.flush_points, writer.max_points) == (7.0, 11, 13)
        tracklite.configure(flush_points=12)  # the others are kept
        assert (writer.flush_interval, writer.flush_points, writer.max_points) == (7.0, 12, 13)
    finally:
        writer.configure(flush_interval=saved[0], flush_points=saved[1], max_points=saved[2])
