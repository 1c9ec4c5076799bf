"""LightGBM: a callback for ``lightgbm.train`` and ``lightgbm.cv``.

>>> callback = LightGBMCallback()
>>> lgb.train(params, train_set, valid_sets=[valid], callbacks=[callback])  # doctest: +SKIP

Every evaluation result of a boosting round is logged at step ``iteration + 1`` (the round
number LightGBM prints and counts ``best_iteration`` in) as ``<data>-<metric>`` (``valid_0-l2``);
under ``lightgbm.cv`` as ``<data>-<metric>-mean`` and ``<data>-<metric>-stdv``, LightGBM's own
names for the two. The params are logged once, at the first round. In distributed training
(``machines`` with ``num_machines`` > 1, as Dask sets them) only the machine LightGBM ranks
first logs.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Mapping, Sequence
from typing import Any

from ..api.recorder import Recorder
from ._run import IntegrationRun

# LightGBM's own names for the parameters that say where a distributed worker is.
_MACHINES = ("machines", "workers", "nodes")
_NUM_MACHINES = ("num_machines", "num_machine")
_PORT = ("local_listen_port", "local_port", "port")
_DEFAULT_PORT = 12400


class LightGBMCallback:
    """Log LightGBM's evaluation results (and params) into a tracklite recorder.

    ``experiment_name``, ``run_name`` and ``uri`` say where an own run is started when ``R``
    has no active run (``docs/integrations.md``); ``recorder`` writes into that recorder instead.
    LightGBM has no end-of-training hook: an own run ends after the last round; after an early
    stop it stays RUNNING until this callback's next training, ``callback.run.end()``, or
    process exit (FINISHED).
    """

    def __init__(
        self,
        *,
        experiment_name: str | None = None,
        run_name: str | None = "lightgbm",
        uri: str | os.PathLike[str] | None = None,
        recorder: Recorder | None = None,
        log_params: bool = True,
    ) -> None:
        self.run = IntegrationRun(
            experiment_name=experiment_name, run_name=run_name, uri=uri, recorder=recorder
        )
        self.log_params = log_params
        self._rank: int | None = None
        # Instance attributes: lightgbm.train overwrites an `order` missing from the instance.
        # After LightGBM's record_evaluation (20) and before early_stopping (30), which raises
        # on the round it stops at: that round is logged too.
        self.order = 25
        self.before_iteration = False

    def __call__(self, env: Any) -> None:
        if self._rank is None:
            self._rank = lightgbm_rank(env.params)
        if self._rank != 0:
            return
        if env.iteration == env.begin_iteration:
            # A new training: a run left open by an early stop of the last one ends here.
            self.run.end(Recorder.STATUS_FI)
            if self.log_params:
                self.run.log_params(env.params)
        results = env.evaluation_result_list or ()
        self.run.log_metrics(evaluation_metrics(results), env.iteration + 1)
        if env.iteration + 1 >= env.end_iteration:
            self.run.end(Recorder.STATUS_FI)


def evaluation_metrics(results: Sequence[Sequence[Any]]) -> dict[str, float]:
    """``{key: value}`` from LightGBM's ``(data, metric, value, is_higher_better[, stdv])``."""
    metrics: dict[str, float] = {}
    for result in results:
        data, metric, value = result[0], result[1], result[2]
        stdv = result[4] if len(result) > 4 else None
        if stdv is None:
            metrics[f"{data}-{metric}"] = value
        else:
            metrics[f"{data}-{metric}-mean"] = value
            metrics[f"{data}-{metric}-stdv"] = stdv
    return metrics


def lightgbm_rank(params: Mapping[str, Any]) -> int:
    """This process's rank in LightGBM's distributed training, found as LightGBM finds it: the
    position of the first entry of ``machines`` that is a local address with this process's
    ``local_listen_port``. 0 when training is not distributed."""
    machines = _first(params, _MACHINES)
    if not machines or int(_first(params, _NUM_MACHINES) or 1) <= 1:
        return 0
    port = int(_first(params, _PORT) or _DEFAULT_PORT)
    entries = machines if not isinstance(machines, str) else machines.split(",")
    for rank, entry in enumerate(str(e).strip() for e in entries):
        host, _, entry_port = entry.rpartition(":")
        if entry_port.isdigit() and int(entry_port) == port and _is_local(host):
            return rank
    return -1  # not in the list: LightGBM itself refuses to train, so log nothing


def _first(params: Mapping[str, Any], names: Sequence[str]) -> Any:
    for name in names:
        if params.get(name) not in (None, ""):
            return params[name]
    return None


def _is_local(host: str) -> bool:
    # Binding succeeds only for an address of this machine (names are resolved as LightGBM's
    # socket code resolves them).
    if host == "localhost":
        host = "127.0.0.1"
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return True
    return False
