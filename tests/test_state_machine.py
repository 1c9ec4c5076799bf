"""Random sequences of API calls against an in-memory model: the store must always agree.

Every check reads through a fresh ``ExpManager`` (what another process would see), and the run
ends with ``tracklite.check`` finding nothing.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    precondition,
    rule,
)

import tracklite
from tracklite import ExpManager, QlibRecorder

EXPERIMENTS = st.sampled_from(["e1", "e2", "../e3"])
NAMES = st.sampled_from(["r1", "r2", "r/3"])
PARAM_KEYS = st.sampled_from(["p_a", "p_b", "p c"])
TAG_KEYS = st.sampled_from(["t_a", "t_b"])
METRIC_KEYS = st.sampled_from(["m_loss", "m_acc", "m/x"])
VALUES = st.text(max_size=6)
FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(2**53), 2**53)
OBJECTS = st.recursive(
    st.none() | st.integers() | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=6,
)


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


@dataclass
class Rec:
    id: str
    experiment: str
    status: str = "RUNNING"
    deleted: bool = False
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    points: list[tuple[str, int, float]] = field(default_factory=list)
    objects: dict[str, Any] = field(default_factory=dict)


class StoreMachine(RuleBasedStateMachine):
    ended = Bundle("ended")

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="tracklite-sm-"))
        self.uri = str(self.dir / "store")
        self.r = QlibRecorder(ExpManager(uri=self.uri))
        self.recs: dict[str, Rec] = {}
        self.active: Rec | None = None
        self.step = 0

    # ------------------------------------------------------------------ runs

    @precondition(lambda self: self.active is None)
    @rule(experiment=EXPERIMENTS, name=NAMES)
    def start(self, experiment: str, name: str) -> None:
        self.r.start_exp(experiment_name=experiment, recorder_name=name)
        rec_id = self.r.get_recorder().id
        assert rec_id is not None and rec_id not in self.recs
        self.active = self.recs[rec_id] = Rec(rec_id, experiment)

    @precondition(lambda self: self.active is not None)
    @rule(target=ended, status=st.sampled_from(["FINISHED", "FAILED"]))
    def end(self, status: str) -> str:
        assert self.active is not None
        self.r.end_exp(status)
        self.active.status = status
        rec_id, self.active = self.active.id, None
        return rec_id

    @precondition(lambda self: self.active is None)
    @rule(rec_id=consumes(ended))
    def resume(self, rec_id: str) -> None:
        rec = self.recs[rec_id]
        if rec.deleted:
            return
        self.r.start_exp(experiment_name=rec.experiment, recorder_id=rec_id, resume=True)
        assert self.r.get_recorder().id == rec_id
        rec.status = "RUNNING"
        self.active = rec

    @rule(rec_id=ended)
    def delete(self, rec_id: str) -> None:
        rec = self.recs[rec_id]
        if rec.deleted or rec is self.active:
            return
        self.r.get_exp(experiment_name=rec.experiment).delete_recorder(recorder_id=rec_id)
        rec.deleted = True

    # ------------------------------------------------------------------ the active run

    @precondition(lambda self: self.active is not None)
    @rule(key=PARAM_KEYS, value=VALUES)
    def log_param(self, key: str, value: str) -> None:
        assert self.active is not None
        self.r.log_params(**{key: value})
        self.active.params[key] = value

    @precondition(lambda self: self.active is not None)
    @rule(key=TAG_KEYS, value=VALUES)
    def set_tag(self, key: str, value: str) -> None:
        assert self.active is not None
        self.r.set_tags(**{key: value})
        self.active.tags[key] = value

    @precondition(lambda self: self.active is not None)
    @rule(key=TAG_KEYS)
    def delete_tag(self, key: str) -> None:
        assert self.active is not None
        self.r.get_recorder().delete_tags(key)
        self.active.tags.pop(key, None)

    @precondition(lambda self: self.active is not None)
    @rule(metrics=st.dictionaries(METRIC_KEYS, FLOATS, min_size=1, max_size=3))
    def log_metrics(self, metrics: dict[str, float]) -> None:
        assert self.active is not None
        self.step += 1
        self.r.log_metrics(step=self.step, **metrics)
        self.active.points.extend((k, self.step, float(v)) for k, v in metrics.items())

    @precondition(lambda self: self.active is not None)
    @rule(key=METRIC_KEYS, bad=st.sampled_from(["1", None, [1.0], object()]))
    def log_bad_metric(self, key: str, bad: Any) -> None:
        with pytest.raises(TypeError, match="bad"):
            self.r.log_metrics(step=self.step + 1, **{key: 1.0, "bad": bad})

    @precondition(lambda self: self.active is not None)
    @rule(name=st.sampled_from(["o1.pkl", "o2.pkl"]), obj=OBJECTS)
    def save_object(self, name: str, obj: Any) -> None:
        assert self.active is not None
        self.r.save_objects(**{name: obj})
        self.active.objects[name] = obj

    # ------------------------------------------------------------------ other views

    @rule(rec_id=ended, key=TAG_KEYS, value=VALUES)
    def tag_from_elsewhere(self, rec_id: str, key: str, value: str) -> None:
        """Tag a recorder through a second manager, as another process would."""
        rec = self.recs[rec_id]
        other = QlibRecorder(ExpManager(uri=self.uri))
        other.get_recorder(recorder_id=rec_id, experiment_name=rec.experiment).set_tags(
            **{key: value}
        )
        rec.tags[key] = value

    @invariant()
    def store_agrees(self) -> None:
        if not self.recs:
            return
        view = QlibRecorder(ExpManager(uri=self.uri))
        for experiment in {rec.experiment for rec in self.recs.values()}:
            listed = view.get_exp(experiment_name=experiment, create=False).list_recorders()
            assert set(listed) == {
                r.id for r in self.recs.values() if r.experiment == experiment and not r.deleted
            }
        for rec in self.recs.values():
            found = view.get_exp(experiment_name=rec.experiment, create=False).get_recorder(
                recorder_id=rec.id, create=False
            )
            assert found.status == rec.status
            params = {k: v for k, v in found.list_params().items() if k.startswith("p")}
            assert params == rec.params
            tags = {k: v for k, v in found.list_tags().items() if k.startswith("t_")}
            assert tags == rec.tags
            latest: dict[str, float] = {}
            for key, _step, value in rec.points:
                latest[key] = value
            metrics = found.list_metrics()
            assert set(metrics) == set(latest)
            assert all(_same(metrics[k], latest[k]) for k in latest), (metrics, latest)
            history = found.get_metric_history()
            got = sorted(
                zip(history["key"], history["step"], history["value"].map(repr), strict=True)
            )
            assert got == sorted((k, s, repr(float(v))) for k, s, v in rec.points)
            for name, obj in rec.objects.items():
                assert found.load_object(name) == obj

    def teardown(self) -> None:
        try:
            if self.active is not None:
                self.r.end_exp("FINISHED")
                self.active.status = "FINISHED"
                self.active = None
            if self.recs:
                self.store_agrees()
                report = tracklite.check(self.uri)
                assert report.clean, str(report)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


StoreMachine.TestCase.settings = settings(
    max_examples=20,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestStoreMachine = StoreMachine.TestCase
