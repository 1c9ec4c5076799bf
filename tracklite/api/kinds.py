"""The classes of the experiment and recorder objects the API hands out.

tracklite's own :class:`~tracklite.Experiment` and :class:`~tracklite.Recorder`, until
:mod:`tracklite.qlib` is imported (qlib is in use): from then on, subclasses that are also qlib's
``Experiment`` and ``Recorder``, because qlib's own code checks ``isinstance`` against those.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .experiment import Experiment
    from .recorder import Recorder

_classes: tuple[type[Experiment], type[Recorder]] | None = None


def hand_out(experiment: type[Experiment], recorder: type[Recorder]) -> None:
    """From now on, create experiments and recorders of these (sub)classes."""
    global _classes
    _classes = (experiment, recorder)


def experiment_class() -> type[Experiment]:
    if _classes is not None:
        return _classes[0]
    from .experiment import Experiment

    return Experiment


def recorder_class() -> type[Recorder]:
    if _classes is not None:
        return _classes[1]
    from .recorder import Recorder

    return Recorder
