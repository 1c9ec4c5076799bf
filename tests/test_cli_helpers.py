"""Helpers for the command-line tests (no tests here): in-process runs and a sample store."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

import pytest

from tracklite import QlibRecorder
from tracklite.cli import main


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    def csv(self) -> list[dict[str, str]]:
        return list(csv.DictReader(io.StringIO(self.out)))

    def json(self) -> Any:
        return json.loads(self.out)


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> Outcome:
    """``tracklite ARGV`` in this process; stdout and stderr as captured text."""
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def one_error_line(outcome: Outcome) -> str:
    """The single stderr line of a failed command (asserting there is exactly one)."""
    assert outcome.code != 0
    lines = outcome.err.splitlines()
    assert len(lines) == 1, outcome.err
    assert lines[0].startswith("tracklite: error: ")
    assert "Traceback" not in outcome.err
    return lines[0]


@dataclass
class Sample:
    uri: str
    exp_id: str
    other_id: str
    fast: str
    slow: str
    failed: str
    lone: str


def make_sample(R: QlibRecorder) -> Sample:
    """Experiment ``lgb`` with two finished runs and a failed one; ``other`` with one run."""
    ids = {}
    for name, lr, leaves, steps in (("fast", 0.1, 31, 5), ("slow", 0.01, 63, 8)):
        with R.start(experiment_name="lgb", recorder_name=name):
            R.log_params(lr=lr, num_leaves=leaves, note="x" * 120)
            for step in range(steps):
                R.log_metrics(step=step, loss=1.0 / (step + 1) + lr, ic=0.01 * step)
            R.save_objects(**{"pred.pkl": list(range(50))}, artifact_path="sig")
            ids[name] = R.get_recorder().id
    try:
        with R.start(experiment_name="lgb", recorder_name="broken"):
            R.log_params(lr=9.0, num_leaves=31)
            R.log_metrics(step=0, loss=99.0)
            ids["failed"] = R.get_recorder().id
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    with R.start(experiment_name="other", recorder_name="lone"):
        R.log_metrics(step=0, acc=0.5)
        ids["lone"] = R.get_recorder().id
    exp = R.get_exp(experiment_name="lgb", create=False)
    other = R.get_exp(experiment_name="other", create=False)
    return Sample(
        uri=R.get_uri(),
        exp_id=exp.id,
        other_id=other.id,
        fast=ids["fast"],
        slow=ids["slow"],
        failed=ids["failed"],
        lone=ids["lone"],
    )
