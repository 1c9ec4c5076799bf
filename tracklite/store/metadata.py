"""Reading ``experiment.json`` and ``recorder.json``: one reader, one policy for broken files.

A broken metadata file (truncated, not a JSON object, a folder in its place, a newer format,
an ``id`` that is not its folder's, a symbolic link) harms only its own experiment or recorder:

- asked for directly (an experiment or recorder by id), it raises :class:`CorruptMetadataError`
  naming the file;
- in a listing or a search, it is skipped with one :class:`CorruptMetadataWarning` naming the
  file and saying to run ``tracklite check`` (:func:`skipped`).

A missing file is no error: the folder is not (or no longer) an experiment or recorder.

Files are reached from the store root one folder at a time, never through a link
(:mod:`.safefs`): an experiment or recorder folder replaced by a link raises
:class:`UnsafeLinkError` asked for directly, and is skipped with the same warning in a listing.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import CorruptMetadataError, CorruptMetadataWarning, UnsafeLinkError
from . import layout, safefs

Meta = dict[str, Any]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def read(root: str | os.PathLike[str], parts: Sequence[str], folder_id: str) -> Meta | None:
    """The metadata file ``root/<parts>`` (of the folder named ``folder_id``), or None if there
    is none; :class:`CorruptMetadataError` if it cannot be used, :class:`UnsafeLinkError` if a
    folder on the way is a link."""
    try:
        top = safefs.open_dir(root)
    except (FileNotFoundError, NotADirectoryError):
        return None
    with top:
        return read_in(top, parts, folder_id)


def read_in(base: safefs.Dir, parts: Sequence[str], folder_id: str) -> Meta | None:
    """:func:`read` of ``<base>/<parts>``, every folder below ``base`` opened without following
    a link."""
    found = load_in(base, parts)
    if found is None:
        return None
    path, meta = found
    problem = _problem(meta, folder_id)
    if problem is not None:
        raise error(path, problem)
    return meta  # type: ignore[return-value]


def load(root: str | os.PathLike[str], parts: Sequence[str]) -> object:
    """Whatever JSON value the file ``root/<parts>`` holds, for ``tracklite check`` to judge
    (:func:`read` without its checks); None if there is no file; :class:`CorruptMetadataError`
    if it cannot be read or decoded, :class:`UnsafeLinkError` if a folder on the way is a link."""
    try:
        top = safefs.open_dir(root)
    except (FileNotFoundError, NotADirectoryError):
        return None
    with top:
        found = load_in(top, parts)
    return None if found is None else found[1]


def load_in(base: safefs.Dir, parts: Sequence[str]) -> tuple[Path, object] | None:
    """(path, decoded JSON) of the file ``<base>/<parts>``, or None if there is none."""
    try:
        folder = base.walk(parts[:-1]) if len(parts) > 1 else base
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        found = load_file(folder, parts[-1])
    finally:
        if folder is not base:
            folder.close()
    return None if found is None else (folder.path / parts[-1], found[0])


def load_file(folder: safefs.Dir, name: str) -> tuple[object] | None:
    """(decoded JSON,) of the file ``name`` in the open ``folder``, or None if there is none
    (its path is only made for an error: check reads every recorder.json of a store)."""
    try:
        # Never through a link: a metadata file planted as a link must not read a file elsewhere.
        fd = os.open(name, os.O_RDONLY | _NOFOLLOW | _CLOEXEC, dir_fd=folder.fd)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise error(folder.path / name, exc.strerror or str(exc)) from exc
    try:
        # Plain reads: a buffered file object would add three system calls (stat, tty, seek).
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        data = b"".join(chunks)
    except OSError as exc:  # IsADirectoryError: a folder where the file should be
        raise error(folder.path / name, exc.strerror or str(exc)) from exc
    finally:
        os.close(fd)
    try:
        return (json.loads(data),)
    except ValueError as exc:
        raise error(folder.path / name, f"not valid JSON: {exc}") from exc


def parse(path: str | os.PathLike[str], data: bytes, folder_id: str) -> Meta:
    """The metadata in ``data`` (read from ``path``); :class:`CorruptMetadataError` if it
    cannot be used."""
    try:
        meta = json.loads(data)
    except ValueError as exc:
        raise error(path, f"not valid JSON: {exc}") from exc
    problem = _problem(meta, folder_id)
    if problem is not None:
        raise error(path, problem)
    return meta  # type: ignore[no-any-return]


def _problem(meta: object, folder_id: str) -> str | None:
    if not isinstance(meta, dict):
        return "not a JSON object"
    version = meta.get("format_version")
    if isinstance(version, int) and version > layout.FORMAT_VERSION:
        return f"format_version {version} is newer than this tracklite reads: upgrade tracklite"
    if meta.get("id") != folder_id:
        return f"its id {meta.get('id')!r} is not its folder's name {folder_id!r}"
    if not isinstance(meta.get("name"), str):
        return "it has no name"
    return None


def error(path: str | os.PathLike[str], reason: str) -> CorruptMetadataError:
    """The error for the metadata file at ``path``, unusable for ``reason``."""
    folder = Path(path).parent
    return CorruptMetadataError(
        f"cannot read {path} ({reason}); run `tracklite check` on the store "
        "(`tracklite check --fix` repairs it)",
        path=path,
        recorder_id=folder.name if Path(path).name == layout.RECORDER_FILE else None,
    )


def skipped(
    error: CorruptMetadataError | UnsafeLinkError, stacklevel: int = 3, *, recorder: bool = False
) -> None:
    """Tell that a listing or search left out the experiment or recorder of ``error`` (a
    ``recorder`` when the error is a link, which does not say)."""
    is_recorder = recorder or getattr(error, "recorder_id", None) is not None
    what = "a recorder" if is_recorder else "an experiment"
    warnings.warn(f"skipped {what}: {error}", CorruptMetadataWarning, stacklevel=stacklevel)
