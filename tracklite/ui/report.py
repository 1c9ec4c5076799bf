"""``tracklite report``: the page and a store's data in one self-contained HTML file.

Curves are thinned here, per series (each pixel bucket's first, last, min and max point), to a
budget of points for the whole report, and packed as gzipped float64 columns; every curve
says how many of its points the report holds. The uncapped points are one ``tracklite ui``
(its CSV download) or :func:`tracklite.load_metrics` away.
"""

from __future__ import annotations

import base64
import gzip
import html as html_lib
import os
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..store.ref import RecorderRef
from . import page
from .data import LOWER_IS_BETTER, StoreData, summaries_of
from .thin import Digest
from .thin import digest as thinned

#: Points held by a report over all its curves (a curve never gets fewer than 64).
POINTS_BUDGET = 800_000
MIN_BUCKETS, MAX_BUCKETS = 16, 1000
#: Artifact previews embedded, in bytes over the whole report.
PREVIEW_BUDGET = 2 * 1024 * 1024

Progress = Callable[[int, int], None]


class Report:
    """A written page: ``html`` (the document), ``save(path)``; shown inline in notebooks."""

    def __init__(self, html: str, runs: int, path: str | None = None) -> None:
        self.html = html
        self.runs = runs
        self.path = path

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write the document to ``path``; returns the path."""
        Path(path).write_text(self.html, encoding="utf-8")
        self.path = os.fspath(path)
        return self.path

    def _repr_html_(self) -> str:
        # The page runs in its own document (an iframe), so its scripts and styles cannot touch
        # the notebook's, and the notebook's cannot touch the page.
        return (
            '<iframe style="width:100%;height:720px;border:1px solid #ccc" '
            'sandbox="allow-scripts allow-downloads" '
            f'srcdoc="{html_lib.escape(self.html, quote=True)}"></iframe>'
        )

    def __repr__(self) -> str:
        where = f" at {self.path}" if self.path else ""
        runs = f"{self.runs} run" + ("" if self.runs == 1 else "s")
        return f"<tracklite report of {runs}, {len(self.html) / 1e6:.1f} MB{where}>"


def report(
    experiments: str | Sequence[str] | None = None,
    *,
    uri: str | os.PathLike[str] | None = None,
    filter_string: str = "",
    output: str | os.PathLike[str] | None = None,
    trust_pickles: bool = False,
    progress: Progress | None = None,
) -> Report:
    """A self-contained HTML page of the experiments (names or ids; all when None), with the
    runs matching ``filter_string``; written to ``output`` if given. ``trust_pickles`` lets
    it read qlib's pickled analysis where no Parquet copy exists (pickles run code: only for
    a store you trust). Needs the ``tracklite[ui]`` extra (plotly)."""
    from ..store.layout import default_uri

    page.require_plotly()  # before any work: name the missing extra first
    if isinstance(experiments, str):
        experiments = [experiments]
    if progress is None:
        progress = _terminal_progress()
    data = build(
        uri if uri is not None else default_uri(),
        experiments,
        filter_string,
        trust_pickles=trust_pickles,
        progress=progress,
    )
    html, _ = page.render("report", data)
    result = Report(html, len(data["runs"]))
    if output is not None:
        result.save(output)
    return result


def build(
    uri: str | os.PathLike[str],
    experiments: Sequence[str] | None = None,
    filter_string: str = "",
    *,
    trust_pickles: bool = False,
    budget: int = POINTS_BUDGET,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """The report's data: experiments, runs, per-run metric summaries and details, and every
    curve thinned to fit ``budget`` points in all."""
    import numpy as np

    from ..metrics.writer import get_writer

    get_writer().flush()  # a report made in a training process sees what it logged
    store = StoreData(uri)
    exp_ids = store.experiment_ids(experiments)
    frame = store.search(exp_ids, filter_string)
    rows = store.rows(frame)
    refs = [RecorderRef(store.store.root, row["exp"], row["id"]) for row in rows]
    keys = store.keys(frame)
    key_index = {key: i for i, key in enumerate(keys["metrics"])}
    expected = sum(len(row["m"]) for row in rows)  # curves, from the latest values
    buckets = max(MIN_BUCKETS, min(MAX_BUCKETS, budget // max(1, 4 * expected)))

    summaries: dict[str, Any] = {}
    index: list[list[int]] = []
    columns: dict[str, list[Any]] = {"step": [], "value": [], "time": []}

    def digest(table: Any) -> Digest:
        # Run in the reading threads: numpy and Arrow work outside the GIL.
        return thinned(table, buckets, LOWER_IS_BETTER)

    for position, (ref, found) in enumerate(store.points(refs, digest)):
        summaries[ref.recorder_id] = dict(zip(found.names, summaries_of(found), strict=True))
        # A run's kept points, key after key, are one slice of each column already.
        columns["step"].append(found.step)
        columns["value"].append(found.value)
        columns["time"].append(found.time)
        held = np.diff(found.starts).tolist()
        index += [
            [position, key_index.get(key, -1), count, total]
            for key, count, total in zip(found.names, held, found.totals, strict=True)
        ]
        if progress is not None:
            progress(position + 1, len(refs))

    preview_room = [PREVIEW_BUDGET]
    details = {ref.recorder_id: _details(store, ref, trust_pickles, preview_room) for ref in refs}
    experiments_out = [e for e in store.experiments() if e["id"] in set(exp_ids)]

    def packed(name: str, delta: bool, dtype: str) -> list[Any]:
        """[dtype, delta-coded, base64 of the gzipped byte-shuffled column]."""
        values = np.concatenate(columns[name]) if columns[name] else np.zeros(0)
        values = values.astype(np.float64)
        if delta and len(values):
            values = np.diff(values, prepend=0.0)  # small, repetitive numbers: gzip likes them
        cast = values.astype(np.dtype(dtype).newbyteorder("<"))
        # Byte-shuffled (all first bytes, then all second bytes...): exponents and high bytes
        # repeat, and gzip finds them; a fifth smaller than the plain column.
        shuffled = cast.view(np.uint8).reshape(-1, cast.itemsize).T.tobytes()
        raw = gzip.compress(shuffled, 1, mtime=0)  # level 1: most of the gain, fast
        return [dtype, delta, base64.b64encode(raw).decode()]

    return {
        "generated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "store": str(store.store.root),
        "filter": filter_string,
        "experiments": experiments_out,
        "runs": rows,
        "keys": keys,
        "summaries": summaries,
        "details": details,
        "series": {
            "buckets": buckets,
            "index": index,  # [run position, key position, points held, points logged]
            # Values as 32-bit floats (7 significant digits, plenty for a line on a screen);
            # the tables' numbers come from the summaries, exact.
            "step": packed("step", True, "f8"),
            "value": packed("value", False, "f4"),
            "time": packed("time", True, "f8"),
        },
    }


def _details(
    store: StoreData, ref: RecorderRef, trust_pickles: bool, room: list[int]
) -> dict[str, Any]:
    """What the run page adds to a runs-table row: info, artifacts, previews, qlib panels."""
    info = store.run_info(ref)
    files = store.artifacts(ref)
    previews = {}
    for item in files:
        if item["kind"] in ("pickle", "file") or item["size"] > room[0]:
            continue
        try:
            shown = store.preview(ref, item["path"])
        except (OSError, ValueError):
            continue
        cost = len(str(shown))
        if cost <= room[0]:
            room[0] -= cost
            previews[item["path"]] = shown
    return {
        "info": info,
        "artifacts": files,
        "previews": previews,
        "qlib": store.qlib_panels(ref, trust_pickles),
    }


def _terminal_progress() -> Progress | None:
    """A counter on stderr when it is a terminal (nothing in notebooks, logs and pipes)."""
    from ..cli.progress import Progress as Bar

    bar = Bar("reading runs")
    if not bar.enabled:
        return None

    def advance(done: int, total: int) -> None:
        bar.update(done, total=total)
        if done >= total:
            bar.close()

    return advance
