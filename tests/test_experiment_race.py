"""Processes (and threads) racing to create the same experiment end with exactly one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tracklite import ExpManager, QlibRecorder

pytestmark = pytest.mark.usefixtures("clean_env")

ROUNDS = 20
WORKERS = 4
INTERVAL = 0.1  # seconds between rounds

WORKER = r"""
import json, os, sys, time
from pathlib import Path

import portalocker  # imported up front so every process reaches the lock equally fast
from tracklite import ExpManager, QlibRecorder

base, me = Path(sys.argv[1]), int(sys.argv[2])
rounds, interval = int(sys.argv[3]), float(sys.argv[4])
(base / f"ready-{me}").write_text("")
go = base / "go"
deadline = time.time() + 300
while not go.exists():
    if time.time() > deadline:
        sys.exit("no go signal")
    time.sleep(0.002)
t0 = float(go.read_text())
for i in range(rounds):
    if me >= 2 + i % 3:  # 2, 3 or 4 processes take part in a round
        continue
    # Even rounds race on a brand-new store (the marker too), odd rounds on a shared one.
    uri = str(base / (f"store-{i}" if i % 2 == 0 else "shared"))
    name = f"race {i}"
    R = QlibRecorder(ExpManager(uri=uri))
    delay = t0 + i * interval - time.time()
    if delay > 0:
        time.sleep(delay)
    if i % 4 in (1, 2):
        with R.start(experiment_name=name) as exp:
            pass
    else:
        exp = R.get_exp(experiment_name=name)
    print(json.dumps({"round": i, "uri": uri, "name": name, "id": exp.id}), flush=True)
"""


def experiments_named(root: Path, name: str) -> list[str]:
    found = []
    for meta_path in root.glob("*/experiment.json"):
        meta = json.loads(meta_path.read_text("utf-8"))
        if meta["name"] == name and meta["lifecycle"] == "active":
            found.append(meta["id"])
    return found


def test_processes_racing_to_create_an_experiment_end_with_one(tmp_path: Path) -> None:
    base = tmp_path / "race"
    base.mkdir()
    script = tmp_path / "worker.py"
    script.write_text(WORKER, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLITE_")}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(base), str(k), str(ROUNDS), str(INTERVAL)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tmp_path,
        )
        for k in range(WORKERS)
    ]
    try:
        deadline = time.time() + 300
        while not all((base / f"ready-{k}").exists() for k in range(WORKERS)):
            assert time.time() < deadline, "workers did not start"
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            time.sleep(0.01)
        go_tmp = base / ".go"
        go_tmp.write_text(str(time.time() + 0.2))
        os.replace(go_tmp, base / "go")
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    results: dict[int, list[dict[str, str]]] = {}
    for (out, err), proc in zip(outputs, procs, strict=True):
        assert proc.returncode == 0, err
        assert err == ""
        for line in out.splitlines():
            row = json.loads(line)
            results.setdefault(row["round"], []).append(row)
    assert sorted(results) == list(range(ROUNDS))
    for i, rows in results.items():
        assert len(rows) == 2 + i % 3
        ids = {row["id"] for row in rows}
        assert len(ids) == 1, f"round {i}: {ids}"
        root = Path(rows[0]["uri"])
        assert experiments_named(root, rows[0]["name"]) == list(ids), f"round {i}"
        listed = QlibRecorder(ExpManager(uri=str(root))).list_experiments()
        assert listed[rows[0]["name"]].id in ids
    shared = QlibRecorder(ExpManager(uri=str(base / "shared"))).list_experiments()
    assert sorted(shared) == sorted(f"race {i}" for i in range(1, ROUNDS, 2))
    # No temporary experiment folder was left behind by a loser.
    for root in base.iterdir():
        if root.is_dir():
            assert not [p for p in root.iterdir() if p.name.endswith(".creating")]


def test_threads_racing_to_create_an_experiment_end_with_one(store_uri: str) -> None:
    def worker(
        name: str, barrier: threading.Barrier, ids: list[str], errors: list[BaseException]
    ) -> None:
        try:
            recorder = QlibRecorder(ExpManager(uri=store_uri))
            barrier.wait()
            ids.append(recorder.get_exp(experiment_name=name).id)
        except BaseException as exc:  # reported below
            errors.append(exc)

    for round_ in range(5):
        name = f"threads {round_}"
        barrier = threading.Barrier(6)
        ids: list[str] = []
        errors: list[BaseException] = []
        threads = [
            threading.Thread(target=worker, args=(name, barrier, ids, errors)) for _ in range(6)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors
        assert len(ids) == 6 and len(set(ids)) == 1
        assert experiments_named(Path(store_uri), name) == ids[:1]
