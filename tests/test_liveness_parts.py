"""The pieces liveness judges by, checked against this machine's /proc: the owner record, the
process start time, the machine identity, the heartbeat file, and the settings."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tracklite import TrackliteWarning, UnsafeLinkError, liveness
from tracklite.store import layout
from tracklite.store import owner as owners

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs procfs")


def _stat_fields(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def test_owner_record_names_this_process_and_machine() -> None:
    record = liveness.owner_record()
    assert record["host"] == socket.gethostname()
    assert record["pid"] == os.getpid()
    assert record["boot_id"] == Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    assert record["pid_ns"] == os.readlink("/proc/self/ns/pid")
    assert record["pid_start"] == int(_stat_fields(os.getpid())[19])
    assert isinstance(record["started"], str)


def test_proc_stat_reads_state_and_start_of_a_process() -> None:
    state, ticks = owners._proc_stat(os.getpid()) or ("", -1)
    assert state in ("R", "S")
    assert ticks == int(_stat_fields(os.getpid())[19])
    assert owners._proc_stat(2**22 + 11) is None


def test_own_run_with_another_start_time_is_not_ours() -> None:
    # Our pid, but a start time that is not ours: a pid reused by this very process.
    record = liveness.owner_record()
    assert owners.pid_is_owner(record)
    assert not owners.pid_is_owner(dict(record, pid_start=record["pid_start"] + 1))
    # The parent process, with its own start time recorded: alive and the owner.
    parent = os.getppid()
    start = int(_stat_fields(parent)[19])
    assert owners.pid_is_owner({"pid": parent, "pid_start": start})
    assert not owners.pid_is_owner({"pid": parent, "pid_start": start + 1})


def test_same_host_name_in_another_pid_namespace_is_another_machine(tmp_path: Path) -> None:
    record = liveness.owner_record()
    assert owners.same_machine(record)
    assert not owners.same_machine(dict(record, pid_ns="pid:[1]"))
    assert not owners.same_machine(dict(record, boot_id="another-boot"))
    assert not owners.same_machine(dict(record, host="elsewhere"))
    # Another namespace: judged by the heartbeat, whatever the pid says.
    (tmp_path / layout.HEARTBEAT_FILE).touch()
    old = time.time() - liveness.STALE_AFTER - 5
    os.utime(tmp_path / layout.HEARTBEAT_FILE, (old, old))
    meta = {"status": "RUNNING", "owner": dict(record, pid_ns="pid:[1]")}
    assert liveness.effective_status(meta, tmp_path) == liveness.DEAD
    assert liveness.effective_status({**meta, "owner": record}, tmp_path) == "RUNNING"


def test_reader_time_decides_a_foreign_heartbeat(tmp_path: Path) -> None:
    liveness.beat(tmp_path)
    owner = {"host": "elsewhere-" + socket.gethostname(), "pid": 1}
    now = time.time()
    assert liveness.owner_alive(owner, tmp_path, now) is True
    assert liveness.owner_alive(owner, tmp_path, now + liveness.STALE_AFTER + 5) is False


def test_heartbeat_honours_the_umask_and_never_follows_a_link(tmp_path: Path) -> None:
    old = os.umask(0o002)
    try:
        assert liveness.beat(tmp_path)
    finally:
        os.umask(old)
    assert (tmp_path / layout.HEARTBEAT_FILE).stat().st_mode & 0o777 == 0o664
    target = tmp_path / "outside"
    target.write_text("keep")
    past = time.time_ns() - 1000 * 10**9
    os.utime(target, ns=(past, past))
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / layout.HEARTBEAT_FILE).symlink_to(target)
    with pytest.raises(UnsafeLinkError, match="symbolic link"):
        liveness.beat(linked)
    # Neither touched nor even opened for writing: its times are exactly as they were.
    assert target.stat().st_mtime_ns == past
    assert target.read_text() == "keep"


def test_a_heartbeat_planted_as_a_link_is_no_sign_of_life(tmp_path: Path) -> None:
    # A RUNNING recorder of another machine, silent for an hour: a heartbeat link to a file
    # outside the store that is touched all the time must not keep it alive.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "fresh").touch()
    rec = tmp_path / "store" / "exp" / "rec"
    rec.mkdir(parents=True)
    (rec / layout.RECORDER_FILE).write_text("{}")
    hour_ago = time.time() - 3600
    os.utime(rec / layout.RECORDER_FILE, (hour_ago, hour_ago))
    (rec / layout.HEARTBEAT_FILE).symlink_to(outside / "fresh")
    now = time.time()
    assert liveness.heartbeat_age(rec, now) == now - (rec / layout.RECORDER_FILE).stat().st_mtime
    meta = {"status": "RUNNING", "owner": {"host": "elsewhere-" + socket.gethostname(), "pid": 1}}
    assert liveness.effective_status(meta, rec) == liveness.DEAD
    # A recorder folder that is itself a link to a live-looking folder outside: no age at all.
    (outside / layout.HEARTBEAT_FILE).touch()
    linked = tmp_path / "store" / "exp" / "linked"
    linked.symlink_to(outside)
    assert liveness.heartbeat_age(linked) is None
    # Nor a link planted as the recorder's file while the heartbeat is missing.
    (rec / layout.HEARTBEAT_FILE).unlink()
    (rec / layout.RECORDER_FILE).unlink()
    (rec / layout.RECORDER_FILE).symlink_to(outside / "fresh")
    assert liveness.heartbeat_age(rec) is None


def test_a_pid_that_cannot_exist_is_not_the_owner() -> None:
    # Above the kernel's largest pid: no process has it, on this machine the owner is gone.
    beyond = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1
    owner = dict(liveness.owner_record(), pid=beyond)
    assert owners._proc_stat(beyond) is None
    assert owners.pid_is_owner(owner) is False
    assert liveness.owner_alive(owner, "/nonexistent") is False
    assert liveness.effective_status({"status": "RUNNING", "owner": owner}, "/x") == liveness.DEAD


def test_proc_stat_reads_a_process_whose_name_holds_parentheses() -> None:
    # The command name is the second field of /proc/<pid>/stat, between parentheses, and may
    # itself hold ") Z (": the state is read after the last one.
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; open('/proc/self/comm', 'w').write('x) Z (y'); print(flush=True); "
            "sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == b"\n"
        assert Path(f"/proc/{child.pid}/comm").read_text() == "x) Z (y\n"
        state, ticks = owners._proc_stat(child.pid) or ("", -1)
        assert state in ("R", "S") and ticks == _start(child.pid)
        assert owners.pid_is_owner({"pid": child.pid, "pid_start": _start(child.pid)})
    finally:
        child.kill()
        child.wait()


def _start(pid: int) -> int:
    return int(_stat_fields(pid)[19])


@pytest.mark.parametrize(
    ("text", "expected", "warns"),
    [
        (None, 7.0, False),
        ("2.5", 2.5, False),
        ("0.5", 0.5, False),
        ("0", 7.0, True),
        ("-3", 7.0, True),
        ("inf", 7.0, True),
        ("nan", 7.0, True),
        ("soon", 7.0, True),
    ],
)
def test_seconds_settings(
    monkeypatch: pytest.MonkeyPatch, text: str | None, expected: float, warns: bool
) -> None:
    if text is None:
        monkeypatch.delenv("TRACKLITE_TEST_SECONDS", raising=False)
    else:
        monkeypatch.setenv("TRACKLITE_TEST_SECONDS", text)
    if warns:
        with pytest.warns(TrackliteWarning, match=r"TRACKLITE_TEST_SECONDS=.*positive number"):
            assert liveness._seconds("TRACKLITE_TEST_SECONDS", 7.0) == expected
    else:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert liveness._seconds("TRACKLITE_TEST_SECONDS", 7.0) == expected


@pytest.mark.parametrize(
    ("interval", "expected", "warns"),
    [("10", 10.0, False), ("60", 60.0, False), ("61", 60.0, True), ("3600", 60.0, True)],
)
def test_heartbeat_interval_is_kept_below_a_third_of_stale_after(
    monkeypatch: pytest.MonkeyPatch, interval: str, expected: float, warns: bool
) -> None:
    monkeypatch.setattr(liveness, "STALE_AFTER", 180.0)
    monkeypatch.setenv("TRACKLITE_HEARTBEAT_INTERVAL", interval)
    if warns:
        with pytest.warns(TrackliteWarning, match="TRACKLITE_HEARTBEAT_INTERVAL=.*every 60 s"):
            assert liveness._heartbeat_interval() == expected
    else:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert liveness._heartbeat_interval() == expected
