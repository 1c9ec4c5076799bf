"""``multiprocessing.Pool`` workers terminated by the pool (SIGTERM): quiet, and a run a worker
started ends FAILED. Real pools in a child interpreter; its stderr is checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from _reliability import child_env

from tracklite import ExpManager, QlibRecorder

SCRIPT = """
import atexit, json, multiprocessing, os, sys, time
from tracklite import R

R.set_uri(sys.argv[1])
MARKS = sys.argv[1] + ".marks"  # a worker marks each step the pool must not terminate before

def mark(i):
    open(os.path.join(MARKS, str(i)), "w").close()

def wait_marks(n):
    deadline = time.monotonic() + 120
    while len(os.listdir(MARKS)) < n:
        if time.monotonic() > deadline:
            sys.exit(f"only {os.listdir(MARKS)} of {n} workers got there")
        time.sleep(0.05)

def busy_run(i):
    R.start_exp(experiment_name="w", recorder_name=f"w{i}")
    R.log_metrics(step=0, x=float(i))
    mark(i)
    time.sleep(60)

def busy(i):
    mark(i)
    time.sleep(60)

def slow_exit(i):
    mark(i)
    time.sleep(60)  # until the pool terminates it

def ended_then_slow_exit(i):
    with R.start(experiment_name="w", recorder_name=f"w{i}"):
        R.log_metrics(step=0, x=float(i))
    atexit.register(slow_exit, i)  # still exiting when the pool terminates it
    return i

if __name__ == "__main__":
    method, mode = sys.argv[2], sys.argv[3]
    os.mkdir(MARKS)
    if mode == "slow-exit":
        with multiprocessing.get_context(method).Pool(2, maxtasksperchild=1) as pool:
            pool.map(ended_then_slow_exit, range(2))
            wait_marks(2)
    elif mode == "run":  # each worker starts its own run, then the pool is left mid-task
        pool = multiprocessing.get_context(method).Pool(2)
        with pool:
            pool.map_async(busy_run, range(2))
            wait_marks(2)
        print(json.dumps([p.exitcode for p in pool._pool]))
    else:  # workers forked inside the parent's run, which never start one themselves
        with R.start(experiment_name="parent"):
            R.log_metrics(step=0, p=1.0)
            pool = multiprocessing.get_context(method).Pool(2)
            with pool:
                pool.map_async(busy, range(2))
                wait_marks(2)
        print(json.dumps([p.exitcode for p in pool._pool]))
"""


def _pool(tmp_path: Path, method: str, mode: str) -> tuple[str, str]:
    store = tmp_path / "store"
    script = tmp_path / "pool_script.py"  # a file: spawned workers import its functions
    script.write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(store), method, mode],
        cwd=tmp_path,
        env=child_env(store),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout, done.stderr


def _statuses(store: Path, experiment: str) -> dict[str, str]:
    R = QlibRecorder(ExpManager(uri=str(store)))
    exp = R.get_exp(experiment_name=experiment, create=False)
    return {rec.name: rec.status for rec in exp.list_recorders().values()}


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_terminated_workers_end_their_runs_failed_quietly(tmp_path: Path, method: str) -> None:
    out, err = _pool(tmp_path, method, "run")
    assert json.loads(out.splitlines()[-1]) == [143, 143]  # they were terminated mid-task
    assert "SystemExit" not in err and "Exception ignored" not in err, err
    assert err.strip() == ""
    assert _statuses(tmp_path / "store", "w") == {"w0": "FAILED", "w1": "FAILED"}


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_workers_without_a_run_die_quietly(tmp_path: Path, method: str) -> None:
    out, err = _pool(tmp_path, method, "idle")
    assert len(json.loads(out.splitlines()[-1])) == 2
    assert err.strip() == ""
    assert _statuses(tmp_path / "store", "parent") == {"mlflow_recorder": "FINISHED"}


def test_a_worker_terminated_while_exiting_prints_nothing(tmp_path: Path) -> None:
    _, err = _pool(tmp_path, "spawn", "slow-exit")
    assert "SystemExit" not in err and "Exception ignored" not in err, err
    assert err.strip() == ""
    assert _statuses(tmp_path / "store", "w") == {"w0": "FINISHED", "w1": "FINISHED"}
