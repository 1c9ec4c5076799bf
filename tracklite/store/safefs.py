"""Filesystem calls that never follow a link out of a store.

Anyone who can write to a shared store can plant a symbolic link in it (``artifacts/`` pointing
at someone's home, a ``.lock`` pointing at ``/etc/x``). A path-based call such as
``open(root / exp / rec / "artifacts" / name)`` follows every link along the way, and checking
with ``realpath`` first leaves a window between the check and the use. So every access to a
store's contents goes through a :class:`Dir`: an open folder descriptor reached from the store
root one component at a time, each opened with ``O_NOFOLLOW | O_DIRECTORY`` relative to the one
before. Files are opened, created, renamed and removed relative to that descriptor, never
following their last component either. A link met anywhere raises :class:`UnsafeLinkError`
naming it; nothing outside the store is read, written, created, moved or deleted.

The store root itself may be reached through links (it is the user's own path); only what lies
inside it is guarded. Files and folders are created with modes ``0o666`` / ``0o777`` less the
umask, so a group-shared store stays writable by its group when the umask says so.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

from ..errors import UnsafeLinkError

TEMP_PREFIX = ".tmp-"

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_DIR_FLAGS = os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC
#: New files: what ``open(path, "w")`` would give, the umask applied by the kernel.
FILE_MODE = 0o666
#: New folders: what ``mkdir`` gives, the umask applied (the setgid bit is inherited).
DIR_MODE = 0o777


class Dir:
    """An open folder inside a store. Use as a context manager (closes the descriptor)."""

    __slots__ = ("_name", "_parent", "_path", "fd")

    def __init__(
        self, fd: int, path: Path | None, parent: Dir | None = None, name: str = ""
    ) -> None:
        self.fd = fd
        # For messages only (every call goes through ``fd``): a child's is made when first
        # asked for, as most are never shown.
        self._path = path
        self._parent = parent
        self._name = name

    @property
    def path(self) -> Path:
        """The folder's path (as reached when it was opened)."""
        if self._path is None:
            assert self._parent is not None
            self._path = self._parent.path / self._name
        return self._path

    def __enter__(self) -> Dir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Dir({str(self.path)!r}, fd={self.fd})"

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    # ------------------------------------------------------------------ folders

    def child(self, name: str, *, create: bool = False) -> Dir:
        """The sub-folder ``name`` (a single component), created if ``create``."""
        _single(name)
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=self.fd)
        except FileNotFoundError:
            if not create:
                raise FileNotFoundError(
                    errno.ENOENT, "no such folder", str(self.path / name)
                ) from None
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, DIR_MODE, dir_fd=self.fd)
            return self.child(name)
        except OSError as exc:
            raise self._refusal(name, exc) from exc
        return Dir(fd, None, self, name)

    def walk(self, parts: Iterable[str], *, create: bool = False) -> Dir:
        """The folder at ``parts`` below this one (a new :class:`Dir`; this one stays open)."""
        current = Dir(os.dup(self.fd), self.path)
        try:
            for part in parts:
                nxt = current.child(part, create=create)
                current.close()
                current = nxt
        except BaseException:
            current.close()
            raise
        return current

    def mkdir(self, name: str) -> None:
        """Create sub-folder ``name`` (umask-honouring mode); errors name the full path."""
        _single(name)
        try:
            os.mkdir(name, DIR_MODE, dir_fd=self.fd)
        except OSError as exc:
            raise self._refusal(name, exc) from exc

    def names(self) -> list[str]:
        """Names of the entries, sorted."""
        return sorted(os.listdir(self.fd))

    def kinds(self) -> list[tuple[str, str]]:
        """(name, kind) of every entry, sorted by name, from one listing: the kinds come with
        it (no ``stat`` per entry where the filesystem reports them). Never follows a link."""
        with os.scandir(self.fd) as listing:
            found = [(e.name, _kind_of(e)) for e in listing]
        return sorted(found)

    def kind(self, name: str) -> str | None:
        """``"dir"``, ``"file"``, ``"link"``, ``"other"``, or None if absent (never follows)."""
        try:
            mode = os.stat(name, dir_fd=self.fd, follow_symlinks=False).st_mode
        except (FileNotFoundError, NotADirectoryError):
            return None
        if stat.S_ISLNK(mode):
            return "link"
        if stat.S_ISDIR(mode):
            return "dir"
        if stat.S_ISREG(mode):
            return "file"
        return "other"

    def lstat(self, name: str) -> os.stat_result:
        return os.stat(name, dir_fd=self.fd, follow_symlinks=False)

    def readlink(self, name: str) -> str:
        return os.readlink(name, dir_fd=self.fd)

    # ------------------------------------------------------------------ files

    def open_fd(self, name: str, flags: int = os.O_RDONLY) -> int:
        """``os.open`` of entry ``name`` that refuses a link; ``O_CREAT`` uses :data:`FILE_MODE`."""
        _single(name)
        try:
            return os.open(name, flags | _NOFOLLOW | _CLOEXEC, FILE_MODE, dir_fd=self.fd)
        except OSError as exc:
            raise self._refusal(name, exc) from exc

    def reader(self, name: str) -> IO[bytes]:
        """Entry ``name`` opened for reading (buffered binary file); refuses links."""
        fd = self.open_fd(name)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise IsADirectoryError(errno.EISDIR, "not a file", str(self.path / name))
        return os.fdopen(fd, "rb")

    @staticmethod
    def fd_path(fd: int) -> str:
        """A path that reopens open descriptor ``fd`` itself (for libraries that want a path);
        on systems without ``/proc`` the descriptor's name (checked when it was opened)."""
        if sys.platform.startswith("linux"):
            return f"/proc/self/fd/{fd}"
        return f"/dev/fd/{fd}"

    def publish(
        self, name: str, write: Callable[[IO[bytes]], None], *, durable: bool = False
    ) -> None:
        """Write entry ``name`` whole: a hidden temporary beside it, then a rename."""
        self.commit(self.stage(name, write, durable=durable), name)

    def stage(self, name: str, write: Callable[[IO[bytes]], None], *, durable: bool = False) -> str:
        """Write a hidden temporary for ``name`` (removed again on failure); returns its name,
        to :meth:`commit` or :meth:`discard`."""
        from . import atomic

        if self.kind(name) == "link":
            # Replacing it would be harmless (a rename never follows it), but a planted link
            # is a sign of tampering: refuse, and let ``check`` report it.
            raise UnsafeLinkError(self.path / name, "refusing to replace")
        tmp = temp_name(name)
        fd = self.open_fd(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        try:
            with os.fdopen(fd, "wb") as handle:
                write(handle)
                handle.flush()
                if atomic.FSYNC or durable:
                    os.fsync(handle.fileno())
        except BaseException:
            self.discard(tmp)
            raise
        return tmp

    def commit(self, tmp: str, name: str) -> None:
        """Rename a staged temporary onto ``name`` (replacing a file; a link there is replaced
        itself, never followed)."""
        _single(name)
        try:
            os.replace(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except OSError as exc:
            self.discard(tmp)
            raise self._refusal(name, exc) from exc
        except BaseException:
            self.discard(tmp)
            raise

    def discard(self, tmp: str) -> None:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=self.fd)

    def touch(self, name: str) -> None:
        """Create ``name`` if missing (umask-honouring mode) and set its mtime to now."""
        fd = self.open_fd(name, os.O_WRONLY | os.O_CREAT)
        try:
            os.utime(fd)
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ moving and removing

    def rename(self, name: str, dst: Dir, dst_name: str) -> None:
        """Move entry ``name`` (file, folder or link: the entry itself) to ``dst/dst_name``."""
        _single(name)
        _single(dst_name)
        try:
            os.rename(name, dst_name, src_dir_fd=self.fd, dst_dir_fd=dst.fd)
        except OSError as exc:
            raise self._refusal(name, exc) from exc

    def unlink(self, name: str, *, missing_ok: bool = True) -> bool:
        """Remove a file or link entry; False if it was already gone."""
        _single(name)
        try:
            os.unlink(name, dir_fd=self.fd)
        except FileNotFoundError:
            if not missing_ok:
                raise
            return False
        return True

    def rmtree(self, name: str) -> None:
        """Remove folder ``name`` and everything under it, never following a link (a link
        found inside is removed itself). A link at ``name`` is unlinked."""
        _single(name)
        if self.kind(name) != "dir":
            self.unlink(name)
            return
        try:
            sub = self.child(name)
        except (FileNotFoundError, UnsafeLinkError):
            self.unlink(name)  # gone, or swapped for a link meanwhile: remove the link itself
            return
        with sub:
            for entry in sub.names():
                sub.rmtree(entry)
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(name, dir_fd=self.fd)

    # ------------------------------------------------------------------ walking

    def tree(self) -> Iterator[tuple[str, str]]:
        """Every entry below this folder as (relative posix path, kind), parents first; links
        are reported as ``"link"`` and never entered."""
        for name, kind in self.kinds():
            yield name, kind
            if kind == "dir":
                try:
                    sub = self.child(name)
                except (FileNotFoundError, UnsafeLinkError):
                    continue  # removed or swapped for a link meanwhile
                with sub:
                    for rel, sub_kind in sub.tree():
                        yield f"{name}/{rel}", sub_kind

    # ------------------------------------------------------------------ plumbing

    def _refusal(self, name: str, exc: OSError) -> Exception:
        path = self.path / name
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK) and self.kind(name) == "link":
            return UnsafeLinkError(path)
        # Name the full path: a bare name relative to a descriptor would tell the user nothing.
        return type(exc)(exc.errno, exc.strerror, str(path))


def open_dir(path: str | os.PathLike[str], *, follow: bool = True) -> Dir:
    """Open a folder by path, following links in ``path`` (a store root named by the user);
    ``follow=False`` refuses a ``path`` that is itself a link (links above it are followed)."""
    try:
        fd = os.open(path, os.O_RDONLY | _DIRECTORY | _CLOEXEC | (0 if follow else _NOFOLLOW))
    except OSError as exc:
        if not follow and exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(path):
            raise UnsafeLinkError(path) from None
        raise
    return Dir(fd, Path(path))


def open_holder(target: Path) -> Dir:
    """The folder holding ``target``, refusing it if it is itself a link, unless it is a store
    root (a store may be reached through a link of the user's; a linked experiment or recorder
    folder planted in a store must never receive a file)."""
    from . import layout

    try:
        return open_dir(target.parent, follow=False)
    except UnsafeLinkError:
        if target.name == layout.MARKER or os.path.isfile(target.parent / layout.MARKER):
            return open_dir(target.parent)
        raise


def _kind_of(entry: os.DirEntry[str]) -> str:
    if entry.is_symlink():
        return "link"
    if entry.is_dir(follow_symlinks=False):
        return "dir"
    if entry.is_file(follow_symlinks=False):
        return "file"
    return "other"


def open_under(root: str | os.PathLike[str], parts: Iterable[str], *, create: bool = False) -> Dir:
    """The folder ``root/<parts>``, never following a link below ``root``."""
    with open_dir(root) as top:
        return top.walk(parts, create=create)


def parts_below(root: Path, path: Path) -> list[str]:
    """The components of ``path`` below ``root`` (``ValueError`` if it is not below it)."""
    return list(path.relative_to(root).parts)


def open_parent(root: Path, path: Path, *, create: bool = False) -> tuple[Dir, str]:
    """(the folder holding ``path``, opened safely from ``root``; the last component)."""
    parts = parts_below(root, path)
    if not parts:
        raise ValueError(f"{path} is the store root itself")
    return open_under(root, parts[:-1], create=create), parts[-1]


def temp_name(name: str) -> str:
    """A unique hidden temporary name for entry ``name`` (``.tmp-<name>.<pid>.<8 hex>``)."""
    return f"{TEMP_PREFIX}{name}.{os.getpid()}.{secrets.token_hex(4)}"


def _single(name: str) -> None:
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"{name!r} is not a single path component")


def umask() -> int:
    """The process's umask (read without changing it where the system allows)."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    current = os.umask(0o022)  # not thread-safe for the instant it takes; only a fallback
    os.umask(current)
    return current
