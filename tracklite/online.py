"""qlib's ``OnlineToolR`` on tracklite: which models of an experiment are serving ("online").

A recorder is online when its tag ``online_status`` is ``"online"``; any other recorder, tagged
``"offline"`` or not tagged at all, is offline. Tags are written straight to the recorder's
metadata on disk, so a process can switch models that other processes trained and finished, and
every process sees the change at its next read.

>>> tool = OnlineToolR("rolling")  # doctest: +SKIP
>>> tool.reset_online_tag(best)     # best is now the only online model  # doctest: +SKIP
>>> tool.online_models()  # doctest: +SKIP

``update_online_pred`` extends predictions with new market data, which only qlib has: it runs
qlib's ``PredUpdater`` when qlib is installed and initialised, and raises
:class:`~tracklite.templates.QlibRequiredError` otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .api.qlib_r import R
from .api.recorder import Recorder
from .templates._qlib import QlibRequiredError, load_errors, require_qlib

if TYPE_CHECKING:
    from .api.experiment import Experiment
    from .api.qlib_r import QlibRecorder

__all__ = ["OnlineToolR", "QlibRequiredError"]

logger = logging.getLogger("tracklite.online")


class OnlineToolR:
    """Mark, list and update the online models of an experiment (qlib's ``OnlineToolR``).

    ``default_exp_name`` is used when a method gets no ``exp_name``. Experiments are looked up
    through ``api`` (default: the global ``tracklite.R``), and created if missing, as qlib does.
    """

    ONLINE_KEY = "online_status"
    ONLINE_TAG = "online"
    OFFLINE_TAG = "offline"

    def __init__(self, default_exp_name: str | None = None, *, api: QlibRecorder | None = None):
        self.default_exp_name = default_exp_name
        self._api = api

    @property
    def api(self) -> QlibRecorder:
        # Looked up at each use: tests and users may swap the global R's manager.
        return self._api if self._api is not None else R

    def _get_exp_name(self, exp_name: str | None) -> str:
        if exp_name is not None:
            return exp_name
        if self.default_exp_name is None:
            raise ValueError(
                "Both default_exp_name and exp_name are None. OnlineToolR needs a specific "
                "experiment."
            )
        return self.default_exp_name

    def _experiment(self, exp_name: str | None) -> Experiment:
        return self.api.get_exp(experiment_name=self._get_exp_name(exp_name))

    @staticmethod
    def _recorders(recorder: Recorder | Iterable[Recorder]) -> list[Recorder]:
        if isinstance(recorder, Recorder):
            return [recorder]
        recorders = list(recorder)
        for rec in recorders:
            if not isinstance(rec, Recorder):
                raise TypeError(f"expected tracklite Recorder objects, got {type(rec).__name__}")
        return recorders

    def set_online_tag(self, tag: str, recorder: Recorder | Iterable[Recorder]) -> None:
        """Tag one recorder or several ``online`` or ``offline``; other recorders are left as
        they are."""
        if tag not in (self.ONLINE_TAG, self.OFFLINE_TAG):
            # qlib accepts any string; a typo ("Online") would silently mean offline.
            raise ValueError(
                f"tag must be {self.ONLINE_TAG!r} or {self.OFFLINE_TAG!r}, got {tag!r}"
            )
        recorders = self._recorders(recorder)
        for rec in recorders:
            rec.set_tags(**{self.ONLINE_KEY: tag})
        logger.info("Set %d models to '%s'.", len(recorders), tag)

    def get_online_tag(self, recorder: Recorder) -> str:
        """``"online"`` or ``"offline"`` (an untagged recorder is offline), read from disk."""
        return recorder.list_tags().get(self.ONLINE_KEY, self.OFFLINE_TAG)

    def reset_online_tag(
        self, recorder: Recorder | Iterable[Recorder], exp_name: str | None = None
    ) -> None:
        """Make exactly the given recorder(s) online: every other recorder of the experiment is
        tagged offline first."""
        targets = self._recorders(recorder)
        keep = {rec.id for rec in targets}
        listed = self._experiment(exp_name).list_recorders(rtype="list")
        assert isinstance(listed, list)
        # Each recorder is written once: the others offline, then the targets online.
        self.set_online_tag(self.OFFLINE_TAG, [rec for rec in listed if rec.id not in keep])
        self.set_online_tag(self.ONLINE_TAG, targets)

    def online_models(self, exp_name: str | None = None) -> list[Recorder]:
        """The online recorders of the experiment, newest first."""
        found = self._experiment(exp_name).list_recorders(
            rtype="list", filter_string=f"tags.{self.ONLINE_KEY} = '{self.ONLINE_TAG}'"
        )
        assert isinstance(found, list)
        return found

    def update_online_pred(
        self, to_date: Any = None, from_date: Any = None, exp_name: str | None = None
    ) -> None:
        """Extend each online model's ``pred.pkl`` up to ``to_date`` with qlib's
        ``PredUpdater`` (needs qlib, initialised with market data). A model without a
        ``pred.pkl`` is skipped with a warning."""
        name = self._get_exp_name(exp_name)
        update = require_qlib("qlib.workflow.online.update", "OnlineToolR.update_online_pred")
        from .qlib import as_qlib_recorder

        models = self.online_models(exp_name=name)
        for rec in models:
            try:
                # qlib's updater loads pred.pkl, the model and the dataset through the recorder
                # and expects qlib's recorder type and errors: hand it the adapter's view.
                updater = update.PredUpdater(
                    as_qlib_recorder(rec), to_date=to_date, from_date=from_date
                )
            except load_errors() as exc:
                logger.warning("An exception `%s` happened when load `pred.pkl`, skip it.", exc)
                continue
            updater.update()
        logger.info("Finished updating %d online model predictions of %s.", len(models), name)
