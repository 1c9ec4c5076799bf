"""Mutation testing of the modules the reliability promises rest on, one module at a time.

Each module is mutated by mutmut (``pip install mutmut``; a development tool, not a dependency)
in a scratch copy of the repository, against the tests that exercise it, and the survivors are
counted::

    python benchmarks/mutation.py                      # every module below
    python benchmarks/mutation.py tracklite/liveness.py

Prints one row per module: mutants, killed, survived (and timed out / suspicious), the survival
rate and the time taken. Survivors are listed by name for ``mutmut show NAME`` in the copy.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: Module -> the tests that exercise it (the whole suite per mutant would take hours).
TARGETS: dict[str, list[str]] = {
    "tracklite/store/atomic.py": ["tests/test_staging.py", "tests/test_store_location.py"],
    "tracklite/liveness.py": ["tests/test_liveness.py", "tests/test_heartbeat.py"],
    "tracklite/search/filter.py": ["tests/test_search_filter.py"],
    "tracklite/metrics/writer.py": [
        "tests/test_metric_writer.py",
        "tests/test_metric_values.py",
        "tests/test_batch_api.py",
    ],
}

_SKIP = {".git", "mutants", ".mypy_cache", ".ruff_cache", ".pytest_cache", "__pycache__"}


def _config(module: str, tests: list[str]) -> str:
    selection = ", ".join(f'"{t}"' for t in tests)
    return (
        "\n[tool.mutmut]\n"
        'source_paths = ["tracklite"]\n'
        f'only_mutate = ["{module}"]\n'
        f"pytest_add_cli_args_test_selection = [{selection}]\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-x"]\n'
    )


def run_module(module: str, tests: list[str], keep: bool) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="tracklite-mutation-"))
    copy = work / "repo"
    shutil.copytree(REPO, copy, ignore=lambda _d, names: [n for n in names if n in _SKIP])
    with open(copy / "pyproject.toml", "a", encoding="utf-8") as handle:
        handle.write(_config(module, tests))
    start = time.monotonic()
    mutmut = [sys.executable, "-m", "mutmut"]
    subprocess.run([*mutmut, "run"], cwd=copy, check=False, stdout=subprocess.DEVNULL)
    results = subprocess.run(
        [*mutmut, "results", "--all", "true"],
        cwd=copy,
        check=False,
        capture_output=True,
        text=True,
    ).stdout
    seconds = time.monotonic() - start
    counts: dict[str, int] = {}
    survivors = []
    for line in results.splitlines():
        found = re.match(r"\s*(\S+): (.+)$", line)
        if found:
            status = found.group(2).strip()
            counts[status] = counts.get(status, 0) + 1
            if status == "survived":
                survivors.append(found.group(1))
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    total = sum(counts.values())
    return {
        "module": module,
        "total": total,
        "counts": counts,
        "survivors": survivors,
        "seconds": seconds,
        "where": copy,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", default=list(TARGETS))
    parser.add_argument("--keep", action="store_true", help="keep the scratch copies")
    args = parser.parse_args()
    rows = [run_module(m, TARGETS[m], args.keep) for m in args.modules]
    print(
        f"{'module':32} {'mutants':>7} {'killed':>6} {'survived':>8} {'other':>5} "
        f"{'rate':>6} {'s':>5}"
    )
    for row in rows:
        counts: dict[str, int] = row["counts"]  # type: ignore[assignment]
        total = int(row["total"])  # type: ignore[call-overload]
        killed = counts.get("killed", 0)
        survived = counts.get("survived", 0)
        other = total - killed - survived
        rate = survived / total if total else 0.0
        print(
            f"{row['module']:32} {total:7} {killed:6} {survived:8} {other:5} {rate:6.1%} "
            f"{row['seconds']:5.0f}"
        )
        for name in row["survivors"]:  # type: ignore[attr-defined]
            print(f"    survived: {name}")
        if args.keep:
            print(f"    copy: {row['where']}")


if __name__ == "__main__":
    main()
