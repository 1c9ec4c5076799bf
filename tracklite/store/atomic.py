"""Atomic file publication: write a temporary file in the same folder, fsync, rename.

A reader never sees a torn or empty file: it sees the old content or the new content. The
temporary name starts with ``.`` so that globbing ``*.parquet`` or ``*.json`` never matches it.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from . import safefs

#: Whether every publication is fsynced before its rename. The rename alone already makes a
#: file appear whole or not at all to every reader and survives any process kill (the page
#: cache outlives the process); fsync adds safety against power loss and kernel crashes only,
#: at 2-7 ms a file on the ext4 disks measured (four files a run). ``TRACKLITE_FSYNC=1`` turns
#: it on for every file; store-level files (marker, experiments) are always fsynced.
FSYNC = os.environ.get("TRACKLITE_FSYNC", "0") not in ("0", "false", "no", "")

TEMP_PREFIX = safefs.TEMP_PREFIX

#: Never through a link: a recorder.json planted as a link must not read a file elsewhere.
#: (Python opens every descriptor close-on-exec itself.)
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)


def temp_name(target: Path) -> Path:
    """A unique hidden temporary path beside ``target``."""
    return target.with_name(safefs.temp_name(target.name))


def publish(target: Path, write: Callable[[IO[bytes]], None], *, durable: bool = False) -> None:
    """Write ``target`` atomically by calling ``write`` on a temporary file, then renaming it.

    ``durable`` fsyncs the file before the rename whatever :data:`FSYNC` says. The temporary is
    created exclusively, never through a link, with the umask's mode (not ``mkstemp``'s 0600),
    and renamed relative to the folder's descriptor. A link at ``target``, or a folder holding it
    that is a link (other than a store root), is refused with ``UnsafeLinkError``.
    """
    with safefs.open_holder(target) as folder:
        folder.publish(target.name, write, durable=durable)


def publish_folder(target: Path, fill: Callable[[Path], None]) -> None:
    """Create folder ``target`` whole: build it under a hidden staging name beside it (``fill``
    writes its files), then rename it into place. A listing never sees a half-made folder, and
    a failure leaves nothing behind. A folder holding ``target`` that is a link (other than a
    store root) is refused."""
    with safefs.open_holder(target) as parent:
        name = f".{target.name}-{secrets.token_hex(4)}.creating"
        parent.mkdir(name)
        try:
            fill(target.parent / name)
            parent.rename(name, parent, target.name)
        except BaseException:
            parent.rmtree(name)
            raise


def write_bytes(target: Path, data: bytes, *, durable: bool = False) -> None:
    """Atomically replace ``target`` with ``data``."""

    def write(handle: IO[bytes]) -> None:
        handle.write(data)

    publish(target, write, durable=durable)


def write_json(target: Path, obj: Any, *, durable: bool = False) -> None:
    """Atomically replace ``target`` with ``obj`` as UTF-8 JSON on one line (:func:`dump_json`)."""
    write_bytes(target, dump_json(obj), durable=durable)


def dump_json(obj: Any) -> bytes:
    """Serialise metadata the one way tracklite does it: UTF-8, one line.

    No ``indent``: with it Python's json module falls back to its pure-Python encoder, several
    times slower on the ``recorder.json`` rewritten at every flush (``python -m json.tool``
    pretty-prints a file for a reader).
    """
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode()


def read_json(path: Path) -> Any:
    """Read a JSON metadata file (``NaN``/``Infinity`` tokens allowed, as Python writes them)."""
    fd = os.open(path, _READ_FLAGS)
    # Plain reads, not a buffered file: no fstat, ioctl and lseek per file (a check reads
    # 100,000 of them, and every call is a round trip on a network filesystem).
    chunks = []
    try:
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return json.loads(b"".join(chunks))
