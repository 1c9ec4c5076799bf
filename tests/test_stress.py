"""Concurrency stress with real processes (benchmarks/stress_store.py), sized for 2 cores.

The short versions run in the suite; ``-m slow`` runs the full 8 processes x 4 threads.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from _reliability import REPO, child_env

import tracklite
from tracklite import ExpManager

sys.path.insert(0, str(REPO / "benchmarks"))
import stress_store


def test_processes_and_threads_short(tmp_path: Path) -> None:
    results = stress_store.run(tmp_path, processes=4, threads=2, seconds=2.0)
    counts = stress_store.audit(str(tmp_path / "store"), results)
    assert counts["recorders"] >= 8 and counts["points"] > 0 and counts["cross_tags"] > 0


@pytest.mark.slow
def test_processes_and_threads_full(tmp_path: Path) -> None:
    results = stress_store.run(tmp_path, processes=8, threads=4, seconds=30.0)
    counts = stress_store.audit(str(tmp_path / "store"), results)
    assert counts["recorders"] >= 32


RACER = """
import sys
from tracklite import QlibRecorder, ExpManager
r = QlibRecorder(ExpManager(uri=sys.argv[1]))
print("ready", flush=True)
sys.stdin.readline()
experiment = r.get_exp(experiment_name="race")
r.start_exp(experiment_name="race", recorder_name="racer")
rec = r.get_recorder()
r.end_exp()
print("ID", experiment.id, rec.experiment_id, flush=True)
"""


@pytest.mark.parametrize("racers", [32])
def test_racing_experiment_creation(tmp_path: Path, racers: int) -> None:
    """32 processes released at once all create the experiment "race": exactly one exists and
    every process got its id."""
    store = tmp_path / "store"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(store)],
            cwd=tmp_path,
            env=child_env(store),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(racers)
    ]
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
    for proc in procs:  # released together: the creations overlap
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    ids = Counter()
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0
        line = next(x for x in out.splitlines() if x.startswith("ID "))
        exp_id, rec_exp_id = line.split()[1:]
        assert exp_id == rec_exp_id
        ids[exp_id] += 1
    assert len(ids) == 1, f"{len(ids)} experiments named 'race' were created: {ids}"
    manager = ExpManager(uri=str(store))
    experiments = manager.list_experiments()
    assert list(experiments) == ["race"] and experiments["race"].id in ids
    recorders = experiments["race"].list_recorders()
    assert len(recorders) == racers
    assert {rec.status for rec in recorders.values()} == {"FINISHED"}  # type: ignore[union-attr]
    assert tracklite.check(store).clean
