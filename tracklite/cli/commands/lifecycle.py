"""``tracklite delete`` / ``restore`` (soft, undoable) and ``gc`` (removes deleted data for
good)."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from ...api.catalog import Catalog, Meta
from ...maintenance import gc as gc_lib
from .. import resolve, tables, text
from ..context import Context
from ..errors import CliError
from ..progress import Progress
from ..tables import Column, Table
from .common import Parents, SubParsers, add_command

_AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def register(sub: SubParsers, parents: Parents) -> None:
    for name, handler, summary in (
        ("delete", delete, "soft-delete recorders (or experiments with -e); undo with restore"),
        ("restore", restore, "restore soft-deleted recorders (or experiments with -e)"),
    ):
        parser = add_command(sub, parents, name, handler, summary, tabular=False)
        parser.add_argument(
            "targets",
            nargs="+",
            metavar="TARGET",
            help="recorder names (EXPERIMENT/NAME) or ids; with -e, experiment names or ids",
        )
        parser.add_argument(
            "-e", "--experiment", action="store_true", help="the targets are experiments"
        )

    gc_parser = add_command(
        sub,
        parents,
        "gc",
        gc,
        "remove soft-deleted experiments and recorders for good",
        description="Remove soft-deleted experiments and recorders, with their metrics and "
        "artifacts, for good.\nAsks for confirmation unless --yes; --dry-run only lists them.",
    )
    gc_parser.add_argument("--dry-run", action="store_true", help="list, remove nothing")
    gc_parser.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    gc_parser.add_argument(
        "--older-than",
        type=_age,
        metavar="AGE",
        help="only what was deleted more than AGE ago (30s, 15m, 12h, 7d, 2w)",
    )


# ------------------------------------------------------------------ delete / restore


def delete(ctx: Context, args: argparse.Namespace) -> int:
    catalog = ctx.existing_catalog()
    if args.experiment:
        found = [resolve.experiment(catalog, t, deleted=False) for t in args.targets]
        for exp in found:
            catalog.set_experiment_lifecycle(exp["id"], "deleted")
            ctx.print(f"deleted experiment {exp['name']} ({exp['id']})")
        ctx.note(
            "undo with `tracklite restore -e ID`; `tracklite gc` removes deleted data for good"
        )
        return 0
    # Resolve every target before changing anything: one typo must not leave half the job done.
    metas = [resolve.recorder(catalog, t) for t in args.targets]
    for meta in metas:
        if meta.get("lifecycle") == "deleted":
            ctx.print(f"recorder {_describe(catalog, meta)} was already deleted")
            continue
        catalog.set_recorder_lifecycle(meta, "deleted")
        ctx.print(f"deleted recorder {_describe(catalog, meta)}")
    ctx.note("undo with `tracklite restore ID`; `tracklite gc` removes deleted data for good")
    return 0


def restore(ctx: Context, args: argparse.Namespace) -> int:
    catalog = ctx.existing_catalog()
    if args.experiment:
        found = [resolve.experiment(catalog, t, deleted=True) for t in args.targets]
        for exp in found:
            # Refused with a clear error if an active experiment took the name meanwhile.
            catalog.set_experiment_lifecycle(exp["id"], "active")
            ctx.print(f"restored experiment {exp['name']} ({exp['id']})")
        return 0
    metas = [resolve.recorder(catalog, t) for t in args.targets]
    for meta in metas:
        if meta.get("lifecycle") != "deleted":
            ctx.print(f"recorder {_describe(catalog, meta)} is not deleted")
            continue
        catalog.set_recorder_lifecycle(meta, "active")
        ctx.print(f"restored recorder {_describe(catalog, meta)}")
        exp = catalog.experiment(meta["experiment_id"]) or {}
        if exp.get("lifecycle") == "deleted":
            ctx.note(
                f"its experiment {exp.get('name')} is deleted; restore it too with "
                f"`tracklite restore -e {meta['experiment_id']}`"
            )
    return 0


def _describe(catalog: Catalog, meta: Meta) -> str:
    exp = catalog.experiment(meta["experiment_id"]) or {}
    return f"{meta['id']} ({meta.get('name')}, experiment {exp.get('name')})"


# ------------------------------------------------------------------ gc


def gc(ctx: Context, args: argparse.Namespace) -> int:
    catalog = ctx.existing_catalog()
    # With --format csv/json, stdout carries only the list of items; remarks go to stderr.
    say = ctx.print if ctx.fmt == "table" else ctx.note
    found = gc_lib.plan(catalog.root, older_than=args.older_than)
    for item, reason in found.kept:
        ctx.note(f"keeping {item.kind} {_item_id(item)}: {reason}")
    if not found.items:
        say("nothing to remove")
        return 0
    _write_items(ctx, catalog, found.items)
    summary = f"{text.plural(len(found.items), 'item')}, {text.size(found.size)}"
    if args.dry_run:
        say(f"dry run: would remove {summary}; nothing was removed")
        return 0
    if not args.yes and not _confirm(ctx, f"remove {summary} for good? [y/N] "):
        return 1
    with Progress("removing", total=len(found.items), stream=ctx.err) as bar:
        result = gc_lib.collect(catalog.root, found.items, progress=bar.callback)
    for item, reason in result.skipped:
        ctx.note(f"skipped {item.kind} {_item_id(item)}: {reason}")
    say(f"removed {text.plural(len(result.removed), 'item')}, freed {text.size(result.size)}")
    return 0


def _write_items(ctx: Context, catalog: Catalog, items: list[gc_lib.Garbage]) -> None:
    # The table shows ids as short as they stay unambiguous in the store (as `runs` does), so
    # that a row fits 80 columns; CSV and JSON carry them whole.
    every = catalog.recorder_ids() + catalog.experiment_ids()
    short = resolve.prefix_length(every, [_item_id(item) for item in items])
    rows: list[dict[str, Any]] = [
        {
            "kind": item.kind,
            "short_id": _item_id(item)[:short],
            "id": _item_id(item),
            "name": item.name,
            "experiment": item.experiment_name,
            "deleted_time": text.iso(item.deleted_time),
            "files": item.files,
            "size": item.size,
            "path": str(item.path),
        }
        for item in items
    ]
    columns = [
        Column("kind"),
        Column("short_id", "id", max_width=40, shrink=False, in_machine=False),
        Column("id", in_table=False),
        Column("name", max_width=30),
        Column("experiment", max_width=24),
        Column("deleted_time", "deleted", show=text.local_minutes, shrink=False),
        Column("files", right=True, shrink=False),
        Column("size", show=lambda n: text.size(n), right=True, shrink=False),
        Column("path", in_table=False),
    ]
    tables.write(Table(columns, rows), ctx.out, ctx.fmt)


def _item_id(item: gc_lib.Garbage) -> str:
    return item.recorder_id or (item.experiment_id if item.kind == "experiment" else item.path.name)


def _confirm(ctx: Context, question: str) -> bool:
    """Ask on the terminal; without one, refuse rather than guess."""
    if not sys.stdin.isatty():
        raise CliError(
            "refusing to remove data for good without confirmation: pass --yes "
            "(or --dry-run to only list what would go)"
        )
    ctx.err.write(question)
    ctx.err.flush()
    answer = sys.stdin.readline().strip().lower()
    if answer in ("y", "yes"):
        return True
    ctx.note("nothing was removed")
    return False


def _age(value: str) -> float:
    """argparse type: ``30s``, ``15m``, ``12h``, ``7d`` or ``2w`` as seconds."""
    match = _AGE.match(value.strip())
    if not match:
        raise argparse.ArgumentTypeError(
            f"expected an age such as 30s, 15m, 12h, 7d or 2w, got {value!r}"
        )
    return float(match.group(1)) * _UNIT[match.group(2)]
