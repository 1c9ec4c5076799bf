"""Processes that check recorders for a read-only ``tracklite check``.

Checking a recorder is mostly the interpreter's work (decoding its ``recorder.json`` and its
segments' Parquet footers), and Python runs one thread at a time: threads do not make a check
faster, other processes do. Each worker is ``python -m tracklite.maintenance.check_workers``, a
fresh interpreter that runs nothing of the calling program (a script calling
:func:`tracklite.check` needs no ``if __name__ == "__main__"``). It reads jobs on its stdin and
writes each result on its stdout, both pickled, until its stdin closes.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import subprocess
import sys
import threading
import traceback
from pathlib import Path
from typing import IO, Any

from ..errors import StoreError


class Workers:
    """One worker process per calling thread, started on its first job."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._started: list[subprocess.Popen[bytes]] = []

    def call(self, job: tuple[Any, ...]) -> Any:
        """``check_chunk(*job)`` in this thread's worker; its result, or its error raised."""
        proc: subprocess.Popen[bytes] | None = getattr(self._local, "proc", None)
        if proc is None:
            proc = self._local.proc = self._start()
        assert proc.stdin is not None and proc.stdout is not None
        try:
            pickle.dump(job, proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            proc.stdin.flush()
            ok, value = pickle.load(proc.stdout)
        except (EOFError, BrokenPipeError):
            raise StoreError(f"a check worker process ended (status {proc.wait()})") from None
        if not ok:
            raise value
        return value

    def _start(self) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        # The caller's own tracklite, wherever it was imported from.
        home = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (home, env.get("PYTHONPATH")) if p)
        proc = subprocess.Popen(
            [sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )
        with self._lock:
            self._started.append(proc)
        return proc

    def close(self) -> None:
        """End every worker: each finishes the job it has, if any, and exits."""
        for proc in self._started:
            for pipe in (proc.stdin, proc.stdout):
                with contextlib.suppress(OSError):
                    if pipe is not None:
                        pipe.close()
        for proc in self._started:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._started.clear()


def _reply(out: IO[bytes], result: tuple[bool, Any]) -> None:
    try:
        data = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.loads(data)  # an error whose class cannot be rebuilt from its arguments
    except Exception:
        text = "".join(traceback.format_exception(result[1])) if not result[0] else repr(result)
        data = pickle.dumps((False, StoreError(f"check worker failed:\n{text}")))
    out.write(data)
    out.flush()


def main() -> None:
    """The worker's loop (see the module docstring)."""
    from .check import check_chunk

    # Ctrl-C reaches the whole process group: the caller handles it and closes our stdin.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed goes to stderr, never into the results
    source = sys.stdin.buffer
    while True:
        try:
            job = pickle.load(source)
        except (EOFError, OSError):
            return
        try:
            result: tuple[bool, Any] = (True, check_chunk(*job))
        except Exception as exc:
            result = (False, exc)
        try:
            _reply(out, result)
        except (BrokenPipeError, OSError):
            return  # the caller went away


if __name__ == "__main__":
    main()
