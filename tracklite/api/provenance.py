"""What a run records about where it came from, as qlib does on start.

qlib records the command line, every ``_QLIB_*`` environment variable and the output of
``git diff`` / ``git status`` / ``git diff --cached``; MLflow adds the ``mlflow.*`` system tags.
tracklite records the same, plus host, pid and versions, and probes git quietly: outside a work
tree nothing is printed, and every git call has a time and size bound.
"""

from __future__ import annotations

import getpass
import os
import platform
import socket
import subprocess
import sys

from .._version import __version__

GIT_TIMEOUT = 5.0
#: Larger git outputs are cut to this many bytes (with a note) so a huge diff cannot slow a start.
GIT_MAX_BYTES = 1 << 20

GIT_ARTIFACTS = {
    "code_diff.txt": ["git", "diff"],
    "code_status.txt": ["git", "status"],
    "code_cached.txt": ["git", "diff", "--cached"],
}


def start_params() -> dict[str, str]:
    """``cmd-sys.argv`` and every ``_QLIB_*`` environment variable, as qlib logs them."""
    params = {"cmd-sys.argv": " ".join(sys.argv)}
    params.update({k: v for k, v in os.environ.items() if k.startswith("_QLIB_")})
    return params


def system_tags(run_name: str) -> dict[str, str]:
    """MLflow's system tags (filters written for qlib use them) and tracklite's own."""
    try:
        user = getpass.getuser()
    except Exception:  # no passwd entry for the uid (containers)
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return {
        "mlflow.runName": run_name,
        "mlflow.user": user,
        "mlflow.source.name": sys.argv[0] if sys.argv and sys.argv[0] else "<interactive>",
        "mlflow.source.type": "LOCAL",
        "tracklite.host": socket.gethostname(),
        "tracklite.pid": str(os.getpid()),
        "tracklite.python": platform.python_version(),
        "tracklite.version": __version__,
    }


def _maybe_in_git(cwd: str | None) -> bool:
    """Whether ``cwd`` or a parent holds ``.git`` (or git is pointed elsewhere by GIT_DIR)."""
    if os.environ.get("GIT_DIR"):
        return True
    try:
        here = os.path.abspath(cwd or os.getcwd())
    except OSError:
        return False
    while True:
        if os.path.exists(os.path.join(here, ".git")):
            return True
        parent = os.path.dirname(here)
        if parent == here:
            return False
        here = parent


def git_snapshot(cwd: str | None = None) -> dict[str, bytes]:
    """The three qlib ``code_*.txt`` artifacts when ``cwd`` is inside a git work tree, else {}."""
    if not _maybe_in_git(cwd):
        return {}  # a few stat calls instead of a git process on every start
    try:
        probe = subprocess.run(
            ["git", "rev-parse", "--is-inside-work-tree"],
            cwd=cwd,
            capture_output=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return {}  # no git binary, or it hung: a run start must not fail for provenance
    if probe.returncode != 0 or probe.stdout.strip() != b"true":
        return {}
    out: dict[str, bytes] = {}
    for name, cmd in GIT_ARTIFACTS.items():
        try:
            done = subprocess.run(
                cmd, cwd=cwd, capture_output=True, timeout=GIT_TIMEOUT, check=False
            )
        except (OSError, subprocess.SubprocessError) as exc:
            out[name] = f"tracklite: {' '.join(cmd)} failed: {exc}\n".encode()
            continue
        data = done.stdout
        if len(data) > GIT_MAX_BYTES:
            data = (
                data[:GIT_MAX_BYTES]
                + (
                    f"\n[tracklite: output cut at {GIT_MAX_BYTES} of {len(done.stdout)} bytes]\n"
                ).encode()
            )
        out[name] = data
    return out
