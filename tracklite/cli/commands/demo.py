"""``tracklite demo``: record a small example experiment through ``tracklite.R`` and show it.

It is the README's first command, so it must work on a fresh machine in an empty folder, and
what it prints doubles as a tour: where the store is, what is in it, and what to type next.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from ... import R
from ...store import layout
from .. import resolve, tables, text
from ..context import Context
from ..tables import Column, Table
from .common import (
    Parents,
    SubParsers,
    add_command,
    metric_value,
    recorder_columns,
    recorder_row,
)

EXPERIMENT = "tracklite-demo"
#: (recorder name, learning rate, leaves); the last one fails on purpose.
RUNS = (("lgb-lr0.10", 0.10, 31), ("lgb-lr0.05", 0.05, 63), ("lgb-lr0.02", 0.02, 63))
STEPS = 20


class DemoFailure(RuntimeError):
    """Raised inside the demo's last run so that it ends FAILED, as a crashed run would."""


def register(sub: SubParsers, parents: Parents) -> None:
    parser = add_command(
        sub,
        parents,
        "demo",
        demo,
        "record a small example experiment and show what was stored",
        description=f"Record the example experiment {EXPERIMENT!r} in the store through "
        "tracklite.R: three finished runs with params, metric curves and artifacts, and one run "
        "that fails. Running it again adds new runs.",
        tabular=False,
    )
    parser.add_argument(
        "--experiment",
        default=EXPERIMENT,
        metavar="NAME",
        help=f"experiment name (default {EXPERIMENT})",
    )


def demo(ctx: Context, args: argparse.Namespace) -> int:
    catalog = ctx.catalog
    before = _files(catalog.root)
    ids = []
    with tempfile.TemporaryDirectory(prefix="tracklite-demo-") as scratch:
        for name, lr, leaves in RUNS:
            ids.append(_finished_run(ctx.uri, args.experiment, name, lr, leaves, Path(scratch)))
    ids.append(_failed_run(ctx.uri, args.experiment))

    exp = resolve.experiment(catalog, args.experiment)
    metas = [m for m in (catalog.recorder(exp["id"], i) for i in ids) if m is not None]
    short = resolve.prefix_length(catalog.recorder_ids(), ids)

    ctx.print(f"store       {catalog.root}")
    ctx.print(f"experiment  {exp['name']} ({exp['id']})")
    ctx.print(f"recorded    {len(metas)} runs: {len(RUNS)} FINISHED, 1 FAILED\n")
    rows = []
    for meta in metas:
        row = recorder_row(catalog, meta, short)
        row["lr"] = meta["params"].get("lr")
        row["num_leaves"] = meta["params"].get("num_leaves")
        row["valid_ic"] = metric_value(meta, "valid_ic")
        rows.append(row)
    columns = [
        *recorder_columns(),
        Column("lr", right=True),
        Column("num_leaves", "leaves", right=True),
        Column("valid_ic", right=True),
    ]
    tables.write(Table(columns, rows), ctx.out)

    after = _files(catalog.root)
    written = {rel: n for rel, n in after.items() if rel not in before}
    ctx.print(
        f"\nfiles written ({text.plural(len(written), 'file')}, "
        f"{text.size(sum(written.values()))}) under {catalog.root}:"
    )
    names = {m["id"]: m["name"] for m in metas}
    names[exp["id"]] = exp["name"]
    tables.write(Table(_FILE_COLUMNS, _file_rows(written, names), header=False), ctx.out)
    first = ids[0][:short]
    ctx.print(
        "\nnext:\n"
        "  tracklite experiments\n"
        f"  tracklite runs {exp['name']} --order-by 'metrics.valid_ic DESC'\n"
        f"  tracklite show {first}\n"
        f"  tracklite metrics {first} --key loss --plot\n"
        f"  tracklite compare {' '.join(i[:short] for i in ids[:2])}"
    )
    if ctx.uri != layout.default_uri() or os.environ.get(layout.URI_ENV):
        ctx.print(f"  (add --uri {ctx.uri} to each, or set {layout.URI_ENV})")
    return 0


def _finished_run(
    uri: str, experiment: str, name: str, lr: float, leaves: int, scratch: Path
) -> str:
    with R.start(experiment_name=experiment, recorder_name=name, uri=uri):
        R.log_params(lr=lr, num_leaves=leaves, model="LGBModel", dataset="Alpha158")
        R.set_tags(purpose="demo")
        for step in range(STEPS):
            # A plausible training curve: loss falls faster with a larger learning rate.
            loss = 0.25 + 0.75 * math.exp(-lr * 2.5 * step)
            R.log_metrics(step=step, loss=loss, valid_ic=0.06 * (1 - loss) + lr * 0.1)
        objects: dict[str, Any] = {"pred.pkl": [round(0.01 * i * lr, 5) for i in range(100)]}
        R.save_objects(**objects)
        config = scratch / f"{name}.yaml"
        config.write_text(f"model: LGBModel\nlr: {lr}\nnum_leaves: {leaves}\n", encoding="utf-8")
        R.log_artifact(config, artifact_path="config")
        recorder = R.get_recorder()
        assert recorder.id is not None
        return recorder.id


def _failed_run(uri: str, experiment: str) -> str:
    recorder_id = ""
    try:
        with R.start(experiment_name=experiment, recorder_name="lgb-diverged", uri=uri):
            recorder_id = R.get_recorder().id or ""
            R.log_params(lr=1.5, num_leaves=255, model="LGBModel", dataset="Alpha158")
            for step in range(3):
                R.log_metrics(step=step, loss=1.0 + step * 2.5)
            raise DemoFailure("loss diverged")  # R.start ends the run FAILED, as in a crash
    except DemoFailure:
        pass
    return recorder_id


def _files(root: Path) -> dict[str, int]:
    """Every file under ``root`` (relative path -> size), lock files included."""
    found: dict[str, int] = {}
    for folder, _dirs, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            try:
                found[path.relative_to(root).as_posix()] = path.stat().st_size
            except OSError:
                continue
    return found


_FILE_COLUMNS = [
    Column("path", max_width=80),
    Column("size", show=lambda n: "" if n is None else text.size(n), right=True, shrink=False),
    Column("what", max_width=50),
]


def _file_rows(written: dict[str, int], names: dict[str, str]) -> list[dict[str, Any]]:
    """The new files as an indented tree: store, experiment folders, recorder folders.

    ``names`` maps folder ids to experiment and recorder names. Lock files are left out
    (bookkeeping), and a recorder's metric segments are one line.
    """
    tree: dict[str, Any] = {}
    for rel, size in written.items():
        parts = rel.split("/")
        if parts[-1].startswith("."):
            continue
        node = tree
        for folder in parts[:-1]:
            node = node.setdefault(folder + "/", {})
        node[parts[-1]] = size
    rows: list[dict[str, Any]] = []

    def walk(node: dict[str, Any], depth: int) -> None:
        indent = "  " * (depth + 1)
        files = sorted(k for k in node if not k.endswith("/"))
        if depth == 0:
            files.sort(key=lambda k: k != layout.MARKER)
        for name in files:
            what = "store marker" if depth == 0 and name == layout.MARKER else _WHAT.get(name)
            rows.append({"path": indent + name, "size": node[name], "what": what})
        for folder in sorted(k for k in node if k.endswith("/")):
            child = node[folder]
            if folder == layout.METRICS_DIR + "/" and all(
                isinstance(v, int) for v in child.values()
            ):
                rows.append(
                    {
                        "path": f"{indent}{folder}*{layout.SEGMENT_SUFFIX}",
                        "size": sum(child.values()),
                        "what": f"metric points, {text.plural(len(child), 'Parquet file')}",
                    }
                )
                continue
            kind = {0: "experiment ", 1: "recorder "}.get(depth, "")
            label = names.get(folder.rstrip("/"))
            rows.append({"path": indent + folder, "what": f"{kind}{label}" if label else None})
            walk(child, depth + 1)

    walk(tree, 0)
    return rows


_WHAT = {
    layout.EXPERIMENT_FILE: "experiment id, name, lifecycle",
    layout.RECORDER_FILE: "info, params, tags, latest metrics",
    layout.HEARTBEAT_FILE: "liveness (mtime)",
}
