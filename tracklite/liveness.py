"""Is the process that owns a RUNNING recorder still alive?

A scheduler's ``kill -9`` (or a node crash) gives a process no chance to write ``FAILED``, so a
killed run's ``recorder.json`` says RUNNING forever. Readers therefore judge liveness themselves,
without writing anything:

- ``recorder.json`` holds ``owner`` = ``{host, pid, started, boot_id, pid_ns, pid_start}``
  (:func:`owner_record`; the last three are Linux-only and optional);
- ``<recorder>/heartbeat`` is an empty file whose mtime the owning process refreshes with
  :func:`beat` at run start and every :data:`HEARTBEAT_INTERVAL` seconds from the metric writer's
  thread while the run is RUNNING, however long its flush interval.

:func:`effective_status` returns :data:`DEAD` for a RUNNING recorder whose owner is gone:

- on the same machine (same host name, boot and pid namespace): the pid no longer exists, is a
  zombie, or now belongs to another process (its start time in ``/proc/<pid>/stat`` differs);
- elsewhere (another node, container or boot): the heartbeat is older than :data:`STALE_AFTER`.

The stored status stays RUNNING until ``tracklite check --fix`` marks the run FAILED.
"""

from __future__ import annotations

import math
import os
import socket
import time
import warnings
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from stat import S_ISREG
from typing import Any, Final

from .errors import TrackliteWarning, UnsafeLinkError
from .store import layout, safefs
from .store.clock import now_iso


def _seconds(name: str, default: float) -> float:
    """A positive number of seconds from the environment; a bad value warns and gives way to
    ``default``."""
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        warnings.warn(
            f"{name}={text!r} is not a positive number of seconds; using {default:g}",
            TrackliteWarning,
            stacklevel=2,
        )
        return default
    return value


#: A recorder owned by another machine is DEAD once its heartbeat is older than this many seconds.
#: It must exceed HEARTBEAT_INTERVAL plus the NFS attribute-cache lifetime (``acregmax``, 60 s by
#: default) plus the clock skew between nodes; 180 s leaves room for all three. Set
#: ``TRACKLITE_STALE_AFTER`` to change it (for example on a mount with ``actimeo=600``).
STALE_AFTER: Final[float] = _seconds("TRACKLITE_STALE_AFTER", 180.0)


def _heartbeat_interval() -> float:
    # A run must beat several times within STALE_AFTER, or another host reads a live run DEAD
    # between two beats: a longer interval is corrected, with a warning.
    wanted = _seconds("TRACKLITE_HEARTBEAT_INTERVAL", 10.0)
    most = STALE_AFTER / BEATS_PER_STALE
    if wanted > most:
        warnings.warn(
            f"TRACKLITE_HEARTBEAT_INTERVAL={wanted:g} s would let a live run read DEAD from "
            f"another host (TRACKLITE_STALE_AFTER={STALE_AFTER:g} s needs "
            f"{BEATS_PER_STALE} beats in that time); beating every {most:g} s instead",
            TrackliteWarning,
            stacklevel=2,
        )
        return most
    return wanted


#: A heartbeat comes at least this many times within STALE_AFTER.
BEATS_PER_STALE: Final = 3

#: Seconds between two heartbeats of a RUNNING recorder: the metric writer's thread calls
#: :func:`beat` this often, whatever its flush interval. A heartbeat is one ``utime`` call: cheap
#: even on NFS. At most ``STALE_AFTER / BEATS_PER_STALE``.
HEARTBEAT_INTERVAL: Final[float] = _heartbeat_interval()

#: The status readers report for a RUNNING recorder whose owner is gone (never stored by the
#: writer; ``tracklite check --fix`` stores FAILED plus a ``tracklite.dead`` tag instead).
DEAD: Final = "DEAD"
RUNNING: Final = "RUNNING"

#: Where no exact process start is recorded, a pid whose process started this many seconds after
#: the run is taken to be reused. ``/proc/stat``'s boot time has one-second resolution.
PID_START_SLACK: Final[float] = 2.0

_PROC = Path("/proc")
_machine_cache: dict[str, str | None] = {}
_start_cache: dict[int, int | None] = {}


# ---------------------------------------------------------------------------- the owner's side


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


def beat(recorder_dir: str | os.PathLike[str]) -> bool:
    """Refresh the recorder's heartbeat (its mtime becomes now); False if the folder is gone.

    Called at run start and by the metric writer every :data:`HEARTBEAT_INTERVAL` seconds.
    Other ``OSError`` s (read-only or full store) and :class:`UnsafeLinkError` propagate to
    the caller.
    """
    folder = Path(recorder_dir)
    try:
        # Reached from the store root (two folders up) one folder at a time, never through a
        # link: a recorder or experiment folder replaced by a link receives no heartbeat
        # (UnsafeLinkError), and a link planted at the file's name is refused, never followed.
        # Created with the umask's mode (a group-shared store lets another member resume the
        # run and beat it).
        with safefs.open_under(folder.parent.parent, [folder.parent.name, folder.name]) as rec:
            # utime(None) asks an NFS server to stamp its own time, so every client compares
            # heartbeats against one clock (the reader's clock skew still adds to STALE_AFTER).
            rec.touch(layout.HEARTBEAT_FILE)
    except FileNotFoundError:
        return False  # the recorder folder itself is gone (deleted or quarantined)
    return True


# ---------------------------------------------------------------------------- the reader's side


def heartbeat_age(recorder_dir: str | os.PathLike[str], now: float | None = None) -> float | None:
    """Seconds since the last sign of life: the heartbeat's mtime, else ``recorder.json``'s.

    None if neither file exists (a link is not a file, and never followed).
    """
    folder = Path(recorder_dir)
    try:
        # Reached as beat() reaches it, never through a link: a file planted as a link (or a
        # recorder folder replaced by one) is no sign of life, whatever its target's mtime.
        with safefs.open_under(folder.parent.parent, [folder.parent.name, folder.name]) as rec:
            for name in (layout.HEARTBEAT_FILE, layout.RECORDER_FILE):
                try:
                    info = rec.lstat(name)
                except OSError:
                    continue
                if S_ISREG(info.st_mode):
                    return (time.time() if now is None else now) - info.st_mtime
    except (OSError, UnsafeLinkError):
        pass
    return None


def owner_alive(
    owner: object, recorder_dir: str | os.PathLike[str], now: float | None = None
) -> bool | None:
    """Whether the process recorded in ``owner`` still runs: True, False, or None (cannot tell)."""
    if isinstance(owner, Mapping) and _same_machine(owner):
        return _pid_is_owner(owner)
    age = heartbeat_age(recorder_dir, now)
    if age is None:
        return None
    return age <= STALE_AFTER


def process_gone(owner: Mapping[str, Any]) -> bool:
    """Whether the process recorded in ``owner`` is known to have ended (same machine only;
    elsewhere there is no telling without a heartbeat, so False)."""
    return _same_machine(owner) and not _pid_is_owner(owner)


def effective_status(
    meta: Mapping[str, Any], recorder_dir: str | os.PathLike[str], now: float | None = None
) -> str:
    """The status to show for a recorder: the stored one, or :data:`DEAD` for a RUNNING
    recorder whose owner is gone. Costs nothing for ended recorders."""
    status = str(meta.get("status"))
    if status != RUNNING:
        return status
    return DEAD if owner_alive(meta.get("owner"), recorder_dir, now) is False else status


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


def _same_machine(owner: Mapping[str, Any]) -> bool:
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


def _pid_is_owner(owner: Mapping[str, Any]) -> bool:
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
