"""The status a reader shows for a recorder.

Every command takes a recorder's status from :meth:`tracklite.api.catalog.Catalog.status`,
never from ``meta["status"]`` directly, so dead-run detection (:mod:`tracklite.liveness`: a
RUNNING recorder whose process is gone shows as DEAD) reaches every table, ``show`` and
``compare`` at once.
"""

from __future__ import annotations

from .. import liveness
from ..api.catalog import Catalog, Meta

#: Order of status columns in ``tracklite experiments``; unknown statuses come after these.
KNOWN = (liveness.RUNNING, liveness.DEAD, "FINISHED", "FAILED", "KILLED", "SCHEDULED")


def label(catalog: Catalog, meta: Meta) -> str:
    """The status with the soft-delete mark, for tables that also list deleted recorders."""
    status = catalog.status(meta)
    return f"{status} (deleted)" if meta.get("lifecycle") == "deleted" else status


def ordered(statuses: set[str]) -> list[str]:
    """Statuses in :data:`KNOWN` order, then any others alphabetically."""
    return [s for s in KNOWN if s in statuses] + sorted(statuses.difference(KNOWN))
