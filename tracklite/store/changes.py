"""Change journals: which recorders of an experiment changed, written by each writing process.

Every process that rewrites a ``recorder.json`` appends to a journal of its own in the
experiment's ``.changes/`` folder (``<journal id>.log``; never a file shared by two processes, so
appends stay safe on NFS). A change to recorder ``R`` is bracketed by two lines::

    + R        before the rename that replaces R's recorder.json
    - R        after it (whether or not the rename succeeded)

The first line of a journal is ``o <owner JSON>`` (the process, as in ``recorder.json``) and the
last, when the process exits normally, is ``c``. A reader that has folded a journal up to some
byte offset (only whole lines) knows that every recorder named by a ``-`` line since then must be
re-read, and that a recorder whose ``+`` has no ``-`` yet may be being rewritten right now.
Search summaries (:mod:`tracklite.search.cache`) are built on these journals so that a search
costs what changed since the last one, not what the experiment holds.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from . import layout
from .ids import new_id
from .owner import owner_record, process_gone

#: The folder, inside each experiment folder, holding journals and search summaries.
CHANGES_DIR: Final = layout.CHANGES_DIR
JOURNAL_SUFFIX: Final = ".log"
BEGIN, END, OWNER, CLOSED = "+", "-", "o", "c"

_lock = threading.Lock()
_journals: dict[str, int] = {}  # experiment folder -> open descriptor of this process's journal


def journal_dir(exp_dir: Path) -> Path:
    return exp_dir / CHANGES_DIR


@contextlib.contextmanager
def noting(exp_dir: Path, recorder_id: str) -> Iterator[None]:
    """Brackets a rewrite (or creation) of one recorder's ``recorder.json`` in the journal."""
    ok = _append(exp_dir, f"{BEGIN} {recorder_id}\n")
    try:
        yield
    finally:
        if ok:
            ok = _append(exp_dir, f"{END} {recorder_id}\n")
        if not ok:
            # Readers would not learn of this change: make them rebuild from the recorders.
            drop_summaries(exp_dir)


def _append(exp_dir: Path, line: str) -> bool:
    data = line.encode()
    with _lock:
        key = os.fspath(exp_dir)
        fd = _journals.get(key)
        try:
            if fd is None:
                fd = _journals[key] = _open_journal(exp_dir)
            # One write() per line on an O_APPEND descriptor: lines never interleave.
            os.write(fd, data)
        except OSError:
            return False
    return True


def _open_journal(exp_dir: Path) -> int:
    folder = journal_dir(exp_dir)
    folder.mkdir(exist_ok=True)
    path = folder / f"{new_id()}{JOURNAL_SUFFIX}"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o666)
    os.write(fd, f"{OWNER} {json.dumps(owner_record())}\n".encode())
    return fd


def close_journals() -> None:
    """Marks this process's journals closed (readers may then fold and delete them)."""
    with _lock:
        for fd in _journals.values():
            with contextlib.suppress(OSError):
                os.write(fd, f"{CLOSED}\n".encode())
                os.close(fd)
        _journals.clear()


def _forget_after_fork() -> None:
    # A forked child must not append to its parent's journals: it opens its own.
    global _lock
    _lock = threading.Lock()
    for fd in _journals.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    _journals.clear()


atexit.register(close_journals)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


# ---------------------------------------------------------------------------- the reader's side


@dataclass
class Tail:
    """What one journal says beyond a byte offset (whole lines only)."""

    offset: int  # where the next read starts: just after the last whole line
    changed: set[str] = field(default_factory=set)  # recorders with an END line
    begun: dict[str, int] = field(default_factory=dict)  # BEGIN count minus END count
    owner: dict[str, object] | None = None
    closed: bool = False


def read_tail(path: Path, offset: int, begun: dict[str, int] | None = None) -> Tail:
    """Parses ``path`` from ``offset``; ``begun`` carries unmatched BEGIN lines folded before.

    A last line without its newline (a writer killed mid-append, or appending right now) is
    left for the next read.
    """
    # Never through a link planted at the journal's name.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        chunks: list[bytes] = []
        at = offset
        while chunk := os.pread(fd, 1 << 20, at):
            chunks.append(chunk)
            at += len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    whole = data.rfind(b"\n") + 1
    tail = Tail(offset + whole, begun=dict(begun or {}))
    for raw in data[:whole].decode(errors="replace").splitlines():
        kind, _, rest = raw.partition(" ")
        if kind == BEGIN:
            tail.begun[rest] = tail.begun.get(rest, 0) + 1
        elif kind == END:
            tail.changed.add(rest)
            left = tail.begun.get(rest, 0) - 1
            if left > 0:
                tail.begun[rest] = left
            else:
                tail.begun.pop(rest, None)
        elif kind == CLOSED:
            tail.closed = True
        elif kind == OWNER:
            with contextlib.suppress(ValueError):
                owner = json.loads(rest)
                tail.owner = owner if isinstance(owner, dict) else None
    return tail


def writer_gone(tail: Tail) -> bool:
    """Whether the journal's process will append no more: closed, or known dead."""
    if tail.closed:
        return True
    if tail.owner is None:
        return False
    return process_gone(tail.owner)


def drop_summaries(exp_dir: Path) -> None:
    """Deletes an experiment's search summaries (best effort; they are rebuilt when needed)."""
    folder = journal_dir(exp_dir)
    with contextlib.suppress(OSError):
        for name in os.listdir(folder):
            if name.startswith(SUMMARY_PREFIX):
                with contextlib.suppress(OSError):
                    os.unlink(folder / name)


#: Search summaries live beside the journals: ``summary-<generation>.arrow``.
SUMMARY_PREFIX: Final = "summary-"
SUMMARY_SUFFIX: Final = ".arrow"
