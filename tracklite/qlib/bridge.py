"""qlib's ``R`` as a second name for ``tracklite.R`` (installed by ``from tracklite import R``,
see :mod:`tracklite.api.qlib_hook`).

qlib's ``R`` is a wrapper that ``qlib.init`` points at a new ``QlibRecorder`` each time. Here
the wrapper object (the one every qlib module imported) gets a ``register`` that puts
tracklite's ``R`` in place of a recorder over qlib's default MLflow manager, and is pointed at
tracklite's ``R`` at once. A manager configured explicitly (``qlib.init(exp_manager=...)``
naming anything but MLflow's, e.g. ``tracklite.qlib.TrackliteExpManager``) is left as it is.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from qlib.workflow import RecorderWrapper
from qlib.workflow.expm import MLflowExpManager

from ..api.qlib_r import R as _tracklite_R

__all__ = ["TrackliteRecorderWrapper", "install"]


def _replaced(provider: Any) -> bool:
    """Whether ``provider`` is a qlib recorder over MLflow: what the import line replaces."""
    return isinstance(getattr(provider, "exp_manager", None), MLflowExpManager)


class TrackliteRecorderWrapper(RecorderWrapper):  # type: ignore[misc]
    """qlib's ``R`` wrapper, handing to tracklite's ``R`` whenever qlib would use MLflow."""

    def register(self, provider: Any) -> None:
        if _replaced(provider):
            provider = _tracklite_R
            if self.__dict__.get("_provider") is provider:
                return  # nothing changes, so qlib.init may even come inside a tracklite run
        # qlib's own check follows: no re-initialisation while a run is active.
        super().register(provider)

    def search_records(self, experiment_ids: Any = None, **kwargs: Any) -> Any:
        """What qlib code gets from qlib's ``R.search_records``: MLflow ``Run`` objects
        (``tracklite.R.search_records`` itself keeps returning the DataFrame)."""
        provider = self._provider  # set since install()
        if provider is _tracklite_R:
            kwargs.setdefault("output_format", "list")
        return provider.search_records(experiment_ids, **kwargs)


def install(workflow: ModuleType) -> None:
    """Make ``workflow.R`` (qlib's ``R``) tracklite's ``R``, now and after every ``qlib.init``."""
    import tracklite.qlib  # noqa: F401  # from now on experiments and recorders are qlib's too

    wrapper = workflow.R
    if not isinstance(wrapper, TrackliteRecorderWrapper):
        wrapper.__class__ = TrackliteRecorderWrapper
    current = wrapper.__dict__.get("_provider")
    # qlib not initialised yet, or initialised with MLflow and no run active in it.
    if current is None or (_replaced(current) and current.exp_manager.active_experiment is None):
        wrapper._provider = _tracklite_R
