"""Helpers shared by the metric engine tests: fresh recorders, writer settings, child scripts."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from tracklite import ExpManager, QlibRecorder, Recorder
from tracklite.metrics import segments
from tracklite.metrics.writer import get_writer
from tracklite.store.ref import RecorderRef

REPO = Path(__file__).resolve().parents[1]


def new_R(tmp_path: Path) -> QlibRecorder:
    """A QlibRecorder on a fresh store under ``tmp_path``."""
    return QlibRecorder(ExpManager(uri=str(tmp_path / "store")))


@contextlib.contextmanager
def writer_settings(**settings: Any) -> Iterator[None]:
    """Configure this process's writer for the ``with`` block, then restore its bounds."""
    writer = get_writer()
    saved = (writer.flush_interval, writer.flush_points, writer.max_points)
    # configure() wakes the thread for one flush: let it take that wake-up now, so it does not
    # flush in the middle of the test body on a loaded machine. A thread not started yet would
    # keep the wake-up for its first cycle, after the test has logged: start it first.
    writer._start_thread()
    writer.configure(**settings)
    wait_until(lambda: not writer._wake.is_set(), every=0.001)
    try:
        yield
    finally:
        writer.configure(flush_interval=saved[0], flush_points=saved[1], max_points=saved[2])


def on_disk(where: RecorderRef | Path) -> pd.DataFrame:
    """The points stored right now in a recorder (or a metrics folder), without flushing
    anything: what another process sees."""
    metrics_dir = where.metrics_dir if isinstance(where, RecorderRef) else where
    return segments.read_points(metrics_dir).to_pandas()


def pairs(frame: pd.DataFrame) -> list[tuple[str, int, float]]:
    """Sorted (key, step, value) triples of a history frame."""
    return sorted(
        zip(frame["key"].astype(str), frame["step"].astype(int), frame["value"], strict=True)
    )


def status_on_disk(uri: str, experiment_id: str, recorder_id: str) -> str:
    """The stored status in recorder.json (not the liveness-adjusted one)."""
    from tracklite.store.root import Store

    meta = Store.from_uri(uri).read_recorder(experiment_id, recorder_id)
    assert meta is not None
    return str(meta["status"])


def segment_files(rec: Recorder) -> list[str]:
    return segments.segment_names(rec.ref.metrics_dir)


def wait_until(predicate: Callable[[], Any], timeout: float = 60.0, every: float = 0.01) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(every)


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKLITE_", "_QLIB_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def spawn(code: str, cwd: Path, **env: str) -> subprocess.Popen[str]:
    """Start ``python -c code`` (dedented) in ``cwd``; stdin, stdout and stderr are text pipes."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=child_env(**env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run(
    code: str, cwd: Path, *, args: list[str] | None = None, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code args...`` to completion; fails the test if it exits non-zero."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *(args or [])],
        cwd=cwd,
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done
