"""Reading ``experiment.json`` and ``recorder.json``: one reader, one policy for broken files.

A broken metadata file (truncated, not a JSON object, a folder in its place, a newer format,
an ``id`` that is not its folder's, a symbolic link) harms only its own experiment or recorder:

- asked for directly (an experiment or recorder by id), it raises :class:`CorruptMetadataError`
  naming the file;
- in a listing or a search, it is skipped with one :class:`CorruptMetadataWarning` naming the
  file and saying to run ``tracklite check`` (:func:`skipped`).

A missing file is no error: the folder is not (or no longer) an experiment or recorder.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

from ..errors import CorruptMetadataError, CorruptMetadataWarning
from . import layout

Meta = dict[str, Any]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def read(path: str | os.PathLike[str], folder_id: str) -> Meta | None:
    """The metadata file at ``path`` (of the folder named ``folder_id``), or None if there is
    none; :class:`CorruptMetadataError` if it cannot be used."""
    try:
        # Never through a link: a metadata file planted as a link must not read a file elsewhere.
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise error(path, exc.strerror or str(exc)) from exc
    try:
        with os.fdopen(fd, "rb") as handle:
            data = handle.read()
    except OSError as exc:  # IsADirectoryError: a folder where the file should be
        raise error(path, exc.strerror or str(exc)) from exc
    return parse(path, data, folder_id)


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


def skipped(error: CorruptMetadataError, stacklevel: int = 3) -> None:
    """Tell that a listing or search left out the experiment or recorder of ``error``."""
    what = "a recorder" if error.recorder_id is not None else "an experiment"
    warnings.warn(f"skipped {what}: {error}", CorruptMetadataWarning, stacklevel=stacklevel)
