"""``R.search_records(output_format="list")``: MLflow-shaped ``Run`` objects for the rows the
DataFrame form gives, in the same order."""

from __future__ import annotations

import pytest

from tracklite import QlibRecorder


def test_list_form_matches_the_frame(R: QlibRecorder) -> None:
    ids = []
    for i in range(3):
        with R.start(experiment_name="e", recorder_name=f"r{i}"):
            R.log_params(lr=0.1 * (i + 1))
            R.log_metrics(step=0, loss=1.0 / (i + 1))
            R.set_tags(kind="odd" if i % 2 else "even")
            ids.append(R.get_recorder().id)
    with R.start(experiment_name="other"):
        R.log_metrics(loss=9.0)
    frame = R.search_records(order_by=["metrics.loss ASC"])
    runs = R.search_records(order_by=["metrics.loss ASC"], output_format="list")
    assert [r.info.run_id for r in runs] == list(frame["run_id"])
    assert len(runs) == 4  # every active experiment when experiment_ids is None
    exp_id = R.get_exp(experiment_name="e").id
    even = R.search_records([exp_id], filter_string="tags.kind = 'even'", output_format="list")
    assert [r.info.run_id for r in even] == [ids[2], ids[0]]  # newest first
    first = even[1]
    assert first.info.experiment_id == exp_id and first.info.status == "FINISHED"
    assert first.info.run_name == "r0"
    assert first.data.metrics == {"loss": 1.0}
    assert first.data.params == {"lr": "0.1", "cmd-sys.argv": first.data.params["cmd-sys.argv"]}
    assert first.data.tags["kind"] == "even"
    listed = R.get_exp(experiment_name="e").search_records(output_format="list", max_results=1)
    assert [r.info.run_id for r in listed] == [ids[2]]
    assert R.search_records([], output_format="list") == []
    with pytest.raises(ValueError, match="output_format"):
        R.search_records(output_format="json")
    # Nothing else appeared in the store (no MLflow "Default" experiment).
    assert sorted(R.list_experiments()) == ["e", "other"]
