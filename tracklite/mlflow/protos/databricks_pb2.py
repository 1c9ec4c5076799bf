"""MLflow's error codes, as ``mlflow.protos.databricks_pb2`` spells them (no protobuf)."""

from __future__ import annotations

from ..exceptions import (
    BAD_REQUEST,
    ERROR_CODES,
    FEATURE_DISABLED,
    INTERNAL_ERROR,
    INVALID_PARAMETER_VALUE,
    INVALID_STATE,
    NOT_FOUND,
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
)

_NAMES = {number: name for name, number in ERROR_CODES.items()}


class ErrorCode:
    """``ErrorCode.Name(number)`` and ``ErrorCode.Value(name)``, as protobuf's enum gives."""

    @staticmethod
    def Name(number: int) -> str:
        try:
            return _NAMES[number]
        except KeyError:
            raise ValueError(f"Enum ErrorCode has no name defined for value {number!r}") from None

    @staticmethod
    def Value(name: str) -> int:
        try:
            return ERROR_CODES[name]
        except KeyError:
            raise ValueError(f"Enum ErrorCode has no value defined for name {name!r}") from None


__all__ = [
    "BAD_REQUEST",
    "FEATURE_DISABLED",
    "INTERNAL_ERROR",
    "INVALID_PARAMETER_VALUE",
    "INVALID_STATE",
    "NOT_FOUND",
    "RESOURCE_ALREADY_EXISTS",
    "RESOURCE_DOES_NOT_EXIST",
    "ErrorCode",
]
