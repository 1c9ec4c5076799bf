"""Stores shared by a Unix group: creating one, auditing its modes, and refusing early.

A group store is a folder owned by the group, with group read/write/execute and the setgid bit
(``2770``, or ``2775`` to let everyone read): every folder created inside inherits the group and
the setgid bit, and every file gets the group. tracklite creates files ``0o666`` and folders
``0o777`` less the umask, so jobs running with ``umask 002`` (or ``007``) leave everything
writable by the group. See ``docs/shared-stores.md``.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import StorePermissionError, UsageError
from . import layout, safefs
from .ref import RecorderRef

#: Mode of a new group store's root: group members read and write, others nothing; setgid so
#: every folder made inside inherits the group.
GROUP_MODE = 0o2770


def init_group_store(root: Path, group: str | int, mode: int = GROUP_MODE) -> Path:
    """Create (or convert the empty or tracklite folder) ``root`` as a store for ``group``.

    The folder gets the group and ``mode`` (setgid added); the marker is written. A folder
    holding something else is refused (``StoreError``); an unknown group is a ``UsageError``.
    """
    from .root import Store

    gid = _gid(group)
    if not mode & 0o070:
        raise UsageError(f"mode {mode:o} gives the group no access; use 2770 or 2775")
    root.mkdir(parents=True, exist_ok=True)
    os.chown(root, -1, gid)
    os.chmod(root, mode | stat.S_ISGID)
    Store(root).ensure()
    marker = root / layout.MARKER
    os.chown(marker, -1, gid)
    os.chmod(marker, 0o664 if mode & 0o004 else 0o660)
    return root


def _gid(group: str | int) -> int:
    import grp

    if isinstance(group, int):
        return group
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        if group.isdigit():
            return int(group)
        raise UsageError(f"no group named {group!r} on this machine") from None


def group_name(gid: int) -> str:
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def user_name(uid: int | None = None) -> str:
    import pwd

    uid = os.geteuid() if uid is None else uid
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


# ---------------------------------------------------------------------------- refusing early


def require_writable(ref: RecorderRef) -> None:
    """Raise :class:`StorePermissionError` naming the first file or folder of a recorder this
    process could not write, before anything is changed (so a failed resume cannot leave the
    run half-taken: RUNNING under an owner that never beats)."""
    folder = ref.dir
    needs = [
        (folder, os.W_OK | os.X_OK),
        (folder / layout.RECORDER_LOCK, os.W_OK),
        (folder / layout.HEARTBEAT_FILE, os.W_OK),
        (folder / layout.METRICS_DIR, os.W_OK | os.X_OK),
        (folder / layout.ARTIFACTS_DIR, os.W_OK | os.X_OK),
    ]
    for path, mode in needs:
        if os.path.lexists(path) and not os.access(path, mode, follow_symlinks=False):
            raise StorePermissionError(explain(path), path=path, recorder_id=ref.recorder_id)


def explain(path: Path) -> str:
    """Why ``path`` is not writable by this process, and what to do about it."""
    try:
        info = os.lstat(path)
    except OSError:
        return f"{path} cannot be written"
    kind = "folder" if stat.S_ISDIR(info.st_mode) else "file"
    return (
        f"{path} is not writable by user {user_name()}: the {kind} belongs to "
        f"{user_name(info.st_uid)}:{group_name(info.st_gid)} with mode "
        f"{stat.filemode(info.st_mode)}; nothing was changed. In a store shared by a group, "
        "every job must run with umask 002 (or 007) and the store must be setgid "
        "(`tracklite doctor` lists what is wrong; see docs/shared-stores.md)"
    )


# ---------------------------------------------------------------------------- auditing


@dataclass
class SharingReport:
    """What :func:`audit` found: ``ok`` when the store's modes let its group work in it."""

    root: Path
    group: str
    shared: bool
    problems: list[str] = field(default_factory=list)
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        if not self.shared:
            head = (
                f"{self.root}: a single-user store (group {self.group} cannot write its root); "
                "see docs/shared-stores.md to share it"
            )
        elif self.ok:
            head = (
                f"{self.root}: group {self.group} can work in this store ({self.checked} entries)"
            )
        else:
            head = f"{self.root}: group {self.group} will fail in this store:"
        return "\n".join([head, *(f"  {p}" for p in self.problems)])


#: At most this many paths are named per kind of problem (a count follows).
_SHOWN = 5


def audit(root: Path, umask: int | None = None) -> SharingReport:
    """Check that every member of the store root's group can work in the store.

    A store whose root is not group-writable is a single-user store: nothing to check. For a
    group store, reports: a root without the setgid bit, this process's umask taking write
    access from the group, and every entry (never following links) not owned by the group,
    folders without group ``rwx`` or setgid, files without group ``rw``.
    """
    info = os.stat(root)
    group = group_name(info.st_gid)
    shared = bool(info.st_mode & stat.S_IWGRP)
    report = SharingReport(root, group, shared)
    if not shared:
        return report
    mask = safefs.umask() if umask is None else umask
    if mask & 0o060:
        report.problems.append(
            f"this process's umask {mask:03o} removes group read/write: files it creates cannot "
            f"be rewritten by group {group}; run jobs with `umask 002` (or 007)"
        )
    if os.getuid() != 0 and info.st_gid not in os.getgroups() and info.st_gid != os.getgid():
        report.problems.append(f"user {user_name()} is not a member of group {group}")
    kinds: dict[str, list[str]] = {}
    for path, entry in _walk(root):
        report.checked += 1
        for problem in _entry_problems(entry, info.st_gid, path == root):
            kinds.setdefault(problem, []).append(str(path))
    for problem, paths in kinds.items():
        shown = ", ".join(paths[:_SHOWN]) + (
            f" and {len(paths) - _SHOWN} more" if len(paths) > _SHOWN else ""
        )
        report.problems.append(f"{problem}: {shown}")
    return report


def _entry_problems(entry: os.stat_result, gid: int, is_root: bool) -> Iterator[str]:
    mode = entry.st_mode
    if stat.S_ISLNK(mode):
        return
    if entry.st_gid != gid:
        yield f"not in group {group_name(gid)} (chgrp -R)"
    if stat.S_ISDIR(mode):
        if mode & 0o070 != 0o070:
            yield "folders without group rwx (chmod g+rwx)"
        if not mode & stat.S_ISGID:
            yield (
                "store folder without the setgid bit (chmod g+s): new folders would get each "
                "user's own group"
                if is_root
                else "folders without the setgid bit (chmod g+s)"
            )
    elif mode & 0o060 != 0o060:
        yield "files without group rw (chmod g+rw)"


def _walk(root: Path) -> Iterator[tuple[Path, os.stat_result]]:
    yield root, os.stat(root)
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    path = Path(entry.path)
                    if path.parent == root and entry.name == layout.QUARANTINE_DIR:
                        continue
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue
                    yield path, st
                    if stat.S_ISDIR(st.st_mode):
                        stack.append(path)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
