"""The recorder an integration writes into.

One rule for every framework: a recorder passed in explicitly is used as it is; else the run
active in ``R`` when training logs its first value is used (and left for its owner to end);
else the integration starts a run of its own, in the experiment it was given, and ends it when
training ends. An own run is not ``R``'s active run: a training that stops without telling its
callbacks (LightGBM's early stopping, an exception caught by a notebook) must not block the
next ``R.start`` nor lend its run to the next training. It is ended by ``R``'s exit hooks if
still running when the process ends: FAILED after an uncaught exception or SIGTERM, else
FINISHED.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..api import exit_hooks
from ..api.manager import ExpManager
from ..api.qlib_r import R
from ..api.recorder import Recorder


class _OwnRun:
    """A run an integration started; ended once, by the integration or at process exit."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.running = True
        # Held strongly by the exit hooks (a plain function, not a bound method), so the run
        # still ends at exit after the callback object that started it is gone.
        exit_hooks.install(lambda status: self.end(status))

    def end(self, status: str) -> None:
        if self.running:
            self.running = False
            self.recorder.end_run(status)

    def resume(self) -> None:
        if not self.running:
            self.recorder.start_run()  # a recorder with an id resumes: same run, RUNNING again
            self.running = True


class IntegrationRun:
    """Where one framework callback (or logger) writes, resolved on first use."""

    def __init__(
        self,
        *,
        experiment_name: str | None,
        run_name: str | None,
        uri: str | os.PathLike[str] | None,
        recorder: Recorder | None,
        resume: bool = False,
    ) -> None:
        self.experiment_name = experiment_name
        self.run_name = run_name
        self.uri = None if uri is None else os.fspath(uri)
        self._given = recorder
        # After an own run ended, the next write starts a new run (one per training), or with
        # ``resume`` goes on in the same one (Lightning's test after fit).
        self._resume = resume
        self._own: _OwnRun | None = None
        self._last: Recorder | None = None  # the recorder most recently written to

    @property
    def started(self) -> bool:
        """Whether any recorder has been resolved yet."""
        return self._last is not None

    def recorder(self) -> Recorder:
        """The recorder to write into now, starting (or resuming) an own run if needed."""
        self._last = self._resolve()
        return self._last

    def latest(self) -> Recorder:
        """The recorder most recently written to, even if its run has ended since (naming a
        run must not restart it); resolved as :meth:`recorder` does before the first write."""
        return self._last if self._last is not None else self.recorder()

    def _resolve(self) -> Recorder:
        if self._given is not None:
            return self._given
        if self._own is not None and self._own.running:
            return self._own.recorder
        active = _active_recorder()
        if active is not None:
            return active
        if self._own is not None and self._resume:
            self._own.resume()
        else:
            self._own = _OwnRun(self._start_own())
        return self._own.recorder

    def _start_own(self) -> Recorder:
        manager = R.exp_manager if self.uri is None else ExpManager(uri=self.uri)
        experiment = manager.get_exp(experiment_name=self.experiment_name, create=True)
        return experiment.create_recorder(self.run_name).start_run()

    def log_metrics(self, metrics: Mapping[str, Any], step: int) -> None:
        """Log ``{key: number}`` at ``step``."""
        if metrics:
            self.recorder().log_metrics(step, **metrics)

    def log_params(self, params: Mapping[str, Any]) -> None:
        if params:
            self.recorder().log_params(**{str(k): v for k, v in params.items()})

    def end(self, status: str = Recorder.STATUS_FI) -> None:
        """End the own run if one is running; a borrowed or given recorder is only flushed."""
        if self._own is not None and self._own.running:
            self._own.end(status)
        elif self._last is not None:
            self._last.flush()


def _active_recorder() -> Recorder | None:
    experiment = R.exp_manager.active_experiment
    return None if experiment is None else experiment.active_recorder
