"""MLflow's ``mlflow.tracking``: :class:`MlflowClient` and the tag context."""

from . import context
from .client import MlflowClient

__all__ = ["MlflowClient", "context"]
