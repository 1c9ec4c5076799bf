"""``MlflowException`` with MLflow's fields: ``error_code`` (a name), ``message``, ``json_kwargs``.

It is also a :class:`tracklite.errors.TrackliteError`, so code catching either keeps working.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import TrackliteError

# MLflow's error codes (databricks.proto): name -> number, and the HTTP status each maps to.
ERROR_CODES = {
    "INTERNAL_ERROR": 1,
    "BAD_REQUEST": 4,
    "NOT_FOUND": 11,
    "INVALID_PARAMETER_VALUE": 1000,
    "INVALID_STATE": 1003,
    "FEATURE_DISABLED": 1005,
    "RESOURCE_ALREADY_EXISTS": 3001,
    "RESOURCE_DOES_NOT_EXIST": 3002,
}
INTERNAL_ERROR = ERROR_CODES["INTERNAL_ERROR"]
BAD_REQUEST = ERROR_CODES["BAD_REQUEST"]
NOT_FOUND = ERROR_CODES["NOT_FOUND"]
INVALID_PARAMETER_VALUE = ERROR_CODES["INVALID_PARAMETER_VALUE"]
INVALID_STATE = ERROR_CODES["INVALID_STATE"]
FEATURE_DISABLED = ERROR_CODES["FEATURE_DISABLED"]
RESOURCE_ALREADY_EXISTS = ERROR_CODES["RESOURCE_ALREADY_EXISTS"]
RESOURCE_DOES_NOT_EXIST = ERROR_CODES["RESOURCE_DOES_NOT_EXIST"]

_NAMES = {number: name for name, number in ERROR_CODES.items()}
_HTTP_STATUS = {
    "INTERNAL_ERROR": 500,
    "INVALID_STATE": 500,
    "NOT_FOUND": 404,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "BAD_REQUEST": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "INVALID_PARAMETER_VALUE": 400,
}


class MlflowException(TrackliteError):
    """An MLflow-style error: ``error_code`` is the code's name (``"RESOURCE_DOES_NOT_EXIST"``)."""

    def __init__(
        self, message: object, error_code: int | str = INTERNAL_ERROR, **kwargs: Any
    ) -> None:
        if isinstance(error_code, str) and error_code in ERROR_CODES:
            self.error_code = error_code
        else:
            self.error_code = _NAMES.get(error_code, "INTERNAL_ERROR")  # type: ignore[arg-type]
        self.message = str(message)
        self.json_kwargs = kwargs
        super().__init__(self.message)

    def serialize_as_json(self) -> str:
        return json.dumps(
            {"error_code": self.error_code, "message": self.message, **self.json_kwargs}
        )

    def get_http_status_code(self) -> int:
        return _HTTP_STATUS.get(self.error_code, 500)

    @classmethod
    def invalid_parameter_value(cls, message: str, **kwargs: Any) -> MlflowException:
        return cls(message, error_code=INVALID_PARAMETER_VALUE, **kwargs)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.error_code), {"json_kwargs": self.json_kwargs})


class RestException(MlflowException):
    """Raised by MLflow for server errors; tracklite has no server, kept for ``except`` clauses."""


__all__ = ["MlflowException", "RestException"]
