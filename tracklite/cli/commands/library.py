"""Commands whose work is done by library functions: compact, check, doctor, MLflow import and
the exports.

Each command imports its function only when run; a build without the module says so in one
line instead of failing at start-up. Wiring a new one is three steps: the arguments in
:func:`register`, a handler calling :func:`load` then :func:`call`, and :func:`report`.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import inspect
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ...api.catalog import Catalog
from .. import resolve, tables
from ..context import Context
from ..errors import CliError
from ..progress import Progress
from .common import Parents, SubParsers, add_command, add_deleted_flag, add_format


def register(sub: SubParsers, parents: Parents) -> None:
    parser = add_command(
        sub,
        parents,
        "compact",
        compact,
        "merge each recorder's metric segments into one file (fewer inodes, faster reads)",
        tabular=False,
    )
    parser.add_argument("experiment", nargs="?", metavar="EXPERIMENT", help="only this experiment")

    parser = add_command(
        sub, parents, "check", check, "verify the store; --fix repairs it", tabular=False
    )
    parser.add_argument(
        "--fix",
        action="store_true",
        help="repair what can be repaired (corrupt files go to .quarantine, never deleted)",
    )
    parser.add_argument(
        "--deep",
        action="store_true",
        help="read every point of every segment, not only their footers (slower, thorough)",
    )

    parser = add_command(
        sub,
        parents,
        "doctor",
        doctor,
        "check that a filesystem gives tracklite what it needs (locks, atomic renames)",
        tabular=False,
    )
    parser.add_argument(
        "--fs", metavar="PATH", help="a folder on the filesystem (default: the store)"
    )
    parser.add_argument(
        "--modes",
        action="store_true",
        help="only check that the store's group can work in it (modes, group, setgid, umask)",
    )

    parser = add_command(
        sub,
        parents,
        "init",
        init,
        "create the store; --group makes it a store a Unix group shares (setgid, group rw)",
        tabular=False,
    )
    parser.add_argument("--group", metavar="GROUP", help="the Unix group that shares the store")
    parser.add_argument(
        "--mode",
        default="2770",
        metavar="OCTAL",
        help="mode of the store folder with --group (default 2770; 2775 lets everyone read)",
    )

    parser = add_command(
        sub,
        parents,
        "import-mlflow",
        import_mlflow,
        "import an MLflow file store (mlruns folder); importing again updates, never duplicates",
        tabular=False,
    )
    parser.add_argument("source", metavar="SRC", help="the mlruns folder")
    parser.add_argument(
        "--to", metavar="DST", help="tracklite store to import into (default: --uri)"
    )
    parser.add_argument(
        "--link", action="store_true", help="hard-link artifacts instead of copying"
    )
    add_deleted_flag(parser, "also import deleted experiments (from .trash), as deleted ones")

    parser = add_command(
        sub,
        parents,
        "export",
        export,
        "write recorder tables and metric histories to Parquet or CSV",
        tabular=False,
    )
    parser.add_argument("experiments", nargs="*", metavar="EXPERIMENT", help="default: all")
    parser.add_argument("--to", required=True, metavar="DIR", help="output folder")
    add_format(parser, ("parquet", "csv"), help="file format (default parquet)")
    add_deleted_flag(parser, "deleted experiments and recorders too")

    parser = add_command(
        sub,
        parents,
        "export-mlflow",
        export_mlflow,
        "write experiments as an MLflow file store that MLflow's tools can read",
        tabular=False,
    )
    parser.add_argument("experiments", nargs="*", metavar="EXPERIMENT", help="default: all")
    parser.add_argument("--to", required=True, metavar="DIR", help="the mlruns folder to write")
    add_deleted_flag(parser, "deleted experiments and recorders too")


# ------------------------------------------------------------------ handlers


def compact(ctx: Context, args: argparse.Namespace) -> int:
    func = load("compact", "tracklite.metrics.compaction", "compact")
    catalog = ctx.existing_catalog()
    exp_id = resolve.experiment(catalog, args.experiment)["id"] if args.experiment else None
    result = call(ctx, "compacting", func, catalog.root, experiment_id=exp_id)
    already = max(result.recorders - result.compacted - len(result.errors), 0)
    # The shape of the other reports (import, export): what, then counts per kind of thing.
    ctx.print(f"compacted {catalog.root}" + (f" (experiment {args.experiment})" if exp_id else ""))
    ctx.print(
        f"recorders: {result.compacted} compacted, {already} already in one file, "
        f"{len(result.errors)} failed"
    )
    ctx.print(f"segments: {result.segments_removed} merged; points: {result.points} rewritten")
    for error in result.errors:
        ctx.print(f"error: {error}")
    return 1 if result.errors else 0


def check(ctx: Context, args: argparse.Namespace) -> int:
    func = load("check", "tracklite.maintenance.check", "check")
    # No existing_catalog() here: a store whose marker is corrupt is exactly what check repairs.
    return report(ctx, call(ctx, "checking", func, ctx.catalog.root, fix=args.fix, deep=args.deep))


def doctor(ctx: Context, args: argparse.Namespace) -> int:
    status = 0
    if not args.modes:
        status = _filesystem_report(ctx, args)
    if args.fs is None and (args.modes or ctx.catalog.root.is_dir()):
        audit = load("doctor", "tracklite.store.sharing", "audit")
        status = max(status, _wrapped_report(ctx, audit(ctx.existing_catalog().root)))
    return status


def _filesystem_report(ctx: Context, args: argparse.Namespace) -> int:
    func = load("doctor", "tracklite.maintenance.doctor", "verify_filesystem")
    path = Path(args.fs) if args.fs else _nearest_existing(ctx.catalog.root)
    result = call(ctx, "testing", func, path)
    width = tables.terminal_width(ctx.out) or 80
    ctx.print(str(result).splitlines()[0])
    for probe in result.probes:
        # "  ok   lock       <detail>": the detail wraps under itself, so a line fits the width.
        label = f"  {'ok  ' if probe.ok else 'FAIL'} {probe.name:<10} "
        detail = (
            f"{probe.detail} ({probe.operations} operations, {probe.estale_retries} ESTALE retried)"
        )
        lines = textwrap.wrap(detail, max(width - len(label), 20)) or [""]
        ctx.print(label + lines[0])
        for line in lines[1:]:
            ctx.print(" " * len(label) + line)
    return 0 if result.ok else 1


def init(ctx: Context, args: argparse.Namespace) -> int:
    if args.group is None:
        ctx.catalog.create()
        ctx.print(f"{ctx.catalog.root}: a tracklite store")
        return 0
    try:
        mode = int(args.mode, 8)
    except ValueError:
        raise CliError(f"--mode {args.mode!r} is not an octal mode such as 2770") from None
    func = load("init", "tracklite.store.sharing", "init_group_store")
    root = func(ctx.catalog.root, args.group, mode)
    audit = load("init", "tracklite.store.sharing", "audit")
    return _wrapped_report(ctx, audit(root))


def import_mlflow(ctx: Context, args: argparse.Namespace) -> int:
    func = load("import-mlflow", "tracklite.mlflow_io.importer", "import_mlflow")
    dst = Catalog(args.to).root if args.to else ctx.catalog.root
    result = call(
        ctx,
        "importing",
        func,
        Path(args.source),
        dst,
        link=args.link,
        include_deleted=args.deleted,
    )
    return report(ctx, result)


def export(ctx: Context, args: argparse.Namespace) -> int:
    return _export(ctx, args, "export", "export_table", fmt=ctx.fmt)


def export_mlflow(ctx: Context, args: argparse.Namespace) -> int:
    return _export(ctx, args, "export-mlflow", "export_mlflow")


def _export(
    ctx: Context, args: argparse.Namespace, command: str, function: str, **extra: Any
) -> int:
    func = load(command, "tracklite.mlflow_io.exporter", function)
    catalog = ctx.existing_catalog()
    result = call(
        ctx,
        "exporting",
        func,
        catalog.root,
        Path(args.to),
        experiments=_experiment_ids(catalog, args.experiments),
        include_deleted=args.deleted,
        **extra,
    )
    return report(ctx, result)


def _experiment_ids(catalog: Catalog, given: list[str]) -> list[str] | None:
    """Ids of the experiments named on the command line (deleted ones by id), None for all."""
    return [resolve.experiment(catalog, e, any_id=True)["id"] for e in given] or None


# ------------------------------------------------------------------ wiring


def load(command: str, module: str, name: str) -> Callable[..., Any]:
    """``module.name``, or a one-line error if this build does not have it."""
    try:
        found = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        # Only the module itself (or its package) missing means "not in this build"; a missing
        # dependency inside it is a real error and keeps its traceback.
        if exc.name is None or not (module == exc.name or module.startswith(exc.name + ".")):
            raise
        found = None
    func = getattr(found, name, None)
    if not callable(func):
        raise CliError(
            f"`tracklite {command}` is not available in this build ({module}.{name} is missing)"
        )
    return func  # type: ignore[no-any-return]


def call(ctx: Context, label: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``func``, giving it a terminal progress counter if it takes a ``progress`` callable."""
    try:
        accepts = "progress" in inspect.signature(func).parameters
    except (TypeError, ValueError):
        accepts = False
    if not accepts:
        return func(*args, **kwargs)
    with Progress(label, stream=ctx.err) as bar:
        return func(*args, progress=bar.callback, **kwargs)


def report(ctx: Context, result: Any) -> int:
    """Print what a library function returned; exit 1 when it says it is not ``ok``."""
    # A result with its own __str__ (a report) prints itself; plain containers print per item.
    own_str = str(result) != repr(result)
    if result is None:
        ctx.print("done")
    elif dataclasses.is_dataclass(result) and not own_str:
        for item in dataclasses.fields(result):
            ctx.print(f"{item.name}: {getattr(result, item.name)}")
    elif isinstance(result, Mapping):
        for key, value in result.items():
            ctx.print(f"{key}: {value}")
    elif isinstance(result, (list, tuple)):
        for element in result:
            ctx.print(str(element))
    else:
        ctx.print(str(result))
    return _exit_code(result)


def _exit_code(result: Any) -> int:
    """1 when a library result says it is not ``ok``, else 0."""
    return 1 if getattr(result, "ok", True) is False else 0


def _wrapped_report(ctx: Context, result: Any) -> int:
    """:func:`report` of a report whose lines may be long (a store path, then a sentence),
    wrapped to the terminal: a continued line is indented under its first."""
    width = tables.terminal_width(ctx.out)
    for line in str(result).splitlines():
        indent = " " * (len(line) - len(line.lstrip()))
        parts = textwrap.wrap(
            line,
            width or len(line) or 1,
            subsequent_indent=indent + "  ",
            break_long_words=False,
            break_on_hyphens=False,
        )
        for part in parts or [""]:
            ctx.print(part)
    return _exit_code(result)


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path.parent != path:
        path = path.parent
    return path
