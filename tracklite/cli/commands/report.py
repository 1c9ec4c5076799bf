"""``tracklite report``: one self-contained HTML page of experiments, to open from a file."""

from __future__ import annotations

import argparse

from .. import text
from ..context import Context
from ..progress import Progress
from .common import Parents, SubParsers, add_command

EPILOG = """\
examples:
  tracklite report -o report.html
  tracklite report lgb xgb --filter "metrics.ic > 0.05" -o ic.html

The file holds the page, its scripts and the data: it opens from file:// with no network.
Curves are thinned per pixel bucket (min, max, first and last point kept) to keep the file
small; each chart says how many points it holds. Needs the extra: pip install "tracklite[ui]".
"""


def register(sub: SubParsers, parents: Parents) -> None:
    parser = add_command(
        sub,
        parents,
        "report",
        report,
        "write a self-contained HTML report (opens with no network)",
        description="One HTML file with the runs of EXPERIMENT... (all when none).\n\n" + EPILOG,
        tabular=False,
    )
    parser.add_argument("experiments", nargs="*", metavar="EXPERIMENT", help="names or ids")
    parser.add_argument("--filter", default="", metavar="EXPR", help="MLflow filter_string")
    parser.add_argument(
        "-o", "--output", default="report.html", metavar="FILE", help="default: report.html"
    )
    parser.add_argument(
        "--trust-pickles",
        action="store_true",
        help="read qlib's pickled analysis where no Parquet copy exists (pickles run code)",
    )


def report(ctx: Context, args: argparse.Namespace) -> int:
    from ...ui.report import report as write_report

    catalog = ctx.existing_catalog()
    with Progress("reading runs", stream=ctx.err) as bar:
        result = write_report(
            args.experiments or None,
            uri=str(catalog.root),
            filter_string=args.filter,
            output=args.output,
            trust_pickles=args.trust_pickles,
            progress=lambda done, total: bar.update(done, total=total),
        )
    ctx.note(
        f"wrote {args.output}: {text.plural(result.runs, 'run')}, {len(result.html) / 1e6:.1f} MB"
    )
    return 0
