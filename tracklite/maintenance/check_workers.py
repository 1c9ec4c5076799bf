"""Processes that check recorders for a read-only ``tracklite check``.

Checking a recorder is mostly the interpreter's work (decoding its ``recorder.json`` and its
segments' Parquet footers, and with ``deep`` every point), and Python runs one thread at a
time: threads do not make a check faster, other processes do. Each worker is
``python -m tracklite.maintenance.check_workers``, a fresh interpreter that runs nothing of the
calling program (a script calling :func:`tracklite.check` needs no
``if __name__ == "__main__"``). It reads jobs on its stdin and writes each result on its
stdout, both pickled, until its stdin closes.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import subprocess
import sys
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from ..errors import StoreError


class Workers:
    """This process and up to ``count - 1`` worker processes, started when first needed and
    kept until :meth:`close`."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._procs: list[subprocess.Popen[bytes]] = []

    def map(self, jobs: Sequence[tuple[Any, ...]]) -> Iterator[Any]:
        """``check_chunk(*job)`` of every job (each carries the check's settings, ``deep``
        included), yielded in the jobs' order; an error of a job is raised in its place.

        The calling process is one of the ``count``: job ``i`` goes to slot ``i % count``, slot 0
        being this process (which runs its jobs itself when their turn comes, while the others
        work: its imports are done already, and one process fewer is started). Every other slot
        is a worker that always has its next job waiting in its pipe while it works on one, so
        it never idles waiting for this process to be scheduled.
        """
        from .check import check_chunk

        procs = [self._worker(i) for i in range(min(self.count, len(jobs)) - 1)]
        slots = len(procs) + 1
        ahead = 2 * slots
        for i in range(min(ahead, len(jobs))):
            if i % slots:
                _send(procs[i % slots - 1], jobs[i])
        for i in range(len(jobs)):
            if i % slots == 0:
                yield check_chunk(*jobs[i])
                continue
            proc = procs[i % slots - 1]
            ok, value = _receive(proc)
            if not ok:
                raise value
            if i + ahead < len(jobs):
                _send(proc, jobs[i + ahead])
            yield value

    def _worker(self, index: int) -> subprocess.Popen[bytes]:
        if index < len(self._procs):
            return self._procs[index]
        env = dict(os.environ)
        # The caller's own tracklite, wherever it was imported from.
        home = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (home, env.get("PYTHONPATH")) if p)
        proc = subprocess.Popen(
            [sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )
        self._procs.append(proc)
        return proc

    def close(self) -> None:
        """End every worker: each finishes the job it has, if any, and exits."""
        for proc in self._procs:
            for pipe in (proc.stdin, proc.stdout):
                with contextlib.suppress(OSError):
                    if pipe is not None:
                        pipe.close()
        for proc in self._procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs.clear()


def _send(proc: subprocess.Popen[bytes], job: tuple[Any, ...]) -> None:
    assert proc.stdin is not None
    try:
        pickle.dump(job, proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        proc.stdin.flush()
    except BrokenPipeError:
        raise StoreError(f"a check worker process ended (status {proc.wait()})") from None


def _receive(proc: subprocess.Popen[bytes]) -> tuple[bool, Any]:
    assert proc.stdout is not None
    try:
        answer: tuple[bool, Any] = pickle.load(proc.stdout)
    except EOFError:
        raise StoreError(f"a check worker process ended (status {proc.wait()})") from None
    return answer


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
