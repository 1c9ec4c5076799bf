"""``tracklite check`` (read-only, no ``--fix``) at 10,000 and 100,000 recorders, against a
floor measured in the same run: ``os.walk`` of the same store with an ``lstat`` of every entry
(what any check must at least do to see every file). The check runs as a user's would (its
default ``workers``: one process per core for an experiment of 20,000 recorders or more), and
then, if that was more than one, in one process (``workers=1``), against the same floor; and
``check --deep`` (every point read) with the default workers, against the plain check.

Uses the stores of ``bench_scale.py`` (built there once, in ``--data``, outside the
repository). Each check must come out clean: the stores are consistent by construction.

    python benchmarks/bench_check.py [--sizes 10000,100000] [--data /work/data] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

from bench_scale import Row, _load, report, store_for, timing


def walk_floor(root: Path) -> int:
    """Every entry below ``root`` listed and ``lstat``-ed once; returns how many."""
    seen = 0
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            os.lstat(os.path.join(folder, name))
            seen += 1
    return seen


def measure(root: Path, n: int, repeat: int) -> list[Row]:
    import tracklite

    def run_check(workers: int | None, deep: bool = False) -> None:
        result = tracklite.check(root, workers=workers, deep=deep)
        assert result.clean, str(result)[:2000]

    from tracklite.maintenance.check import SHARE_FROM, default_workers

    floor = timing(lambda: walk_floor(root), repeat)
    # The stores hold one experiment of n recorders.
    chosen = default_workers(root) if n >= SHARE_FROM else 1
    ours = timing(lambda: run_check(None), repeat)
    label = "one process" if chosen == 1 else f"{chosen} processes"
    rows = [(f"`tracklite check` (read-only, {label})", n, ours, floor, "< 30 s at 100,000")]
    if chosen > 1:
        alone = timing(lambda: run_check(1), repeat)
        rows.append(("`tracklite check` (read-only, one process)", n, alone, floor, ""))
    # Every point of every segment read: its floor is the plain check of the first row.
    deep = timing(lambda: run_check(None, deep=True), repeat)
    rows.append((f"`tracklite check --deep` ({label}; floor: the first row)", n, deep, ours, ""))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--data", type=Path, default=Path("/work/data"))
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(
        f"{platform.platform()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, load {_load()} at the start",
        file=sys.stderr,
    )
    rows: list[Row] = []
    for n in sizes:
        root, _ = store_for(args.data, n)
        walk_floor(root)  # the first pass warms the page cache for both contenders alike
        measured = measure(root, n, args.repeat)
        rows.extend(measured)
        print("\n".join(report(measured).splitlines()[2:]), file=sys.stderr)
    print(f"load {_load()} at the end", file=sys.stderr)
    print(report(rows))


if __name__ == "__main__":
    main()
