"""``resolve_tags``: a run's user tags plus the system tags MLflow adds (``mlflow.user``,
``mlflow.source.name``, ``mlflow.source.type``) and tracklite's (host, pid, versions)."""

from __future__ import annotations

from typing import Any

from ..._backend import context_tags


def resolve_tags(tags: dict[str, Any] | None = None, ignore: Any = None) -> dict[str, Any]:
    """System tags, overridden by ``tags``."""
    return {**context_tags(), **(tags or {})}
