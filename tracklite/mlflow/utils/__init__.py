"""MLflow's ``mlflow.utils`` modules that user code and integrations read constants from."""

from . import mlflow_tags, validation

__all__ = ["mlflow_tags", "validation"]
