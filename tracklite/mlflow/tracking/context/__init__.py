"""MLflow's ``mlflow.tracking.context``: the system tags a new run gets."""

from . import registry

__all__ = ["registry"]
