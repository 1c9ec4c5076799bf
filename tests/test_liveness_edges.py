"""The edges of liveness judgement, with real processes and real files: the staleness bound
itself, a zombie owner, owners written without an exact start time, malformed owner records,
and a machine without /proc."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tracklite import TrackliteWarning, liveness
from tracklite.store import layout
from tracklite.store import owner as owners

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs procfs")

_ELSEWHERE = {"host": "not-" + socket.gethostname(), "pid": 1}


def _beat_at(folder: Path, when: int) -> None:
    assert liveness.beat(folder)
    os.utime(folder / layout.HEARTBEAT_FILE, (when, when))


def test_a_heartbeat_exactly_stale_after_old_is_still_alive(tmp_path: Path) -> None:
    when = int(time.time()) - 1000  # whole seconds: the ages below are exact
    _beat_at(tmp_path, when)
    bound = liveness.STALE_AFTER
    assert liveness.heartbeat_age(tmp_path, when + 7.0) == 7.0
    assert liveness.owner_alive(_ELSEWHERE, tmp_path, when + bound) is True
    assert liveness.owner_alive(_ELSEWHERE, tmp_path, when + bound + 0.5) is False
    meta = {"status": "RUNNING", "owner": _ELSEWHERE}
    assert liveness.effective_status(meta, tmp_path, when + bound) == "RUNNING"
    assert liveness.effective_status(meta, tmp_path, when + bound + 0.5) == liveness.DEAD


def test_the_heartbeat_wins_over_recorder_json(tmp_path: Path) -> None:
    (tmp_path / layout.RECORDER_FILE).write_text("{}")
    os.utime(tmp_path / layout.RECORDER_FILE, (100, 100))
    _beat_at(tmp_path, 5000)
    assert liveness.heartbeat_age(tmp_path, 5010.0) == 10.0
    (tmp_path / layout.HEARTBEAT_FILE).unlink()
    assert liveness.heartbeat_age(tmp_path, 5010.0) == 4910.0
    # Without ``now``, the reader's clock.
    age = liveness.heartbeat_age(tmp_path)
    assert age is not None and abs(age - (time.time() - 100)) < 60


def test_a_zombie_owner_is_gone(tmp_path: Path) -> None:
    child = subprocess.Popen(["sleep", "0"])  # exits at once; never reaped until wait()
    try:
        deadline = time.monotonic() + 60
        while (owners._proc_stat(child.pid) or ("",))[0] != "Z":
            assert time.monotonic() < deadline, "the child never became a zombie"
            time.sleep(0.01)
        stat = owners._proc_stat(child.pid)
        assert stat is not None
        owner = {"host": socket.gethostname(), "pid": child.pid, "pid_start": stat[1]}
        assert owners.pid_is_owner(owner) is False
        assert liveness.process_gone(owner) is True
        meta = {"status": "RUNNING", "owner": owner}
        assert liveness.effective_status(meta, tmp_path) == liveness.DEAD
    finally:
        child.wait()


def test_owner_without_exact_start_is_judged_by_the_run_start() -> None:
    """A live pid is the owner unless its process started after the run did."""
    parent = os.getppid()  # started before this test: alive and may own a run started now
    now = datetime.now(timezone.utc).isoformat()
    assert owners.pid_is_owner({"pid": parent, "started": now}) is True
    assert owners.pid_is_owner({"pid": parent, "started": "1970-01-02T00:00:00+00:00"}) is False
    # Nothing to compare with: never called dead on a guess.
    assert owners.pid_is_owner({"pid": parent}) is True
    assert owners.pid_is_owner({"pid": parent, "started": "not a time"}) is True
    assert owners.pid_is_owner({"pid": parent, "started": 12}) is True
    # A process that started within the slack after the run is still taken as the owner.
    sleeper = subprocess.Popen(["sleep", "600"])
    try:
        stat = owners._proc_stat(sleeper.pid)
        assert stat is not None
        boot = owners._boot_time()
        assert boot is not None
        began = boot + stat[1] / os.sysconf("SC_CLK_TCK")
        at = datetime.fromtimestamp(began - owners.PID_START_SLACK / 2, timezone.utc)
        assert owners.pid_is_owner({"pid": sleeper.pid, "started": at.isoformat()}) is True
        before = datetime.fromtimestamp(began - 60, timezone.utc).isoformat()
        assert owners.pid_is_owner({"pid": sleeper.pid, "started": before}) is False
        # The exact start time, when recorded, decides alone.
        exact = {"pid": sleeper.pid, "pid_start": stat[1], "started": before}
        assert owners.pid_is_owner(exact) is True
    finally:
        sleeper.kill()
        sleeper.wait()


def test_boot_time_is_the_kernels() -> None:
    line = next(x for x in Path("/proc/stat").read_text().splitlines() if x.startswith("btime "))
    assert owners._boot_time() == float(line.split()[1])


def test_malformed_owner_records_are_never_this_machines_processes(tmp_path: Path) -> None:
    mine = liveness.owner_record()
    assert not owners.same_machine({**mine, "pid": str(os.getpid())})
    assert not owners.same_machine({k: v for k, v in mine.items() if k != "pid"})
    # A record without the optional identity fields is judged by host and pid alone.
    bare = {"host": mine["host"], "pid": mine["pid"]}
    assert owners.same_machine(bare)
    assert liveness.process_gone(bare) is False
    meta = {"status": "RUNNING", "owner": "pid 12"}
    assert liveness.owner_alive("pid 12", tmp_path) is None  # no heartbeat: cannot tell
    assert liveness.effective_status(meta, tmp_path) == "RUNNING"
    # Another machine's owner is never known to be gone without a heartbeat.
    assert liveness.process_gone(_ELSEWHERE) is False


def test_describe_owner() -> None:
    assert liveness.describe_owner({"pid": 123, "host": "node7"}) == "pid 123 on node7"
    assert liveness.describe_owner(None) == "an unknown process"
    assert liveness.describe_owner(["pid", 1]) == "an unknown process"


def test_without_procfs_a_pid_that_exists_is_alive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where there is no /proc (macOS), only whether the pid exists can be seen."""
    monkeypatch.setattr(owners, "_PROC", tmp_path / "no-proc")
    sleeper = subprocess.Popen(["sleep", "600"])
    try:
        status = Path(f"/proc/{sleeper.pid}/status")
        deadline = time.monotonic() + 60
        while not re.search(r"^Name:\tsleep\n(.*\n)*State:\tS", status.read_text(), re.M):
            assert time.monotonic() < deadline, status.read_text()
            time.sleep(0.01)
        assert owners.pid_is_owner({"pid": sleeper.pid, "pid_start": -1}) is True
        # Asking is signal 0: the process is only looked up, never sent a signal (one sent
        # would show pending, or the process woken or gone).
        after = status.read_text()
        assert re.search(r"^State:\tS", after, re.M), after
        assert re.search(r"^ShdPnd:\t0+$", after, re.M), after
        assert re.search(r"^SigPnd:\t0+$", after, re.M), after
    finally:
        sleeper.kill()
        sleeper.wait()
    assert owners.pid_is_owner({"pid": sleeper.pid, "pid_start": -1}) is False


def test_machine_identity_is_read_once_a_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(owners, "_machine_cache", {})
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    pid_ns = os.readlink("/proc/self/ns/pid")
    assert (owners._boot_id(), owners._pid_namespace()) == (boot, pid_ns)
    # Read once: later calls (one per recorder judged) do not go back to /proc.
    monkeypatch.setattr(owners, "_PROC", tmp_path / "no-proc")
    assert (owners._boot_id(), owners._pid_namespace()) == (boot, pid_ns)


def test_an_owner_record_without_procfs_holds_host_pid_and_start_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(owners, "_machine_cache", {})
    monkeypatch.setattr(owners, "_start_cache", {})
    monkeypatch.setattr(owners, "_PROC", tmp_path / "no-proc")
    record = liveness.owner_record()
    assert sorted(record) == ["host", "pid", "started"]
    assert (owners._boot_id(), owners._pid_namespace()) == (None, None)
    assert owners._boot_time() is None
    assert owners.same_machine(record)


def test_the_default_heartbeat_interval_is_ten_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRACKLITE_HEARTBEAT_INTERVAL", raising=False)
    monkeypatch.setattr(liveness, "STALE_AFTER", 180.0)
    assert liveness._heartbeat_interval() == 10.0
    monkeypatch.setattr(liveness, "STALE_AFTER", 15.0)  # at least three beats within it
    with pytest.warns(TrackliteWarning, match="every 5 s"):
        assert liveness._heartbeat_interval() == 5.0


def test_without_a_boot_time_a_pid_is_never_taken_for_a_newer_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A start far after the run's: with the kernel's boot time, a newer process (pid reused);
    # with no boot time to place it, no guess either way: not newer.
    started = "2024-01-01T00:00:00+00:00"
    assert owners._started_after(2**40, started) is True
    monkeypatch.setattr(owners, "_PROC", tmp_path / "no-proc")
    assert owners._boot_time() is None
    assert owners._started_after(2**40, started) is False
