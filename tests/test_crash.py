"""Crashes and signals with real processes: kill -9 at random moments, SIGTERM, SIGINT, exit.

The kill -9 loop lives in benchmarks/stress_crash.py (verification included); the suite runs
a short version, ``-m slow`` the 60-kill one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from _reliability import REPO, child_env, read_line

import tracklite
from tracklite import ExpManager, liveness
from tracklite.store import layout

sys.path.insert(0, str(REPO / "benchmarks"))
import stress_crash


def test_kill9_at_random_moments(tmp_path: Path) -> None:
    # 8 kills: 6 victims forked from a warm interpreter, 2 started fresh.
    stats = stress_crash.run(tmp_path, kills=8, seed=os.getpid(), spawn_every=4)
    assert stats["kills"] == 8
    assert stats["recorders"] >= 8 and stats["acked_points"] > 0
    # Every victim died RUNNING (or right after ending): each dead run was found and marked.
    assert 1 <= stats["dead_runs_marked"] <= 8


@pytest.mark.slow
def test_kill9_sixty_times(tmp_path: Path) -> None:
    stats = stress_crash.run(tmp_path, kills=60, seed=1, spawn_every=10)
    assert stats["kills"] == 60 and stats["dead_runs_marked"] >= 30


# ---------------------------------------------------------------------------- signals

LOGGER = """
import contextlib, sys, time
from tracklite import R
mode = sys.argv[1]
if mode == "with":
    block = R.start(experiment_name="sig")
else:
    block = contextlib.nullcontext(R.start_exp(experiment_name="sig"))
with block:
    rec = R.get_recorder()
    for step in range(5000):
        R.log_metrics(step=step, loss=step * 0.25, acc=step * 0.5)
    R.log_params(lr=0.1)
    R.set_tags(stage="before-signal")
    # Everything above was accepted (the calls returned); nothing was flushed on purpose.
    print("READY", rec.experiment_id, rec.id, flush=True)
    if mode == "exit":
        sys.exit(0)  # a normal exit without end_exp (the nullcontext does not end the run)
    time.sleep(600)
"""


def _run_until_ready(tmp_path: Path, mode: str) -> tuple[subprocess.Popen[str], str, str]:
    # An hour-long flush interval: only the signal path can have written the points.
    env = child_env(tmp_path / "store", TRACKLITE_FLUSH_INTERVAL="3600")
    proc = subprocess.Popen(
        [sys.executable, "-c", LOGGER, mode],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    exp_id, rec_id = read_line(proc, "READY").split()
    return proc, exp_id, rec_id


def _assert_all_points(store: Path, exp_id: str, rec_id: str, status: str) -> None:
    rec = (
        ExpManager(uri=str(store))
        .get_exp(experiment_id=exp_id, create=False)
        .get_recorder(recorder_id=rec_id, create=False)
    )
    assert rec.status == status
    history = rec.get_metric_history()
    assert len(history) == 10000 and not history.duplicated(["key", "step"]).any()
    assert rec.list_metrics() == {"loss": 4999 * 0.25, "acc": 4999 * 0.5}
    assert rec.list_params()["lr"] == "0.1" and rec.list_tags()["stage"] == "before-signal"
    meta = json.loads((store / exp_id / rec_id / layout.RECORDER_FILE).read_text())
    assert meta["status"] == status and meta["end_time"] is not None
    assert tracklite.check(store).clean


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_ends_run_failed_after_flushing(tmp_path: Path, sig: signal.Signals) -> None:
    proc, exp_id, rec_id = _run_until_ready(tmp_path, "sleep")
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    assert proc.returncode != 0  # the process did end
    _assert_all_points(tmp_path / "store", exp_id, rec_id, "FAILED")


def test_sigterm_inside_a_with_block(tmp_path: Path) -> None:
    proc, exp_id, rec_id = _run_until_ready(tmp_path, "with")
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    _assert_all_points(tmp_path / "store", exp_id, rec_id, "FAILED")


def test_normal_exit_without_end_exp_finishes(tmp_path: Path) -> None:
    proc, exp_id, rec_id = _run_until_ready(tmp_path, "exit")
    proc.communicate(timeout=60)
    assert proc.returncode == 0
    _assert_all_points(tmp_path / "store", exp_id, rec_id, "FINISHED")


def test_sigkill_loses_only_unflushed_points(tmp_path: Path) -> None:
    """The counterpart: kill -9 gives no chance to flush. The run reads DEAD, and points that
    were never flushed (flush interval an hour here) are absent, not half-present."""
    proc, exp_id, rec_id = _run_until_ready(tmp_path, "sleep")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    store = tmp_path / "store"
    rec = (
        ExpManager(uri=str(store))
        .get_exp(experiment_id=exp_id, create=False)
        .get_recorder(recorder_id=rec_id, create=False)
    )
    assert rec.status == liveness.DEAD
    assert len(rec.get_metric_history()) in (0, 10000)
    report = tracklite.check(store)
    assert report.kinds() == {"dead_run": 1}
