"""Which kind of filesystem holds a path: network filesystems answer metadata requests over the
network, so walks of them pay off in parallel, and local ones do not."""

from __future__ import annotations

import os
from typing import Final

#: Filesystem types (as ``/proc/self/mountinfo`` names them) whose metadata requests are round
#: trips to a server.
NETWORK_TYPES: Final = frozenset(
    {
        "nfs",
        "nfs4",
        "lustre",
        "cifs",
        "smb3",
        "smbfs",
        "gpfs",
        "beegfs",
        "ceph",
        "glusterfs",
        "fuse.glusterfs",
        "fuse.sshfs",
        "fuse.ceph",
        "fuse.juicefs",
        "afs",
        "panfs",
        "wekafs",
        "pvfs2",
        "orangefs",
        "9p",
    }
)

_MOUNTINFO: Final = "/proc/self/mountinfo"


def filesystem_type(path: str | os.PathLike[str]) -> str | None:
    """The type of the filesystem mounted where ``path`` lies (``"ext4"``, ``"nfs4"``...), or
    None where the system does not say (no ``/proc``)."""
    try:
        with open(_MOUNTINFO, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    where = os.path.realpath(path)
    best, found = -1, None
    for line in lines:
        # <id> <parent> <dev> <root> <mount point> <options> [optional...] - <type> <source> ...
        before, _, after = line.partition(" - ")
        fields = before.split(" ")
        if len(fields) < 5 or not after:
            continue
        point = _unescape(fields[4])
        inside = where == point or where.startswith(point.rstrip("/") + "/")
        # The last of equally long mount points is the one on top (mounted later).
        if inside and len(point) >= best:
            best, found = len(point), after.split(" ")[0]
    return found


def is_network(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` lies on a network filesystem (:data:`NETWORK_TYPES`)."""
    return filesystem_type(path) in NETWORK_TYPES


def _unescape(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash in octal (\040 ...).
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)
