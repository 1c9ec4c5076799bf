"""``tracklite experiments`` and ``tracklite runs``: what ran, and how it went."""

from __future__ import annotations

import argparse
import fnmatch
import warnings
from collections import Counter
from datetime import datetime, timezone
from typing import Any

from ...api.catalog import Meta
from ...errors import CorruptMetadataWarning
from ...search.filter import parse_filter
from ...search.listing import ACTIVE_ONLY, ALL, search_records
from ...search.order import parse_order_by
from .. import resolve, status, tables, text
from ..context import Context
from ..errors import CliError
from ..tables import Column, Table
from .common import (
    Parents,
    SubParsers,
    add_command,
    add_deleted_flag,
    is_provenance_param,
    non_negative,
    recorder_columns,
    recorder_row,
)

RUNS_EPILOG = """\
examples:
  tracklite runs lgb
  tracklite runs lgb --filter "metrics.ic > 0.05 and params.lr = '0.1'" --order-by "metrics.ic DESC"
  tracklite runs lgb --columns ic,lr --limit 10 --format csv

--filter and --order-by use MLflow's search syntax (docs/cli.md). --columns takes metric,
param or tag keys (metrics.K, params.K, tags.K, or a bare K: metric first, then param, then
tag), comma-separated or repeated, with * wildcards.
"""


def register(sub: SubParsers, parents: Parents) -> None:
    experiments_parser = add_command(
        sub,
        parents,
        "experiments",
        experiments,
        "list experiments: recorders by status, last activity",
    )
    add_deleted_flag(experiments_parser, "include soft-deleted experiments")

    runs_parser = add_command(
        sub,
        parents,
        "runs",
        runs,
        "list the recorders of an experiment",
        description="One row per recorder of EXPERIMENT, newest first.\n\n" + RUNS_EPILOG,
    )
    runs_parser.add_argument("experiment", metavar="EXPERIMENT", help="experiment name or id")
    runs_parser.add_argument("--filter", default="", metavar="EXPR", help="MLflow filter_string")
    runs_parser.add_argument(
        "--order-by",
        action="append",
        default=[],
        metavar="CLAUSE",
        help="sort clause such as 'metrics.ic DESC' (repeatable; default: newest first)",
    )
    runs_parser.add_argument("--limit", type=non_negative, metavar="N", help="at most N rows")
    runs_parser.add_argument(
        "--columns",
        action="append",
        default=[],
        metavar="KEYS",
        help="metric/param/tag columns to show (default: every metric and param)",
    )
    add_deleted_flag(runs_parser, "include soft-deleted recorders")


# ------------------------------------------------------------------ experiments


def experiments(ctx: Context, args: argparse.Namespace) -> int:
    catalog = ctx.existing_catalog()
    metas = catalog.experiments(include_deleted=args.deleted)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for meta in metas:
        # Counts and last activity from the search rows: no recorder.json read per recorder.
        counts, newest = catalog.overview(meta["id"])
        last = text.parse_time(meta.get("created"))
        if newest is not None:
            moment = datetime.fromtimestamp(newest / 1000, timezone.utc)
            last = moment if last is None or moment > last else last
        seen.update(counts)
        row: dict[str, Any] = {
            "name": meta.get("name"),
            "id": meta["id"],
            "lifecycle": meta.get("lifecycle"),
            "recorders": sum(counts.values()),
            "last_activity": last,
        }
        row.update(counts)
        rows.append(row)
    short = resolve.prefix_length(catalog.experiment_ids(), (r["id"] for r in rows))
    for row in rows:
        row["short_id"] = row["id"][:short]
        row["name_label"] = row["name"] + (" (deleted)" if row["lifecycle"] == "deleted" else "")
        for key in seen:
            row.setdefault(key, 0)
    columns = [
        Column("name_label", "name", max_width=40, in_machine=False),
        Column("name", in_table=False),
        Column("short_id", "id", max_width=32, shrink=False, in_machine=False),
        Column("id", in_table=False),
        Column("lifecycle", in_table=False),
        Column("recorders", right=True, shrink=False),
        *[Column(s, s.lower(), right=True, shrink=False) for s in status.ordered(seen)],
        Column("last_activity", "last activity", show=text.local_minutes, shrink=False),
    ]
    if not rows and ctx.fmt == "table":
        ctx.print(f"no experiments in {catalog.root}")
        return 0
    tables.write(Table(columns, rows), ctx.out, ctx.fmt)
    return 0


# ------------------------------------------------------------------ runs


def runs(ctx: Context, args: argparse.Namespace) -> int:
    import numpy as np
    import pandas as pd

    catalog = ctx.existing_catalog()
    exp = resolve.experiment(catalog, args.experiment, any_id=True)
    # What Python users get: the search frame for the keys, the listing for each recorder's
    # info (status with dead runs found, lifecycle); no recorder.json is read again.
    query: dict[str, Any] = {
        "filter_string": args.filter,
        "run_view_type": ALL if args.deleted else ACTIVE_ONLY,
        "max_results": args.limit,
        "order_by": args.order_by or None,
    }
    frame = search_records(catalog.root, [exp["id"]], **query)
    with warnings.catch_warnings():
        # The same files as the search just above: it has already said which it skipped.
        warnings.simplefilter("ignore", CorruptMetadataWarning)
        infos = {m["id"]: m for m in catalog.recorders([exp["id"]], **query)}
    # A recorder created or removed between the two reads is left out.
    names = frame.columns.tolist()
    positions = [i for i, c in enumerate(names) if c.startswith(("metrics.", "params.", "tags."))]
    keys = [names[i] for i in positions]
    where = {key: i for i, key in enumerate(keys)}
    # One 2-D array for every key, missing values (None, NaN) made None at once: pandas'
    # row-wise conversions, or a test per cell, cost rows x keys x the frame's width for
    # recorders with many keys.
    block = frame.iloc[:, positions].to_numpy(dtype=object, copy=True)
    missing = pd.isna(block)
    block[missing] = None
    present = set(np.flatnonzero(~missing.all(axis=0)).tolist()) if len(block) else set()
    metas = [
        {**infos[run_id], "values": values}
        for run_id, values in zip(frame["run_id"].tolist(), block.tolist(), strict=True)
        if run_id in infos
    ]
    available = keys
    chosen = _choose_columns(args.columns, available, exp)
    if not args.columns:
        # Default columns: keys that the shown rows actually have.
        chosen = [c for c in chosen if where[c] in present]
    # The keys the rows were filtered and sorted on come first, whatever else is chosen: the
    # table must show why these rows, in this order.
    queried = [c for c in _queried_columns(args.filter, args.order_by) if c in available]
    chosen = queried + [c for c in chosen if c not in queried]
    headers = _headers(chosen)
    # On a terminal, columns past its room are only named: none of their cells is made.
    limit = tables.room(ctx.out) if ctx.fmt == "table" else None
    more: list[str] = []
    if limit is not None and len(chosen) > max(limit, len(queried)):
        limit = max(limit, len(queried))
        more = headers[limit:]
        chosen = chosen[:limit]
    short = resolve.prefix_length(catalog.recorder_ids(), (m["id"] for m in metas))
    rows = []
    for meta in metas:
        row = recorder_row(catalog, meta, short)
        values = meta["values"]
        row.update(zip(chosen, [values[where[c]] for c in chosen], strict=True))
        rows.append(row)
    key_columns = [
        Column(c, header, right=metric, shrink=not metric, max_width=24)
        for c, header, metric in zip(
            chosen, headers, [c.startswith("metrics.") for c in chosen], strict=False
        )
    ]
    # The queried keys go right after the status, ahead of the times: a narrow terminal hides
    # columns from the right, and these must stay.
    base = recorder_columns()
    at = next(i for i, c in enumerate(base) if c.key == "status") + 1
    columns = base[:at] + key_columns[: len(queried)] + base[at:] + key_columns[len(queried) :]
    if not rows and ctx.fmt == "table":
        what = "match the filter" if args.filter else "in it"
        ctx.print(f"experiment {exp['name']!r} has no recorders {what}")
        return 0
    tables.write(Table(columns, rows, more=more), ctx.out, ctx.fmt)
    return 0


def _queried_columns(filter_string: str, order_by: list[str]) -> list[str]:
    """Metric, param and tag columns named in ``--order-by`` (first) and ``--filter``."""
    named = [key.column for key in parse_order_by(order_by)]
    expr = parse_filter(filter_string)
    if expr is not None:
        named += sorted(expr.columns())
    keys = [c for c in named if c.startswith(("metrics.", "params.", "tags."))]
    return [c for c in dict.fromkeys(keys) if c != "tags.mlflow.runName"]  # shown as name


def _choose_columns(requested: list[str], available: list[str], exp: Meta) -> list[str]:
    """Frame columns for ``--columns`` (patterns) or the default: every metric, then params."""
    if not requested:
        # Lists, not generators: a generator resumes (a call) for each of 100,000 keys.
        metrics = sorted([c for c in available if c.startswith("metrics.")])
        params = [c for c in available if c.startswith("params.")]
        params = sorted([c for c in params if not is_provenance_param(c[len("params.") :])])
        return metrics + params
    chosen: list[str] = []
    for pattern in (p.strip() for item in requested for p in item.split(",")):
        if not pattern:
            continue
        found = _match(pattern, available)
        if not found:
            keys = ", ".join(available[:12]) + (", ..." if len(available) > 12 else "")
            raise CliError(
                f"no column {pattern!r} in experiment {exp['name']!r}"
                + (f"; it has {keys}" if keys else "; it has no metrics, params or tags")
            )
        chosen.extend(c for c in found if c not in chosen)
    return chosen


def _match(pattern: str, available: list[str]) -> list[str]:
    prefixed = pattern if pattern.startswith(("metrics.", "params.", "tags.")) else None
    if any(ch in pattern for ch in "*?["):
        names = (
            [prefixed] if prefixed else [f"{p}.{pattern}" for p in ("metrics", "params", "tags")]
        )
        return sorted(c for c in available if any(fnmatch.fnmatchcase(c, n) for n in names))
    if prefixed:
        return [pattern] if pattern in available else []
    for prefix in ("metrics", "params", "tags"):
        if f"{prefix}.{pattern}" in available:
            return [f"{prefix}.{pattern}"]
    return []


def _headers(chosen: list[str]) -> list[str]:
    """Each metric or param column headed by its bare key, unless two sections share the key
    (keys counted once, in one pass)."""
    bare = [c.partition(".")[2] for c in chosen]
    counts = Counter(bare)
    return [c if counts[key] > 1 else key for c, key in zip(chosen, bare, strict=True)]
