"""Concurrency stress: many processes x threads writing one store, then a full audit.

Each thread loops until the deadline, once at least: start a recorder in one of a few
experiments (whose creation races across every process), log params, tags and metrics, save an
object and a file, end the recorder FINISHED or FAILED, and set a tag on a random finished
recorder of another thread. Everything a call acknowledged (it returned) is written to an ack
file per process. The audit then checks that every acknowledged point, param, tag and artifact
is present exactly once, every recorder has the status its thread gave it, no recorder exists
that no thread acknowledged, each experiment name exists once, and ``tracklite.check`` is
clean.

    python benchmarks/stress_store.py --processes 8 --threads 4 --seconds 30

Exit status 0 when the audit passes. The test suite runs a short version
(``tests/test_stress.py``); the long one is marked slow there.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
EXPERIMENTS = ["stress-a", "stress-b", "stress-c"]
KEYS = ["loss", "acc", "lr"]


# ---------------------------------------------------------------------------- one process


def _thread_body(
    uri: str,
    proc: int,
    thread: int,
    deadline: float,
    acks: list[dict[str, Any]],
    tag_acks: list[dict[str, Any]],
    errors: list[str],
    scratch: Path,
) -> None:
    from tracklite import ExpManager

    rng = random.Random(proc * 1000 + thread)
    manager = ExpManager(uri=uri)
    n = 0
    while n == 0 or time.monotonic() < deadline:  # one recorder at least, however late it starts
        n += 1
        try:
            exp_name = rng.choice(EXPERIMENTS)
            experiment = manager.get_exp(experiment_name=exp_name)
            rec = experiment.create_recorder(f"p{proc}-t{thread}-{n}")
            rec.start_run()
            assert rec.id is not None
            params = {f"param{j}": f"{proc}.{thread}.{n}.{j}" for j in range(rng.randint(1, 4))}
            rec.log_params(**params)
            tags = {"owner": f"{proc}.{thread}", "n": str(n)}
            rec.set_tags(**tags)
            steps = rng.randint(1, 60)
            for step in range(steps):
                rec.log_metrics(step=step, **{k: step * 0.5 + i for i, k in enumerate(KEYS)})
                if rng.random() < 0.05:
                    rec.flush()
            obj = {"proc": proc, "thread": thread, "n": n, "blob": os.urandom(rng.randint(0, 4096))}
            rec.save_objects(**{"obj.pkl": obj})
            local = scratch / f"{proc}-{thread}-{n}.txt"
            local.write_text(f"file of {proc}.{thread}.{n}\n" * rng.randint(1, 50))
            rec.save_objects(local_path=local, artifact_path="files")
            status = rng.choice(["FINISHED", "FINISHED", "FAILED"])
            rec.end_run(status)
            acks.append(
                {
                    "experiment": exp_name,
                    "experiment_id": rec.experiment_id,
                    "id": rec.id,
                    "params": params,
                    "tags": tags,
                    "steps": steps,
                    "status": status,
                    "object": {"proc": proc, "thread": thread, "n": n, "blob": obj["blob"].hex()},
                    "file": local.name,
                    "file_text": local.read_text(),
                }
            )
            # A tag on someone else's finished recorder (read-modify-write under its lock).
            other_exp = manager.get_exp(experiment_name=rng.choice(EXPERIMENTS))
            done = [r for r in other_exp.list_recorders(rtype="list") if r.status != "RUNNING"]
            if done:
                target = rng.choice(done)
                key, value = f"x{proc}_{thread}_{n}", f"from {proc}.{thread}.{n}"
                target.set_tags(**{key: value})
                tag_acks.append({"id": target.id, "key": key, "value": value})
        except Exception as exc:  # the audit fails on any error, with its text
            errors.append(f"p{proc} t{thread} #{n}: {type(exc).__name__}: {exc}")


def warm_up() -> None:
    """Import what a first run and a first flush import (~2 s of CPU here), so the timed window
    measures the store, not the imports."""
    import cloudpickle  # noqa: F401
    import pandas  # noqa: F401
    import portalocker  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    import tracklite.maintenance.check
    import tracklite.metrics.compaction
    import tracklite.metrics.history  # noqa: F401


def worker(uri: str, proc: int, threads: int, seconds: float, out: Path) -> None:
    """One process: ``threads`` threads for ``seconds`` after the parent says go."""
    warm_up()
    print("ready", flush=True)
    sys.stdin.readline()  # every process starts together
    deadline = time.monotonic() + seconds
    acks: list[dict[str, Any]] = []
    tag_acks: list[dict[str, Any]] = []
    errors: list[str] = []
    scratch = Path(tempfile.mkdtemp(prefix=f"stress-{proc}-"))
    pool = [
        threading.Thread(
            target=_thread_body,
            args=(uri, proc, t, deadline, acks, tag_acks, errors, scratch),
        )
        for t in range(threads)
    ]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    out.write_text(json.dumps({"acks": acks, "tags": tag_acks, "errors": errors}))


# ---------------------------------------------------------------------------- the run


def run(root: Path, processes: int, threads: int, seconds: float) -> list[dict[str, Any]]:
    """Run the workers; returns each process's ack record."""
    root.mkdir(parents=True, exist_ok=True)
    acks_dir = Path(tempfile.mkdtemp(prefix="stress-acks-"))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--worker",
                str(p),
                "--store",
                str(root / "store"),
                "--threads",
                str(threads),
                "--seconds",
                str(seconds),
                "--out",
                str(acks_dir / f"{p}.json"),
            ],
            env=env,
            cwd=acks_dir,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for p in range(processes)
    ]
    for proc in procs:  # a barrier: all imported and warm
        assert proc.stdout is not None
        proc.stdout.readline()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in procs:
        proc.communicate(timeout=seconds + 600)
    results = []
    for p, proc in enumerate(procs):
        path = acks_dir / f"{p}.json"
        if proc.returncode != 0 or not path.exists():
            raise RuntimeError(f"worker {p} exited with {proc.returncode} and no ack file")
        results.append(json.loads(path.read_text()))
    return results


def audit(uri: str, results: list[dict[str, Any]]) -> dict[str, int]:
    """Raise AssertionError on the first discrepancy; return counts of what was verified."""
    import pickle

    import tracklite
    from tracklite import ExpManager

    errors = [e for r in results for e in r["errors"]]
    assert not errors, "workers failed:\n" + "\n".join(errors[:20])
    acks = [a for r in results for a in r["acks"]]
    tag_acks = [t for r in results for t in r["tags"]]
    manager = ExpManager(uri=uri)
    experiments = manager.list_experiments()
    names = Counter(m["name"] for m in tracklite.api.stores.store_for(uri).iter_experiments())
    assert all(count == 1 for count in names.values()), f"duplicate experiments: {names}"
    used = {a["experiment"] for a in acks}
    assert used <= set(experiments)
    for name in used:  # every process got the same id for a name
        ids = {a["experiment_id"] for a in acks if a["experiment"] == name}
        assert ids == {experiments[name].id}, (name, ids)
    expected_tags: dict[str, dict[str, str]] = {a["id"]: dict(a["tags"]) for a in acks}
    for tag in tag_acks:
        expected_tags[tag["id"]][tag["key"]] = tag["value"]
    in_store: set[str] = set()
    points = 0
    for name, experiment in experiments.items():
        listed = experiment.list_recorders()
        assert isinstance(listed, dict)
        in_store.update(listed)
        for rec_id, rec in listed.items():
            ack = next((a for a in acks if a["id"] == rec_id), None)
            assert ack is not None, f"recorder {rec_id} in {name} was never acknowledged"
            assert rec.status == ack["status"], (rec_id, rec.status, ack["status"])
            params = rec.list_params()
            assert all(params[k] == v for k, v in ack["params"].items()), rec_id
            tags = rec.list_tags()
            missing = {k: v for k, v in expected_tags[rec_id].items() if tags.get(k) != v}
            assert not missing, f"{rec_id} lost tags {missing}"
            history = rec.get_metric_history()
            pairs = Counter(zip(history["key"], history["step"], strict=True))
            want = {(k, s) for k in KEYS for s in range(ack["steps"])}
            assert set(pairs) == want, f"{rec_id}: points differ"
            assert max(pairs.values()) == 1, f"{rec_id}: a point is stored twice"
            for key, step, value in zip(
                history["key"], history["step"], history["value"], strict=True
            ):
                assert value == step * 0.5 + KEYS.index(key)
            points += len(history)
            obj = rec.load_object("obj.pkl")
            assert obj == {**ack["object"], "blob": bytes.fromhex(ack["object"]["blob"])}
            text = (Path(rec.get_local_dir()) / "artifacts" / "files" / ack["file"]).read_text()
            assert text == ack["file_text"]
            with open(Path(rec.get_local_dir()) / "artifacts" / "obj.pkl", "rb") as handle:
                pickle.load(handle)
    missing_recs = {a["id"] for a in acks} - in_store
    assert not missing_recs, f"acknowledged recorders missing: {sorted(missing_recs)[:5]}"
    report = tracklite.check(uri)
    assert report.clean, str(report)
    return {
        "recorders": len(acks),
        "points": points,
        "cross_tags": len(tag_acks),
        "params": sum(len(a["params"]) for a in acks),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--store", help="folder for the store (default: a new temporary one)")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.store, args.worker, args.threads, args.seconds, Path(args.out))
        return 0
    base = Path(args.store) if args.store else Path(tempfile.mkdtemp(prefix="tracklite-stress-"))
    began = time.monotonic()
    results = run(base, args.processes, args.threads, args.seconds)
    counts = audit(str(base / "store"), results)
    print(
        f"{args.processes} processes x {args.threads} threads, {args.seconds:.0f} s: "
        f"{counts['recorders']} recorders, {counts['points']} points, {counts['params']} params, "
        f"{counts['cross_tags']} cross-recorder tags: all present exactly once; check clean "
        f"({time.monotonic() - began:.1f} s in all)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
