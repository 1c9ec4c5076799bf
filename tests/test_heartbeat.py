"""The heartbeat of a running recorder does not depend on flushing, and liveness settings that
cannot work are corrected with a warning. Real processes."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _reliability import child_env, kill9, read_line, spawn

from tracklite import liveness
from tracklite.store import atomic, layout

CHILD = """
    from tracklite import R
    R.start_exp(experiment_name="slow-flush")
    rec = R.get_recorder()
    R.log_metrics(step=0, loss=1.0)  # accepted, not flushed for a long time
    print("READY", rec.experiment_id, rec.id, flush=True)
    import time
    time.sleep(600)
"""


def _as_seen_from_another_host(rec_dir: Path) -> dict[str, object]:
    meta = atomic.read_json(rec_dir / layout.RECORDER_FILE)
    meta["owner"] = dict(meta["owner"], host="node-that-is-not-" + socket.gethostname())
    return dict(meta)


def test_heartbeat_goes_on_with_a_flush_interval_beyond_stale_after(tmp_path: Path) -> None:
    store = tmp_path / "store"
    proc = spawn(
        CHILD,
        store,
        tmp_path,
        TRACKLITE_FLUSH_INTERVAL="120",
        TRACKLITE_HEARTBEAT_INTERVAL="0.3",
        TRACKLITE_STALE_AFTER="30",
    )
    try:
        exp_id, rec_id = read_line(proc, "READY").split()
        rec_dir = store / exp_id / rec_id
        meta = _as_seen_from_another_host(rec_dir)
        heartbeat = rec_dir / layout.HEARTBEAT_FILE
        # Beats every 0.3 s, while nothing is flushed after the start (the point is pending):
        # counted as new mtimes rather than timed, so a loaded machine only makes it slower.
        beats = {heartbeat.stat().st_mtime_ns}
        deadline = time.monotonic() + 60
        while len(beats) < 6:
            assert time.monotonic() < deadline, f"{len(beats) - 1} beats in 60 s"
            age = liveness.heartbeat_age(rec_dir)
            assert age is not None and age < 30, age
            beats.add(heartbeat.stat().st_mtime_ns)
            time.sleep(0.05)
        assert not list((rec_dir / layout.METRICS_DIR).glob("*.parquet"))
        now = time.time()
        assert liveness.heartbeat_age(rec_dir, now) is not None
        old_stale = liveness.STALE_AFTER
        try:
            liveness.STALE_AFTER = 30.0  # type: ignore[misc]  # the child's setting, for this reader
            assert liveness.effective_status(meta, rec_dir) == "RUNNING"
        finally:
            liveness.STALE_AFTER = old_stale  # type: ignore[misc]
    finally:
        kill9(proc)


def test_default_stale_bound_is_three_minutes(tmp_path: Path) -> None:
    # A run on another host whose last beat is a minute old (NFS attribute caching) is alive;
    # one silent for more than 180 s is dead.
    (tmp_path / layout.HEARTBEAT_FILE).touch()
    meta = {"status": "RUNNING", "owner": {"host": "elsewhere-" + socket.gethostname(), "pid": 1}}
    for age, expected in ((60, "RUNNING"), (170, "RUNNING"), (190, liveness.DEAD)):
        then = time.time() - age
        os.utime(tmp_path / layout.HEARTBEAT_FILE, (then, then))
        assert liveness.effective_status(meta, tmp_path) == expected, age


def _settings(**env: str) -> tuple[list[str], str]:
    done = subprocess.run(
        [
            sys.executable,
            "-W",
            "always",
            "-c",
            "from tracklite import liveness; print(liveness.HEARTBEAT_INTERVAL, "
            "liveness.STALE_AFTER)",
        ],
        env=child_env(Path("/nonexistent-store"), **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.split(), done.stderr


@pytest.mark.parametrize(
    ("env", "expected", "warned"),
    [
        ({}, ["10.0", "180.0"], None),
        ({"TRACKLITE_STALE_AFTER": "600"}, ["10.0", "600.0"], None),
        ({"TRACKLITE_HEARTBEAT_INTERVAL": "300"}, ["60.0", "180.0"], "HEARTBEAT_INTERVAL=300"),
        ({"TRACKLITE_STALE_AFTER": "6"}, ["2.0", "6.0"], "TRACKLITE_HEARTBEAT_INTERVAL"),
        ({"TRACKLITE_STALE_AFTER": "-1"}, ["10.0", "180.0"], "TRACKLITE_STALE_AFTER"),
        ({"TRACKLITE_HEARTBEAT_INTERVAL": "soon"}, ["10.0", "180.0"], "TRACKLITE_HEARTBEAT"),
    ],
)
def test_impossible_liveness_settings_are_corrected_with_a_warning(
    env: dict[str, str], expected: list[str], warned: str | None
) -> None:
    values, err = _settings(**env)
    assert values == expected
    if warned is None:
        assert "Warning" not in err, err
    else:
        assert "TrackliteWarning" in err and warned in err, err
        # Raised while liveness is imported: it points at the setting's line in liveness.py.
        assert re.search(r"liveness\.py:\d+: TrackliteWarning", err), err
