"""``tracklite show``, ``metrics`` and ``compare``: one recorder in detail, or several side by
side."""

from __future__ import annotations

import argparse
import json
import math
from datetime import datetime, timezone
from typing import Any

from ...api.catalog import Catalog, Meta
from .. import plot, resolve, status, tables, text
from ..context import Context
from ..errors import CliError
from ..tables import Column, Table
from .common import (
    RECORDER_HELP,
    Parents,
    SubParsers,
    add_command,
    duration_seconds,
    metric_value,
    non_negative,
)


def register(sub: SubParsers, parents: Parents) -> None:
    show_parser = add_command(
        sub,
        parents,
        "show",
        show,
        "one recorder: info, params, tags, latest metrics, artifacts",
        description="Everything about one recorder. " + RECORDER_HELP,
    )
    show_parser.add_argument("recorder", metavar="RECORDER", help="recorder name or id")

    metrics_parser = add_command(
        sub,
        parents,
        "metrics",
        metrics,
        "a recorder's metric history, or a plot of it",
        description="Every logged point (key, step, value, time) of RECORDER, in logging "
        "order; --plot draws each key's curve in the terminal. " + RECORDER_HELP,
    )
    metrics_parser.add_argument("recorder", metavar="RECORDER", help="recorder name or id")
    metrics_parser.add_argument(
        "--key", action="append", default=[], metavar="K", help="only metric K (repeatable)"
    )
    metrics_parser.add_argument(
        "--tail", type=non_negative, metavar="N", help="last N points per key"
    )
    metrics_parser.add_argument("--plot", action="store_true", help="draw each key's curve")
    metrics_parser.add_argument(
        "--height", type=non_negative, default=12, metavar="ROWS", help="plot height (default 12)"
    )

    compare_parser = add_command(
        sub,
        parents,
        "compare",
        compare,
        "params and latest metrics of recorders side by side",
        description="Params and latest metrics of each RECORDER side by side; rows whose values "
        "differ are marked with *.",
    )
    compare_parser.add_argument(
        "recorders", nargs="+", metavar="RECORDER", help="recorder names or ids"
    )
    compare_parser.add_argument("--diff-only", action="store_true", help="only rows that differ")


# ------------------------------------------------------------------ show


def show(ctx: Context, args: argparse.Namespace) -> int:
    catalog = ctx.existing_catalog()
    meta = resolve.recorder(catalog, args.recorder)
    exp = catalog.experiment(meta["experiment_id"]) or {}
    folder = catalog.folder(meta)
    owner = meta.get("owner") or {}
    info: dict[str, Any] = {
        "id": meta["id"],
        "name": meta.get("name"),
        "experiment_id": meta.get("experiment_id"),
        "experiment": exp.get("name"),
        "status": catalog.status(meta),
        "lifecycle": meta.get("lifecycle"),
        "start_time": text.iso(meta.get("start_time")),
        "end_time": text.iso(meta.get("end_time")),
        "duration_s": _rounded(duration_seconds(meta)),
        "owner": f"{owner.get('host')} pid {owner.get('pid')}" if owner else None,
        "folder": str(folder),
    }
    params = dict(sorted(meta.get("params", {}).items()))
    tags = dict(sorted(meta.get("tags", {}).items()))
    latest = {
        key: {
            "value": float(entry["value"]),
            "step": entry.get("step"),
            "timestamp": _ms_time(entry.get("timestamp")),
        }
        for key, entry in sorted(meta.get("metrics", {}).items())
    }
    files = catalog.artifact_files(meta)
    if ctx.fmt == "json":
        document = {
            "info": info,
            "params": params,
            "tags": tags,
            "metrics": {k: {**v, "timestamp": text.iso(v["timestamp"])} for k, v in latest.items()},
            "artifacts": [{"path": p, "size": n} for p, n in files],
        }
        json.dump(_finite(document), ctx.out, ensure_ascii=False, indent=2)
        ctx.print()
        return 0
    if ctx.fmt == "csv":
        rows = [{"section": "info", "key": k, "value": v} for k, v in info.items()]
        rows += [{"section": "params", "key": k, "value": v} for k, v in params.items()]
        rows += [{"section": "tags", "key": k, "value": v} for k, v in tags.items()]
        rows += [{"section": "metrics", "key": k, "value": v["value"]} for k, v in latest.items()]
        rows += [{"section": "artifacts", "key": p, "value": n} for p, n in files]
        tables.write_csv(Table([Column("section"), Column("key"), Column("value")], rows), ctx.out)
        return 0

    pairs = [
        ("recorder", meta["id"]),
        ("name", info["name"]),
        ("experiment", f"{info['experiment']} ({info['experiment_id']})"),
        ("status", status.label(catalog, meta)),
        ("start", text.local_minutes(info["start_time"])),
        ("end", text.local_minutes(info["end_time"])),
        ("duration", text.duration(info["duration_s"]) + ("" if info["end_time"] else "+")),
        ("owner", info["owner"]),
        ("folder", info["folder"]),
    ]
    _pairs(ctx, pairs)
    ctx.print(f"\nparams ({len(params)})")
    _pairs(ctx, list(params.items()), indent=True)
    ctx.print(f"\ntags ({len(tags)})")
    _pairs(ctx, list(tags.items()), indent=True)
    ctx.print(f"\nmetrics ({len(latest)}, latest value)")
    if latest:
        rows = [{"key": k, **v} for k, v in latest.items()]
        columns = [
            Column("key", "  key", max_width=40, show=_indented, distinct=True),
            Column("value", right=True, shrink=False),
            Column("step", right=True, shrink=False),
            Column("timestamp", "time", show=_seconds, shrink=False),
        ]
        tables.write(Table(columns, rows), ctx.out)
    total = sum(n for _, n in files)
    ctx.print(f"\nartifacts ({text.plural(len(files), 'file')}, {text.size(total)})")
    if files:
        rows = [{"path": p, "size": n} for p, n in files]
        columns = [
            Column("path", max_width=60, show=_indented),
            Column("size", show=_size, right=True, shrink=False),
        ]
        tables.write(Table(columns, rows, header=False), ctx.out)
    return 0


def _pairs(ctx: Context, pairs: list[tuple[str, Any]], indent: bool = False) -> None:
    if not pairs:
        return
    rows = [{"key": k, "value": v} for k, v in pairs]
    columns = [
        Column("key", max_width=32, show=_indented if indent else text.cell, distinct=True),
        Column("value", max_width=200),
    ]
    tables.write(Table(columns, rows, header=False), ctx.out)


def _indented(value: Any) -> str:
    return "  " + text.cell(value)


def _size(value: Any) -> str:
    return text.size(value) if isinstance(value, int) else ""


def _seconds(value: Any) -> str:
    moment = text.parse_time(value)
    return "" if moment is None else moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _ms_time(value: Any) -> datetime | None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    return datetime.fromtimestamp(value / 1000, timezone.utc)


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: null stands for them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


# ------------------------------------------------------------------ metrics


def metrics(ctx: Context, args: argparse.Namespace) -> int:
    catalog = ctx.existing_catalog()
    meta = resolve.recorder(catalog, args.recorder)
    history = catalog.metric_history(meta, args.key[0] if len(args.key) == 1 else None)
    keys_logged = sorted(set(history["key"])) if len(args.key) != 1 else []
    if args.key:
        missing = [k for k in args.key if not (history["key"] == k).any()]
        if missing:
            known = sorted(set(meta.get("metrics", {})) | set(keys_logged))
            raise CliError(
                f"recorder {meta['id']} has no metric {missing[0]!r}; its metrics: "
                + (", ".join(known) if known else "none")
            )
        history = history[history["key"].isin(args.key)]
    if args.tail is not None:
        history = history.groupby("key", sort=False).tail(args.tail)
    if args.plot:
        if ctx.fmt != "table":
            raise CliError("--plot draws in the terminal; use it without --format")
        return _plot(ctx, history, args.height)
    rows = [
        {"key": k, "step": int(s), "value": float(v), "timestamp": t.to_pydatetime()}
        for k, s, v, t in zip(
            history["key"], history["step"], history["value"], history["timestamp"], strict=True
        )
    ]
    if not rows and ctx.fmt == "table":
        ctx.print(f"recorder {meta['id']} has no metric points")
        return 0
    columns = [
        Column("key", max_width=40, distinct=True),
        Column("step", right=True, shrink=False),
        Column("value", right=True, shrink=False),
        Column("timestamp", "time", show=_seconds, shrink=False),
    ]
    tables.write(Table(columns, rows), ctx.out, ctx.fmt)
    return 0


def _plot(ctx: Context, history: Any, height: int) -> int:
    """A curve for each key with more than one point; keys with a single point (a final score,
    a backtest figure) are listed as a table after the curves."""
    keys = list(dict.fromkeys(history["key"]))
    if not keys:
        ctx.print("no metric points to plot")
        return 0
    width = min(tables.terminal_width(ctx.out) or 80, 120)
    fancy = tables.ellipsis_for(ctx.out) == "…"
    counts = history["key"].value_counts()
    curves = [k for k in keys if counts[k] > 1]
    for index, key in enumerate(curves):
        points = history[history["key"] == key]
        if index:
            ctx.print()
        _plot_one(ctx, key, points, width, height, fancy)
    singles = history[history["key"].isin([k for k in keys if counts[k] == 1])]
    if len(singles):
        if curves:
            ctx.print()
        ctx.print(f"{text.plural(len(singles), 'key')} with a single point (nothing to draw):")
        rows = [
            {"key": k, "step": int(s), "value": float(v)}
            for k, s, v in zip(singles["key"], singles["step"], singles["value"], strict=True)
        ]
        columns = [
            Column("key", "  key", max_width=60, show=_indented, distinct=True),
            Column("step", right=True, shrink=False),
            Column("value", right=True, shrink=False),
        ]
        tables.write(Table(columns, rows), ctx.out)
    return 0


def _plot_one(ctx: Context, key: str, points: Any, width: int, height: int, fancy: bool) -> None:
    values = [float(v) for v in points["value"]]
    steps = [int(s) for s in points["step"]]
    finite = [v for v in values if math.isfinite(v)]
    summary = f"{key}: {text.plural(len(values), 'point')}, steps {min(steps)}..{max(steps)}"
    if finite:
        summary += (
            f", last {text.number(values[-1])}, min {text.number(min(finite))}, "
            f"max {text.number(max(finite))}"
        )
    ctx.print(text.truncate(text.one_line(summary), width))
    for line in plot.line_plot(steps, values, width=width, height=height, unicode=fancy):
        ctx.print(line)


# ------------------------------------------------------------------ compare


def compare(ctx: Context, args: argparse.Namespace) -> int:
    catalog = ctx.existing_catalog()
    metas: list[Meta] = []
    for prefix in args.recorders:
        meta = resolve.recorder(catalog, prefix)
        if any(m["id"] == meta["id"] for m in metas):
            raise CliError(f"recorder {meta['id']} is given twice")
        metas.append(meta)
    short = resolve.prefix_length(catalog.recorder_ids(), (m["id"] for m in metas))
    rows = _compare_rows(catalog, metas, human=ctx.fmt == "table")
    if args.diff_only:
        rows = [r for r in rows if r["differs"]]
    columns = [
        Column("differs", "", show=lambda d: "*" if d else "", in_machine=False, max_width=1),
        Column("section", in_table=False),
        Column("key", max_width=36, distinct=True),
        Column("differs", in_table=False),
    ]
    for meta in metas:
        columns.append(Column(meta["id"], meta["id"][:short], max_width=24))
    tables.write(Table(columns, rows), ctx.out, ctx.fmt)
    return 0


def _compare_rows(catalog: Catalog, metas: list[Meta], human: bool) -> list[dict[str, Any]]:
    """Rows of the comparison; ``human`` puts times and durations as a terminal shows them."""

    def info(meta: Meta) -> dict[str, Any]:
        exp = catalog.experiment(meta["experiment_id"]) or {}
        seconds = _rounded(duration_seconds(meta))
        return {
            "name": meta.get("name"),
            "experiment": exp.get("name"),
            "status": catalog.status(meta),
            "start_time": (text.local_minutes if human else text.iso)(meta.get("start_time")),
            "duration_s": text.duration(seconds) if human else seconds,
        }

    infos = [info(m) for m in metas]
    rows: list[dict[str, Any]] = []

    def add(section: str, key: str, values: list[Any], label: str | None = None) -> None:
        row: dict[str, Any] = {"section": section, "key": label or key}
        row.update({m["id"]: v for m, v in zip(metas, values, strict=True)})
        row["differs"] = len({json.dumps(v) for v in values}) > 1
        rows.append(row)

    for key in ("experiment", "name", "status", "start_time", "duration_s"):
        # Start times always differ; flagging them would hide the differences that matter.
        values = [i[key] for i in infos]
        add("info", key, values, _HUMAN_LABELS.get(key) if human else None)
        if key in ("start_time", "duration_s"):
            rows[-1]["differs"] = False
    for section in ("params", "metrics"):
        keys = sorted({k for m in metas for k in m.get(section, {})})
        for key in keys:
            if section == "params":
                values = [m.get("params", {}).get(key) for m in metas]
            else:
                values = [metric_value(m, key) for m in metas]
            add(section, key, values, f"{section}.{key}")
    return rows


_HUMAN_LABELS = {"start_time": "start", "duration_s": "duration"}
