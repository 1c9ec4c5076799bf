"""End the active run when the process ends, as qlib's ``qlib.init`` hooks do, and more.

- normal interpreter exit (also ``sys.exit``): the run ends FINISHED;
- an uncaught exception (KeyboardInterrupt from SIGINT included): the run ends FAILED, then
  the previous excepthook prints it;
- SIGTERM (what a scheduler sends before it kills a job): turned into ``SystemExit(143)`` so
  every ``with R.start()`` and ``finally`` unwinds and flushes; the run ends FAILED.

Ending a run flushes its metric points first, so nothing accepted is lost on any of these.
A SIGTERM handler the program installed itself is left alone.

``multiprocessing`` workers leave through ``os._exit`` (fork, forkserver), skipping ``atexit``:
a worker that started a run ends it from multiprocessing's own exit finalizers too, so a pool
terminating its workers (SIGTERM, as ``with Pool()`` does) leaves their runs FAILED, not DEAD.
A SIGTERM that arrives while the process is already exiting raises nothing: the exit hooks then
end the run FAILED, and no ``Exception ignored in atexit callback`` is printed.
"""

from __future__ import annotations

import atexit
import inspect
import os
import signal
import sys
import threading
import weakref
from collections.abc import Callable
from types import FrameType, TracebackType

_installed = False
_installed_in: int | None = None  # the pid whose multiprocessing exit ends its runs
_terminated_by: int | None = None
_exiting = False


# Every recorder object that started a run in this process (weakly held: a QlibRecorder that
# is gone has no run to end). Not just the first one: a script may use its own QlibRecorder on
# a side store before the global R, and R's run must still end at exit.
_enders: list[Callable[[], Callable[[str], None] | None]] = []


def install(end_exp: Callable[[str], None]) -> None:
    """Register ``end_exp(status)`` (a no-op when idle) to run at exit or on an uncaught
    exception; the hooks themselves are installed once per process."""
    global _installed, _installed_in
    _enders[:] = [ref for ref in _enders if ref() is not None]
    if not any(ref() == end_exp for ref in _enders):
        if inspect.ismethod(end_exp):
            _enders.append(weakref.WeakMethod(end_exp))
        else:
            _enders.append(lambda: end_exp)
    if _installed_in == os.getpid():
        return
    _installed_in = os.getpid()
    # Per process: a forked worker starting its own run leaves through multiprocessing's exit.
    _end_at_multiprocessing_exit()
    if _installed:
        return  # inherited through fork: the hooks below are in place already
    _installed = True
    # The exit hook rewrites recorder.json under a portalocker lock. Importing portalocker for
    # the first time at shutdown fails where it pulls in redis (qlib's environment): redis
    # imports asyncio, which cannot register its own exit hook once shutdown has begun.
    import portalocker  # noqa: F401

    previous = sys.excepthook

    def excepthook(
        kind: type[BaseException], value: BaseException, tb: TracebackType | None
    ) -> None:
        try:
            _end_all("FAILED")
        finally:
            previous(kind, value, tb)

    sys.excepthook = excepthook
    atexit.register(_at_exit, _end_all)
    _install_sigterm()


def _install_sigterm() -> None:
    # Signal handlers can only be set from the main thread; a run started elsewhere keeps the
    # default SIGTERM behaviour (its points flushed up to the last second survive anyway).
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):  # embedded interpreters without signal support
        return


def _end_at_multiprocessing_exit() -> None:
    if "multiprocessing" not in sys.modules:
        return
    import multiprocessing
    from multiprocessing import util

    if multiprocessing.parent_process() is None:
        return  # the main process runs atexit
    # Before the writer's own exit flush (priority 100): ending a run flushes it.
    util.Finalize(None, _at_exit, args=(_end_all,), exitpriority=200)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    global _terminated_by
    _terminated_by = signum
    if _exiting or not threading.main_thread().is_alive():
        # Already leaving (atexit, or a worker's exit finalizers): raising would interrupt the
        # hook that ends the run, and Python would print the SystemExit. Let the exit go on;
        # the run ends FAILED because _terminated_by is set.
        return
    # Raising (rather than flushing here) lets the interrupted code release its locks first;
    # the unwinding ends the run FAILED and flushes, then the process exits with 128+15.
    raise SystemExit(128 + signum)


def _end_all(status: str) -> None:
    """End the active run of every registered recorder; the first error is raised after all
    were tried."""
    first: BaseException | None = None
    for ref in list(_enders):
        end_exp = ref()
        if end_exp is None:
            continue
        try:
            end_exp(status)
        except Exception as exc:
            first = first or exc
    if first is not None:
        raise first


def _at_exit(end_exp: Callable[[str], None]) -> None:
    global _exiting
    _exiting = True
    try:
        end_exp("FAILED" if _terminated_by is not None else "FINISHED")
    except Exception as exc:  # the interpreter is going away: report, never hang or raise
        print(f"tracklite: could not end the active run at exit: {exc}", file=sys.stderr)
