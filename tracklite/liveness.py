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
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from stat import S_ISREG
from typing import Any, Final

from .errors import TrackliteWarning, UnsafeLinkError
from .store import layout, safefs
from .store.owner import describe_owner, owner_record, pid_is_owner, process_gone, same_machine

__all__ = [
    "DEAD",
    "HEARTBEAT_INTERVAL",
    "RUNNING",
    "STALE_AFTER",
    "beat",
    "describe_owner",
    "effective_status",
    "heartbeat_age",
    "owner_alive",
    "owner_record",
    "process_gone",
]


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

# ---------------------------------------------------------------------------- the owner's side


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
    if isinstance(owner, Mapping) and same_machine(owner):
        return pid_is_owner(owner)
    age = heartbeat_age(recorder_dir, now)
    if age is None:
        return None
    return age <= STALE_AFTER


def effective_status(
    meta: Mapping[str, Any], recorder_dir: str | os.PathLike[str], now: float | None = None
) -> str:
    """The status to show for a recorder: the stored one, or :data:`DEAD` for a RUNNING
    recorder whose owner is gone. Costs nothing for ended recorders."""
    status = str(meta.get("status"))
    if status != RUNNING:
        return status
    return DEAD if owner_alive(meta.get("owner"), recorder_dir, now) is False else status
