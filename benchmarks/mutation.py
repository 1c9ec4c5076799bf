"""Mutation testing of the modules the reliability promises rest on, one module at a time.

Each module is mutated by mutmut (``pip install mutmut``; a development tool, not a dependency)
in a scratch copy of the repository, against the tests that exercise it, and the survivors are
counted::

    python benchmarks/mutation.py                          # every module below, every mutant
    python benchmarks/mutation.py --sample 60              # 60 mutants a module, seeded
    python benchmarks/mutation.py tracklite/liveness.py

Prints one row per module: mutants generated, mutants run, killed, survived (and timed out /
no tests), the survival rate and the time taken. Survivors are listed by name (``mutmut show
NAME`` in the kept copy shows the change). ``--sample N`` runs a seeded random sample of N
mutants a module: on a 2-core machine the whole of ``writer.py`` and ``filter.py`` (over a
thousand mutants) takes hours, a sample a few minutes, and estimates the same rate.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: The liveness tests, for the heartbeat (liveness.py) and the owner's process identity
#: (store/owner.py) alike.
_LIVENESS: tuple[list[str], str] = (
    [
        "tests/test_liveness.py",
        "tests/test_heartbeat.py",
        "tests/test_liveness_parts.py",
        "tests/test_liveness_edges.py",
    ],
    "other_host or missing_heartbeat or ended_statuses or own_run or beat_on_missing"
    " or default_stale or liveness_parts or liveness_edges or pid_reuse_without",
)

#: Module -> the tests that exercise it (the whole suite per mutant would take hours), and a
#: ``-k`` expression leaving out tests that start child Python processes: mutmut's coverage run
#: cannot follow a child that runs in another folder (the test's own temporary one). The suite
#: itself runs those tests (the heartbeat and liveness ones with real processes above all).
TARGETS: dict[str, tuple[list[str], str]] = {
    "tracklite/store/atomic.py": (
        [
            "tests/test_staging.py",
            "tests/test_store_location.py",
            "tests/test_links.py",
            "tests/test_atomic_files.py",
        ],
        "not process",
    ),
    "tracklite/liveness.py": _LIVENESS,
    "tracklite/store/owner.py": _LIVENESS,
    # The order_by parser shares the filter's name resolution, and searches evaluate filters
    # on Arrow rows (``arrow_mask``): their tests are the ones that exercise those paths.
    "tracklite/search/filter.py": (
        [
            "tests/test_search_filter.py",
            "tests/test_search_order.py",
            "tests/test_search_records.py",
        ],
        "not process",
    ),
    "tracklite/metrics/writer.py": (
        [
            "tests/test_metric_writer.py",
            "tests/test_metric_values.py",
            "tests/test_batch_api.py",
            "tests/test_writer_thread.py",
            "tests/test_latest_file.py",  # the summary of many keys, in a file of its own
        ],
        "not another_process and not import_tracklite and not killed_between and not never_lock",
    ),
}

_SKIP = {".git", "mutants", ".mypy_cache", ".ruff_cache", ".pytest_cache", "__pycache__"}


def _config(module: str, tests: list[str], keep: str) -> str:
    selection = ", ".join(f'"{t}"' for t in tests)
    return (
        "\n[tool.mutmut]\n"
        'source_paths = ["tracklite"]\n'
        f'only_mutate = ["{module}"]\n'
        f"pytest_add_cli_args_test_selection = [{selection}]\n"
        f'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-x", "-k", "{keep}"]\n'
    )


def _results(copy: Path) -> dict[str, str]:
    """``{mutant name: status}`` of the copy's mutants."""
    out = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"],
        cwd=copy,
        check=False,
        capture_output=True,
        text=True,
    ).stdout
    found = (re.match(r"\s*(\S+): (.+)$", line) for line in out.splitlines())
    return {m.group(1): m.group(2).strip() for m in found if m}


def run_module(
    module: str, tests: tuple[list[str], str], keep: bool, sample: int | None, seed: int
) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="tracklite-mutation-"))
    copy = work / "repo"
    shutil.copytree(REPO, copy, ignore=lambda _d, names: [n for n in names if n in _SKIP])
    with open(copy / "pyproject.toml", "a", encoding="utf-8") as handle:
        handle.write(_config(module, *tests))
    start = time.monotonic()
    run = [sys.executable, "-m", "mutmut", "run"]
    log = open(work / "mutmut.log", "w", encoding="utf-8")  # noqa: SIM115 - closed below
    quiet = {"cwd": copy, "check": False, "stdout": log, "stderr": subprocess.STDOUT}
    if sample is None:
        subprocess.run(run, **quiet)  # type: ignore[call-overload]
    else:
        # A name that matches nothing: mutmut generates every mutant, then stops.
        subprocess.run(  # type: ignore[call-overload]
            [*run, "tracklite.none-matches"], **dict(quiet, stdout=subprocess.DEVNULL)
        )
        names = sorted(_results(copy))
        chosen = random.Random(seed).sample(names, min(sample, len(names)))
        subprocess.run([*run, *chosen], **quiet)  # type: ignore[call-overload]
    seconds = time.monotonic() - start
    log.close()
    statuses = _results(copy)
    if all(status == "not checked" for status in statuses.values()):
        # mutmut stops before any mutant when a test fails without mutation (its stats or
        # clean run): say so rather than print an empty row.
        tail = (work / "mutmut.log").read_text(encoding="utf-8", errors="replace")[-3000:]
        print(f"{module}: mutmut ran no mutant; the end of its output:\n{tail}", flush=True)
    generated = len(statuses)
    ran = {name: status for name, status in statuses.items() if status != "not checked"}
    counts: dict[str, int] = {}
    for status in ran.values():
        counts[status] = counts.get(status, 0) + 1
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "module": module,
        "generated": generated,
        "total": len(ran),
        "counts": counts,
        "survivors": sorted(name for name, status in ran.items() if status == "survived"),
        "seconds": seconds,
        "where": copy,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", default=list(TARGETS))
    parser.add_argument("--keep", action="store_true", help="keep the scratch copies")
    parser.add_argument("--sample", type=int, help="run N mutants a module (seeded sample)")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    print(
        f"{'module':32} {'mutants':>7} {'run':>5} {'killed':>6} {'survived':>8} {'other':>5} "
        f"{'rate':>6} {'s':>5}",
        flush=True,
    )
    rows = []
    for module in args.modules:
        row = run_module(module, TARGETS[module], args.keep, args.sample, args.seed)
        rows.append(row)
        _print(row, args.keep)
    killed = sum(r["counts"].get("killed", 0) for r in rows)  # type: ignore[attr-defined]
    survived = sum(r["counts"].get("survived", 0) for r in rows)  # type: ignore[attr-defined]
    total = sum(int(r["total"]) for r in rows)  # type: ignore[call-overload]
    rate = survived / total if total else 0.0
    print(f"{'all':32} {'':7} {total:5} {killed:6} {survived:8} {'':5} {rate:6.1%}")


def _print(row: dict[str, object], keep: bool) -> None:
    counts: dict[str, int] = row["counts"]  # type: ignore[assignment]
    total = int(row["total"])  # type: ignore[call-overload]
    killed = counts.get("killed", 0)
    survived = counts.get("survived", 0)
    other = total - killed - survived
    rate = survived / total if total else 0.0
    print(
        f"{row['module']:32} {row['generated']:7} {total:5} {killed:6} {survived:8} "
        f"{other:5} {rate:6.1%} {row['seconds']:5.0f}",
        flush=True,
    )
    for name in row["survivors"]:  # type: ignore[attr-defined]
        print(f"    survived: {name}")
    if keep:
        print(f"    copy: {row['where']}")


if __name__ == "__main__":
    main()
