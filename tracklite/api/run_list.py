"""``search_records(..., output_format="list")``: the matching recorders as MLflow ``Run``
objects (``r.info.run_id``, ``r.data.metrics``), as ``mlflow.search_runs`` gives them and qlib's
``R.search_records`` returns. The search is tracklite's (the DataFrame's rows, in its order); the
``Run`` objects are :mod:`tracklite.mlflow`'s, built from each recorder's metadata."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .stores import store_for

if TYPE_CHECKING:
    import pandas as pd

    from ..mlflow.entities import Run

FORMATS = ("pandas", "list")


def search_records(
    uri: str, experiment_ids: Any, output_format: str, **kwargs: Any
) -> pd.DataFrame | list[Run]:
    """``tracklite.search_records`` over the store at ``uri``, as a DataFrame or a list."""
    from ..search.listing import search_records as frame_of

    if output_format not in FORMATS:
        raise ValueError(f"output_format must be 'pandas' or 'list', got {output_format!r}")
    store = store_for(uri)
    frame = frame_of(store, experiment_ids, **kwargs)
    if output_format == "pandas":
        return frame
    return runs_of(store, list(frame["run_id"]) if len(frame) else [])


def runs_of(store: Any, run_ids: list[str]) -> list[Run]:
    from ..mlflow.tracking.client import MlflowClient

    client = MlflowClient.of_store(store)
    return [client.get_run(run_id) for run_id in run_ids]
