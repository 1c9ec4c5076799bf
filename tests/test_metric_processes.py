"""The writer across processes: several writers of one recorder, fork, signals, process exit,
the latest-value summary from many processes, and a permission lost mid-run."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _metric_support import (
    new_R,
    on_disk,
    pairs,
    run,
    segment_files,
    spawn,
    status_on_disk,
    writer_settings,
)

from tracklite import ExpManager, QlibRecorder, Recorder
from tracklite.metrics.writer import get_writer

FORK = multiprocessing.get_context("fork")


@pytest.fixture
def R(tmp_path: Path) -> Iterator[QlibRecorder]:
    r = new_R(tmp_path)
    yield r
    if r.exp_manager.active_experiment is not None:
        r.end_exp("FAILED")


def fresh_recorder(uri: str, rid: str, experiment: str) -> Recorder:
    """The recorder as read from disk by a new manager."""
    return new_R_at(uri).get_recorder(recorder_id=rid, experiment_name=experiment)


def new_R_at(uri: str) -> QlibRecorder:
    return QlibRecorder(ExpManager(uri=uri))


def one_recorder(R: QlibRecorder, experiment: str = "multi") -> Recorder:
    """A recorder created and ended in this process, for other processes to resume."""
    with R.start(experiment_name=experiment):
        return R.get_recorder()


# ---------------------------------------------------------------------- many writers


def test_processes_resume_and_log_into_one_recorder(R: QlibRecorder, tmp_path: Path) -> None:
    """3 processes resume one recorder and log at once (each flushing often and compacting at
    its end while the others still write): every point once, and a plain read_parquet of the
    folder agrees once all have ended."""
    rec = one_recorder(R)
    go = tmp_path / "go"
    workers, calls = 3, 300
    procs = [
        spawn(
            f"""
            import os, time
            from tracklite import ExpManager, QlibRecorder
            R = QlibRecorder(ExpManager(uri={R.get_uri()!r}))
            while not os.path.exists({str(go)!r}):
                time.sleep(0.002)
            with R.start(experiment_name="multi", recorder_id={rec.id!r}, resume=True):
                for j in range({calls}):
                    step = {index} * {calls} + j
                    R.log_metrics(step=step, shared=step * 0.5, p{index}=float(j))
            """,
            tmp_path,
            TRACKLITE_FLUSH_INTERVAL="0.01",
            TRACKLITE_FLUSH_POINTS="64",
        )
        for index in range(workers)
    ]
    time.sleep(0.3)
    go.touch()
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stderr.read() if proc.stderr else ""
    history = fresh_recorder(R.get_uri(), rec.id, "multi").get_metric_history()
    expected = [("shared", s, s * 0.5) for s in range(workers * calls)]
    expected += [(f"p{i}", i * calls + j, float(j)) for i in range(workers) for j in range(calls)]
    assert pairs(history) == sorted(expected)
    for index in range(workers):  # each process's points in its logging order
        own = history[history["key"] == f"p{index}"]
        assert own["value"].tolist() == [float(j) for j in range(calls)]
    assert len(segment_files(rec)) == 1
    plain = pd.read_parquet(rec.ref.metrics_dir)
    assert pairs(plain) == pairs(history)
    assert status_on_disk(R.get_uri(), rec.experiment_id, rec.id) == "FINISHED"
    latest = fresh_recorder(R.get_uri(), rec.id, "multi").list_metrics()
    assert latest["shared"] == (workers * calls - 1) * 0.5


def _resume_and_log(uri: str, rid: str, index: int, calls: int) -> None:
    """A multiprocessing child: resume ``rid`` through Experiment.get_recorder + start_run."""
    get_writer().configure(flush_interval=0.01, flush_points=32, max_points=64)
    exp = new_R_at(uri).get_exp(experiment_name="multi", create=False)
    rec = exp.get_recorder(recorder_id=rid, create=False)
    rec.start_run()
    for j in range(calls):
        rec.log_metrics(step=index * calls + j, x=float(index))
    rec.end_run("FINISHED")


def test_forked_workers_resume_one_recorder(R: QlibRecorder) -> None:
    rec = one_recorder(R)
    procs = [
        FORK.Process(target=_resume_and_log, args=(R.get_uri(), rec.id, i, 300)) for i in range(3)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    history = fresh_recorder(R.get_uri(), rec.id, "multi").get_metric_history()
    assert pairs(history) == [("x", s, float(s // 300)) for s in range(900)]
    assert len(segment_files(rec)) == 1


def _log_from_elsewhere(uri: str, rid: str, points: list[tuple[int, float]]) -> None:
    """A forked child logging into a recorder it did not start (written at once)."""
    rec = fresh_recorder(uri, rid, "latest")
    for step, value in points:
        rec.log_metrics(step=step, loss=value)


def in_child(target: Any, *args: Any) -> None:
    proc = FORK.Process(target=target, args=args)
    proc.start()
    proc.join(60)
    assert proc.exitcode == 0


def test_latest_value_across_processes(R: QlibRecorder) -> None:
    """MLflow's rule holds whichever process wrote last: highest step, then newest time."""
    with writer_settings(flush_interval=60):
        R.start_exp(experiment_name="latest")
        rec = R.get_recorder()
        R.log_metrics(step=5, loss=1.0)
        R.flush()
        in_child(_log_from_elsewhere, R.get_uri(), rec.id, [(10, 2.0), (3, 3.0)])
        assert rec.list_metrics() == {"loss": 2.0}
        R.log_metrics(step=7, loss=4.0)  # this process, later, but a lower step
        assert rec.list_metrics() == {"loss": 2.0}
        in_child(_log_from_elsewhere, R.get_uri(), rec.id, [(10, 5.0)])  # same step, newer
        assert rec.list_metrics() == {"loss": 5.0}
        R.log_metrics(step=10, loss=6.0)
        R.end_exp()
    summary = json.loads(rec.ref.meta_path.read_text())["metrics"]["loss"]
    assert (summary["step"], summary["value"]) == (10, 6.0)


# ---------------------------------------------------------------------- fork


def test_fork_child_with_pending_points_in_the_parent(R: QlibRecorder) -> None:
    """os.fork with unwritten points: the child logs to the same and to a new recorder; the
    parent's pending points are written once, by the parent."""
    with writer_settings(flush_interval=60):
        exp = R.start_exp(experiment_name="fork")
        rec = R.get_recorder()
        for step in range(100):
            R.log_metrics(step=step, loss=float(step))
        assert get_writer().buffer(rec.ref).pending() == 100
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through its exit code
            code = 1
            try:
                for step in range(100, 150):
                    R.log_metrics(step=step, loss=float(step))
                child = exp.create_recorder("child").start_run()
                child.log_metrics(step=1, c=1.0)
                child.end_run("FINISHED")
                R.flush()
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        for step in range(150, 200):
            R.log_metrics(step=step, loss=float(step))
        R.end_exp()
    assert pairs(rec.get_metric_history()) == [("loss", s, float(s)) for s in range(200)]
    child_rec = exp.get_recorder(recorder_name="child", create=False)
    assert pairs(child_rec.get_metric_history()) == [("c", 1, 1.0)]
    assert child_rec.status == "FINISHED"
    assert status_on_disk(R.get_uri(), rec.experiment_id, rec.id) == "FINISHED"


def _log_in_child(R: QlibRecorder) -> None:
    """A multiprocessing child: logs, starts a recorder of its own, and just returns."""
    for step in range(100, 150):
        R.log_metrics(step=step, loss=float(step))
    child = R.get_exp().create_recorder("child").start_run()
    child.log_metrics(step=1, c=1.0)  # never flushed nor ended explicitly


def test_multiprocessing_fork_child_writes_its_points_at_exit(R: QlibRecorder) -> None:
    with writer_settings(flush_interval=60):
        exp = R.start_exp(experiment_name="fork")
        rec = R.get_recorder()
        for step in range(100):
            R.log_metrics(step=step, loss=float(step))
        proc = FORK.Process(target=_log_in_child, args=(R,))
        proc.start()
        proc.join(60)
        assert proc.exitcode == 0
        R.end_exp()
    assert pairs(rec.get_metric_history()) == [("loss", s, float(s)) for s in range(150)]
    child_rec = exp.get_recorder(recorder_name="child", create=False)
    assert pairs(child_rec.get_metric_history()) == [("c", 1, 1.0)]


def test_fork_right_after_start_and_normal_child_exit(R: QlibRecorder, tmp_path: Path) -> None:
    """A fresh interpreter forks at once after starting a run (the writer thread may still be
    importing pyarrow), and the child leaves through a normal interpreter exit: the child must
    not hang, must write its own points, and must not end its parent's run."""
    uri = R.get_uri()
    done = run(
        f"""
        import json, os, sys, time
        from tracklite import ExpManager, QlibRecorder
        from tracklite.store.root import Store
        R = QlibRecorder(ExpManager(uri={uri!r}))
        exp = R.start_exp(experiment_name="fork")
        rec = R.get_recorder()
        R.log_metrics(step=0, loss=0.0)
        pid = os.fork()
        if pid == 0:
            R.log_metrics(step=1, loss=1.0)
            child = exp.create_recorder("child").start_run()
            child.log_metrics(step=0, c=1.0)  # never flushed nor ended
            sys.exit(0)  # atexit handlers run: they must not end the parent's run
        deadline = time.monotonic() + 120
        while os.waitpid(pid, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(pid, 9)
                sys.exit("the forked child hung")
            time.sleep(0.01)
        status = Store({uri!r}).read_recorder(rec.experiment_id, rec.id)["status"]
        R.log_metrics(step=2, loss=2.0)
        R.end_exp()
        print(json.dumps([rec.id, status]))
        """,
        tmp_path,
        TRACKLITE_FLUSH_INTERVAL="60",
    )
    rid, status_after_child = json.loads(done.stdout.splitlines()[-1])
    assert status_after_child == "RUNNING"
    rec = fresh_recorder(uri, rid, "fork")
    assert rec.status == "FINISHED"
    assert pairs(rec.get_metric_history()) == [("loss", s, float(s)) for s in range(3)]
    child = new_R_at(uri).get_recorder(recorder_name="child", experiment_name="fork")
    assert pairs(child.get_metric_history()) == [("c", 0, 1.0)]  # written by the child's exit


@pytest.mark.parametrize(
    "leave", ["raise RuntimeError('child failed')", "sys.exit(3)", "raise KeyboardInterrupt"]
)
def test_forked_child_leaving_the_with_block_does_not_end_the_parents_run(
    R: QlibRecorder, tmp_path: Path, leave: str
) -> None:
    """A bare ``os.fork()`` inside ``with R.start()``: the child unwinds the same ``with`` block
    (an exception or ``sys.exit``); it writes its own points but leaves the parent's run
    RUNNING, and the parent goes on logging and ends it FINISHED."""
    uri = R.get_uri()
    done = run(
        f"""
        import json, os, sys, time
        from tracklite import ExpManager, QlibRecorder
        from tracklite.store.root import Store
        R = QlibRecorder(ExpManager(uri={uri!r}))
        with R.start(experiment_name="fork"):
            rec = R.get_recorder()
            R.log_metrics(step=0, loss=0.0)
            pid = os.fork()
            if pid == 0:
                R.log_metrics(step=1, loss=1.0)
                {leave}
            _, code = os.waitpid(pid, 0)
            status = Store({uri!r}).read_recorder(rec.experiment_id, rec.id)["status"]
            R.log_metrics(step=2, loss=2.0)
        print(json.dumps([rec.id, status, os.waitstatus_to_exitcode(code)]))
        """,
        tmp_path,
        TRACKLITE_FLUSH_INTERVAL="60",
    )
    rid, status_after_child, child_code = json.loads(done.stdout.splitlines()[-1])
    assert child_code != 0  # the child did leave through its exception
    assert status_after_child == "RUNNING"
    rec = fresh_recorder(uri, rid, "fork")
    assert rec.status == "FINISHED"
    assert pairs(rec.get_metric_history()) == [("loss", s, float(s)) for s in range(3)]


# ---------------------------------------------------------------------- signals and exit

LOOP = """
from tracklite import ExpManager, QlibRecorder
R = QlibRecorder(ExpManager(uri={uri!r}))
{start}
print("rid", R.get_recorder().id, flush=True)
step = 0
while True:
    R.log_metrics(step=step, a=float(step), b=-float(step))
    print("ack", step, flush=True)
    step += 1
"""


def read_acks(proc: Any, until: int) -> tuple[str, int]:
    """The recorder id the child printed, and its last ack once it reached ``until``."""
    assert proc.stdout is not None
    rid = proc.stdout.readline().split()[1]
    last = -1
    while last < until:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        last = int(line.split()[1])
    return rid, last


def rest_of_acks(proc: Any, last: int) -> int:
    out, _ = proc.communicate(timeout=60)
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "ack" and parts[1].isdigit():
            last = int(parts[1])
    return last


def assert_prefix_on_disk(uri: str, rid: str, acked: int) -> None:
    """Both keys of every step 0..n-1 for some n > acked, each once."""
    frame = fresh_recorder(uri, rid, "sig").get_metric_history()
    steps = sorted(frame.loc[frame["key"] == "a", "step"])
    assert steps == list(range(len(steps)))
    assert len(steps) > acked
    assert sorted(frame.loc[frame["key"] == "b", "step"]) == steps


def test_sigterm_flushes_and_ends_failed(R: QlibRecorder, tmp_path: Path) -> None:
    """Two loggers, terminated after different amounts of work (nothing flushed before)."""
    uri = R.get_uri()
    start = 'R.start_exp(experiment_name="sig")'
    procs = [
        # An hour-long interval: the second child waits its turn for minutes on a loaded machine.
        spawn(LOOP.format(uri=uri, start=start), tmp_path, TRACKLITE_FLUSH_INTERVAL="3600")
        for _ in range(2)
    ]
    for proc, after in zip(procs, [20, 1000], strict=True):
        rid, last = read_acks(proc, after)
        assert on_disk(fresh_recorder(uri, rid, "sig").ref).empty  # all still pending
        proc.send_signal(signal.SIGTERM)
        last = rest_of_acks(proc, last)
        assert proc.returncode == 143
        assert_prefix_on_disk(uri, rid, last)
        exp_id = fresh_recorder(uri, rid, "sig").experiment_id
        assert status_on_disk(uri, exp_id, rid) == "FAILED"


def test_sigint_inside_with_start_ends_failed(R: QlibRecorder, tmp_path: Path) -> None:
    uri = R.get_uri()
    code = f"""
from tracklite import ExpManager, QlibRecorder
R = QlibRecorder(ExpManager(uri={uri!r}))
with R.start(experiment_name="sig"):
    print("rid", R.get_recorder().id, flush=True)
    step = 0
    while True:
        R.log_metrics(step=step, a=float(step), b=-float(step))
        print("ack", step, flush=True)
        step += 1
"""
    proc = spawn(code, tmp_path, TRACKLITE_FLUSH_INTERVAL="60")
    rid, last = read_acks(proc, 300)
    proc.send_signal(signal.SIGINT)
    last = rest_of_acks(proc, last)
    assert proc.returncode in (-signal.SIGINT, 130, 1)
    assert_prefix_on_disk(uri, rid, last)
    exp_id = fresh_recorder(uri, rid, "sig").experiment_id
    assert status_on_disk(uri, exp_id, rid) == "FAILED"


def test_normal_exit_without_end_exp_finishes_the_run(R: QlibRecorder, tmp_path: Path) -> None:
    uri = R.get_uri()
    done = run(
        f"""
        from tracklite import ExpManager, QlibRecorder
        R = QlibRecorder(ExpManager(uri={uri!r}))
        R.start_exp(experiment_name="sig")
        print(R.get_recorder().id)
        for step in range(1000):
            R.log_metrics(step=step, a=float(step), b=-float(step))
        """,
        tmp_path,
        TRACKLITE_FLUSH_INTERVAL="60",
    )
    rid = done.stdout.split()[0]
    rec = fresh_recorder(uri, rid, "sig")
    assert rec.status == "FINISHED"
    assert len(rec.get_metric_history()) == 2000
    assert len(segment_files(rec)) == 1


# ---------------------------------------------------------------------- permission lost


@pytest.fixture
def nobody_dir() -> Iterator[Path]:
    """A folder the unprivileged user 65534 owns (pytest's own tmp folders are root-only)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user")
    path = Path(tempfile.mkdtemp(prefix="tracklite-nobody-"))
    os.chown(path, 65534, 65534)
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


def test_permission_lost_mid_run(nobody_dir: Path, tmp_path: Path) -> None:
    """A writer that loses write permission on metrics/ raises MetricWriteError naming the
    recorder, keeps every accepted point, and writes them once the permission is back."""
    uri = str(nobody_dir / "store")
    proc = spawn(
        f"""
        import json, os, sys, time
        from tracklite import ExpManager, MetricWriteError, QlibRecorder
        # The interpreter's files are root-only here: load every module while still root,
        # with a full run on a scratch store, then drop to the unprivileged user.
        with QlibRecorder(ExpManager(uri={str(tmp_path / "scratch")!r})).start() as exp:
            exp.active_recorder.log_metrics(step=0, x=1.0)
            exp.active_recorder.get_metric_history()
            exp.active_recorder.list_metrics()
        os.setgid(65534)
        os.setuid(65534)
        R = QlibRecorder(ExpManager(uri={uri!r}))
        R.start_exp(experiment_name="perm")
        rec = R.get_recorder()
        accepted = []
        for step in range(10):
            R.log_metrics(step=step, loss=float(step))
            accepted.append(step)
        R.flush()
        print(rec.ref.metrics_dir, flush=True)
        sys.stdin.readline()  # the parent has made metrics/ read-only
        errors = []
        for step in range(10, 40):
            try:
                R.log_metrics(step=step, loss=float(step))
                accepted.append(step)
            except MetricWriteError as exc:
                errors.append(str(exc))
            time.sleep(0.005)
        try:
            R.flush()
        except MetricWriteError as exc:
            errors.append(str(exc))
        print(json.dumps([rec.id, errors]), flush=True)
        sys.stdin.readline()  # the permission is back
        try:
            R.flush()
        except MetricWriteError:
            R.flush()  # a failure met just before the repair is reported once more
        R.end_exp()
        print(json.dumps(accepted), flush=True)
        """,
        tmp_path,
        TRACKLITE_FLUSH_INTERVAL="0.02",
    )
    assert proc.stdout is not None and proc.stdin is not None
    line = proc.stdout.readline()
    assert line, proc.stderr.read() if proc.stderr else ""
    metrics_dir = Path(line.strip())
    metrics_dir.chmod(0o555)
    proc.stdin.write("\n")
    proc.stdin.flush()
    rid, errors = json.loads(proc.stdout.readline())
    assert errors and all(rid in message for message in errors)
    assert "Permission denied" in errors[0]
    assert sorted(on_disk(metrics_dir)["step"]) == list(range(10))  # nothing lost
    metrics_dir.chmod(0o755)
    proc.stdin.write("\n")
    proc.stdin.flush()
    accepted = json.loads(proc.stdout.readline())
    assert proc.wait(timeout=60) == 0
    assert len(accepted) >= 10 + 1
    frame = on_disk(metrics_dir)
    assert frame["step"].tolist() == accepted
    assert frame["value"].tolist() == [float(s) for s in accepted]


@pytest.mark.parametrize("leave", ["raise RuntimeError('child failed')", "sys.exit(3)"])
def test_forked_child_of_a_run_without_a_with_block_leaves_it_running(
    R: QlibRecorder, tmp_path: Path, leave: str
) -> None:
    """``R.start_exp`` (no ``with``), then a bare ``os.fork()`` whose child ends through an
    uncaught exception (excepthook) or ``sys.exit`` (atexit): the parent's run stays RUNNING
    while the parent logs on, and ends FINISHED with every point."""
    uri = R.get_uri()
    done = run(
        f"""
        import json, os, sys, time
        from tracklite import ExpManager, QlibRecorder
        from tracklite.store.root import Store
        R = QlibRecorder(ExpManager(uri={uri!r}))
        R.start_exp(experiment_name="fork-bare")
        rec = R.get_recorder()
        R.log_metrics(step=0, loss=0.0)
        pid = os.fork()
        if pid == 0:
            R.log_metrics(step=1, loss=1.0)
            {leave}
        _, code = os.waitpid(pid, 0)
        status = Store({uri!r}).read_recorder(rec.experiment_id, rec.id)["status"]
        R.log_metrics(step=2, loss=2.0)
        R.end_exp()
        print(json.dumps([rec.id, status, os.waitstatus_to_exitcode(code)]))
        """,
        tmp_path,
        TRACKLITE_FLUSH_INTERVAL="60",
    )
    rid, status_after_child, child_code = json.loads(done.stdout.splitlines()[-1])
    assert child_code != 0
    assert status_after_child == "RUNNING"
    rec = fresh_recorder(uri, rid, "fork-bare")
    assert rec.status == "FINISHED"
    assert pairs(rec.get_metric_history()) == [("loss", s, float(s)) for s in range(3)]
