"""Cross-process locks (portalocker), used only for rare shared changes.

The lock files live inside the store (``<root>/.lock``, ``<recorder>/.lock``), never in the
current directory, and are never deleted: unlinking a lock file while another process waits on
it would let two processes hold "the" lock on two different inodes.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from ..errors import LockTimeoutError, UnsafeLinkError
from . import safefs

#: Seconds to wait for a lock before failing with a clear error (a lock is held for milliseconds;
#: a long wait means a hung process or a filesystem without working locks).
LOCK_TIMEOUT = float(os.environ.get("TRACKLITE_LOCK_TIMEOUT", "60"))

# portalocker locks are per open file description; two threads of one process opening the same
# lock file would not exclude each other on every platform, so threads first take a local lock.
_CHECK_INTERVAL = 0.005

_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


def _thread_lock(path: Path) -> threading.Lock:
    key = str(path)
    with _thread_locks_guard:
        lock = _thread_locks.get(key)
        if lock is None:
            lock = _thread_locks[key] = threading.Lock()
        return lock


@contextlib.contextmanager
def locked(path: Path, timeout: float | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the ``with`` block."""
    import portalocker  # imported on first lock: it costs ~50 ms, and readers never lock

    wait = LOCK_TIMEOUT if timeout is None else timeout
    local = _thread_lock(path)
    if not local.acquire(timeout=wait):
        raise LockTimeoutError(
            f"timed out after {wait:.0f} s waiting for lock {path} (held by another thread)",
            path=path,
        )
    try:
        handle = _open_lock_file(path)
        flags = portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING
        try:
            deadline = time.monotonic() + wait
            while True:
                try:
                    portalocker.lock(handle, flags)
                    break
                except portalocker.exceptions.LockException as exc:
                    if time.monotonic() >= deadline:
                        raise LockTimeoutError(
                            f"timed out after {wait:.0f} s waiting for lock {path}; another "
                            "process holds it, or this filesystem does not support locks "
                            "(see `tracklite doctor --fs`)",
                            path=path,
                        ) from exc
                    time.sleep(_CHECK_INTERVAL)
            try:
                yield
            finally:
                portalocker.unlock(handle)
        finally:
            handle.close()
    finally:
        local.release()


def _open_lock_file(path: Path) -> IO[str]:
    """Open (creating with the umask's mode) the lock file itself: a link planted in its place
    is refused, so locking never creates or opens a file outside the store."""
    with safefs.open_holder(path) as folder:
        try:
            fd = folder.open_fd(path.name, os.O_RDWR | os.O_CREAT)
        except UnsafeLinkError:
            raise UnsafeLinkError(path, "lock file") from None
    return os.fdopen(fd, "a")


def _reset_after_fork() -> None:
    # A thread lock held by another thread at fork time would stay held forever in the child.
    global _thread_locks, _thread_locks_guard
    _thread_locks = {}
    _thread_locks_guard = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
