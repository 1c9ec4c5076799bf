"""Searching and listing recorders from their small metadata (never from Parquet).

One engine serves ``R.search_records``, ``Experiment.search_records``, ``list_recorders`` and the
CLI: per experiment, the recorder rows come from :mod:`tracklite.search.cache` (a summary plus
what the change journals name since, or the ``recorder.json`` files themselves); the filter and
the order are evaluated with ``pyarrow.compute`` on those Arrow rows; the ``mlflow.search_runs``
frame is then built for the selected rows only.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError, UsageError
from ..liveness import DEAD, RUNNING, effective_status
from ..store.layout import default_uri
from ..store.root import Meta, Store
from . import cache

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd
    import pyarrow as pa

    from .filter import FilterExpr
    from .order import OrderKey

#: MLflow's ``ViewType``: 1 active only, 2 deleted only, 3 all.
ACTIVE_ONLY, DELETED_ONLY, ALL = 1, 2, 3

#: The columns of ``mlflow.search_runs`` before the metrics, params and tags.
BASE_COLUMNS = ("run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time")
_PREFIXES = ("metrics.", "params.", "tags.")
RUN_NAME = "tags.mlflow.runName"
# Keywords of mlflow.search_runs that are accepted for compatibility.
_MLFLOW_KEYWORDS = frozenset({"output_format", "search_all_experiments", "page_token"})


def search_records(
    uri: str | os.PathLike[str] | Store | None = None,
    experiment_ids: str | Iterable[str] | None = None,
    filter_string: str | None = "",
    run_view_type: int = ACTIVE_ONLY,
    max_results: int | None = None,
    order_by: Sequence[str] | None = None,
    *,
    experiment_names: str | Iterable[str] | None = None,
    use_cache: bool = True,
    write_cache: bool = True,
    dead_status: str = DEAD,
    **mlflow_keywords: Any,
) -> pd.DataFrame:
    """Recorders as ``mlflow.search_runs``' DataFrame, newest first unless ``order_by`` says.

    ``uri`` is the store: a path or ``file:`` URI (``$TRACKLITE_URI``, else
    ``./tracklite-store``, when None), or a :class:`Store`. ``experiment_ids`` are ids (every
    active experiment when both they and ``experiment_names`` are None); ``experiment_names``
    are names, as in ``mlflow.search_runs``. Columns: ``run_id``, ``experiment_id``, ``status``,
    ``artifact_uri``, ``start_time``, ``end_time`` (UTC datetimes), ``metrics.<key>`` (float,
    NaN when absent), ``params.<key>`` and ``tags.<key>`` (str, None when absent), keys sorted.
    ``run_view_type`` is 1 (active), 2 (deleted) or 3 (all); ``max_results`` has no cap.
    ``use_cache=False`` reads every ``recorder.json`` and writes nothing; ``write_cache=False``
    reads the search summary where there is one and writes nothing either. ``dead_status`` is
    the status of a RUNNING recorder whose process is gone, in the frame and for a filter on
    ``status``: ``DEAD``, or MLflow's ``KILLED``.

    The store comes first, as in every module-level function; ``R.search_records`` and
    ``Experiment.search_records`` work on the store in use and take ``experiment_ids`` first,
    as in qlib.
    """
    _check_store_argument(uri)
    _check_mlflow_keywords(mlflow_keywords)
    query = _Query.parse(filter_string, order_by, max_results, run_view_type)
    resolved = _as_store(uri)
    ids = _experiment_ids(resolved, experiment_ids, experiment_names)
    rows = _rows(resolved, ids, run_view_type, use_cache, write_cache)
    statuses = _statuses(resolved, rows, dead_status)
    chosen = _select(resolved, rows, statuses, query)
    return _frame(resolved, rows.take(chosen), statuses[chosen], drop_empty=True)


def matching_recorder_metas(
    store: Store,
    experiment_ids: Sequence[str],
    *,
    filter_string: str | None = "",
    status: str | None = None,
    max_results: int | None = None,
    run_view_type: int = ACTIVE_ONLY,
    order_by: Sequence[str] | None = None,
    use_cache: bool = True,
    dead_status: str = DEAD,
) -> list[Meta]:
    """Info of the recorders matching a filter and a status, newest first, at most
    ``max_results``: ``id``, ``name``, ``experiment_id``, ``status`` (``dead_status`` for a
    RUNNING recorder whose process is gone), ``start_time``, ``end_time``, ``lifecycle``,
    ``owner`` (params, tags and metrics are not included)."""
    found = matching_recorder_columns(
        store,
        experiment_ids,
        filter_string=filter_string,
        status=status,
        max_results=max_results,
        run_view_type=run_view_type,
        order_by=order_by,
        use_cache=use_cache,
        dead_status=dead_status,
    )
    found["owner"] = [json.loads(owner) if owner else None for owner in found["owner"]]
    return [dict(zip(found, values, strict=True)) for values in zip(*found.values(), strict=True)]


def matching_recorder_columns(
    store: Store,
    experiment_ids: Sequence[str],
    *,
    filter_string: str | None = "",
    status: str | None = None,
    max_results: int | None = None,
    run_view_type: int = ACTIVE_ONLY,
    order_by: Sequence[str] | None = None,
    use_cache: bool = True,
    fields: Sequence[str] | None = None,
    dead_status: str = DEAD,
) -> dict[str, list[Any]]:
    """What :func:`matching_recorder_metas` gives, as one list per field (``owner`` as its
    JSON text; only ``fields`` if given): no dict per recorder, for listings of many."""
    query = _Query.parse(filter_string, order_by, max_results, run_view_type)
    ids = _experiment_ids(store, experiment_ids, None)
    rows = _rows(store, ids, run_view_type, use_cache)
    statuses = _statuses(store, rows, dead_status)
    chosen = _select(store, rows, statuses, query, status=status)
    columns = {
        "id": cache.RUN_ID,
        "experiment_id": cache.EXPERIMENT_ID,
        "name": cache.NAME,
        "status": None,
        "start_time": cache.START,
        "end_time": cache.END,
        "lifecycle": cache.LIFECYCLE,
        "owner": cache.OWNER,
    }
    wanted = {key: column for key, column in columns.items() if fields is None or key in fields}
    picked = rows.select([c for c in wanted.values() if c is not None]).take(chosen)
    return {
        key: statuses[chosen].tolist() if column is None else picked.column(column).to_pylist()
        for key, column in wanted.items()
    }


def experiment_overview(store: Store, experiment_id: str) -> tuple[dict[str, int], int | None]:
    """An experiment's active recorders counted by status (DEAD judged now), and the Unix
    milliseconds of the last thing that happened to one of them: a start, an end or a metric
    point (None if none has a time)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    rows = _rows(store, [experiment_id], ACTIVE_ONLY, True)
    counts = Counter(_statuses(store, rows).tolist())
    newest: list[int] = []
    for name in (cache.START, cache.END):
        try:
            stamps = rows.column(name).cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            stamps = pa.chunked_array([_epoch_ms(rows.column(name).to_pylist())], pa.int64())
        newest.append(pc.max(stamps).as_py())
    if cache.LAST_POINT in rows.column_names:
        newest.append(pc.max(rows.column(cache.LAST_POINT)).as_py())
    found = [t for t in newest if t is not None]
    return dict(counts), max(found) if found else None


def _epoch_ms(values: list[str | None]) -> list[int | None]:
    """Stored times Arrow's parser does not take, one by one (unreadable ones left out)."""
    from ..store.clock import iso_to_ms

    result: list[int | None] = []
    for value in values:
        try:
            result.append(iso_to_ms(value))
        except (TypeError, ValueError):
            result.append(None)
    return result


# ------------------------------------------------------------------------------ arguments


def _check_mlflow_keywords(keywords: dict[str, Any]) -> None:
    unknown = sorted(set(keywords) - _MLFLOW_KEYWORDS)
    if unknown:
        # Silently ignoring a misspelt keyword (filter= for filter_string=) would return every
        # recorder as if it matched.
        raise TypeError(f"search_records() got unexpected keyword arguments: {', '.join(unknown)}")
    if keywords.get("output_format", "pandas") != "pandas":
        raise ValueError("search_records returns a pandas DataFrame: output_format='pandas' only")
    if keywords.get("page_token") is not None:
        raise ValueError("search_records returns every match at once: page_token must be None")


def _check_store_argument(uri: object) -> None:
    """A list of ids where the store belongs is the call written for ``R.search_records``."""
    if uri is None or isinstance(uri, (str, os.PathLike, Store)):
        return
    raise UsageError(
        f"tracklite.search_records takes the store first, got {type(uri).__name__} {uri!r}: "
        "call tracklite.search_records(uri, experiment_ids=[...]), or "
        "R.search_records(experiment_ids) for the store in use"
    )


def _as_store(store: Store | str | os.PathLike[str] | None) -> Store:
    if isinstance(store, Store):
        return store
    return Store.from_uri(default_uri() if store is None else store)


def _experiment_ids(
    store: Store,
    experiment_ids: str | Iterable[str] | None,
    experiment_names: str | Iterable[str] | None,
) -> list[str]:
    """Ids to search: those given (checked), those of the names given, or every active one."""
    if experiment_ids is not None and experiment_names is not None:
        raise ValueError("give experiment_ids or experiment_names, not both (as in MLflow)")
    if experiment_names is not None:
        names = [experiment_names] if isinstance(experiment_names, str) else experiment_names
        ids = []
        for name in names:
            meta = store.find_experiment(name)
            if meta is None:
                raise NotFoundError(f"no active experiment named {name!r} in {store.root}")
            ids.append(meta["id"])
        return ids
    if experiment_ids is None:
        return [meta["id"] for meta in store.iter_experiments()]
    given = [experiment_ids] if isinstance(experiment_ids, str) else list(experiment_ids)
    for exp_id in given:
        if not isinstance(exp_id, str) or store.read_experiment(exp_id) is None:
            hint = ""
            if isinstance(exp_id, str) and store.find_experiment(exp_id) is not None:
                hint = f"; {exp_id!r} is an experiment name: pass experiment_names=[{exp_id!r}]"
            raise NotFoundError(f"no experiment with id {exp_id!r} in {store.root}{hint}")
    return list(dict.fromkeys(given))  # an id given twice is searched once


@dataclass(frozen=True)
class _Query:
    """A search's parsed arguments, checked before anything is read."""

    expr: FilterExpr | None
    keys: list[OrderKey]
    limit: int | None

    @classmethod
    def parse(
        cls,
        filter_string: str | None,
        order_by: Sequence[str] | None,
        max_results: Any,
        run_view_type: Any,
    ) -> _Query:
        from .filter import parse_filter
        from .order import parse_order_by

        if isinstance(run_view_type, bool) or run_view_type not in (ACTIVE_ONLY, DELETED_ONLY, ALL):
            raise ValueError(
                f"run_view_type must be 1 (active), 2 (deleted) or 3 (all), got {run_view_type!r}"
            )
        if max_results is not None and (
            isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 0
        ):
            raise ValueError(
                f"max_results must be a non-negative integer or None, got {max_results!r}"
            )
        # A malformed clause raises here, quoting it and pointing at the offending token.
        expr = parse_filter(filter_string) if filter_string is not None else None
        return cls(expr, parse_order_by(order_by), max_results)


# ------------------------------------------------------------------------------ rows


def _rows(
    store: Store, ids: list[str], run_view_type: int, use_cache: bool, write_cache: bool = True
) -> pa.Table:
    """Every row of the experiments, restricted to the lifecycle wanted."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from ..metrics.writer import get_writer

    get_writer().flush()  # searches in this process see every point logged before them
    tables = [
        cache.experiment_rows(store.root, e, use_cache=use_cache, write_cache=write_cache)
        for e in ids
    ]
    if not tables:
        return cache.metas_table("", [], [])
    rows = tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")
    if run_view_type != ALL:
        deleted: Any = pc.equal(rows.column(cache.LIFECYCLE), pa.scalar("deleted")).fill_null(False)
        if run_view_type == DELETED_ONLY:
            rows = rows.filter(deleted)
        elif pc.any(deleted).as_py():  # filtering copies every column: skip it when none go
            rows = rows.filter(pc.invert(deleted))
    return _with_run_names(rows)


def _with_run_names(rows: pa.Table) -> pa.Table:
    """``tags.mlflow.runName`` (what ``attributes.run_name`` filters on) for every recorder: the
    tag where it is set, else the recorder's name (recorders created below ``R``, through the
    store, have no such tag)."""
    import pyarrow.compute as pc

    names: Any = rows.column(cache.NAME)
    if RUN_NAME not in rows.column_names:
        return rows.append_column(RUN_NAME, names)
    tags: Any = rows.column(RUN_NAME)
    if tags.null_count == 0:
        return rows
    index = rows.column_names.index(RUN_NAME)
    return rows.set_column(index, RUN_NAME, pc.coalesce(tags, names))


def _statuses(store: Store, rows: pa.Table, dead_status: str = DEAD) -> npt.NDArray[np.object_]:
    """The status to show per row: ``dead_status`` for RUNNING recorders whose process is gone
    (judged now, never cached)."""
    import numpy as np

    statuses = _strings(rows.column(cache.STATUS))
    running = np.flatnonzero(statuses == RUNNING)
    if len(running):
        ids = rows.column(cache.RUN_ID).take(running).to_pylist()
        exps = rows.column(cache.EXPERIMENT_ID).take(running).to_pylist()
        owners = rows.column(cache.OWNER).take(running).to_pylist()
        for pos, rec_id, exp_id, owner in zip(running, ids, exps, owners, strict=True):
            meta = {"status": RUNNING, "owner": json.loads(owner) if owner else None}
            status = effective_status(meta, store.recorder_dir(str(exp_id), str(rec_id)))
            statuses[pos] = dead_status if status == DEAD else status
    return statuses


def _strings(column: pa.ChunkedArray[Any]) -> npt.NDArray[np.object_]:
    """A column of few distinct strings (statuses) as a numpy object array, built from its
    dictionary: several times faster than converting every value."""
    import numpy as np
    import pyarrow.compute as pc

    encoded: Any = pc.dictionary_encode(column).combine_chunks()
    values: npt.NDArray[np.object_] = np.empty(len(encoded.dictionary) + 1, dtype=object)
    values[:-1] = encoded.dictionary.to_pylist()  # the last one stays None, for nulls
    result: npt.NDArray[np.object_] = values[encoded.indices.fill_null(len(values) - 1).to_numpy()]
    return result


def _select(
    store: Store,
    rows: pa.Table,
    statuses: npt.NDArray[np.object_],
    query: _Query,
    *,
    status: str | None = None,
) -> npt.NDArray[np.intp]:
    """Positions of the matching rows, in order, at most ``query.limit``: the filter and the
    sort run on the Arrow rows (no pandas frame is built for them)."""
    import numpy as np

    from .order import sort_table

    wanted = {"run_id", "start_time"} | {key.column for key in query.keys}
    if query.expr is not None:
        wanted |= query.expr.columns()
    probe = _probe(store, rows, statuses, wanted)
    mask = None if status is None else statuses == status
    if query.expr is not None:
        matched = query.expr.arrow_mask(probe).to_numpy(zero_copy_only=False)
        mask = matched if mask is None else mask & matched
    positions = np.arange(rows.num_rows) if mask is None else np.flatnonzero(mask)
    if mask is not None:
        probe = probe.take(positions)
    chosen: npt.NDArray[np.intp] = positions[sort_table(probe, query.keys)]
    return chosen if query.limit is None else chosen[: query.limit]


def _probe(
    store: Store, rows: pa.Table, statuses: npt.NDArray[np.object_], wanted: set[str]
) -> pa.Table:
    """The columns a filter and an order read, as Arrow columns named as in the frame."""
    import pyarrow as pa

    # By position, and only the few wanted: a recorder may have a hundred thousand keys.
    columns: dict[str, Any] = {
        name: rows.column(i)
        for i, name in enumerate(rows.column_names)
        if name in wanted and not name.startswith("metrics.")
    }
    named = sorted(c for c in wanted if c.startswith("metrics."))
    if named:
        # Only the metric keys a filter or an order names become columns.
        columns.update(_metric_columns(rows, [c[len("metrics.") :] for c in named]))
    if "status" in wanted:
        columns["status"] = pa.array(statuses, pa.string())
    if "artifact_uri" in wanted:
        columns["artifact_uri"] = pa.array(_artifact_uris(store, rows), pa.string())
    return pa.table(columns) if columns else pa.table({"_": pa.nulls(rows.num_rows)})


# ------------------------------------------------------------------------------ frames


def _frame(
    store: Store,
    rows: pa.Table,
    statuses: npt.NDArray[np.object_],
    *,
    drop_empty: bool = False,
) -> pd.DataFrame:
    """The ``mlflow.search_runs`` frame of ``rows``."""
    import numpy as np
    import pandas as pd

    n = rows.num_rows
    user = _user_columns(rows, drop_empty)
    strings = {c: column.to_numpy(zero_copy_only=False) for c, column in user.items()}
    labels, values = _metric_block(rows)
    # One 2-D block per dtype: pandas builds a frame from a few blocks far faster than from
    # dozens of Series. The blocks come in the final column order, so nothing is reindexed.
    # Strings stay object dtype with None for missing values, as mlflow.search_runs gives
    # (pandas 3 would otherwise infer its str dtype, where missing values become NaN).
    parts = [
        _block(_base_columns(store, rows, statuses), n, object),
        pd.DataFrame({name: _times(rows.column(name)) for name in ("start_time", "end_time")}),
        pd.DataFrame(values, columns=labels, dtype=np.float64) if labels else None,
        _block(strings, n, object),
    ]
    frame: pd.DataFrame = pd.concat([p for p in parts if p is not None], axis=1)
    return frame


def _metric_entries(rows: pa.Table) -> tuple[Any, Any, Any]:
    """Every latest-metric entry of ``rows``: its row, key and value (Arrow arrays)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if cache.METRICS not in rows.column_names:
        empty = pa.array([], pa.int64())
        return empty, pa.array([], pa.string()), pa.array([], pa.float64())
    column: Any = rows.column(cache.METRICS).combine_chunks()
    parents = pc.list_parent_indices(column)
    entries = column.flatten()
    return parents, entries.field("key"), entries.field("value")


def _metric_columns(rows: pa.Table, keys: list[str]) -> dict[str, pa.Array[Any]]:
    """``metrics.<key>`` of each of ``keys``: the latest value per row, null where a row has
    none; from the key's column and the entries of the others (one pass over those)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = rows.num_rows
    positions = {name: i for i, name in enumerate(rows.column_names) if name.startswith("metrics.")}
    data = np.zeros((len(keys), n))
    missing = np.ones((len(keys), n), dtype=bool)
    for j, key in enumerate(keys):
        at = positions.get(f"metrics.{key}")
        if at is not None:
            column = rows.column(at)
            data[j] = column.to_numpy()
            missing[j] = column.is_null().to_numpy()
    parents, names, values = _metric_entries(rows)
    if len(names):
        where = pc.index_in(names, value_set=pa.array(keys, pa.string())).fill_null(-1).to_numpy()
        hit = np.flatnonzero(where >= 0)
        rows_hit = parents.to_numpy()[hit]
        data[where[hit], rows_hit] = values.to_numpy(zero_copy_only=False)[hit]
        missing[where[hit], rows_hit] = False
    return {
        f"metrics.{key}": pa.array(data[j], pa.float64(), mask=missing[j])
        for j, key in enumerate(keys)
    }


def _metric_block(rows: pa.Table) -> tuple[list[str], npt.NDArray[np.float64]]:
    """Every metric key some row has (sorted, as ``metrics.<key>``) and the rows' values as one
    2-D array (NaN where a row lacks a key): from the keys' columns, and one pass over the
    entries of the others (no Python object per key but its label)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    n = rows.num_rows
    own = [
        (name[len("metrics.") :], column)
        for name, column in zip(rows.column_names, rows.columns, strict=True)
        if name.startswith("metrics.") and column.null_count < n
    ]
    own_keys = pa.array([key for key, _ in own], pa.string())
    parents, names, values = _metric_entries(rows)
    keys: Any = pc.unique(pa.concat_arrays([own_keys, names]))
    keys = keys.take(pc.array_sort_indices(keys))
    block = np.full((n, len(keys)), np.nan)
    for at, (_, column) in zip(pc.index_in(own_keys, value_set=keys).to_numpy(), own, strict=True):
        block[:, at] = column.to_numpy()
    if len(names):
        codes = pc.index_in(names, value_set=keys).to_numpy()
        block[parents.to_numpy(), codes] = values.to_numpy(zero_copy_only=False)
    labels = pc.binary_join_element_wise(pa.scalar("metrics."), keys, "").to_pylist()
    return labels, block  # type: ignore[return-value]


def _user_columns(rows: pa.Table, drop_empty: bool) -> dict[str, pa.ChunkedArray[Any]]:
    """The param and tag columns, sorted by key within each group; with ``drop_empty``, only
    those that some row has (as in MLflow)."""
    n = rows.num_rows
    prefixes = ("params.", "tags.")
    # Paired by position: looking a column up by name scans the schema, which made a
    # recorder with many keys cost keys x keys.
    groups: dict[str, list[tuple[str, pa.ChunkedArray[Any]]]] = {p: [] for p in prefixes}
    for name, column in zip(rows.column_names, rows.columns, strict=True):
        if name.startswith(prefixes) and not (drop_empty and column.null_count == n):
            groups[name[: name.index(".") + 1]].append((name, column))
    # Names are unique: the pairs sort by name alone, with no key function per column.
    return {name: column for group in groups.values() for name, column in sorted(group)}


def _base_columns(
    store: Store, rows: pa.Table, statuses: npt.NDArray[np.object_]
) -> dict[str, Any]:
    """``run_id``, ``experiment_id``, ``status`` and ``artifact_uri``."""
    return {
        "run_id": rows.column(cache.RUN_ID).to_numpy(zero_copy_only=False),
        "experiment_id": rows.column(cache.EXPERIMENT_ID).to_numpy(zero_copy_only=False),
        "status": statuses,
        "artifact_uri": _artifact_uris(store, rows),
    }


def _block(arrays: dict[str, Any], n: int, dtype: Any) -> pd.DataFrame | None:
    import numpy as np
    import pandas as pd

    if not arrays:
        return None
    block = np.empty((n, len(arrays)), dtype=dtype)
    for position, values in enumerate(arrays.values()):
        block[:, position] = values
    frame: pd.DataFrame = pd.DataFrame(block, columns=list(arrays), dtype=dtype)
    return frame


def _times(column: pa.ChunkedArray[Any]) -> pd.Series[Any]:
    """Stored ISO 8601 strings as timezone-aware UTC datetimes (parsed in C++)."""
    import pandas as pd
    import pyarrow as pa

    try:
        parsed = column.cast(pa.timestamp("us", tz="UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        # A hand-written or imported time Arrow's parser does not take: let pandas try.
        strings = pd.Series(column.to_numpy(zero_copy_only=False), dtype=object)
        coerced: pd.Series[Any] = pd.to_datetime(
            strings, utc=True, format="ISO8601", errors="coerce"
        )
        return coerced
    # Through numpy: Arrow's own tz-aware conversion to pandas costs several times more.
    stamps = parsed.combine_chunks().to_numpy(zero_copy_only=False)
    times: pd.Series[Any] = pd.Series(pd.DatetimeIndex(stamps).tz_localize("UTC"))
    return times


def _artifact_uris(store: Store, rows: pa.Table) -> list[str]:
    # Ids are plain names (no characters to escape), so joining strings gives the same URIs as
    # Path.as_uri() per row at a fraction of the cost.
    prefix = store.root.as_uri()
    exps = rows.column(cache.EXPERIMENT_ID).to_pylist()
    ids = rows.column(cache.RUN_ID).to_pylist()
    return [f"{prefix}/{e}/{r}/artifacts" for e, r in zip(exps, ids, strict=True)]
