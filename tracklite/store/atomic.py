"""Atomic file publication: write a temporary file in the same folder, fsync, rename.

A reader never sees a torn or empty file: it sees the old content or the new content. The
temporary name starts with ``.`` so that globbing ``*.parquet`` or ``*.json`` never matches it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

#: Set ``TRACKLITE_FSYNC=0`` to skip fsync (faster on a laptop; unsafe on power loss only).
FSYNC = os.environ.get("TRACKLITE_FSYNC", "1") not in ("0", "false", "no")

TEMP_PREFIX = ".tmp-"


def temp_name(target: Path) -> Path:
    """A unique hidden temporary path beside ``target``."""
    return target.with_name(f"{TEMP_PREFIX}{target.name}.{os.getpid()}.{secrets.token_hex(4)}")


def publish(target: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``target`` atomically by calling ``write`` on a temporary file, then renaming it."""
    tmp = temp_name(target)
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            if FSYNC:
                os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        # Never leave a temporary behind on failure (disk full, KeyboardInterrupt mid-write).
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_bytes(target: Path, data: bytes) -> None:
    """Atomically replace ``target`` with ``data``."""
    def write(handle: IO[bytes]) -> None:
        handle.write(data)

    publish(target, write)


def write_json(target: Path, obj: Any) -> None:
    """Atomically replace ``target`` with ``obj`` as indented UTF-8 JSON."""
    write_bytes(target, dump_json(obj))


def dump_json(obj: Any) -> bytes:
    """Serialise metadata the one way tracklite does it (UTF-8, sorted keys stay as given)."""
    return (json.dumps(obj, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def read_json(path: Path) -> Any:
    """Read a JSON metadata file (``NaN``/``Infinity`` tokens allowed, as Python writes them)."""
    with open(path, "rb") as handle:
        return json.loads(handle.read())
