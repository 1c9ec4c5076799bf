"""MLflow's ``mlflow.protos``: only the error codes code compares ``error_code`` with."""
