"""Helpers shared by the reliability tests: child Python processes and read-only/full mounts."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def child_env(store: Path, **extra: str) -> dict[str, str]:
    """Environment for a child process writing to ``store`` (tracklite importable)."""
    env = dict(os.environ)
    env["TRACKLITE_URI"] = str(store)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def spawn(code: str, store: Path, cwd: Path, **extra: str) -> subprocess.Popen[str]:
    """Start ``python -c code`` writing to ``store``; stdout is a text pipe.

    ``cwd`` should be outside any git work tree, so run starts do not snapshot git.
    """
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=child_env(store, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_line(proc: subprocess.Popen[str], prefix: str, timeout: float = 60.0) -> str:
    """The first stdout line of ``proc`` starting with ``prefix`` (without it)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            err = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"child exited ({proc.wait()}) before {prefix!r}: {err}")
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
    raise AssertionError(f"no {prefix!r} line from the child within {timeout} s")


def kill9(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the child and reap it."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


def _mount(*args: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    done = subprocess.run(["mount", *args], capture_output=True, check=False)
    return done.returncode == 0


def _umount(path: Path) -> None:
    for _ in range(50):
        if subprocess.run(["umount", str(path)], capture_output=True, check=False).returncode == 0:
            return
        time.sleep(0.1)  # "target is busy" while a child still closes its files
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@contextlib.contextmanager
def read_only_view(source: Path, where: Path) -> Iterator[Path]:
    """A read-only bind mount of ``source`` at ``where``: the kernel refuses every write with
    EROFS, even to root (chmod cannot make a folder read-only for root). Skips the test when
    mounting is not permitted."""
    where.mkdir(parents=True, exist_ok=True)
    if not _mount("--bind", str(source), str(where)):
        pytest.skip("needs root and mount(8) for a read-only bind mount")
    try:
        if not _mount("-o", "remount,bind,ro", str(where)):
            pytest.skip("cannot remount the bind mount read-only here")
        yield where
    finally:
        _umount(where)


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str = "2m") -> Iterator[Path]:
    """A tmpfs of ``size`` at ``where`` (a disk that fills up); skips if mounting is refused."""
    where.mkdir(parents=True, exist_ok=True)
    if not _mount(
        "-t", "tmpfs", "-o", f"size={size}", f"tracklite-test-{uuid.uuid4().hex[:8]}", str(where)
    ):
        pytest.skip("needs root and mount(8) for a small tmpfs")
    try:
        yield where
    finally:
        _umount(where)


def disk_filler(folder: Path) -> None:
    """Fill the filesystem holding ``folder`` to the last byte."""
    path = folder / "filler.bin"
    with open(path, "wb", buffering=0) as handle:
        block = b"\0" * 65536
        with contextlib.suppress(OSError):
            while True:
                handle.write(block)
        with contextlib.suppress(OSError):
            while True:
                handle.write(b"\0")


def read_terminal(master: int) -> bytes:
    """Everything written to a pseudo-terminal whose other side is closed (EIO marks the end
    on Linux)."""
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)
