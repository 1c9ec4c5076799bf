"""Helpers for the framework tests: read a store back, run a script in a fresh interpreter."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import tracklite


def points(uri: str, key: str | None = None) -> pd.DataFrame:
    """Every metric point of the store, read back by a fresh reader."""
    frame = tracklite.load_metrics(uri)
    if key is not None:
        frame = frame[frame["key"] == key]
    return frame.reset_index(drop=True)


def runs(uri: str) -> pd.DataFrame:
    """Every recorder of the store (all experiments), as ``search_records`` lists them."""
    manager = tracklite.ExpManager(uri=uri)
    ids = [e.id for e in manager.list_experiments().values()]
    return manager.search_records(ids) if ids else pd.DataFrame()


def run_python(code: str, cwd: Path, env: dict[str, str], timeout: float = 240) -> str:
    """Run ``code`` in a fresh interpreter of this venv; returns its output, fails loudly."""
    script = cwd / f"script_{len(list(cwd.glob('script_*.py')))}.py"
    script.write_text(code, encoding="utf-8")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLITE_")}
    full_env.update(env)
    # A session of its own, so a hung launcher is killed with every worker it started.
    with subprocess.Popen(
        [sys.executable, str(script)],
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            pytest.fail(f"script timed out after {timeout}s:\n{out[-3000:]}\n{err[-5000:]}")
    assert process.returncode == 0, f"script failed:\n{out[-3000:]}\n{err[-5000:]}"
    return out
