"""Shared fixtures: a fresh recorder on a fresh store per test, and a script runner."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import tracklite
from tracklite import ExpManager, QlibRecorder

# A test run started in the background (`pytest &` in a script) inherits SIGINT ignored, and an
# ignored signal stays ignored across exec: the child processes of the Ctrl-C tests would never
# see their KeyboardInterrupt. Restore Python's default handler (children then get SIG_DFL).
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _end_quietly(recorder: QlibRecorder) -> None:
    # A failing test may leave a run active; end it so the next test starts clean.
    if recorder.exp_manager.active_experiment is not None:
        recorder.end_exp("FAILED")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every test: no inherited store location, qlib params, terminal width or CLI debug
    switch, and the current folder is ``tmp_path/cwd`` (outside any git tree), so nothing is
    ever written into the repository."""
    # A CI runner's $COLUMNS would size every CLI table; tests that need a width set their own.
    for name in ("TRACKLITE_URI", "TRACKLITE_DEBUG", "COLUMNS", "LINES"):
        monkeypatch.delenv(name, raising=False)
    for key in list(os.environ):
        if key.startswith("_QLIB_"):
            monkeypatch.delenv(key)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)


@pytest.fixture
def store_uri(tmp_path: Path, clean_env: None) -> str:
    return str(tmp_path / "store")


@pytest.fixture
def R(store_uri: str) -> Iterator[QlibRecorder]:  # named like qlib's global
    recorder = QlibRecorder(ExpManager(uri=store_uri))
    yield recorder
    _end_quietly(recorder)


@pytest.fixture
def global_R(monkeypatch: pytest.MonkeyPatch, store_uri: str) -> Iterator[QlibRecorder]:
    """The module-level ``tracklite.R``, pointed at this test's store and reset afterwards."""
    monkeypatch.setattr(tracklite.R, "exp_manager", ExpManager(uri=store_uri))
    yield tracklite.R
    _end_quietly(tracklite.R)


def _run_python(
    code: str,
    cwd: Path,
    *,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` as a script in a fresh interpreter (the test's own) with ``cwd`` as the
    current folder. The script file lives beside ``cwd``, not in it."""
    scripts = cwd.parent / "scripts"
    scripts.mkdir(exist_ok=True)
    script = scripts / f"script_{len(list(scripts.iterdir()))}.py"
    script.write_text(code, encoding="utf-8")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("_QLIB_", "TRACKLITE_"))}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, str(script), *(args or [])],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def run_script() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``run_script(code, cwd, env=..., args=...)``: see :func:`_run_python`."""
    return _run_python
