"""Hugging Face transformers: a ``TrainerCallback`` for ``Trainer(callbacks=[...])``.

>>> Trainer(model, args, train_dataset=data, callbacks=[TransformersCallback()])  # doctest: +SKIP

``report_to`` takes only the trackers transformers knows, so this one is passed in
``callbacks``. At ``on_train_begin`` the model's config and the ``TrainingArguments`` are
logged as params (the arguments win where both have a key; nested values flattened with
``/``); every number of ``on_log`` is logged at ``state.global_step``; ``on_train_end`` ends an
own run FINISHED. With ``log_checkpoints`` each checkpoint folder is saved, at ``on_save``,
as the artifact folder ``checkpoint-<step>``. Only the world's process zero writes.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping
from typing import Any

from ..api.recorder import Recorder
from ._framework import require
from ._params import flatten
from ._run import IntegrationRun

require("transformers", "transformers", "transformers")
from transformers import TrainerCallback  # noqa: E402


class TransformersCallback(TrainerCallback):  # type: ignore[misc]
    """Log a ``Trainer`` run into a tracklite recorder.

    ``experiment_name``, ``run_name`` (default: ``TrainingArguments.run_name``, else
    "transformers") and ``uri`` say where an own run is started when ``R`` has no active run
    (``docs/integrations.md``); ``recorder`` writes into that recorder instead.
    """

    def __init__(
        self,
        *,
        experiment_name: str | None = None,
        run_name: str | None = None,
        uri: str | os.PathLike[str] | None = None,
        recorder: Recorder | None = None,
        log_params: bool = True,
        log_checkpoints: bool = False,
    ) -> None:
        self.run = IntegrationRun(
            experiment_name=experiment_name, run_name=run_name, uri=uri, recorder=recorder
        )
        self.log_params = log_params
        self.log_checkpoints = log_checkpoints

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        if self.run.run_name is None:
            self.run.run_name = getattr(args, "run_name", None) or "transformers"
        model = kwargs.get("model")
        params: dict[str, Any] = {}
        if self.log_params:
            config = getattr(model, "config", None)
            if config is not None:
                params.update(config.to_dict())
            params.update(args.to_dict())
        # Resolves the run now, so a run with no logged value still exists and ends FINISHED.
        self.run.recorder()
        self.run.log_params(flatten(params))

    def on_log(
        self,
        args: Any,
        state: Any,
        control: Any,
        logs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if state.is_world_process_zero and logs:
            self.run.log_metrics(numbers_in(logs), state.global_step)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not (self.log_checkpoints and state.is_world_process_zero):
            return
        name = f"checkpoint-{state.global_step}"
        folder = os.path.join(args.output_dir, name)
        if os.path.isdir(folder):
            self.run.recorder().log_artifact(folder, name)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            self.run.end(Recorder.STATUS_FI)


def numbers_in(logs: Mapping[str, Any]) -> dict[str, Any]:
    """The numeric entries of a ``logs`` dict (one-element tensors as numbers); strings and
    other values are left out."""
    kept: dict[str, Any] = {}
    for key, value in logs.items():
        if isinstance(value, numbers.Real):
            kept[key] = value
        elif callable(getattr(value, "numel", None)) and value.numel() == 1:
            kept[key] = value.item()
    return kept
