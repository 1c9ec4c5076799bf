"""MLflow's entities (``Run``, ``RunInfo``, ``RunData``, ``Metric``, ``Param``, ``RunTag``,
``Experiment``, ``FileInfo``, ``RunStatus``, ``ViewType``, ``LifecycleStage``): the same
constructors, properties, equality and ``repr``, without protobuf.

Times are Unix milliseconds, ids and statuses strings, as in MLflow.
"""

from __future__ import annotations

import pprint
from collections.abc import Iterator
from typing import Any, ClassVar

from .exceptions import INVALID_PARAMETER_VALUE, MlflowException


class _Entity:
    """What MLflow's ``_MlflowObject`` gives: ``dict(entity)`` over its properties, and a repr
    listing them."""

    @classmethod
    def _properties(cls) -> list[str]:
        return sorted(name for name in dir(cls) if isinstance(getattr(cls, name, None), property))

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        for name in self._properties():
            yield name, getattr(self, name)

    @classmethod
    def from_dictionary(cls, the_dict: dict[str, Any]) -> Any:
        return cls(**{k: v for k, v in the_dict.items() if k in cls._properties()})

    def __repr__(self) -> str:
        fields = ", ".join(f"{key}={_show(value)}" for key, value in self)
        return f"<{type(self).__name__}: {fields}>"


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, _Entity) else pprint.pformat(value)


class RunStatus:
    """Run statuses: MLflow's numbers and their names."""

    RUNNING = 1
    SCHEDULED = 2
    FINISHED = 3
    FAILED = 4
    KILLED = 5
    _STRING_TO_STATUS: ClassVar[dict[str, int]] = {
        "RUNNING": 1,
        "SCHEDULED": 2,
        "FINISHED": 3,
        "FAILED": 4,
        "KILLED": 5,
    }
    _STATUS_TO_STRING: ClassVar[dict[int, str]] = {
        value: key for key, value in _STRING_TO_STATUS.items()
    }
    _TERMINATED_STATUSES: ClassVar[set[int]] = {3, 4, 5}

    @staticmethod
    def from_string(status_str: str) -> int:
        if status_str not in RunStatus._STRING_TO_STATUS:
            raise Exception(
                f"Could not get run status corresponding to string {status_str}. Valid run "
                f"status strings: {list(RunStatus._STRING_TO_STATUS)}"
            )
        return RunStatus._STRING_TO_STATUS[status_str]

    @staticmethod
    def to_string(status: int) -> str:
        if status not in RunStatus._STATUS_TO_STRING:
            raise Exception(
                f"Could not get string corresponding to run status {status}. Valid run "
                f"statuses: {list(RunStatus._STATUS_TO_STRING)}"
            )
        return RunStatus._STATUS_TO_STRING[status]

    @staticmethod
    def is_terminated(status: int) -> bool:
        return status in RunStatus._TERMINATED_STATUSES

    @staticmethod
    def all_status() -> list[int]:
        return list(RunStatus._STATUS_TO_STRING)


class ViewType:
    """Which runs or experiments a search returns."""

    ACTIVE_ONLY, DELETED_ONLY, ALL = 1, 2, 3
    _VIEW_TO_STRING: ClassVar[dict[int, str]] = {1: "active_only", 2: "deleted_only", 3: "all"}
    _STRING_TO_VIEW: ClassVar[dict[str, int]] = {
        value: key for key, value in _VIEW_TO_STRING.items()
    }

    @classmethod
    def from_string(cls, view_str: str) -> int:
        if view_str not in cls._STRING_TO_VIEW:
            raise Exception(
                f"Could not get valid view type corresponding to string {view_str}. "
                f"Valid view types are {list(cls._STRING_TO_VIEW)}"
            )
        return cls._STRING_TO_VIEW[view_str]

    @classmethod
    def to_string(cls, view_type: int) -> str:
        if view_type not in cls._VIEW_TO_STRING:
            raise Exception(
                f"Could not get valid view type corresponding to string {view_type}. "
                f"Valid view types are {list(cls._STRING_TO_VIEW)}"
            )
        return cls._VIEW_TO_STRING[view_type]


class LifecycleStage:
    ACTIVE = "active"
    DELETED = "deleted"
    _VALID_STAGES: ClassVar[set[str]] = {ACTIVE, DELETED}

    @classmethod
    def is_valid(cls, lifecycle_stage: str) -> bool:
        return lifecycle_stage in cls._VALID_STAGES

    @classmethod
    def view_type_to_stages(cls, view_type: int = ViewType.ALL) -> list[str]:
        stages = []
        if view_type in (ViewType.ACTIVE_ONLY, ViewType.ALL):
            stages.append(cls.ACTIVE)
        if view_type in (ViewType.DELETED_ONLY, ViewType.ALL):
            stages.append(cls.DELETED)
        return stages


class SourceType:
    NOTEBOOK, JOB, PROJECT, LOCAL, UNKNOWN = 1, 2, 3, 4, 1000
    _STRING_TO_SOURCETYPE: ClassVar[dict[str, int]] = {
        "NOTEBOOK": 1,
        "JOB": 2,
        "PROJECT": 3,
        "LOCAL": 4,
        "UNKNOWN": 1000,
    }
    SOURCETYPE_TO_STRING: ClassVar[dict[int, str]] = {
        value: key for key, value in _STRING_TO_SOURCETYPE.items()
    }

    @staticmethod
    def from_string(status_str: str) -> int:
        return SourceType._STRING_TO_SOURCETYPE[status_str]

    @staticmethod
    def to_string(status: int) -> str:
        return SourceType.SOURCETYPE_TO_STRING[status]


class Metric(_Entity):
    """One metric point."""

    def __init__(
        self,
        key: str,
        value: float,
        timestamp: int,
        step: int,
        model_id: str | None = None,
        dataset_name: str | None = None,
        dataset_digest: str | None = None,
        run_id: str | None = None,
    ) -> None:
        if (dataset_name, dataset_digest).count(None) == 1:
            raise MlflowException(
                "Both dataset_name and dataset_digest must be provided if one is provided",
                INVALID_PARAMETER_VALUE,
            )
        self._key = key
        self._value = value
        self._timestamp = timestamp
        self._step = step
        self._model_id = model_id
        self._dataset_name = dataset_name
        self._dataset_digest = dataset_digest
        self._run_id = run_id

    key = property(lambda self: self._key, doc="Metric name.")
    value = property(lambda self: self._value, doc="Metric value (float).")
    timestamp = property(lambda self: self._timestamp, doc="Unix milliseconds.")
    step = property(lambda self: self._step, doc="Integer step.")
    model_id = property(lambda self: self._model_id)
    dataset_name = property(lambda self: self._dataset_name)
    dataset_digest = property(lambda self: self._dataset_digest)
    run_id = property(lambda self: self._run_id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Metric) and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash(tuple(self.__dict__.values()))

    def to_dictionary(self) -> dict[str, Any]:
        return dict(self)


class Param(_Entity):
    """A run's param: key and string value."""

    def __init__(self, key: str, value: str) -> None:
        self._key = key
        self._value = value

    key = property(lambda self: self._key)
    value = property(lambda self: self._value)

    def __eq__(self, other: object) -> bool:  # MLflow compares params by key only
        return isinstance(other, Param) and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)


class RunTag(_Entity):
    """A run's tag: key and string value."""

    def __init__(self, key: str, value: str) -> None:
        self._key = key
        self._value = value

    key = property(lambda self: self._key)
    value = property(lambda self: self._value)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash((self._key, self._value))


class ExperimentTag(RunTag):
    """An experiment's tag."""


class RunInfo(_Entity):
    """A run's metadata: ids, status, times (Unix ms), lifecycle stage, artifact URI."""

    def __init__(
        self,
        run_id: str,
        experiment_id: str,
        user_id: str,
        status: str,
        start_time: int,
        end_time: int | None,
        lifecycle_stage: str,
        artifact_uri: str | None = None,
        run_name: str | None = None,
    ) -> None:
        for name, value in (
            ("experiment_id", experiment_id),
            ("user_id", user_id),
            ("status", status),
            ("start_time", start_time),
        ):
            if value is None:
                raise Exception(f"{name} cannot be None")
        self._run_id = run_id
        self._experiment_id = experiment_id
        self._user_id = user_id
        self._status = status
        self._start_time = start_time
        self._end_time = end_time
        self._lifecycle_stage = lifecycle_stage
        self._artifact_uri = artifact_uri
        self._run_name = run_name

    run_id = property(lambda self: self._run_id)
    run_uuid = property(lambda self: self._run_id, doc="Deprecated spelling of ``run_id``.")
    experiment_id = property(lambda self: self._experiment_id)
    run_name = property(lambda self: self._run_name)
    user_id = property(lambda self: self._user_id)
    status = property(lambda self: self._status, doc="RUNNING, SCHEDULED, FINISHED, FAILED, KILLED")
    start_time = property(lambda self: self._start_time)
    end_time = property(lambda self: self._end_time)
    artifact_uri = property(lambda self: self._artifact_uri)
    lifecycle_stage = property(lambda self: self._lifecycle_stage)

    @classmethod
    def _properties(cls) -> list[str]:
        return sorted(p for p in super()._properties() if p != "run_uuid")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]


class RunData(_Entity):
    """A run's latest metrics, params and tags, as dicts (``metrics``, ``params``, ``tags``)."""

    def __init__(
        self,
        metrics: list[Metric] | None = None,
        params: list[Param] | None = None,
        tags: list[RunTag] | None = None,
    ) -> None:
        self._metric_objs = list(metrics or [])
        self._metrics = {m.key: m.value for m in self._metric_objs}
        self._params = {p.key: p.value for p in params or []}
        self._tags = {t.key: t.value for t in tags or []}

    metrics = property(lambda self: self._metrics, doc="{key: latest value}")
    params = property(lambda self: self._params)
    tags = property(lambda self: self._tags)

    def to_dictionary(self) -> dict[str, Any]:
        return {"metrics": self.metrics, "params": self.params, "tags": self.tags}


class Run(_Entity):
    """A run: ``info`` (:class:`RunInfo`) and ``data`` (:class:`RunData`)."""

    def __init__(
        self,
        run_info: RunInfo,
        run_data: RunData | None,
        run_inputs: Any = None,
        run_outputs: Any = None,
    ) -> None:
        if run_info is None:
            raise MlflowException("run_info cannot be None")
        self._info = run_info
        self._data = run_data
        self._inputs = run_inputs
        self._outputs = run_outputs

    info = property(lambda self: self._info)
    data = property(lambda self: self._data)
    inputs = property(lambda self: self._inputs)
    outputs = property(lambda self: self._outputs)

    def to_dictionary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"info": dict(self.info)}
        if self.data:
            out["data"] = self.data.to_dictionary()
        return out


class Experiment(_Entity):
    """An experiment: id, name, artifact location, lifecycle stage, tags, times (Unix ms)."""

    DEFAULT_EXPERIMENT_NAME = "Default"

    def __init__(
        self,
        experiment_id: str,
        name: str,
        artifact_location: str,
        lifecycle_stage: str,
        tags: list[ExperimentTag] | None = None,
        creation_time: int | None = None,
        last_update_time: int | None = None,
    ) -> None:
        self._experiment_id = experiment_id
        self._name = name
        self._artifact_location = artifact_location
        self._lifecycle_stage = lifecycle_stage
        self._tags = {t.key: t.value for t in tags or []}
        self._creation_time = creation_time
        self._last_update_time = last_update_time

    experiment_id = property(lambda self: self._experiment_id)
    name = property(lambda self: self._name)
    artifact_location = property(lambda self: self._artifact_location)
    lifecycle_stage = property(lambda self: self._lifecycle_stage)
    tags = property(lambda self: self._tags)
    creation_time = property(lambda self: self._creation_time)
    last_update_time = property(lambda self: self._last_update_time)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]


class FileInfo(_Entity):
    """An artifact: path relative to the run's artifact root, whether a folder, size in bytes."""

    def __init__(self, path: str, is_dir: bool, file_size: int | None) -> None:
        self._path = path
        self._is_dir = is_dir
        self._bytes = file_size

    path = property(lambda self: self._path)
    is_dir = property(lambda self: self._is_dir)
    file_size = property(lambda self: self._bytes)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]


__all__ = [
    "Experiment",
    "ExperimentTag",
    "FileInfo",
    "LifecycleStage",
    "Metric",
    "Param",
    "Run",
    "RunData",
    "RunInfo",
    "RunStatus",
    "RunTag",
    "SourceType",
    "ViewType",
]
