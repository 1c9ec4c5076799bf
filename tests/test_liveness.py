"""Liveness: a RUNNING recorder whose process is gone reads as DEAD, with real processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _reliability import kill9, read_line, spawn

from tracklite import ExpManager, R, liveness
from tracklite.store import atomic, layout

CHILD = """
    from tracklite import R
    exp = R.start_exp(experiment_name="live")
    rec = R.get_recorder()
    print("READY", exp.id, rec.id, flush=True)
    import time
    time.sleep(600)
"""


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # outside git: run starts do not snapshot the repo
    return tmp_path / "store"


def start_child(store: Path) -> tuple[subprocess.Popen[str], str, str]:
    proc = spawn(CHILD, store, store.parent)
    exp_id, rec_id = read_line(proc, "READY").split()
    return proc, exp_id, rec_id


def status_everywhere(store: Path, exp_id: str, rec_id: str) -> set[str]:
    """The status as Recorder.status, Recorder.info, list_recorders and search_records show it."""
    manager = ExpManager(uri=str(store))
    experiment = manager.get_exp(experiment_id=exp_id, create=False)
    recorder = experiment.get_recorder(recorder_id=rec_id, create=False)
    listed = experiment.list_recorders()
    assert isinstance(listed, dict)
    frame = manager.search_records([exp_id])
    row = frame[frame["run_id"] == rec_id]
    return {recorder.status, recorder.info["status"], listed[rec_id].status, row["status"].iat[0]}


def stored_status(store: Path, exp_id: str, rec_id: str) -> str:
    meta = atomic.read_json(store / exp_id / rec_id / layout.RECORDER_FILE)
    return str(meta["status"])


def test_live_child_reads_running_then_dead_after_kill9(store: Path) -> None:
    proc, exp_id, rec_id = start_child(store)
    try:
        assert status_everywhere(store, exp_id, rec_id) == {"RUNNING"}
        experiment = ExpManager(uri=str(store)).get_exp(experiment_id=exp_id, create=False)
        assert list(experiment.list_recorders(status="RUNNING")) == [rec_id]
        assert list(experiment.list_recorders(status=liveness.DEAD)) == []
    finally:
        kill9(proc)
    assert status_everywhere(store, exp_id, rec_id) == {liveness.DEAD}
    assert list(experiment.list_recorders(status=liveness.DEAD)) == [rec_id]
    assert list(experiment.list_recorders(status="RUNNING")) == []
    frame = ExpManager(uri=str(store)).search_records(
        [exp_id], filter_string="attributes.status = 'DEAD'"
    )
    assert list(frame["run_id"]) == [rec_id]
    # Readers never write: the stored status is still RUNNING until `check --fix`.
    assert stored_status(store, exp_id, rec_id) == "RUNNING"


def test_zombie_owner_reads_dead(store: Path) -> None:
    proc, exp_id, rec_id = start_child(store)
    os.kill(proc.pid, 9)
    # Not reaped yet: /proc/<pid> still exists, in state Z.
    deadline = time.monotonic() + 60
    while Path(f"/proc/{proc.pid}/stat").read_text().split(") ")[1][0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert status_everywhere(store, exp_id, rec_id) == {liveness.DEAD}
    proc.wait()


def test_reused_pid_reads_dead(store: Path) -> None:
    """The owner's pid now belongs to another process: force a real pid reuse through
    ``ns_last_pid`` when permitted, else point the owner at a live process started later."""
    proc, exp_id, rec_id = start_child(store)
    kill9(proc)
    impostor = _spawn_with_pid(proc.pid)
    if impostor is None:
        impostor = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        time.sleep(0.2)
        rec_dir = store / exp_id / rec_id
        meta = atomic.read_json(rec_dir / layout.RECORDER_FILE)
        meta["owner"]["pid"] = impostor.pid
        atomic.write_json(rec_dir / layout.RECORDER_FILE, meta)
    try:
        assert os.path.exists(f"/proc/{impostor.pid}")
        assert status_everywhere(store, exp_id, rec_id) == {liveness.DEAD}
    finally:
        impostor.kill()
        impostor.wait()


def _spawn_with_pid(pid: int) -> subprocess.Popen[bytes] | None:
    """Start a process that gets exactly ``pid`` (Linux, root), or None if that fails."""
    knob = Path("/proc/sys/kernel/ns_last_pid")
    for _ in range(20):
        try:
            knob.write_text(str(pid - 1))
        except OSError:
            return None
        child = subprocess.Popen(["sleep", "600"])
        if child.pid == pid:
            return child
        child.kill()
        child.wait()
    return None


def test_pid_reuse_without_exact_start_uses_start_time(tmp_path: Path) -> None:
    """Owners written without ``pid_start`` (non-Linux writers): a pid whose process started
    after the run did is not the owner; one that started before may be."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        time.sleep(0.1)
        owner = {k: v for k, v in liveness.owner_record().items() if k != "pid_start"}
        owner["pid"] = sleeper.pid
        meta = {"status": "RUNNING", "owner": owner}
        owner["started"] = "2000-01-01T00:00:00+00:00"  # run started long before the pid did
        assert liveness.effective_status(meta, tmp_path) == liveness.DEAD
        owner["started"] = "2100-01-01T00:00:00+00:00"
        assert liveness.effective_status(meta, tmp_path) == "RUNNING"
    finally:
        sleeper.kill()
        sleeper.wait()


def test_other_host_uses_heartbeat_age(tmp_path: Path) -> None:
    rec_dir = tmp_path / "rec"
    rec_dir.mkdir()
    meta = {
        "status": "RUNNING",
        "owner": {
            "host": "node-that-is-not-" + socket.gethostname(),
            "pid": 1,
            "started": "2020-01-01T00:00:00+00:00",
        },
    }
    # No heartbeat and no recorder.json: nothing to judge by, never called dead on a guess.
    assert liveness.effective_status(meta, rec_dir) == "RUNNING"
    assert liveness.beat(rec_dir)
    assert liveness.effective_status(meta, rec_dir) == "RUNNING"
    old = time.time() - liveness.STALE_AFTER - 5
    os.utime(rec_dir / layout.HEARTBEAT_FILE, (old, old))
    assert liveness.effective_status(meta, rec_dir) == liveness.DEAD
    assert liveness.beat(rec_dir)  # a beat brings it back
    assert liveness.effective_status(meta, rec_dir) == "RUNNING"
    # Same host name but another boot (a reboot, or a twin node): the pid means nothing here.
    twin = dict(meta, owner=dict(liveness.owner_record(), boot_id="another-boot", pid=1))
    assert liveness.effective_status(twin, rec_dir) == "RUNNING"
    os.utime(rec_dir / layout.HEARTBEAT_FILE, (old, old))
    assert liveness.effective_status(twin, rec_dir) == liveness.DEAD


def test_missing_heartbeat_falls_back_to_recorder_json(tmp_path: Path) -> None:
    meta = {"status": "RUNNING", "owner": {"host": "elsewhere", "pid": 5}}
    atomic.write_json(tmp_path / layout.RECORDER_FILE, meta)
    assert liveness.effective_status(meta, tmp_path) == "RUNNING"
    old = time.time() - liveness.STALE_AFTER - 5
    os.utime(tmp_path / layout.RECORDER_FILE, (old, old))
    assert liveness.effective_status(meta, tmp_path) == liveness.DEAD


def test_ended_statuses_are_never_changed(tmp_path: Path) -> None:
    for status in ("FINISHED", "FAILED", "SCHEDULED"):
        meta = {"status": status, "owner": {"host": socket.gethostname(), "pid": 2**22 + 7}}
        assert liveness.effective_status(meta, tmp_path) == status


def test_own_run_is_running_and_has_a_heartbeat(store: Path) -> None:
    R.set_uri(str(store))
    try:
        R.start_exp(experiment_name="mine")
        recorder = R.get_recorder()
        assert recorder.status == "RUNNING" and recorder.info["status"] == "RUNNING"
        heartbeat = recorder.ref.dir / layout.HEARTBEAT_FILE
        assert heartbeat.is_file() and time.time() - heartbeat.stat().st_mtime < 30
        meta = json.loads(recorder.ref.meta_path.read_text())
        assert meta["owner"]["pid"] == os.getpid()
        assert meta["owner"]["host"] == socket.gethostname()
        assert isinstance(meta["owner"]["started"], str)
        assert recorder.refresh().status == "RUNNING"
        R.end_exp()
        assert R.get_recorder(recorder_id=recorder.id, experiment_name="mine").status == "FINISHED"
    finally:
        R.end_exp()
        R.set_uri(None)


def test_beat_on_missing_folder(tmp_path: Path) -> None:
    assert liveness.beat(tmp_path / "gone") is False
    target = tmp_path / "rec"
    target.mkdir()
    assert liveness.beat(target) is True
    first = (target / layout.HEARTBEAT_FILE).stat().st_mtime_ns
    old = time.time() - 100
    os.utime(target / layout.HEARTBEAT_FILE, (old, old))
    assert liveness.beat(target)
    assert (target / layout.HEARTBEAT_FILE).stat().st_mtime_ns >= first


def test_resumed_run_gets_new_owner(store: Path) -> None:
    proc, exp_id, rec_id = start_child(store)
    kill9(proc)
    assert status_everywhere(store, exp_id, rec_id) == {liveness.DEAD}
    R.set_uri(str(store))
    try:
        R.start_exp(experiment_id=exp_id, recorder_id=rec_id, resume=True)
        assert status_everywhere(store, exp_id, rec_id) == {"RUNNING"}
        meta = atomic.read_json(store / exp_id / rec_id / layout.RECORDER_FILE)
        assert meta["owner"]["pid"] == os.getpid()
    finally:
        R.end_exp()
        R.set_uri(None)
