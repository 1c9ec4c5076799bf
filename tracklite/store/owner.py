"""Who owns a recorder: the identity of the process that writes it, and whether it has ended.

A RUNNING recorder's ``recorder.json`` holds ``owner`` = ``{host, pid, started, boot_id, pid_ns,
pid_start}`` (:func:`owner_record`; the last three are Linux-only and optional), and each change
journal starts with its writer's. Readers compare an owner with this machine and its processes:
a pid on the same machine (same host name, boot and pid namespace) that no longer exists, is a
zombie, or now belongs to another process (its start time in ``/proc/<pid>/stat`` differs) is
gone. :mod:`tracklite.liveness` adds the heartbeat for owners on other machines.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from .clock import now_iso

#: Where no exact process start is recorded, a pid whose process started this many seconds after
#: the run is taken to be reused. ``/proc/stat``'s boot time has one-second resolution.
PID_START_SLACK: Final[float] = 2.0

_PROC = Path("/proc")
_machine_cache: dict[str, str | None] = {}
_start_cache: dict[int, int | None] = {}


def owner_record() -> dict[str, Any]:
    """The ``owner`` entry of ``recorder.json`` for the calling process."""
    pid = os.getpid()
    record: dict[str, Any] = {"host": socket.gethostname(), "pid": pid, "started": now_iso()}
    boot, pid_ns, start = _boot_id(), _pid_namespace(), _own_start_ticks()
    if boot is not None:
        record["boot_id"] = boot
    if pid_ns is not None:
        record["pid_ns"] = pid_ns
    if start is not None:
        record["pid_start"] = start
    return record


def process_gone(owner: Mapping[str, Any]) -> bool:
    """Whether the process recorded in ``owner`` is known to have ended (same machine only;
    elsewhere there is no telling without a heartbeat, so False)."""
    return same_machine(owner) and not pid_is_owner(owner)


def describe_owner(owner: object) -> str:
    """``pid 123 on node7`` (for messages and the ``tracklite.dead`` tag)."""
    if not isinstance(owner, Mapping):
        return "an unknown process"
    return f"pid {owner.get('pid')} on {owner.get('host')}"


# ---------------------------------------------------------------------------- machine identity


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _boot_id() -> str | None:
    # A reboot or another node gives another boot id: pids from before it mean nothing here.
    if "boot" not in _machine_cache:
        _machine_cache["boot"] = _read_text(_PROC / "sys/kernel/random/boot_id")
    return _machine_cache["boot"]


def _pid_namespace() -> str | None:
    # Two containers on one host see different pids under the same host name; only a reader in
    # the owner's pid namespace may look the pid up.
    if "pid_ns" not in _machine_cache:
        try:
            _machine_cache["pid_ns"] = os.readlink(_PROC / "self/ns/pid")
        except OSError:
            _machine_cache["pid_ns"] = None
    return _machine_cache["pid_ns"]


def same_machine(owner: Mapping[str, Any]) -> bool:
    """Whether ``owner``'s pid can be looked up here: same host, boot and pid namespace."""
    if owner.get("host") != socket.gethostname() or not isinstance(owner.get("pid"), int):
        return False
    for key, mine in (("boot_id", _boot_id()), ("pid_ns", _pid_namespace())):
        theirs = owner.get(key)
        if theirs is not None and mine is not None and theirs != mine:
            return False
    return True


# ---------------------------------------------------------------------------- processes


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks since boot) of a pid, or None if it does not exist."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[19])


def _own_start_ticks() -> int | None:
    pid = os.getpid()  # cached per pid: a forked child has its own
    if pid not in _start_cache:
        try:
            stat = _proc_stat(pid)
        except (OSError, ValueError, IndexError):
            stat = None
        _start_cache[pid] = None if stat is None else stat[1]
    return _start_cache[pid]


def pid_is_owner(owner: Mapping[str, Any]) -> bool:
    """Whether ``owner``'s pid (on this machine) is still the process that wrote the record."""
    pid: int = owner["pid"]
    if pid == os.getpid() and owner.get("pid_start") in (None, _own_start_ticks()):
        return True
    if not _PROC.joinpath("self").exists():  # no procfs (macOS): existence is all we can see
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        stat = _proc_stat(pid)
    except (OSError, ValueError, IndexError):
        return True  # unreadable: never call a run dead on a guess
    if stat is None:
        return False
    state, ticks = stat
    if state in ("Z", "X"):
        return False  # exited; only its parent has not reaped it yet
    recorded = owner.get("pid_start")
    if isinstance(recorded, int):
        return ticks == recorded
    return not _started_after(ticks, owner.get("started"))


def _started_after(ticks: int, started: object) -> bool:
    """Whether a process that started ``ticks`` after boot started after the run did."""
    if not isinstance(started, str):
        return False
    try:
        run_start = datetime.fromisoformat(started).timestamp()
    except ValueError:
        return False
    boot = _boot_time()
    if boot is None:
        return False
    return boot + ticks / os.sysconf("SC_CLK_TCK") > run_start + PID_START_SLACK


def _boot_time() -> float | None:
    text = _read_text(_PROC / "stat")
    for line in (text or "").splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    return None
