"""Maintenance racing maintenance and writers, with real processes.

Writers resuming finished recorders (and compacting them at ``end_run``), ``compact``, ``gc``
and several ``check --fix`` run at once over one store, while the test reads every recorder's
metadata in a loop: no latest-metrics summary ever goes empty or back to an older step, no
process fails (a file another process moved is skipped), and the store ends clean.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _reliability import child_env

from tracklite import ExpManager, QlibRecorder
from tracklite.maintenance import check as chk
from tracklite.store import layout

RECORDERS = 4

WRITER = """
import sys, time
from tracklite import ExpManager, QlibRecorder
root, ids, seconds = sys.argv[1], sys.argv[2].split(","), float(sys.argv[3])
r = QlibRecorder(ExpManager(uri=root))
deadline = time.monotonic() + seconds
step = 1
while True:  # one round at least, however late a loaded machine runs this process
    for rec_id in ids:
        with r.start(experiment_name="race", recorder_id=rec_id, resume=True):
            r.log_metrics(step=step, loss=float(step))
            r.flush()
            r.log_metrics(step=step, acc=float(step))
    if time.monotonic() >= deadline:
        break
    step += 1
print(step)
"""

MAINTAINER = """
import sys, time
from tracklite.maintenance import check, gc
from tracklite.metrics import compaction
from tracklite import ExpManager, QlibRecorder
root, what, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
deadline = time.monotonic() + seconds
rounds = 0
r = QlibRecorder(ExpManager(uri=root))
while rounds == 0 or time.monotonic() < deadline:  # one round at least
    if what == "check":
        check.check(root, fix=True)
    elif what == "compact":
        compaction.compact(root)
    elif what == "gc":
        with r.start(experiment_name="doomed"):
            r.log_metrics(step=0, x=1.0)
            rec = r.get_recorder()
        r.get_exp(experiment_name="doomed").delete_recorder(recorder_id=rec.id)
        gc.collect(root)
    rounds += 1
print(rounds)
"""


def _store(root: Path) -> list[tuple[str, str]]:
    r = QlibRecorder(ExpManager(uri=str(root)))
    made = []
    for _ in range(RECORDERS):
        with r.start(experiment_name="race"):
            r.log_metrics(step=0, loss=0.0, acc=0.0)
            rec = r.get_recorder()
        assert rec.id is not None
        made.append((rec.experiment_id, rec.id))
    return made


def _watch(root: Path, recs: list[tuple[str, str]], procs: list[subprocess.Popen[str]]) -> int:
    """Read every recorder.json until the processes end; fail on a summary that regresses."""
    seen = {rec_id: {"loss": 0, "acc": 0} for _, rec_id in recs}
    reads = 0
    while any(p.poll() is None for p in procs):
        for exp_id, rec_id in recs:
            path = root / exp_id / rec_id / layout.RECORDER_FILE
            try:
                meta = json.loads(path.read_bytes())
            except FileNotFoundError:
                continue
            reads += 1
            for key, last in seen[rec_id].items():
                entry = meta["metrics"].get(key)
                assert entry is not None, f"{key} vanished from the summary of {rec_id}: {meta}"
                assert entry["step"] >= last, f"{key} of {rec_id} went back from {last}: {meta}"
                seen[rec_id][key] = entry["step"]
        time.sleep(0.002)
    return reads


def run_race(tmp_path: Path, seconds: float, checkers: int = 2) -> None:
    root = tmp_path / "store"
    recs = _store(root)
    ids = ",".join(rec_id for _, rec_id in recs)
    env = child_env(root)
    argv = [
        [sys.executable, "-c", WRITER, str(root), ids, str(seconds)],
        [sys.executable, "-c", MAINTAINER, str(root), "compact", str(seconds)],
        [sys.executable, "-c", MAINTAINER, str(root), "gc", str(seconds)],
    ] + [[sys.executable, "-c", MAINTAINER, str(root), "check", str(seconds)]] * checkers
    procs = [
        subprocess.Popen(a, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for a in argv
    ]
    try:
        reads = _watch(root, recs, procs)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    outs = [p.communicate() for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    steps = int(outs[0][0])
    rounds = [int(out) for out, _ in outs[1:]]
    assert steps >= 1 and all(n >= 1 for n in rounds) and reads > 0, (steps, rounds, reads)
    report = chk.check(root)
    assert report.clean, report
    r = QlibRecorder(ExpManager(uri=str(root)))
    for exp_id, rec_id in recs:
        rec = r.get_exp(experiment_id=exp_id).get_recorder(recorder_id=rec_id)
        assert rec.list_metrics() == {"loss": float(steps), "acc": float(steps)}


def test_writers_compact_gc_and_two_checks_at_once(tmp_path: Path) -> None:
    run_race(tmp_path, seconds=3.0)


@pytest.mark.slow
def test_writers_compact_gc_and_checks_at_once_long(tmp_path: Path) -> None:
    run_race(tmp_path, seconds=40.0, checkers=3)


FIXER = """
import sys
from tracklite.maintenance import check
report = check.check(sys.argv[1], fix=True, temp_age=0)
print(len(report.problems))
"""


def _damaged_store(root: Path) -> None:
    """Many findings for two checks to fix at once: torn segments, corrupt metadata, stale
    temporaries and staging folders, replaced segments, lagging summaries."""
    r = QlibRecorder(ExpManager(uri=str(root)))
    for n in range(6):
        with r.start(experiment_name="damaged"):
            for step in range(3):
                r.log_metrics(step=step, loss=float(step))
                r.flush()
            r.save_objects(**{"o.pkl": n})
            rec = r.get_recorder()
        folder = rec.ref.dir
        (folder / layout.METRICS_DIR / "00000000000000000000000000000000.parquet").write_bytes(
            b"PAR1 torn"
        )
        (folder / ".tmp-recorder.json.1.0123abcd").write_bytes(b"{")
        (folder / layout.ARTIFACTS_DIR / ".tmp-o.pkl.1.0123abcd").write_bytes(b"x")
        (folder.parent / f".{n:032x}-0123abcd.creating").mkdir()
        if n % 2:
            (folder / layout.RECORDER_FILE).write_bytes(b'{"format_version": 1, "id"')


def test_checks_fixing_at_once_never_fail(
    tmp_path: Path, fixers: int = 3, attempts: int = 2
) -> None:
    for attempt in range(attempts):
        root = tmp_path / f"store{attempt}"
        _damaged_store(root)
        assert not chk.check(root).clean
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", FIXER, str(root)],
                env=child_env(root),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(fixers)
        ]
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            assert out.strip() == "0", out  # every one of them left nothing unfixed
        after = chk.check(root)
        assert after.clean, after


@pytest.mark.slow
def test_checks_fixing_at_once_never_fail_long(tmp_path: Path) -> None:
    test_checks_fixing_at_once_never_fail(tmp_path, fixers=6, attempts=10)
