"""Pieces shared by the commands: parser helpers and how recorders become table rows."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ...api.catalog import Catalog, Meta
from .. import status, text
from ..context import Context
from ..tables import FORMATS as TABLE_FORMATS
from ..tables import Column

Handler = Callable[[Context, argparse.Namespace], int]
#: ``argparse``'s sub-parser collection (its class is private).
SubParsers = Any


@dataclass(frozen=True)
class Parents:
    """Parent parsers that give a sub-command the global options."""

    uri: argparse.ArgumentParser
    fmt: argparse.ArgumentParser


def add_command(
    sub: SubParsers,
    parents: Parents,
    name: str,
    handler: Handler,
    summary: str,
    description: str | None = None,
    tabular: bool = True,
    formats: tuple[str, ...] | None = None,
) -> argparse.ArgumentParser:
    """A sub-command with ``--uri`` (and ``--format`` when its output is a table).

    ``formats`` are the values ``--format`` may take for this command, the first being the
    default: a table's formats when ``tabular``, none otherwise. A command with formats of its
    own (``export``: parquet or csv) declares its own ``--format`` option with
    :func:`add_format`.
    """
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=summary,
        description=description or summary,
        parents=[parents.uri, parents.fmt] if tabular else [parents.uri],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if formats is None:
        formats = TABLE_FORMATS if tabular else ()
    parser.set_defaults(handler=handler, command=name, formats=formats)
    return parser


def add_format(parser: argparse.ArgumentParser, formats: tuple[str, ...], help: str) -> None:
    """A command's own ``--format`` choices; given before the command it works the same."""
    parser.add_argument("--format", choices=formats, default=argparse.SUPPRESS, help=help)
    parser.set_defaults(formats=formats)


#: How a recorder is named on the command line (the rules of :func:`..resolve.recorder`).
RECORDER_HELP = (
    "RECORDER is a recorder's name, EXPERIMENT/NAME when the name alone is not unique, its id, "
    "or an unambiguous id prefix, looked up in every experiment."
)


def add_deleted_flag(parser: argparse.ArgumentParser, help: str) -> None:
    """``--deleted``, the one name every command uses for "deleted items too"
    (``--include-deleted``, the Python keyword's spelling, is accepted as well)."""
    parser.add_argument("--deleted", action="store_true", dest="deleted", help=help)
    parser.add_argument(
        "--include-deleted", action="store_true", dest="deleted", help=argparse.SUPPRESS
    )


def non_negative(value: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return number


# ------------------------------------------------------------------ recorder rows

#: Params every run records about its command line; too long and alike to be default columns.
PROVENANCE_PARAMS = ("cmd-sys.argv",)


def is_provenance_param(key: str) -> bool:
    return key in PROVENANCE_PARAMS or key.startswith("_QLIB_")


def duration_seconds(meta: Meta, now: datetime | None = None) -> float | None:
    """Run time: start to end, or start to now while the run has no end."""
    start = text.parse_time(meta.get("start_time"))
    if start is None:
        return None
    end = text.parse_time(meta.get("end_time"))
    if end is None:
        end = now or datetime.now(timezone.utc)
    return (end - start).total_seconds()


def show_duration(row: dict[str, Any]) -> str:
    """A run's duration, with ``+`` when it is still counting (no end time yet)."""
    shown = text.duration(row.get("duration_s"))
    return shown + "+" if shown and row.get("end_time") is None else shown


def recorder_row(
    catalog: Catalog, meta: Meta, short: int, experiment_name: str | None = None
) -> dict[str, Any]:
    """The base columns of one recorder: machine values plus what the table shows."""
    row: dict[str, Any] = {
        "id": meta["id"],
        "short_id": meta["id"][:short],
        "name": meta.get("name"),
        "experiment_id": meta.get("experiment_id"),
        "status": catalog.status(meta),
        "status_label": status.label(catalog, meta),
        "lifecycle": meta.get("lifecycle"),
        "start_time": text.iso(meta.get("start_time")),
        "end_time": text.iso(meta.get("end_time")),
    }
    seconds = duration_seconds(meta)
    row["duration_s"] = None if seconds is None else round(seconds, 3)
    row["duration"] = show_duration(row)
    if experiment_name is not None:
        row["experiment"] = experiment_name
    return row


def recorder_columns(with_experiment: bool = False) -> list[Column]:
    """Columns for :func:`recorder_row`: short text in tables, full values in CSV/JSON."""
    columns = [
        Column("short_id", "id", max_width=32, shrink=False, in_machine=False),
        Column("id", in_table=False),
        Column("name", max_width=30),
    ]
    if with_experiment:
        columns.append(Column("experiment", max_width=24))
    columns += [
        Column("status_label", "status", max_width=20, shrink=False, in_machine=False),
        Column("status", in_table=False),
        Column("lifecycle", in_table=False),
        Column("start_time", "start", show=text.local_minutes, shrink=False),
        Column("end_time", in_table=False),
        Column("duration", right=True, shrink=False, in_machine=False),
        Column("duration_s", in_table=False),
    ]
    return columns


def metric_value(meta: Meta, key: str) -> float | None:
    """The latest value of a metric; None when missing or NaN (both print as a blank)."""
    entry = meta.get("metrics", {}).get(key)
    if entry is None:
        return None
    value = float(entry["value"])
    return None if math.isnan(value) else value
