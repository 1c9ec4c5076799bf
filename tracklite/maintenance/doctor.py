"""``tracklite doctor --fs PATH``: does a mount give what tracklite relies on?

tracklite's safety on a shared filesystem rests on four properties of the mount. Each probe
below exercises one with several real processes for a few seconds:

``lock``
    Exclusive locks exclude other processes. Every holder records its hold interval with
    ``CLOCK_MONOTONIC`` (one clock for all processes of a machine) and also creates an
    "occupied" marker with ``O_EXCL``; any overlap of two intervals, or a marker found already
    there, means two processes held the lock at once. (No shared counter: an NFS client cache can
    lose an update even under a correct lock, which would blame the lock for the cache.)
``rename``
    ``os.replace`` of a temporary file is atomic: one process republishes a self-checking file
    while the others read it in a loop; a reader must never see it missing, empty or torn.
``visibility``
    A file written and closed by one process is complete for another process that opens it next,
    and its name is in the folder listing (close-to-open consistency).
``clock``
    The file time a heartbeat sets (``utime`` with no times: the server's clock on NFS) agrees
    with this machine's clock, which liveness compares it with.

Transient ``ESTALE`` errors (an NFS file handle replaced under us) are retried and counted,
never reported as failures. The probes run inside a fresh hidden folder under ``path`` that is
removed at the end.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import multiprocessing
import os
import random
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ..store import atomic
from ..store.locks import locked

T = TypeVar("T")

#: ``clock``: a file time further than this from the local clock weakens liveness judgements.
CLOCK_TOLERANCE = 30.0
_ESTALE_TRIES = 20
_START_TIMEOUT = 300.0
_MIN_HOLDS = 5


@dataclass
class Probe:
    """The outcome of one probe."""

    name: str
    ok: bool
    detail: str
    operations: int = 0
    estale_retries: int = 0

    def __str__(self) -> str:
        state = "ok  " if self.ok else "FAIL"
        return (
            f"{state} {self.name:<10} {self.detail} ({self.operations} operations, "
            f"{self.estale_retries} ESTALE retried)"
        )


@dataclass
class DoctorReport:
    """All probes of one :func:`verify_filesystem` run."""

    path: Path
    probes: list[Probe] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.probes)

    def probe(self, name: str) -> Probe:
        return next(p for p in self.probes if p.name == name)

    def __str__(self) -> str:
        head = f"{self.path}: " + (
            "tracklite can use this filesystem"
            if self.ok
            else "NOT safe for tracklite (see docs/nfs.md)"
        )
        return "\n".join([head, *(f"  {p}" for p in self.probes)])


def verify_filesystem(
    path: str | os.PathLike[str], processes: int = 4, seconds: float = 6.0
) -> DoctorReport:
    """Probe the filesystem holding ``path`` (an existing folder) with ``processes`` processes
    for about ``seconds`` seconds in all; returns a :class:`DoctorReport` (``report.ok``).

    :raises ValueError: fewer than 2 processes or a non-positive duration.
    :raises FileNotFoundError: ``path`` is not an existing folder.
    """
    if isinstance(processes, bool) or not isinstance(processes, int) or processes < 2:
        raise ValueError(f"processes must be an integer >= 2, got {processes!r}")
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds!r}")
    base = Path(path)
    if not base.is_dir():
        raise FileNotFoundError(f"path {str(base)!r} is not an existing folder")
    work = base / f".tracklite-doctor-{secrets.token_hex(4)}"
    work.mkdir()
    report = DoctorReport(base)
    # spawn: a fork of a threaded parent (the metric writer, pytest) may inherit held locks.
    ctx = multiprocessing.get_context("spawn")
    try:
        share = seconds / 3
        report.probes.append(_probe_lock(ctx, work, processes, share))
        report.probes.append(_probe_rename(ctx, work, processes, share))
        report.probes.append(_probe_visibility(ctx, work, processes, share))
        report.probes.append(_probe_clock(work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return report


# ---------------------------------------------------------------------------- plumbing


def _retry_estale(op: Callable[[], T], counter: list[int]) -> T:
    """Run ``op``, retrying an NFS ``ESTALE`` a few times (counted in ``counter[0]``)."""
    for attempt in range(_ESTALE_TRIES):
        try:
            return op()
        except OSError as exc:
            if exc.errno != errno.ESTALE or attempt == _ESTALE_TRIES - 1:
                raise
            counter[0] += 1
            time.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


def _run_workers(
    ctx: Any, target: Callable[..., None], args_for: list[tuple[Any, ...]], seconds: float
) -> list[dict[str, Any]]:
    """Run one process per argument tuple as ``target(queue, barrier, seconds, *args)``; each
    puts one result dict on the queue. They start their ``seconds`` together, once all have
    started (a loaded machine may take many seconds to start them)."""
    queue = ctx.Queue()
    barrier = ctx.Barrier(len(args_for) + 1)
    procs = [
        ctx.Process(target=target, args=(queue, barrier, seconds, *args), daemon=True)
        for args in args_for
    ]
    for proc in procs:
        proc.start()
    results: list[dict[str, Any]] = []
    try:
        barrier.wait(timeout=_START_TIMEOUT)
    except Exception:  # BrokenBarrierError: a worker died or never started
        barrier.abort()
    deadline = time.monotonic() + seconds + 60
    try:
        while len(results) < len(procs):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                results.append(queue.get(timeout=min(remaining, 1.0)))
            except Exception:  # queue.Empty: check whether a worker died without a result
                if all(not p.is_alive() for p in procs) and queue.empty():
                    break
    finally:
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join()
    return results


def _start(barrier: Any, seconds: float) -> float:
    """Wait for every worker, then return this worker's stop time (CLOCK_MONOTONIC)."""
    barrier.wait(timeout=_START_TIMEOUT)
    return time.clock_gettime(time.CLOCK_MONOTONIC) + seconds


def _missing(results: list[dict[str, Any]], expected: int, name: str) -> Probe | None:
    if len(results) == expected:
        return None
    errors = "; ".join(r["error"] for r in results if r.get("error"))
    return Probe(name, False, f"only {len(results)} of {expected} workers reported {errors}")


# ---------------------------------------------------------------------------- lock exclusion


def _probe_lock(ctx: Any, work: Path, processes: int, seconds: float) -> Probe:
    args = [(str(work), i) for i in range(processes)]
    results = _run_workers(ctx, _lock_worker, args, seconds)
    bad = _missing(results, processes, "lock")
    if bad:
        return bad
    intervals = [(begin, end, r["worker"]) for r in results for begin, end in r["intervals"]]
    overlaps = count_overlaps(intervals)
    occupied = sum(r["occupied"] for r in results)
    errors = [r["error"] for r in results if r.get("error")]
    ok = overlaps == 0 and occupied == 0 and not errors and len(intervals) > processes
    detail = (
        f"{len(intervals)} holds by {processes} processes, {overlaps} overlapping, "
        f"{occupied} found the lock occupied"
        + (f"; errors: {'; '.join(errors)}" if errors else "")
        + ("" if len(intervals) > processes else "; too few holds to judge")
    )
    return Probe("lock", ok, detail, len(intervals), sum(r["estale"] for r in results))


def count_overlaps(intervals: list[tuple[float, float, int]]) -> int:
    """How many hold intervals ``(begin, end, holder)`` start before an earlier one of another
    holder has ended (0 when the lock excluded every holder)."""
    overlaps = 0
    latest_end, latest_holder = float("-inf"), -1
    for begin, end, holder in sorted(intervals):
        if begin < latest_end and holder != latest_holder:
            overlaps += 1
        if end > latest_end:
            latest_end, latest_holder = end, holder
    return overlaps


def _lock_worker(queue: Any, barrier: Any, seconds: float, work: str, worker: int) -> None:
    folder = Path(work)
    marker = folder / "occupied"
    estale = [0]
    intervals: list[tuple[float, float]] = []
    occupied = 0
    error = ""
    rng = random.Random(worker)
    try:
        import portalocker  # noqa: F401 - imported before the clock starts, not in the first hold

        stop = _start(barrier, seconds)
        # A few holds each even on a saturated machine, so overlaps have a chance to show.
        while len(intervals) < _MIN_HOLDS or time.clock_gettime(time.CLOCK_MONOTONIC) < stop:
            if time.clock_gettime(time.CLOCK_MONOTONIC) > stop + 60:
                break
            with locked(folder / "lock", timeout=60):
                begin = time.clock_gettime(time.CLOCK_MONOTONIC)
                try:
                    fd = _retry_estale(
                        lambda: os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY), estale
                    )
                    os.close(fd)
                except FileExistsError:
                    occupied += 1  # someone else is "inside" too: exclusion failed
                time.sleep(rng.uniform(0, 0.002))
                _retry_estale(lambda: marker.unlink(missing_ok=True), estale)
                end = time.clock_gettime(time.CLOCK_MONOTONIC)
            intervals.append((begin, end))
    except Exception as exc:
        error = f"worker {worker}: {type(exc).__name__}: {exc}"
    queue.put(
        {
            "worker": worker,
            "intervals": intervals,
            "occupied": occupied,
            "estale": estale[0],
            "error": error,
        }
    )


# ---------------------------------------------------------------------------- atomic rename


def _payload(n: int, rng: random.Random) -> bytes:
    body = f"{n}:".encode() + rng.randbytes(rng.randint(0, 65536)).hex().encode()
    return body + b"\n" + hashlib.sha256(body).hexdigest().encode()


def _intact(data: bytes) -> bool:
    body, _, digest = data.rpartition(b"\n")
    return bool(body) and hashlib.sha256(body).hexdigest().encode() == digest


def _probe_rename(ctx: Any, work: Path, processes: int, seconds: float) -> Probe:
    target = work / "published.txt"
    atomic.write_bytes(target, _payload(0, random.Random(0)))
    args = [(str(target), i) for i in range(processes)]
    results = _run_workers(ctx, _rename_worker, args, seconds)
    bad = _missing(results, processes, "rename")
    if bad:
        return bad
    writes = sum(r["writes"] for r in results)
    reads = sum(r["reads"] for r in results)
    torn = sum(r["torn"] for r in results)
    vanished = sum(r["vanished"] for r in results)
    errors = [r["error"] for r in results if r.get("error")]
    ok = torn == 0 and vanished == 0 and not errors and writes > 0 and reads > 0
    detail = f"{writes} replacements, {reads} reads, {torn} torn or empty, {vanished} missing" + (
        f"; errors: {'; '.join(errors)}" if errors else ""
    )
    return Probe("rename", ok, detail, writes + reads, sum(r["estale"] for r in results))


def _rename_worker(queue: Any, barrier: Any, seconds: float, target: str, worker: int) -> None:
    path = Path(target)
    estale = [0]
    writes = reads = torn = vanished = 0
    error = ""
    rng = random.Random(worker)

    def read() -> bytes:
        with open(path, "rb") as handle:
            return handle.read()

    try:
        stop = _start(barrier, seconds)
        while time.clock_gettime(time.CLOCK_MONOTONIC) < stop:
            if worker == 0:  # one publisher, as in tracklite (one writer per file)
                data = _payload(writes + 1, rng)
                _retry_estale(functools.partial(atomic.write_bytes, path, data), estale)
                writes += 1
            else:
                try:
                    data = _retry_estale(read, estale)
                except FileNotFoundError:
                    vanished += 1
                    continue
                reads += 1
                if not _intact(data):
                    torn += 1
    except Exception as exc:
        error = f"worker {worker}: {type(exc).__name__}: {exc}"
    queue.put(
        {
            "writes": writes,
            "reads": reads,
            "torn": torn,
            "vanished": vanished,
            "estale": estale[0],
            "error": error,
        }
    )


# ---------------------------------------------------------------------------- visibility


def _probe_visibility(ctx: Any, work: Path, processes: int, seconds: float) -> Probe:
    folder = work / "visibility"
    folder.mkdir()
    # Each worker writes files and hands their names to the next worker over a pipe (not over
    # the filesystem under test), which must then find them complete and listed.
    pipes = [ctx.Pipe(duplex=False) for _ in range(processes)]
    args = [(str(folder), i, pipes[i][0], pipes[(i + 1) % processes][1]) for i in range(processes)]
    results = _run_workers(ctx, _visibility_worker, args, seconds)
    bad = _missing(results, processes, "visibility")
    if bad:
        return bad
    written = sum(r["written"] for r in results)
    checked = sum(r["checked"] for r in results)
    unseen = sum(r["unseen"] for r in results)
    unlisted = sum(r["unlisted"] for r in results)
    errors = [r["error"] for r in results if r.get("error")]
    ok = unseen == 0 and unlisted == 0 and not errors and checked > 0
    detail = (
        f"{written} files written and closed, {checked} opened by another process: "
        f"{unseen} missing or incomplete, {unlisted} absent from the listing"
        + (f"; errors: {'; '.join(errors)}" if errors else "")
    )
    return Probe("visibility", ok, detail, written + checked, sum(r["estale"] for r in results))


def _visibility_worker(
    queue: Any, barrier: Any, seconds: float, folder: str, worker: int, inbox: Any, outbox: Any
) -> None:
    base = Path(folder)
    estale = [0]
    written = checked = unseen = unlisted = 0
    error = ""
    rng = random.Random(worker)
    try:
        stop = _start(barrier, seconds)
        while time.clock_gettime(time.CLOCK_MONOTONIC) < stop:
            data = _payload(written, rng)
            name = f"w{worker}-{written}"

            def write(name: str = name, data: bytes = data) -> None:
                with open(base / name, "wb") as handle:
                    handle.write(data)

            _retry_estale(write, estale)
            written += 1
            outbox.send((name, hashlib.sha256(data).hexdigest()))
            while inbox.poll():
                other, digest = inbox.recv()
                checked += 1
                try:
                    got = _retry_estale((base / other).read_bytes, estale)
                except FileNotFoundError:
                    got = b""
                if hashlib.sha256(got).hexdigest() != digest:
                    unseen += 1
                if other not in _retry_estale(lambda: os.listdir(base), estale):
                    unlisted += 1
            time.sleep(0.001)
    except Exception as exc:
        error = f"worker {worker}: {type(exc).__name__}: {exc}"
    queue.put(
        {
            "written": written,
            "checked": checked,
            "unseen": unseen,
            "unlisted": unlisted,
            "estale": estale[0],
            "error": error,
        }
    )


# ---------------------------------------------------------------------------- clocks


def _probe_clock(work: Path) -> Probe:
    from ..liveness import beat

    folder = work / "clock"
    folder.mkdir()
    skews = []
    for _ in range(3):
        before = time.time()
        beat(folder)
        after = time.time()
        stamp = os.stat(folder / "heartbeat").st_mtime
        # Zero when the file time falls between the two local readings.
        skews.append(0.0 if before - 1 <= stamp <= after + 1 else stamp - (before + after) / 2)
        time.sleep(0.01)
    skew = max(skews, key=abs)
    ok = abs(skew) <= CLOCK_TOLERANCE
    detail = f"file times are {skew:+.1f} s from this machine's clock"
    if not ok:
        detail += " (liveness of runs on other nodes is judged late or early by that much)"
    return Probe("clock", ok, detail, len(skews))
