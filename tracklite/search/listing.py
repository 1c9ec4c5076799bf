"""Listing and searching recorders from their small metadata files (never from Parquet)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..liveness import effective_status
from ..store.root import Meta, Store

if TYPE_CHECKING:
    import pandas as pd

#: MLflow's ``ViewType``: 1 active only, 2 deleted only, 3 all.
ACTIVE_ONLY, DELETED_ONLY, ALL = 1, 2, 3


def _lifecycle_ok(meta: Meta, run_view_type: int) -> bool:
    deleted = meta.get("lifecycle") == "deleted"
    if run_view_type == ACTIVE_ONLY:
        return not deleted
    if run_view_type == DELETED_ONLY:
        return deleted
    return True


def collect_metas(
    store: Store, experiment_ids: Iterable[str], run_view_type: int = ACTIVE_ONLY
) -> list[Meta]:
    """Recorder metadata of the given experiments, newest first."""
    if run_view_type not in (ACTIVE_ONLY, DELETED_ONLY, ALL):
        raise ValueError(
            f"run_view_type must be 1 (active), 2 (deleted) or 3 (all), got {run_view_type!r}"
        )
    metas: list[Meta] = []
    for exp_id in experiment_ids:
        metas.extend(
            m
            for m in store.iter_recorders(exp_id, include_deleted=True)
            if _lifecycle_ok(m, run_view_type)
        )
    metas.sort(key=lambda m: (m.get("start_time") or "", m["id"]), reverse=True)
    return metas


def records_frame(store: Store, metas: Sequence[Meta]) -> pd.DataFrame:
    """One row per recorder with ``mlflow.search_runs``'s columns."""
    import pandas as pd

    columns: dict[str, list[Any]] = {
        "run_id": [],
        "experiment_id": [],
        "status": [],
        "artifact_uri": [],
        "start_time": [],
        "end_time": [],
    }
    metrics: dict[str, list[float]] = {}
    params: dict[str, list[str | None]] = {}
    tags: dict[str, list[str | None]] = {}
    nan = float("nan")
    for row, meta in enumerate(metas):
        columns["run_id"].append(meta["id"])
        columns["experiment_id"].append(meta["experiment_id"])
        # DEAD for a RUNNING recorder whose process is gone (tracklite.liveness).
        columns["status"].append(_status(store, meta))
        columns["artifact_uri"].append(
            (store.root / meta["experiment_id"] / meta["id"] / "artifacts").as_uri()
        )
        columns["start_time"].append(meta.get("start_time"))
        columns["end_time"].append(meta.get("end_time"))
        for key, entry in meta.get("metrics", {}).items():
            metrics.setdefault(key, [nan] * row).append(float(entry["value"]))
        for key, value in meta.get("params", {}).items():
            params.setdefault(key, [None] * row).append(value)
        for key, value in meta.get("tags", {}).items():
            tags.setdefault(key, [None] * row).append(value)
        for table, fill in ((metrics, nan), (params, None), (tags, None)):
            for values in table.values():
                if len(values) <= row:
                    values.append(fill)  # type: ignore[arg-type]
    data: dict[str, Any] = dict(columns)
    data["start_time"] = pd.to_datetime(
        pd.Series(columns["start_time"], dtype=object), utc=True, format="ISO8601"
    )
    data["end_time"] = pd.to_datetime(
        pd.Series(columns["end_time"], dtype=object), utc=True, format="ISO8601"
    )
    for key in sorted(metrics):
        data[f"metrics.{key}"] = pd.Series(metrics[key], dtype="float64")
    for key in sorted(params):
        data[f"params.{key}"] = pd.Series(params[key], dtype=object)
    for key in sorted(tags):
        data[f"tags.{key}"] = pd.Series(tags[key], dtype=object)
    result: pd.DataFrame = pd.DataFrame(data)
    return result


def search_records(
    store: Store,
    experiment_ids: Sequence[str] | None,
    filter_string: str = "",
    run_view_type: int = ACTIVE_ONLY,
    max_results: int | None = None,
    order_by: Sequence[str] | None = None,
    **_ignored: Any,
) -> pd.DataFrame:
    """The ``mlflow.search_runs`` frame over the given experiments (all active ones if None)."""
    if experiment_ids is None:
        experiment_ids = [meta["id"] for meta in store.iter_experiments()]
    if isinstance(experiment_ids, str):
        experiment_ids = [experiment_ids]
    frame = records_frame(store, collect_metas(store, experiment_ids, run_view_type))
    frame = _filter(frame, filter_string)
    frame = _order(frame, order_by)
    if max_results is not None:
        frame = frame.head(_check_max(max_results))
    result: pd.DataFrame = frame.reset_index(drop=True)
    return result


def matching_recorder_metas(
    store: Store,
    experiment_ids: Sequence[str],
    *,
    filter_string: str = "",
    status: str | None = None,
    max_results: int | None = None,
    run_view_type: int = ACTIVE_ONLY,
) -> list[Meta]:
    """Recorder metadata matching a filter and status, newest first, at most ``max_results``."""
    metas = collect_metas(store, experiment_ids, run_view_type)
    if status is not None:
        metas = [m for m in metas if _status(store, m) == status]
    if filter_string and filter_string.strip():
        frame = _filter(records_frame(store, metas), filter_string)
        metas = [metas[i] for i in frame.index]
    if max_results is not None:
        metas = metas[: _check_max(max_results)]
    return metas


def _status(store: Store, meta: Meta) -> str:
    return effective_status(meta, store.root / meta["experiment_id"] / meta["id"])


def _check_max(max_results: Any) -> int:
    if isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 0:
        raise ValueError(f"max_results must be a non-negative integer or None, got {max_results!r}")
    return max_results


def _filter(frame: pd.DataFrame, filter_string: str | None) -> pd.DataFrame:
    if not filter_string or not filter_string.strip():
        return frame
    from .filter import parse_filter

    expr = parse_filter(filter_string)
    if expr is None:
        return frame
    result: pd.DataFrame = frame[expr.mask(frame)]
    return result


def _order(frame: pd.DataFrame, order_by: Sequence[str] | None) -> pd.DataFrame:
    from .order import sort_frame

    return sort_frame(frame, list(order_by) if order_by else None)
