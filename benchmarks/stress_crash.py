"""Crash stress: kill -9 a logging process at random moments, over and over, on one store.

Each victim starts runs in a loop, logs metrics (flushing often), params, tags and objects, and
ends runs. After every call that made something durable returned (``R.flush()``,
``save_objects``, ``end_exp``) it appends an acknowledgement line to a log outside the store
with one ``write`` (the kernel keeps it even when the process is killed a moment later). The
parent kills the victim at a random moment and then checks, on the whole store:

- tracklite reads every recorder; every acknowledged point is there exactly once, every
  acknowledged param, tag and object too; a recorder whose ``end_exp`` returned is FINISHED and
  the killed one reads FINISHED or DEAD;
- ``pd.read_parquet(<recorder>/metrics)`` reads every recorder (no half-written file is visible:
  every ``*.parquet`` and ``*.json`` parses on its own) and holds every acknowledged point;
- ``tracklite.check`` reports nothing but the dead run and a summary that lagged its segments;
  after ``check(fix=True)`` the store is clean and plain pandas sees each point once.

Victims are forked from a warm "zygote" process (so a kill costs milliseconds, not an
interpreter start); ``--spawn`` starts each from a fresh interpreter instead.

    python benchmarks/stress_crash.py --kills 60
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

# The victim's loop; ``ack(...)`` lines are written only after the call returned.
VICTIM = r"""
def victim(uri, ack_path, seed):
    import os, random, time
    from tracklite import QlibRecorder, ExpManager
    fd = os.open(ack_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    def ack(*parts):
        os.write(fd, (" ".join(str(p) for p in parts) + "\n").encode())
    rng = random.Random(seed)
    r = QlibRecorder(ExpManager(uri=uri))
    while True:
        r.start_exp(experiment_name=rng.choice(["crash-a", "crash-b"]))
        rec = r.get_recorder()
        ack("RUN", rec.experiment_id, rec.id)
        pending = []
        for step in range(rng.randint(20, 300)):
            r.log_metrics(step=step, a=step * 1.0, b=-step * 0.5)
            if step % 25 == 0:
                r.log_params(**{f"p{step}": step})
                r.set_tags(**{f"t{step}": f"v{step}"})
                pending.append((step,))
            if rng.random() < 0.15:
                r.flush()
                ack("ACK", rec.id, step)
                for (s,) in pending:
                    ack("PARAM", rec.id, s)
                pending = []
            if rng.random() < 0.02:
                r.save_objects(**{f"o{step}.pkl": list(range(step))})
                ack("OBJ", rec.id, step)
        r.end_exp()
        ack("END", rec.id)
"""

ZYGOTE = (
    VICTIM
    + r"""
import os, signal, sys
import pandas, pyarrow.parquet, cloudpickle, portalocker
import tracklite, tracklite.metrics.compaction, tracklite.metrics.history
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # killed victims are reaped at once
uri = sys.argv[1]
print("ready", flush=True)
for line in sys.stdin:
    ack_path, seed = line.split()
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        sys.stdin = open(os.devnull)
        try:
            victim(uri, ack_path, int(seed))
        finally:
            os._exit(1)
    print("PID", pid, flush=True)
"""
)

SPAWNED = (
    VICTIM
    + r"""
import sys
victim(sys.argv[1], sys.argv[2], int(sys.argv[3]))
"""
)


@dataclass
class Acked:
    """What the victims acknowledged, per recorder."""

    experiment: dict[str, str] = field(default_factory=dict)
    step: dict[str, int] = field(default_factory=dict)
    params: dict[str, list[int]] = field(default_factory=dict)
    objects: dict[str, list[int]] = field(default_factory=dict)
    ended: set[str] = field(default_factory=set)

    def read(self, path: Path) -> None:
        for line in path.read_text().splitlines():
            kind, *rest = line.split()
            if kind == "RUN":
                self.experiment[rest[1]] = rest[0]
            elif kind == "ACK":
                self.step[rest[0]] = max(self.step.get(rest[0], -1), int(rest[1]))
            elif kind == "PARAM":
                self.params.setdefault(rest[0], []).append(int(rest[1]))
            elif kind == "OBJ":
                self.objects.setdefault(rest[0], []).append(int(rest[1]))
            elif kind == "END":
                self.ended.add(rest[0])


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


class Zygote:
    """A warm interpreter that forks victims on request."""

    def __init__(self, uri: str, cwd: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", ZYGOTE, uri],
            cwd=cwd,
            env=_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the zygote did not start")

    def fork(self, ack_path: Path, seed: int) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{ack_path} {seed}\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline().split()[1])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def _wait_for_ack(ack_path: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ack_path.exists() and b"ACK" in ack_path.read_bytes():
            return
        time.sleep(0.005)
    raise RuntimeError(f"the victim acknowledged nothing within {timeout} s")


def _gone(pid: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.005)
    raise RuntimeError(f"victim {pid} survived SIGKILL")


def kill_once(
    uri: str,
    work: Path,
    index: int,
    rng: random.Random,
    zygote: Zygote | None,
    max_delay: float,
) -> Path:
    """Start a victim, let it run a random while past its first acknowledgement, SIGKILL it.
    Returns its acknowledgement log."""
    ack_path = work / f"acks-{index}.log"
    seed = rng.randrange(1 << 30)
    if zygote is not None:
        pid = zygote.fork(ack_path, seed)
        child = None
    else:
        child = subprocess.Popen(
            [sys.executable, "-c", SPAWNED, uri, str(ack_path), str(seed)],
            cwd=work,
            env=_env(),
        )
        pid = child.pid
    _wait_for_ack(ack_path)
    time.sleep(rng.uniform(0, max_delay))
    os.kill(pid, signal.SIGKILL)
    if child is not None:
        child.wait(timeout=30)
    else:
        _gone(pid)
    return ack_path


def verify(uri: str, acked: Acked, only: set[str] | None = None) -> Counter[str]:
    """Check the store against what was acknowledged (the recorders in ``only``, else all);
    returns the kinds check() reported."""
    import pandas as pd

    import tracklite
    from tracklite import ExpManager, liveness
    from tracklite.store import layout

    root = Path(uri)
    for path in root.rglob("*.json"):
        if layout.QUARANTINE_DIR not in path.parts:
            json.loads(path.read_text())  # no torn metadata is ever visible
    manager = ExpManager(uri=uri)
    for rec_id, exp_id in acked.experiment.items():
        if only is not None and rec_id not in only:
            continue
        rec = manager.get_exp(experiment_id=exp_id, create=False).get_recorder(
            recorder_id=rec_id, create=False
        )
        metrics_dir = root / exp_id / rec_id / layout.METRICS_DIR
        for segment in metrics_dir.glob("*.parquet"):
            pd.read_parquet(segment)  # every visible segment is whole
        history = rec.get_metric_history()
        last = acked.step.get(rec_id, -1)
        if rec_id in acked.ended:
            assert rec.status == "FINISHED", (rec_id, rec.status)
            last = max(last, int(history["step"].max()) if len(history) else -1)
        else:
            assert rec.status in ("FINISHED", liveness.DEAD, "FAILED"), (rec_id, rec.status)
        pairs = Counter(zip(history["key"], history["step"], strict=True))
        assert not pairs or max(pairs.values()) == 1, f"{rec_id}: a point is seen twice"
        want = {(k, s) for k in ("a", "b") for s in range(last + 1)}
        lost = sorted(want - set(pairs))
        assert not lost, f"{rec_id}: acknowledged points lost: {lost[:5]}"
        for key, step, value in zip(history["key"], history["step"], history["value"], strict=True):
            assert value == (step * 1.0 if key == "a" else -step * 0.5)
        if last >= 0:
            frame = pd.read_parquet(metrics_dir)  # plain pandas, whatever moment the kill hit
            assert want <= set(zip(frame["key"], frame["step"], strict=True))
        params = rec.list_params()
        tags = rec.list_tags()
        for step in acked.params.get(rec_id, []):
            assert params[f"p{step}"] == str(step) and tags[f"t{step}"] == f"v{step}"
        for step in acked.objects.get(rec_id, []):
            assert rec.load_object(f"o{step}.pkl") == list(range(step))
    report = tracklite.check(uri)
    kinds = Counter(f.kind for f in report)
    assert set(kinds) <= {"dead_run", "summary_mismatch"}, str(report)
    return kinds


def run(
    base: Path, kills: int, seed: int = 0, spawn_every: int = 0, max_delay: float = 0.6
) -> dict[str, Any]:
    """``kills`` victims on one store; every ``spawn_every``-th one (0: none) is started from a
    fresh interpreter. Verifies after every kill, repairs and re-verifies at the end."""
    import pandas as pd

    import tracklite
    from tracklite.store import layout

    rng = random.Random(seed)
    uri = str(base / "store")
    work = base / "work"
    work.mkdir(parents=True, exist_ok=True)
    acked = Acked()
    zygote = Zygote(uri, work)
    seen: Counter[str] = Counter()
    began = time.monotonic()
    try:
        for index in range(kills):
            use_spawn = spawn_every and index % spawn_every == spawn_every - 1
            log = kill_once(uri, work, index, rng, None if use_spawn else zygote, max_delay)
            before = set(acked.experiment)
            acked.read(log)
            # The victim's own recorders now; every recorder again at the end.
            seen += verify(uri, acked, set(acked.experiment) - before)
    finally:
        zygote.close()
    repaired = tracklite.check(uri, fix=True, temp_age=0)
    assert repaired.ok, str(repaired)
    after = tracklite.check(uri, temp_age=0)
    assert after.clean, str(after)
    verify(uri, acked)
    for rec_id, exp_id in acked.experiment.items():  # once repaired, pandas sees each point once
        metrics_dir = Path(uri) / exp_id / rec_id / layout.METRICS_DIR
        if any(metrics_dir.glob("*.parquet")):
            frame = pd.read_parquet(metrics_dir)
            assert not frame.duplicated(["key", "step"]).any(), rec_id
    return {
        "kills": kills,
        "recorders": len(acked.experiment),
        "ended": len(acked.ended),
        "acked_points": 2 * sum(s + 1 for s in acked.step.values()),
        "dead_runs_marked": len(repaired.of_kind("dead_run")),
        "summaries_rebuilt": len(repaired.of_kind("summary_mismatch")),
        "stale_temps_removed": len(repaired.of_kind("stale_temp")),
        "seconds": round(time.monotonic() - began, 1),
        "findings_seen": dict(seen),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--spawn-every",
        type=int,
        default=10,
        help="start every Nth victim from a fresh interpreter (0: never)",
    )
    parser.add_argument("--store", help="folder for the store (default: a new temporary one)")
    args = parser.parse_args()
    base = Path(args.store) if args.store else Path(tempfile.mkdtemp(prefix="tracklite-crash-"))
    stats = run(base, args.kills, args.seed, args.spawn_every)
    print(json.dumps(stats, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
