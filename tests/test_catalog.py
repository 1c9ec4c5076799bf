"""tracklite.Catalog: a store seen whole, as the command line reads and changes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracklite import Catalog, ExpManager, UsageError


def _one_run(uri: str) -> tuple[str, str]:
    manager = ExpManager(uri)
    exp = manager.start_exp(experiment_name="cat", recorder_name="only")
    rec = exp.active_recorder
    assert rec is not None and rec.id is not None
    rec.log_metrics(step=0, loss=0.5)
    manager.end_exp("FINISHED")
    return exp.id, rec.id


def test_whole_store_lookups(tmp_path: Path) -> None:
    uri = str(tmp_path / "store")
    exp_id, rec_id = _one_run(uri)
    catalog = Catalog(uri)
    assert catalog.exists() and catalog.root == tmp_path / "store"
    assert [e["id"] for e in catalog.experiments()] == catalog.experiment_ids() == [exp_id]
    assert catalog.recorder_locations() == [(rec_id, exp_id)]
    meta = catalog.recorder(exp_id, rec_id)
    assert meta is not None and meta["metrics"]["loss"]["value"] == 0.5
    assert catalog.status(meta) == "FINISHED"
    assert catalog.folder(meta) == tmp_path / "store" / exp_id / rec_id
    assert list(catalog.metric_history(meta)["value"]) == [0.5]
    [info] = catalog.recorders([exp_id], filter_string="metrics.loss < 1")
    assert (info["id"], info["name"], info["lifecycle"]) == (rec_id, "only", "active")
    assert catalog.recorders([exp_id], filter_string="metrics.loss > 1") == []
    _, other_id = _one_run(uri)  # a second recorder, in the same experiment
    assert sorted(catalog.recorder_ids()) == sorted([rec_id, other_id])


def test_lifecycles_are_active_or_deleted(tmp_path: Path) -> None:
    uri = str(tmp_path / "store")
    exp_id, rec_id = _one_run(uri)
    catalog = Catalog(uri)
    meta = catalog.recorder(exp_id, rec_id)
    assert meta is not None
    assert catalog.set_recorder_lifecycle(meta, "deleted")["lifecycle"] == "deleted"
    assert catalog.recorders([exp_id]) == []
    assert catalog.set_recorder_lifecycle(meta, "active")["deleted_time"] is None
    # A typo must not leave a lifecycle no listing knows (the run would vanish from both).
    with pytest.raises(UsageError, match=r"'active' or 'deleted', got 'removed'"):
        catalog.set_recorder_lifecycle(meta, "removed")
    with pytest.raises(UsageError, match="'Deleted'"):
        catalog.set_experiment_lifecycle(exp_id, "Deleted")
    assert catalog.recorder(exp_id, rec_id)["lifecycle"] == "active"  # type: ignore[index]
    assert catalog.experiment(exp_id)["lifecycle"] == "active"  # type: ignore[index]
