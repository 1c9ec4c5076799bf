"""``python -m tracklite`` as a real process: the README's demo in an empty folder, errors on
stderr, a gc confirmation on a real terminal, a killed run shown DEAD, a closed pipe."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_cli_helpers import make_sample

from tracklite import QlibRecorder


def _env() -> dict[str, str]:
    return {
        k: v for k, v in os.environ.items() if not k.startswith(("TRACKLITE_", "_QLIB_", "COLUMNS"))
    }


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=120, check=False
    )


def tracklite(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return _run([sys.executable, "-m", "tracklite", *argv], cwd)


def test_demo_in_an_empty_folder(tmp_path: Path) -> None:
    folder = tmp_path / "fresh"
    folder.mkdir()
    done = tracklite("demo", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    store = folder / "tracklite-store"
    assert f"store       {store}" in done.stdout
    assert "recorded    4 runs: 3 FINISHED, 1 FAILED" in done.stdout
    assert "files written" in done.stdout and "pred.pkl" in done.stdout
    assert "tracklite runs tracklite-demo" in done.stdout
    assert sorted(os.listdir(folder)) == ["tracklite-store"]  # nothing else left behind

    listed = tracklite("runs", "tracklite-demo", "--format", "csv", cwd=folder)
    rows = list(csv.DictReader(io.StringIO(listed.stdout)))
    assert sorted(r["status"] for r in rows) == ["FAILED", "FINISHED", "FINISHED", "FINISHED"]
    finished = [r for r in rows if r["status"] == "FINISHED"]
    assert all(float(r["metrics.loss"]) < 1 and r["params.lr"] for r in finished)
    for row in finished:
        [pickle] = store.rglob(f"{row['id']}/artifacts/pred.pkl")
        assert pickle.stat().st_size > 0

    # Running it again adds runs to the same experiment.
    assert tracklite("demo", cwd=folder).returncode == 0
    again = tracklite("experiments", "--format", "csv", cwd=folder)
    [row] = list(csv.DictReader(io.StringIO(again.stdout)))
    assert (row["name"], row["recorders"], row["FAILED"]) == ("tracklite-demo", "8", "2")


def test_user_mistakes_are_one_line_on_stderr(tmp_path: Path) -> None:
    folder = tmp_path / "w"
    folder.mkdir()
    missing = tracklite("experiments", cwd=folder)
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.count("\n") == 1
    assert missing.stderr.startswith("tracklite: error: no tracklite store at ")
    assert not (folder / "tracklite-store").exists()

    assert tracklite("demo", cwd=folder).returncode == 0
    unknown = tracklite("runs", "nope", cwd=folder)
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert unknown.stderr.splitlines() == [unknown.stderr.strip()]
    assert unknown.stderr.startswith("tracklite: error: no experiment named 'nope'")

    bad = tracklite("runs", "tracklite-demo", "--filter", "params.lr = 0.1", cwd=folder)
    assert bad.returncode == 1 and len(bad.stderr.splitlines()) == 1
    assert "Traceback" not in bad.stderr

    usage = tracklite("show", cwd=folder)
    assert usage.returncode == 2 and len(usage.stderr.splitlines()) == 1
    assert "RECORDER" in usage.stderr


def test_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("tracklite")
    if not script.exists():
        found = shutil.which("tracklite")
        if found is None:
            pytest.skip("the tracklite console script is not installed in this environment")
        script = Path(found)
    done = _run([str(script), "--version"], tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("tracklite ")
    failed = _run([str(script), "--uri", str(tmp_path / "none"), "runs", "x"], tmp_path)
    assert failed.returncode == 1 and len(failed.stderr.splitlines()) == 1


def test_gc_asks_on_a_terminal(tmp_path: Path, R: QlibRecorder) -> None:
    sample = make_sample(R)
    R.get_exp(experiment_name="lgb", create=False).delete_recorder(recorder_id=sample.slow)
    target = Path(sample.uri) / sample.exp_id / sample.slow
    for answer, code in ((b"n\n", 1), (b"y\n", 0)):
        master, slave = os.openpty()
        try:
            os.write(master, answer)
            done = subprocess.run(
                [sys.executable, "-m", "tracklite", "--uri", sample.uri, "gc"],
                cwd=tmp_path,
                env=_env(),
                stdin=slave,
                capture_output=True,
                timeout=120,
                check=False,
            )
        finally:
            os.close(slave)
            os.close(master)
        assert done.returncode == code, done.stderr
        assert b"for good? [y/N]" in done.stderr
        assert target.exists() == (code == 1)
    assert b"removed 1 item," in done.stdout


def test_killed_run_shows_dead(tmp_path: Path) -> None:
    store = tmp_path / "store"
    code = (
        "import os\n"
        "from tracklite import R\n"
        f"R.set_uri({str(store)!r})\n"
        "R.start_exp(experiment_name='jobs', recorder_name='killed')\n"
        "R.log_metrics(step=0, loss=1.0)\n"
        "R.flush()\n"
        "os._exit(0)  # like kill -9: no exit hook runs\n"
    )
    child = _run([sys.executable, "-c", code], tmp_path)
    assert child.returncode == 0, child.stderr
    listed = tracklite("--uri", str(store), "runs", "jobs", "--format", "csv", cwd=tmp_path)
    [row] = list(csv.DictReader(io.StringIO(listed.stdout)))
    assert row["status"] == "DEAD"
    table = tracklite("--uri", str(store), "experiments", cwd=tmp_path)
    assert "dead" in table.stdout.splitlines()[0]


def test_closed_pipe_is_quiet(tmp_path: Path, R: QlibRecorder) -> None:
    with R.start(experiment_name="big", recorder_name="many"):
        for step in range(200):
            R.log_metrics(step=step, **{f"k{i}": float(i) for i in range(100)})
        rec_id = R.get_recorder().id
    assert rec_id is not None
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tracklite",
            "--uri",
            R.get_uri(),
            "metrics",
            rec_id,
            "--format",
            "csv",
        ],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"key,step,value,timestamp")
    proc.stdout.close()  # the reader leaves, like `| head -1`
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.returncode == 141, err
    assert err == ""
