"""Fixtures for the tests against real qlib (collected only where qlib is installed: every test
module here starts with ``pytest.importorskip("qlib.workflow")``; with
``TRACKLITE_REQUIRE_QLIB=1`` a missing qlib fails instead).

qlib keeps its configuration and its ``R`` in process globals; each fixture calls ``qlib.init``
afresh and ends any run a failing test left active.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent

if os.environ.get("TRACKLITE_REQUIRE_QLIB"):
    # CI (.ci/run-qlib) sets this: there a missing or broken qlib is an error, not a skip.
    import qlib.workflow  # noqa: F401


@dataclass
class QlibSession:
    """qlib initialised for one test: its global ``R`` and where runs are stored."""

    R: Any
    uri: str
    provider_uri: str


def tracklite_manager(uri: str, default_exp_name: str = "Experiment") -> dict[str, Any]:
    return {
        "class": "TrackliteExpManager",
        "module_path": "tracklite.qlib",
        "kwargs": {"uri": uri, "default_exp_name": default_exp_name},
    }


def mlflow_manager(uri: str, default_exp_name: str = "Experiment") -> dict[str, Any]:
    return {
        "class": "MLflowExpManager",
        "module_path": "qlib.workflow.expm",
        "kwargs": {"uri": uri, "default_exp_name": default_exp_name},
    }


def init_qlib(provider_uri: str, exp_manager: dict[str, Any], **kwargs: Any) -> Any:
    import qlib
    from qlib.workflow import R

    qlib.init(provider_uri=provider_uri, exp_manager=exp_manager, **kwargs)
    return R


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from an empty folder outside any git tree, without inherited qlib params."""
    for key in list(os.environ):
        if key.startswith("_QLIB_"):
            monkeypatch.delenv(key)
    monkeypatch.delenv("TRACKLITE_URI", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def _session(provider_uri: str, manager: dict[str, Any], uri: str) -> Iterator[QlibSession]:
    R = init_qlib(provider_uri, manager)
    try:
        yield QlibSession(R=R, uri=uri, provider_uri=provider_uri)
    finally:
        if R.exp_manager.active_experiment is not None:
            R.end_exp("FAILED")


@pytest.fixture
def qlib_tracklite(tmp_path: Path, workdir: Path) -> Iterator[QlibSession]:
    """qlib's R on a tracklite store, with no market data (a provider folder that is missing)."""
    uri = str(tmp_path / "store")
    yield from _session(str(tmp_path / "no-market-data"), tracklite_manager(uri), uri)


@pytest.fixture
def qlib_mlflow(
    tmp_path: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[QlibSession]:
    """qlib's R on its own MLflow file store (MLflow 3 needs the opt-in to use one)."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = "file:" + str(tmp_path / "mlruns")
    yield from _session(str(tmp_path / "no-market-data"), mlflow_manager(uri), uri)


@pytest.fixture(scope="session")
def market(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic market in qlib's data format (written once per session)."""
    from _qlib_support import write_market

    return write_market(tmp_path_factory.mktemp("market") / "cn_data")


@pytest.fixture
def qlib_market(tmp_path: Path, workdir: Path, market: Path) -> Iterator[QlibSession]:
    """qlib's R on a tracklite store, with the synthetic market as its data."""
    uri = str(tmp_path / "store")
    yield from _session(str(market), tracklite_manager(uri), uri)


def run_python(
    code: str,
    cwd: Path,
    *,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter of this venv, from ``cwd``, with this folder
    importable (for ``_qlib_support``)."""
    script = cwd.parent / f"script_{abs(hash(code)) % 10**8}.py"
    script.write_text(code, encoding="utf-8")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("_QLIB_", "TRACKLITE_"))}
    full_env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
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
def python() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``python(code, cwd, env=..., args=...)``: see :func:`run_python`."""
    return run_python
