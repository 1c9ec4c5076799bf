"""What the page shows, as JSON-ready values: one layer for the report's embedded data and the
server's answers.

Everything is read through tracklite's readers (the search engine for experiments and runs,
metric segments for curves, the artifact folder's safe paths for files). Nothing here writes to
the store or unpickles anything, except :func:`qlib_panels` with ``trust_pickles=True``, which
only ``tracklite report --trust-pickles`` passes.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import json
import math
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import IO, TYPE_CHECKING, Any, TypeVar

from ..errors import NotFoundError, UnsafeLinkError
from ..liveness import effective_status
from ..store import artifacts
from ..store.ref import RecorderRef
from ..store.root import Store

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from .thin import Digest

T = TypeVar("T")

#: Metric keys whose best value is the smallest; every other key's best is its largest.
LOWER_IS_BETTER = re.compile(
    r"loss|err|mse|mae|rmse|mape|cost|drawdown|perplexity|regret|latency|time", re.IGNORECASE
)
#: Artifact kinds by file suffix; anything else is "file" (name and size only).
KINDS = {
    ".txt": "text",
    ".log": "text",
    ".md": "text",
    ".py": "text",
    ".cfg": "text",
    ".ini": "text",
    ".toml": "text",
    ".sh": "text",
    ".json": "json",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".png": "image",
    ".jpg": "image",
    ".jpeg": "image",
    ".gif": "image",
    ".webp": "image",
    ".pkl": "pickle",
    ".pickle": "pickle",
    ".joblib": "pickle",
}
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}
PREVIEW_BYTES = 64 * 1024
PREVIEW_ROWS = 20
IMAGE_BYTES = 2 * 1024 * 1024
DIGEST_BUCKETS = 1000  # thinning of the curves read only for their summaries
DIGESTS_KEPT = 4096  # (run, thinning) digests remembered by a server
STATS_KEPT = 65_536  # (run, key) min/max/best step remembered by a server for sorting
#: The statistics of a metric key a runs table sorts by from its points (``last`` comes with
#: the search), as the page names them.
POINT_STATS = ("min", "max", "best_step")
_READERS = 4  # Arrow decodes outside the GIL: a few threads read several recorders at once
#: A group chart averages the curves of this many runs per group at most (the first in the
#: table's order): the server reads groups x this many runs per key, not the whole table.
GROUP_SAMPLE = 100
NO_GROUP = "(none)"  # the group of the runs without the param grouped by


class OutsideArtifacts(PermissionError):
    """An artifact path that leaves the recorder's artifacts folder."""


def number(value: Any) -> float | str | None:
    """A metric value for JSON: finite floats as they are, NaN and infinities as the tokens
    the page turns back into numbers (strict JSON has no literal for them), None for absent."""
    if value is None:
        return None
    real = float(value)
    if math.isfinite(real):
        return real
    return "NaN" if math.isnan(real) else ("Infinity" if real > 0 else "-Infinity")


def best_is_min(key: str) -> bool:
    """Whether the best value of metric ``key`` is its smallest (loss, error...)."""
    return LOWER_IS_BETTER.search(key) is not None


class StoreData:
    """Read-only views of one store for the page."""

    def __init__(self, uri: str | os.PathLike[str]) -> None:
        self._lock = threading.Lock()
        self._digests: dict[tuple[str, int], tuple[Any, dict[str, Any]]] = {}
        self._stats: dict[tuple[str, str], tuple[Any, dict[str, float]]] = {}
        self.store = Store.from_uri(uri)
        if not self.store.exists():
            raise NotFoundError(f"no tracklite store at {self.store.root}")

    # ------------------------------------------------------------------ experiments and runs

    def experiments(self) -> list[dict[str, Any]]:
        """Active experiments: id, name, number of active recorders."""
        from ..search import cache

        found = []
        for meta in self.store.iter_experiments():
            rows = cache.experiment_rows(self.store.root, meta["id"], write_cache=False)
            lifecycle = rows.column(cache.LIFECYCLE).to_pylist()
            found.append(
                {
                    "id": meta["id"],
                    "name": str(meta.get("name", "")),
                    "runs": sum(1 for value in lifecycle if value != "deleted"),
                }
            )
        return found

    def experiment_ids(self, names_or_ids: Sequence[str] | None) -> list[str]:
        """Ids of the experiments named (by name or id); every active one for None or []."""
        if not names_or_ids:
            return [meta["id"] for meta in self.store.iter_experiments()]
        ids = []
        for given in names_or_ids:
            meta = self.store.read_experiment(given) if given.isalnum() else None
            meta = meta or self.store.find_experiment(given)
            if meta is None:
                raise NotFoundError(
                    f"no experiment named or with id {given!r} in {self.store.root}"
                )
            ids.append(meta["id"])
        return list(dict.fromkeys(ids))

    def search(
        self,
        experiment_ids: Sequence[str],
        filter_string: str = "",
        order_by: Sequence[str] | None = None,
        run_ids: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """The runs of the experiments matching a filter (the search language), in order."""
        from ..search.listing import search_records

        if run_ids is not None:
            quoted = ", ".join("'" + i.replace("'", "") + "'" for i in run_ids if i)
            if not quoted:
                quoted = "''"
            clause = f"attributes.run_id IN ({quoted})"
            filter_string = f"({filter_string}) AND {clause}" if filter_string else clause
        # The page never writes to the store, not even the search summary.
        return search_records(
            self.store,
            list(experiment_ids),
            filter_string or "",
            order_by=list(order_by or []),
            write_cache=False,
        )

    @staticmethod
    def keys(frame: pd.DataFrame) -> dict[str, list[str]]:
        """Metric, param and tag keys present in a search frame."""
        found: dict[str, list[str]] = {"metrics": [], "params": [], "tags": []}
        for column in frame.columns.tolist():  # (iterating an Arrow-backed index: a call a key)
            group, _, key = str(column).partition(".")
            if group in found and key:
                found[group].append(key)
        return found

    @staticmethod
    def rows(
        frame: pd.DataFrame,
        offset: int = 0,
        limit: int | None = None,
        metrics: Iterable[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Rows of a search frame for the page: id, exp, name, status, start, end (Unix ms),
        m (latest metric values: of the keys ``metrics`` only, if given), p (params), t
        (tags); absent keys are left out."""
        import numpy as np

        stop = len(frame) if limit is None else min(len(frame), offset + limit)
        part = frame.iloc[offset:stop]
        names = [str(c) for c in part.columns.tolist()]
        # Metric values as one 2-D float block, params and tags as one object block: a run
        # may have 100,000 metric keys, so nothing is done a column at a time.
        if metrics is None:
            metric_at = [i for i, c in enumerate(names) if c.startswith("metrics.")]
        else:
            at = {c: i for i, c in enumerate(names)}
            wanted = dict.fromkeys("metrics." + k for k in metrics)
            metric_at = [at[c] for c in wanted if c in at]
        text_at = [i for i, c in enumerate(names) if c.startswith(("params.", "tags."))]
        metric_keys = np.array([names[i][len("metrics.") :] for i in metric_at], dtype=object)
        latest = part.iloc[:, metric_at].to_numpy(dtype=np.float64)
        texts = part.iloc[:, text_at].to_numpy(dtype=object).tolist()
        text_keys = [names[i].partition(".") for i in text_at]
        info = {c: part[c].tolist() for c in ("run_id", "experiment_id", "status")}
        run_names = part["tags.mlflow.runName"].tolist() if "tags.mlflow.runName" in part else None
        starts = _millis(part["start_time"]) if len(part) else []
        ends = _millis(part["end_time"]) if len(part) else []
        out = []
        for i in range(len(part)):
            present = np.flatnonzero(~np.isnan(latest[i]))  # NaN: the run has no such metric
            values = zip(metric_keys[present].tolist(), numbers(latest[i][present]), strict=True)
            row: dict[str, Any] = {
                "id": info["run_id"][i],
                "exp": info["experiment_id"][i],
                "name": (run_names[i] if run_names is not None else "") or "",
                "status": info["status"][i],
                "start": starts[i],
                "end": ends[i],
                "m": dict(values),
                "p": {},
                "t": {},
            }
            for (group, _, key), value in zip(text_keys, texts[i], strict=True):
                if value is not None:
                    row["p" if group == "params" else "t"][key] = str(value)
            out.append(row)
        return out

    @staticmethod
    def groups(
        frame: pd.DataFrame,
        by: str,
        metrics: Iterable[str],
        curves: Iterable[str] = (),
        sample: int = GROUP_SAMPLE,
    ) -> dict[str, Any]:
        """The runs of a search frame grouped by param ``by`` (:data:`NO_GROUP` for the runs
        without it), groups in the order they first appear in the frame, column-wise: values,
        counts (runs per group), stats (per metric key, per statistic, a list over groups:
        :func:`last_value_stats` of the runs' last values, None where a group has none) and
        curves (per key of ``curves``, per group: ``of``, its runs having the key, and
        ``sample``, the first ``sample`` of them as indices into ``runs``, [id, experiment])."""
        import numpy as np
        import pandas as pd

        codes, values = pd.factorize(_group_labels(frame, by), sort=False)
        count = len(values)
        keys = list(dict.fromkeys(metrics))
        table = frame.reindex(columns=["metrics." + k for k in keys]).to_numpy(dtype=np.float64)
        stats = last_value_stats(table, codes, count)
        found = ~np.isnan(stats["n"])  # a key's groups with at least one finite last value
        out_stats = {
            key: {
                name: _or_none(numbers(column[:, i]), found[:, i]) for name, column in stats.items()
            }
            for i, key in enumerate(keys)
        }
        picked: dict[int, int] = {}  # frame position -> index in the answer's runs
        out_curves = {}
        for key in dict.fromkeys(curves):
            column = "metrics." + key
            have = (
                frame[column].notna().to_numpy() if column in frame else np.zeros(len(frame), bool)
            )
            of, first = _first_per_group(codes[have], np.flatnonzero(have), count, sample)
            out_curves[key] = {
                "of": of,
                "sample": [[picked.setdefault(at, len(picked)) for at in runs] for runs in first],
            }
        ids, exps = frame["run_id"].to_numpy(), frame["experiment_id"].to_numpy()
        return {
            "total": len(frame),
            "values": [str(v) for v in values],
            "counts": np.bincount(codes, minlength=count).tolist(),
            "stats": out_stats,
            "curves": out_curves,
            "runs": [[str(ids[at]), str(exps[at])] for at in picked],
        }

    # ------------------------------------------------------------------ metric points

    def ref(self, run_id: str, experiment_id: str | None = None) -> RecorderRef:
        """The recorder ``run_id`` (found in any experiment when none is given)."""
        if experiment_id is None or self.store.read_recorder(experiment_id, run_id) is None:
            meta = self.store.locate_recorder(run_id)
            if meta is None:
                raise NotFoundError(f"no recorder with id {run_id!r} in {self.store.root}")
            experiment_id = str(meta["experiment_id"])
        return RecorderRef(self.store.root, experiment_id, run_id)

    def points(
        self, refs: Sequence[RecorderRef], then: Callable[[pa.Table], Any] | None = None
    ) -> Iterator[tuple[RecorderRef, Any]]:
        """Every point of each recorder (``then(points)`` if given, computed in the reading
        threads), in the order given; a few recorders are read at a time."""
        from ..metrics import segments

        def read(ref: RecorderRef) -> Any:
            table = segments.read_points(ref.metrics_dir)
            return table if then is None else then(table)

        with ThreadPoolExecutor(_READERS) as pool:
            yield from zip(refs, pool.map(read, refs), strict=True)

    def summaries(
        self, refs: Sequence[RecorderRef], keys: Iterable[str] | None = None
    ) -> dict[str, dict[str, dict[str, Any]]]:
        """Per run and metric key: last (latest step), min, max, best step, number of points."""
        wanted = None if keys is None else set(keys)
        digests = self.digests(refs, DIGEST_BUCKETS)
        return {
            run_id: {k: v["summary"] for k, v in digest.items() if wanted is None or k in wanted}
            for run_id, digest in digests.items()
        }

    def series(self, refs: Sequence[RecorderRef], key: str, buckets: int) -> list[dict[str, Any]]:
        """One curve per run: the points of ``key`` thinned to ``buckets`` pixel buckets,
        with the number of points logged (``total``)."""
        digests = self.digests(refs, buckets)
        empty = {"total": 0, "step": [], "value": [], "time": []}
        out = []
        for ref in refs:
            curve = digests[ref.recorder_id].get(key, empty)
            out.append({"id": ref.recorder_id, **{k: curve[k] for k in empty}})
        return out

    def digests(self, refs: Sequence[RecorderRef], buckets: int) -> dict[str, dict[str, Any]]:
        """Per run, per key: the curve thinned to ``buckets`` and its summary. Remembered per
        run until its metric files change (a finished run is read once; a running one again
        after each flush), so a live page polling many charts reads each run once per change."""
        from ..metrics import segments
        from .thin import digest as thinned

        def read(ref: RecorderRef) -> dict[str, Any]:
            found = thinned(segments.read_points(ref.metrics_dir), buckets, LOWER_IS_BETTER)
            # Whole arrays to lists once, then a slice a key: a run may have 100,000 keys.
            steps, values, times = found.step.tolist(), numbers(found.value), found.time.tolist()
            return {
                key: {
                    "total": total,
                    "step": steps[start:end],
                    "value": values[start:end],
                    "time": times[start:end],
                    "summary": summary,
                }
                for key, start, end, total, summary in zip(
                    found.names,
                    found.starts[:-1],
                    found.starts[1:],
                    found.totals,
                    summaries_of(found),
                    strict=True,
                )
            }

        def digest(ref: RecorderRef) -> dict[str, Any]:
            made = (ref.recorder_id, buckets)
            return self._remembered(self._digests, made, ref, read, DIGESTS_KEPT)

        with ThreadPoolExecutor(_READERS) as pool:
            return {ref.recorder_id: d for ref, d in zip(refs, pool.map(digest, refs), strict=True)}

    def sorted_by_stat(
        self, frame: pd.DataFrame, stat: str, key: str, descending: bool = False
    ) -> pd.DataFrame:
        """The runs of a search frame ordered by ``stat`` (one of :data:`POINT_STATS`) of metric
        ``key``, the number the table shows for it; runs without it last, in either direction,
        and ties in the frame's order."""
        import numpy as np

        if stat not in POINT_STATS:
            raise ValueError(f"cannot sort by {stat!r}: one of {', '.join(POINT_STATS)}")
        refs = [
            RecorderRef(self.store.root, str(exp), str(run))
            for exp, run in zip(frame["experiment_id"], frame["run_id"], strict=True)
        ]
        found = self.point_stats(refs, key)
        values = np.array([s.get(stat, np.nan) for s in found], dtype=np.float64)
        present = np.flatnonzero(~np.isnan(values))
        ranked = np.argsort(-values[present] if descending else values[present], kind="stable")
        order = np.r_[present[ranked], np.flatnonzero(np.isnan(values))]
        ordered: pd.DataFrame = frame.iloc[order.tolist()]  # (read by position, not label)
        return ordered

    def point_stats(self, refs: Sequence[RecorderRef], key: str) -> list[dict[str, float]]:
        """Per run: min, max and best step of metric ``key`` as :func:`summaries_of` defines
        them ({} without a finite point of it), from the points of that key only; remembered
        per run until its metric files change, as :meth:`digests` are."""
        from ..metrics import segments
        from .thin import extremes, grouped

        def read(ref: RecorderRef) -> dict[str, float]:
            points = grouped(segments.read_points(ref.metrics_dir, key))
            out: dict[str, float] = {}
            if points.names:
                low, high, best = extremes(points, LOWER_IS_BETTER)
                if not math.isnan(low[0]):
                    best_step = float(points.step[best[0]])
                    out = {"min": float(low[0]), "max": float(high[0]), "best_step": best_step}
            return out

        def stats(ref: RecorderRef) -> dict[str, float]:
            return self._remembered(self._stats, (ref.recorder_id, key), ref, read, STATS_KEPT)

        with ThreadPoolExecutor(_READERS) as pool:
            return list(pool.map(stats, refs))

    def _remembered(
        self,
        memo: dict[Any, tuple[Any, T]],
        name: Any,
        ref: RecorderRef,
        read: Callable[[RecorderRef], T],
        kept: int,
    ) -> T:
        """``read(ref)``, remembered in ``memo`` under ``name`` until the run's metric files
        change (the oldest entry dropped past ``kept``)."""
        signature = _signature(ref.metrics_dir)
        with self._lock:
            hit = memo.get(name)
        if hit is not None and hit[0] == signature:
            return hit[1]
        out = read(ref)
        with self._lock:
            if len(memo) >= kept:
                memo.pop(next(iter(memo)))  # the oldest
            memo[name] = (signature, out)
        return out

    def csv(self, refs: Sequence[RecorderRef], key: str) -> str:
        """Every point of ``key`` of the runs, uncapped: run_id, step, value, timestamp."""
        import pyarrow as pa
        import pyarrow.compute as pc

        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["run_id", "key", "step", "value", "timestamp"])
        for ref, table in self.points(refs):
            mine = table.filter(pc.equal(table["key"], pa.scalar(key, pa.string())))
            steps = mine["step"].to_pylist()
            values = mine["value"].to_pylist()
            stamps = mine["timestamp"].cast(pa.int64()).to_pylist()
            for step, value, stamp in zip(steps, values, stamps, strict=True):
                writer.writerow([ref.recorder_id, key, step, repr(value), _iso_ms(stamp)])
        return buffer.getvalue()

    # ------------------------------------------------------------------ one run

    def run(self, ref: RecorderRef) -> dict[str, Any]:
        """A run's page: info, params, tags, metric summaries, artifacts with sizes."""
        meta = self._meta(ref)
        return {
            "info": self.run_info(ref, meta),
            "params": {str(k): str(v) for k, v in (meta.get("params") or {}).items()},
            "tags": {str(k): str(v) for k, v in (meta.get("tags") or {}).items()},
            "metrics": self.summaries([ref])[ref.recorder_id],
            "artifacts": self.artifacts(ref),
        }

    def run_info(self, ref: RecorderRef, meta: dict[str, Any] | None = None) -> dict[str, Any]:
        """Id, name, experiment, status (DEAD when its process is gone), times, host, pid."""
        meta = meta if meta is not None else self._meta(ref)
        experiment = self.store.read_experiment(ref.experiment_id) or {}
        owner = meta.get("owner")
        owner = owner if isinstance(owner, dict) else {}
        info = {
            "id": meta.get("id"),
            "name": meta.get("name", ""),
            "experiment_id": ref.experiment_id,
            "experiment": experiment.get("name", ""),
            "status": effective_status(meta, ref.dir),
            "start_time": meta.get("start_time"),
            "end_time": meta.get("end_time"),
            "host": owner.get("host"),
            "pid": owner.get("pid"),
        }
        return {k: (None if v is None else str(v)) for k, v in info.items()}

    def _meta(self, ref: RecorderRef) -> dict[str, Any]:
        meta = self.store.read_recorder(ref.experiment_id, ref.recorder_id)
        if meta is None:
            raise NotFoundError(f"no recorder with id {ref.recorder_id!r} in {self.store.root}")
        return meta

    def artifacts(self, ref: RecorderRef) -> list[dict[str, Any]]:
        """Every artifact file: path, size in bytes, kind (how the page may preview it).
        Symbolic links are left out (tracklite never follows one)."""
        return [
            {"path": path, "size": size, "kind": artifact_kind(path.rsplit("/", 1)[-1])}
            for path, size in artifacts.files(ref)
            # Hidden files and folders are editors' and notebooks' (.ipynb_checkpoints).
            if not any(part.startswith(".") for part in path.split("/"))
        ]

    def open_artifact(self, ref: RecorderRef, path: str) -> IO[bytes]:
        """Artifact ``path`` opened for reading, reached without following any link;
        :class:`OutsideArtifacts` when the path leaves the recorder's artifacts (``..``, an
        absolute path, a link), ``FileNotFoundError`` when there is no such file."""
        try:
            relative = artifacts.safe_relative(path, "path")
            if not relative:
                raise FileNotFoundError("path names the artifacts folder itself, not a file")
            folder, _, name = relative.rpartition("/")
            with artifacts.open_folder(ref, folder, argument="path") as opened:
                return opened.reader(name)
        except UnsafeLinkError as exc:
            raise OutsideArtifacts(str(exc)) from None
        except IsADirectoryError:
            raise FileNotFoundError(f"artifact {path!r} is a folder") from None
        except ValueError as exc:
            raise OutsideArtifacts(str(exc)) from None

    def preview(self, ref: RecorderRef, path: str) -> dict[str, Any]:
        """The first part of an artifact, by kind: text (text, json, yaml), rows (csv,
        parquet), an image (base64), or only name and size (pickles and other files)."""
        with self.open_artifact(ref, path) as handle:
            return _preview(handle, path)

    # ------------------------------------------------------------------ qlib

    def qlib_panels(self, ref: RecorderRef, trust_pickles: bool = False) -> dict[str, Any] | None:
        """qlib's analysis of a recorder, from the Parquet copies tracklite's templates store
        beside qlib's pickles (or, with ``trust_pickles``, from the pickles themselves): the
        IC and Rank IC series, cumulative excess return with and without cost, drawdowns."""
        from . import qlib_panels

        def read(relative: str) -> IO[bytes] | None:
            try:
                return self.open_artifact(ref, relative)
            except (FileNotFoundError, NotADirectoryError, OutsideArtifacts):
                return None

        names = [item["path"] for item in self.artifacts(ref)]
        return qlib_panels.panels(names, read, trust_pickles)


# ---------------------------------------------------------------------- helpers


def _signature(metrics_dir: os.PathLike[str] | str) -> tuple[tuple[str, int, int], ...]:
    """What identifies a recorder's points: its segment files' names, sizes and mtimes."""
    try:
        entries = list(os.scandir(metrics_dir))
    except FileNotFoundError:
        return ()
    found = []
    for entry in entries:
        if not entry.name.startswith("."):
            with contextlib.suppress(FileNotFoundError):
                info = entry.stat(follow_symlinks=False)
                found.append((entry.name, info.st_size, info.st_mtime_ns))
    return tuple(sorted(found))


def last_value_stats(table: Any, codes: Any, count: int) -> dict[str, Any]:
    """Per group (``codes``: 0 to ``count - 1`` per row) and column of a float array: n, mean,
    median, min, max and std of the finite values (absent and infinite ones left out; NaN
    where a group has none; std is the population's). Arrays of groups x columns."""
    import numpy as np
    import pandas as pd

    finite = pd.DataFrame(np.where(np.isfinite(table), table, np.nan))
    grouped = finite.groupby(codes, sort=True)
    found = {
        "n": grouped.count(),
        "mean": grouped.mean(),
        "median": grouped.median(),
        "min": grouped.min(),
        "max": grouped.max(),
        "std": grouped.std(ddof=0),
    }
    out = {n: p.reindex(range(count)).to_numpy(np.float64, copy=True) for n, p in found.items()}
    out["n"][out["n"] == 0] = np.nan
    # Equal values have no spread, whatever rounding a mean of them leaves (the page agrees).
    out["std"][out["min"] == out["max"]] = 0.0
    return out


def _group_labels(frame: pd.DataFrame, by: str) -> pd.Series[Any]:
    """Each run's value of param ``by`` as text, :data:`NO_GROUP` for the runs without it."""
    import pandas as pd

    column = "params." + by
    if column not in frame:
        return pd.Series([NO_GROUP] * len(frame), dtype=object)
    values: pd.Series[Any] = frame[column].astype(object)
    labels: pd.Series[Any] = values.where(values.notna(), NO_GROUP).astype(str)
    return labels.reset_index(drop=True)


def _first_per_group(
    codes: Any, positions: Any, count: int, first: int
) -> tuple[list[int], list[list[int]]]:
    """Per group: how many of ``positions`` it has, and the first ``first`` of them."""
    import numpy as np
    import pandas as pd

    rank = pd.Series(codes).groupby(codes).cumcount().to_numpy()
    kept = rank < first
    lists: list[list[int]] = [[] for _ in range(count)]
    for code, at in zip(codes[kept].tolist(), positions[kept].tolist(), strict=True):
        lists[code].append(at)  # positions ascend: each list is in the table's order
    return np.bincount(codes, minlength=count).tolist(), lists


def _or_none(values: list[Any], present: Any) -> list[Any]:
    """``values`` with None where not ``present`` (strict JSON has no NaN)."""
    for i in (~present).nonzero()[0].tolist():
        values[i] = None
    return values


def _preview(handle: IO[bytes], path: str) -> dict[str, Any]:
    kind = artifact_kind(path)
    size = os.fstat(handle.fileno()).st_size
    out: dict[str, Any] = {"path": path, "kind": kind, "size": size}
    if kind in ("text", "json", "yaml"):
        text = handle.read(PREVIEW_BYTES).decode("utf-8", errors="replace")
        if kind == "json" and size <= PREVIEW_BYTES:
            with contextlib.suppress(ValueError):
                text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        out.update(text=text, truncated=size > PREVIEW_BYTES)
    elif kind == "csv":
        sample = handle.read(PREVIEW_BYTES).decode("utf-8", errors="replace")
        dialect = "excel-tab" if path.endswith(".tsv") else "excel"
        lines = list(csv.reader(io.StringIO(sample), dialect))[: PREVIEW_ROWS + 1]
        out.update(columns=lines[0] if lines else [], rows=lines[1:])
    elif kind == "parquet":
        out.update(parquet_head(handle))
    elif kind == "image" and size <= IMAGE_BYTES:
        suffix = os.path.splitext(path)[1].lower()
        out.update(mime=IMAGE_TYPES[suffix], data=base64.b64encode(handle.read()).decode())
    return out


def artifact_kind(name: str) -> str:
    return KINDS.get(os.path.splitext(name)[1].lower(), "file")


def numbers(values: Any) -> list[float | str]:
    """:func:`number` of each value of a float array (a call only for the non-finite ones)."""
    import numpy as np

    out: list[float | str] = values.tolist()
    for i in np.flatnonzero(~np.isfinite(values)).tolist():
        out[i] = number(out[i])  # type: ignore[assignment]
    return out


def summaries_of(found: Digest) -> list[dict[str, Any]]:
    """Each key's summary: last (the value at the highest step, the last logged winning), min
    and max (finite values), best step (the first step reaching the best value: the min for
    keys such as loss or error, else the max) and the number of points."""
    rows = zip(
        numbers(found.last),
        found.totals,
        numbers(found.low),
        numbers(found.high),
        found.best_step.tolist(),
        found.finite.tolist(),
        strict=True,
    )
    return [
        {"last": last, "points": total, "min": low, "max": high, "best_step": best}
        if finite
        else {"last": last, "points": total}
        for last, total, low, high, best, finite in rows
    ]


def parquet_head(source: IO[bytes]) -> dict[str, Any]:
    """Column names, the first rows (as text) and the row count of a Parquet file."""
    import pyarrow.parquet as pq

    handle = pq.ParquetFile(source)
    rows: list[list[str]] = []
    for batch in handle.iter_batches(batch_size=PREVIEW_ROWS):
        columns = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
        rows = [[_cell(col[r]) for col in columns] for r in range(batch.num_rows)]
        break
    return {
        "columns": list(handle.schema_arrow.names),
        "rows": rows,
        "total_rows": handle.metadata.num_rows,
    }


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _millis(series: pd.Series[Any]) -> list[float | None]:
    values = series.to_numpy(dtype="datetime64[ms]").astype("int64")
    mask = series.isna().to_numpy()
    return [None if missing else float(v) for v, missing in zip(values, mask, strict=True)]


def _iso_ms(stamp: int | None) -> str:
    from datetime import datetime, timezone

    if stamp is None:
        return ""
    return datetime.fromtimestamp(stamp / 1000, timezone.utc).isoformat(timespec="milliseconds")
