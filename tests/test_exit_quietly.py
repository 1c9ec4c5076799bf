"""A run ended by interpreter exit is written whole and quietly, compaction included.

At exit nothing may start a thread or register an exit hook, so the final flush and the
compaction must not import anything that does (pyarrow's dataset layer imports pandas, which
does both).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tracklite import ExpManager, QlibRecorder

SCRIPT = """
import tracklite
from tracklite import R
tracklite.configure(flush_interval=1000)
R.start_exp(experiment_name="exit")
for step in range(2000):
    R.log_metrics(step=step, loss=step * 0.5, acc=1.0)
    if step == 999:
        R.flush()  # a first segment now, the second at exit: exit compacts them
"""


def test_run_ended_by_exit_is_compacted_quietly(tmp_path: Path) -> None:
    env = dict(os.environ, TRACKLITE_URI=str(tmp_path / "store"))
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
    runs = QlibRecorder(ExpManager(uri=str(tmp_path / "store"))).list_recorders(
        experiment_name="exit"
    )
    assert len(runs) == 3
    for rec in runs.values():
        assert rec.status == "FINISHED"
        assert len(list(rec.ref.metrics_dir.glob("*.parquet"))) == 1  # two segments, merged
        history = rec.get_metric_history("loss")
        assert list(history["step"]) == list(range(2000))
        assert rec.list_metrics() == {"loss": 999.5, "acc": 1.0}
