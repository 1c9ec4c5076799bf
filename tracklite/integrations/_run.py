"""The recorder an integration writes into.

One rule for every framework: a recorder passed in explicitly is used as it is; else the run
active in ``R`` when training logs its first value is used (and left for its owner to end);
else the integration starts a run of its own through ``R``, in the experiment it was given, and
ends it when training ends. That own run is ``R``'s active run meanwhile, so ``R.log_metrics``
in the training code lands in it too, and ``R``'s exit hooks end it FAILED if the process dies
of an exception or SIGTERM before training ends.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..api.qlib_r import R
from ..api.recorder import Recorder


class IntegrationRun:
    """Where one framework callback (or logger) writes, resolved on first use."""

    def __init__(
        self,
        *,
        experiment_name: str | None,
        run_name: str | None,
        uri: str | os.PathLike[str] | None,
        recorder: Recorder | None,
    ) -> None:
        self.experiment_name = experiment_name
        self.run_name = run_name
        self.uri = None if uri is None else os.fspath(uri)
        self._given = recorder
        self._own: Recorder | None = None  # the run this object started, once it has
        self._own_running = False
        self._borrowed: Recorder | None = None
        self._last: Recorder | None = None  # the recorder most recently written to

    @property
    def started(self) -> bool:
        """Whether any recorder has been resolved yet."""
        return self._last is not None

    @property
    def owned(self) -> bool:
        """Whether the recorder in use is one this object started (and so ends)."""
        return self._given is None and self._borrowed is None and self._own is not None

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
        if self._own is not None and self._own_running:
            return self._own
        active = _active_recorder()
        if active is not None:
            self._borrowed = active
            return active
        self._borrowed = None
        return self._start_own()

    def _start_own(self) -> Recorder:
        if self._own is None:
            experiment = R.start_exp(
                experiment_name=self.experiment_name, recorder_name=self.run_name, uri=self.uri
            )
        else:
            # Lightning logs again after finalize (fit, then test): the same run goes on.
            experiment = R.start_exp(
                experiment_id=self._own.experiment_id,
                recorder_id=self._own.id,
                resume=True,
                uri=self._own.uri,
            )
        recorder = experiment.active_recorder
        assert recorder is not None
        self._own, self._own_running = recorder, True
        return recorder

    def log_metrics(self, metrics: Mapping[str, Any], step: int) -> None:
        """Log ``{key: number}`` at ``step``."""
        if metrics:
            self.recorder().log_metrics(step, **metrics)

    def log_params(self, params: Mapping[str, Any]) -> None:
        if params:
            self.recorder().log_params(**{str(k): v for k, v in params.items()})

    def end(self, status: str) -> None:
        """End the run if this object started it; a borrowed or given one is only flushed."""
        own = self._own
        if own is not None and self._own_running and self.owned:
            self._own_running = False
            active = _active_recorder()
            if active is not None and active.id == own.id:
                R.end_exp(status)
            else:
                own.end_run(status)
        elif self._given is not None:
            self._given.flush()
        elif self._borrowed is not None:
            self._borrowed.flush()


def _active_recorder() -> Recorder | None:
    experiment = R.exp_manager.active_experiment
    return None if experiment is None else experiment.active_recorder
