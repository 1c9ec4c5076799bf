"""A recorder's ``artifacts/`` folder: safe paths, atomic saves, listing, loading, downloading.

An artifact path is always relative to ``artifacts/`` and can never leave it: absolute paths and
``..`` components are refused before anything is written, and every access walks from the store
root through :mod:`tracklite.store.safefs`, so a symbolic link anywhere on the way (a linked
``artifacts/``, a planted link at any depth) is refused, never followed. Objects are pickled
straight into their file and unpickled straight from it: a large object costs no second copy of
itself in memory.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pickle
import shutil
import stat
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import IO, Any

from ..errors import UnsafeLinkError
from . import layout, safefs
from .ref import RecorderRef

#: Pickle protocol 5 (Python 3.8+): a NumPy array or pandas frame is written straight from its
#: own buffer (protocol 4 first copies it into a ``bytes`` object as large as the array).
PROTOCOL = 5


def safe_relative(path: str | os.PathLike[str] | None, argument: str = "artifact_path") -> str:
    """Normalise an artifact path to ``a/b/c`` form, or ``""`` for the root.

    Raises ``ValueError`` naming ``argument`` when the path is absolute, climbs with ``..``, or
    holds NUL or control characters.
    """
    if path is None:
        return ""
    text = os.fspath(path)
    if not isinstance(text, str):
        raise TypeError(f"{argument} must be a str path, got {type(path).__name__}")
    text = text.replace("\\", "/")
    if "\x00" in text or any(ord(c) < 0x20 for c in text):
        raise ValueError(f"{argument} {text!r} holds a control character")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        raise ValueError(
            f"{argument} {text!r} is absolute; artifact paths are relative to the recorder's "
            "artifacts/ folder"
        )
    parts = [part for part in PurePosixPath(text).parts if part not in ("", ".")]
    if ".." in parts:
        raise ValueError(f"{argument} {text!r} climbs out of the artifacts/ folder with '..'")
    return "/".join(parts)


def _parts(relative: str) -> list[str]:
    return relative.split("/") if relative else []


def open_folder(
    ref: RecorderRef, relative: str, *, create: bool = False, argument: str = "artifact_path"
) -> safefs.Dir:
    """The folder ``artifacts/<relative>``, reached without following any link."""
    parts = [ref.experiment_id, ref.recorder_id, layout.ARTIFACTS_DIR, *_parts(relative)]
    try:
        return safefs.open_under(ref.root, parts, create=create)
    except UnsafeLinkError as exc:
        raise UnsafeLinkError(
            exc.path, f"{argument} {relative!r} leads outside the store"
        ) from None


def _split(relative: str) -> tuple[str, str]:
    folder, _, name = relative.rpartition("/")
    return folder, name


def save_objects(ref: RecorderRef, objects: Mapping[str, Any]) -> None:
    """Pickle each ``{relative path: object}`` with cloudpickle straight into its file.

    All or nothing: every object is written to a hidden temporary first; only when all of them
    pickled are they renamed into place. An object that cannot be pickled raises ``TypeError``
    naming it, and leaves the store as it was (folders made for it are removed again).
    """
    import cloudpickle

    staged: list[tuple[safefs.Dir, str, str]] = []
    made: list[tuple[safefs.Dir, str]] = []
    try:
        for relative, obj in objects.items():
            folder_rel, name = _split(relative)
            folder = _folder_for_writing(ref, folder_rel, made)

            def dump(handle: IO[bytes], obj: Any = obj, name: str = name) -> None:
                try:
                    cloudpickle.dump(obj, handle, protocol=PROTOCOL)
                except Exception as exc:
                    raise TypeError(
                        f"cannot pickle object {name!r} of type {type(obj).__name__}: {exc}"
                    ) from exc

            try:
                staged.append((folder, folder.stage(name, dump), name))
            except BaseException:
                folder.close()
                raise
        for folder, tmp, name in staged:
            folder.commit(tmp, name)
    except BaseException:
        for folder, tmp, _ in staged:
            folder.discard(tmp)
        for parent, name in reversed(made):  # innermost first; only the ones still empty
            with contextlib.suppress(OSError):
                os.rmdir(name, dir_fd=parent.fd)
        raise
    finally:
        for folder, _, _ in staged:
            folder.close()
        for parent, _ in made:
            parent.close()


def _folder_for_writing(
    ref: RecorderRef, folder_rel: str, made: list[tuple[safefs.Dir, str]]
) -> safefs.Dir:
    """Open ``artifacts/<folder_rel>`` for writing, creating what is missing; the folders this
    call created are added to ``made`` as (open parent, name) so a failure can remove them."""
    parts = [layout.ARTIFACTS_DIR, *_parts(folder_rel)]
    current = safefs.open_under(ref.root, [ref.experiment_id, ref.recorder_id])
    try:
        for part in parts:
            try:
                nxt = current.child(part)
            except FileNotFoundError:
                nxt = current.child(part, create=True)
                made.append((safefs.Dir(os.dup(current.fd), current.path), part))
            current.close()
            current = nxt
    except UnsafeLinkError as exc:
        current.close()
        raise UnsafeLinkError(
            exc.path, f"artifact_path {folder_rel!r} leads outside the store"
        ) from None
    except BaseException:
        current.close()
        raise
    return current


def write_artifact(ref: RecorderRef, relative: str, data: bytes) -> None:
    """Write ``data`` to ``artifacts/<relative>`` atomically."""
    folder_rel, name = _split(relative)
    with open_folder(ref, folder_rel, create=True) as folder:

        def write(handle: IO[bytes]) -> None:
            handle.write(data)

        folder.publish(name, write)


def save_file(ref: RecorderRef, relative: str, source: Path) -> None:
    """Copy a local file into ``artifacts/<relative>`` atomically (content, not a link)."""
    folder_rel, name = _split(relative)
    with open(source, "rb") as src, open_folder(ref, folder_rel, create=True) as folder:
        folder.publish(name, lambda dst: shutil.copyfileobj(src, dst, 1 << 20))


def plan_directory(source: Path) -> list[tuple[Path, str]]:
    """Every regular file under ``source`` as (real path, relative posix path).

    Symbolic links inside the tree are copied as their targets when those targets lie inside
    ``source``; a link that points outside it is refused before anything is copied.
    """
    base = os.path.realpath(source)
    plan: list[tuple[Path, str]] = []
    for folder, dirs, files in os.walk(source, followlinks=False):
        here = Path(folder)
        for name in list(dirs):
            link = here / name
            if link.is_symlink():
                real = os.path.realpath(link)
                if not real.startswith(base + os.sep):
                    raise ValueError(
                        f"local_path {source} holds symbolic link {link} pointing outside it "
                        f"({real}); refusing to follow it"
                    )
                # A link to a folder inside the tree: its files are saved where the link is.
                for sub_real, sub_rel in plan_directory(Path(real)):
                    rel = (link / sub_rel).relative_to(source).as_posix()
                    plan.append((sub_real, rel))
        for name in files:
            path = here / name
            real = os.path.realpath(path)
            if not (real == base or real.startswith(base + os.sep)):
                raise ValueError(
                    f"local_path {source} holds symbolic link {path} pointing outside it "
                    f"({real}); refusing to follow it"
                )
            if not os.path.isfile(real):
                continue  # sockets, fifos, dangling links: nothing to copy
            plan.append((Path(real), path.relative_to(source).as_posix()))
    return plan


def list_children(ref: RecorderRef, relative: str) -> list[str]:
    """Immediate children of ``artifacts/<relative>`` as prefixed relative paths, sorted."""
    try:
        folder = open_folder(ref, relative)
    except (FileNotFoundError, NotADirectoryError):
        return []
    with folder:
        names = folder.names()
    prefix = f"{relative}/" if relative else ""
    return [prefix + name for name in names if not name.startswith(safefs.TEMP_PREFIX)]


def stat_children(ref: RecorderRef, relative: str) -> list[tuple[str, bool, int | None]]:
    """Immediate children of ``artifacts/<relative>`` as (prefixed path, is a folder, size of a
    file), sorted; links are listed as files without a size, never followed."""
    try:
        folder = open_folder(ref, relative, argument="path")
    except (FileNotFoundError, NotADirectoryError):
        return []
    prefix = f"{relative}/" if relative else ""
    out: list[tuple[str, bool, int | None]] = []
    with folder:
        for name in folder.names():
            if name.startswith(safefs.TEMP_PREFIX):
                continue
            try:
                info = folder.lstat(name)
            except FileNotFoundError:
                continue
            is_dir = stat.S_ISDIR(info.st_mode)
            size = info.st_size if stat.S_ISREG(info.st_mode) else None
            out.append((prefix + name, is_dir, size))
    return out


def files(ref: RecorderRef, relative: str = "") -> list[tuple[str, int]]:
    """Every artifact file under ``artifacts/<relative>`` as (path, size), each folder's
    children in name order; links are left out, never followed."""
    found: list[tuple[str, int]] = []
    for path, is_dir, size in stat_children(ref, relative):
        if is_dir:
            found.extend(files(ref, path))
        elif size is not None:
            found.append((path, size))
    return found


def local_path(ref: RecorderRef, relative: str, argument: str = "path") -> Path:
    """The path of an existing artifact, after checking that no link lies on the way to it (for
    callers that hand a local path to a user); ``FileNotFoundError`` if there is none."""
    folder_rel, name = _split(relative)
    with open_folder(ref, folder_rel, argument=argument) as folder:
        kind = folder.kind(name) if name else "dir"
    if kind is None:
        raise FileNotFoundError(errno.ENOENT, "no such artifact", str(folder.path / name))
    if kind == "link":
        raise UnsafeLinkError(
            folder.path / name, f"{argument} {relative!r} leads outside the store"
        )
    return ref.artifacts_dir.joinpath(*_parts(relative))


def load_object(ref: RecorderRef, relative: str, unpickler: type[Any] = pickle.Unpickler) -> Any:
    """Unpickle ``artifacts/<relative>`` straight from its file (no temporary copy, no second
    copy of the bytes in memory)."""
    folder_rel, name = _split(relative)
    with open_folder(ref, folder_rel, argument="name") as folder:
        handle = _reader(folder, name, relative, "name")
    with handle:
        return unpickler(handle).load()


def _reader(folder: safefs.Dir, name: str, relative: str, argument: str) -> IO[bytes]:
    try:
        return folder.reader(name)
    except UnsafeLinkError as exc:
        raise UnsafeLinkError(
            exc.path, f"{argument} {relative!r} leads outside the store"
        ) from None


def download(ref: RecorderRef, relative: str, dst_path: str | None) -> str:
    """Copy ``artifacts/<relative>`` (file or folder) into folder ``dst_path`` (an existing one)
    or a new temporary folder; returns the local path of the copy.

    A folder holding a symbolic link at any depth is refused before anything is copied, and
    every file is opened without following links, so nothing outside the store is ever read.
    """
    import tempfile

    folder_rel, name = _split(relative)
    with open_folder(ref, folder_rel, argument="path") as folder:
        kind = folder.kind(name) if name else "dir"
        if kind is None:
            raise FileNotFoundError(
                errno.ENOENT, f"no artifact {relative!r} in recorder {ref.recorder_id}"
            )
        if kind == "link":
            raise UnsafeLinkError(folder.path / name, f"path {relative!r} leads outside the store")
        if kind != "file" and kind != "dir":
            raise FileNotFoundError(errno.ENOENT, f"artifact {relative!r} is not a file")
        if dst_path is None:
            dst_path = tempfile.mkdtemp(prefix="tracklite-")
        elif not os.path.isdir(dst_path):
            raise FileNotFoundError(f"dst_path {dst_path!r} is not an existing folder")
        destination = Path(dst_path) / (name or layout.ARTIFACTS_DIR)
        if kind == "file":
            _copy_out(folder, name, destination, relative)
            return str(destination)
        with folder.walk([name] if name else []) as top:
            entries = list(top.tree())
            links = [rel for rel, sub_kind in entries if sub_kind == "link"]
            if links:
                raise UnsafeLinkError(
                    top.path / links[0], f"path {relative!r} holds a symbolic link"
                )
            destination.mkdir(exist_ok=True)
            for rel, sub_kind in entries:
                target = destination.joinpath(*rel.split("/"))
                if sub_kind == "dir":
                    target.mkdir(exist_ok=True)
                elif sub_kind == "file":
                    sub_folder, sub_name = _split(rel)
                    with top.walk(_parts(sub_folder)) as here:
                        _copy_out(here, sub_name, target, relative)
    return str(destination)


def _copy_out(folder: safefs.Dir, name: str, target: Path, relative: str) -> None:
    with _reader(folder, name, relative, "path") as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
        times = os.fstat(src.fileno())
    os.utime(target, ns=(times.st_atime_ns, times.st_mtime_ns))
