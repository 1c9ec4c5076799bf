"""The ``tracklite`` command line, run in-process on real stores made through ``R``."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import pytest
from test_cli_helpers import Sample, make_sample, one_error_line, run_cli

from tracklite import QlibRecorder
from tracklite.cli import build_parser, main
from tracklite.store import layout

COMMANDS = (
    "demo",
    "experiments",
    "runs",
    "show",
    "metrics",
    "compare",
    "delete",
    "restore",
    "gc",
    "compact",
    "check",
    "doctor",
    "import-mlflow",
    "export",
    "export-mlflow",
)


@pytest.fixture
def sample(R: QlibRecorder) -> Sample:
    return make_sample(R)


# ------------------------------------------------------------------ parser and help


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    top = run_cli(capsys, "--help")
    assert top.code == 0
    for command in COMMANDS:
        assert command in top.out
        outcome = run_cli(capsys, command, "--help")
        assert outcome.code == 0, command
        assert outcome.out.startswith(f"usage: tracklite {command}")
        assert "--uri" in outcome.out


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    outcome = run_cli(capsys)
    assert outcome.code == 0
    assert "usage: tracklite" in outcome.out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    outcome = run_cli(capsys, "--version")
    assert outcome.code == 0
    assert outcome.out.startswith("tracklite ")


def test_usage_mistake_is_one_line_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    line = one_error_line(run_cli(capsys, "runs"))
    assert "EXPERIMENT" in line and "tracklite runs --help" in line
    assert run_cli(capsys, "runs").code == 2
    assert "invalid choice" in one_error_line(run_cli(capsys, "experiments", "--format", "xml"))
    assert "whole number" in one_error_line(run_cli(capsys, "runs", "x", "--limit", "ten"))
    assert "no-such-command" in one_error_line(run_cli(capsys, "no-such-command"))


def test_global_options_before_or_after_the_command(
    capsys: pytest.CaptureFixture[str], sample: Sample
) -> None:
    before = run_cli(capsys, "--uri", sample.uri, "--format", "csv", "experiments")
    after = run_cli(capsys, "experiments", "--uri", sample.uri, "--format", "csv")
    assert before.code == after.code == 0
    assert before.out == after.out
    assert before.out.startswith("name,id,")
    # An option given before the command is not reset by the sub-command's parser.
    parsed = build_parser().parse_args(["--uri", "x", "runs", "e"])
    assert parsed.uri == "x"


def test_uri_from_environment(
    capsys: pytest.CaptureFixture[str], sample: Sample, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(layout.URI_ENV, sample.uri)
    outcome = run_cli(capsys, "experiments", "--format", "json")
    assert outcome.code == 0
    assert {row["name"] for row in outcome.json()} == {"lgb", "other"}


# ------------------------------------------------------------------ errors


def test_missing_store_is_an_error_not_a_new_folder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere"
    line = one_error_line(run_cli(capsys, "--uri", str(missing), "experiments"))
    assert "no tracklite store" in line
    assert not missing.exists()


def test_folder_that_is_not_a_store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.txt").write_text("mine")
    line = one_error_line(run_cli(capsys, "--uri", str(tmp_path / "data"), "experiments"))
    assert "without a tracklite marker" in line
    assert sorted(os.listdir(tmp_path / "data")) == ["notes.txt"]


def test_unknown_experiment(capsys: pytest.CaptureFixture[str], sample: Sample) -> None:
    line = one_error_line(run_cli(capsys, "--uri", sample.uri, "runs", "nope"))
    assert "'nope'" in line and "lgb" in line and "other" in line


def test_bad_filter_and_order_by(capsys: pytest.CaptureFixture[str], sample: Sample) -> None:
    line = one_error_line(
        run_cli(capsys, "--uri", sample.uri, "runs", "lgb", "--filter", "metrics.loss <")
    )
    assert "Invalid filter" in line and "position" in line
    line = one_error_line(
        run_cli(capsys, "--uri", sample.uri, "runs", "lgb", "--order-by", "metrics.loss SIDEWAYS")
    )
    assert "order_by" in line


def test_debug_shows_the_traceback(
    capsys: pytest.CaptureFixture[str], sample: Sample, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRACKLITE_DEBUG", "1")
    with pytest.raises(ValueError, match="Invalid filter"):
        main(["--uri", sample.uri, "runs", "lgb", "--filter", "metrics.loss <"])


# ------------------------------------------------------------------ experiments


def test_experiments_table(capsys: pytest.CaptureFixture[str], sample: Sample) -> None:
    outcome = run_cli(capsys, "--uri", sample.uri, "experiments")
    assert outcome.code == 0
    header, *lines = outcome.out.splitlines()
    assert header.split()[:3] == ["name", "id", "recorders"]
    assert "finished" in header and "failed" in header and "last activity" in header
    lgb = next(line for line in lines if line.startswith("lgb"))
    # name, id prefix, 3 recorders, 2 finished, 1 failed, date, time
    fields = lgb.split()
    assert fields[2:5] == ["3", "2", "1"]
    assert sample.exp_id.startswith(fields[1]) and len(fields[1]) >= 8
    datetime.strptime(" ".join(fields[-2:]), "%Y-%m-%d %H:%M")


def test_experiments_csv_and_json(capsys: pytest.CaptureFixture[str], sample: Sample) -> None:
    rows = {
        r["name"]: r
        for r in run_cli(capsys, "--uri", sample.uri, "experiments", "--format", "csv").csv()
    }
    assert rows["lgb"]["id"] == sample.exp_id
    assert (rows["lgb"]["recorders"], rows["lgb"]["FINISHED"], rows["lgb"]["FAILED"]) == (
        "3",
        "2",
        "1",
    )
    assert (rows["other"]["FINISHED"], rows["other"]["FAILED"]) == ("1", "0")
    datetime.fromisoformat(rows["lgb"]["last_activity"])
    data = run_cli(capsys, "--uri", sample.uri, "experiments", "--format", "json").json()
    assert {d["name"]: d["recorders"] for d in data} == {"lgb": 3, "other": 1}


def test_experiments_empty_store(capsys: pytest.CaptureFixture[str], R: QlibRecorder) -> None:
    R.get_exp(experiment_name="x")  # creates the store ...
    R.delete_exp(experiment_name="x")  # ... and leaves no active experiment
    outcome = run_cli(capsys, "--uri", R.get_uri(), "experiments")
    assert outcome.code == 0
    assert outcome.out.startswith("no experiments in ")
    outcome = run_cli(capsys, "--uri", R.get_uri(), "experiments", "--deleted")
    assert "x (deleted)" in outcome.out


# ------------------------------------------------------------------ runs


def test_runs_table(capsys: pytest.CaptureFixture[str], sample: Sample) -> None:
    outcome = run_cli(capsys, "--uri", sample.uri, "runs", "lgb")
    assert outcome.code == 0
    header, *lines = outcome.out.splitlines()
    assert header.split()[:6] == ["id", "name", "status", "start", "duration", "ic"]
    assert "loss" in header and "lr" in header and "num_leaves" in header
    assert "cmd-sys.argv" not in header  # provenance params are not default columns
    assert [line.split()[1] for line in lines] == ["broken", "slow", "fast"]  # newest first
    assert [line.split()[2] for line in lines] == ["FAILED", "FINISHED", "FINISHED"]
    prefix = lines[0].split()[0]
    assert sample.failed.startswith(prefix)
    # The prefix shown is unambiguous: `show` accepts it.
    assert run_cli(capsys, "--uri", sample.uri, "show", prefix).code == 0


def test_runs_by_id_and_id_prefix(capsys: pytest.CaptureFixture[str], sample: Sample) -> None:
    by_name = run_cli(capsys, "--uri", sample.uri, "runs", "lgb", "--format", "csv").out
    assert (
        run_cli(capsys, "--uri", sample.uri, "runs", sample.exp_id, "--format", "csv").out
        == by_name
    )
    assert (
        run_cli(capsys, "--uri", sample.uri, "runs", sample.exp_id[:20], "--format", "csv").out
        == by_name
    )


def test_runs_machine_formats(capsys: pytest.CaptureFixture[str], sample: Sample) -> None:
    rows = run_cli(capsys, "--uri", sample.uri, "runs", "lgb", "--format", "csv").csv()
    assert [r["id"] for r in rows] == [sample.failed, sample.slow, sample.fast]
    fast = rows[2]
    assert fast["status"] == "FINISHED" and fast["name"] == "fast"
    assert float(fast["metrics.loss"]) == pytest.approx(1 / 5 + 0.1)
    assert fast["params.lr"] == "0.1"
    start, end = (
        datetime.fromisoformat(fast["start_time"]),
        datetime.fromisoformat(fast["end_time"]),
    )
    assert float(fast["duration_s"]) == pytest.approx((end - start).total_seconds(), abs=0.002)
    data = run_cli(capsys, "--uri", sample.uri, "runs", "lgb", "--format", "json").json()
    assert data[0]["id"] == sample.failed and data[0]["metrics.ic"] is None
    assert data[2]["metrics.ic"] == pytest.approx(0.04)


def test_runs_filter_order_limit(capsys: pytest.CaptureFixture[str], sample: Sample) -> None:
    base = ["--uri", sample.uri, "runs", "lgb", "--format", "csv"]
    rows = run_cli(capsys, *base, "--filter", "params.num_leaves = '31'").csv()
    assert {r["name"] for r in rows} == {"fast", "broken"}
    rows = run_cli(capsys, *base, "--order-by", "metrics.loss ASC").csv()
    assert [r["name"] for r in rows] == ["slow", "fast", "broken"]
    rows = run_cli(
        capsys, *base, "--order-by", "params.num_leaves DESC", "--order-by", "metrics.loss DESC"
    ).csv()
    assert [r["name"] for r in rows] == ["slow", "broken", "fast"]
    rows = run_cli(capsys, *base, "--order-by", "metrics.loss DESC", "--limit", "1").csv()
    assert [r["name"] for r in rows] == ["broken"]
    outcome = run_cli(capsys, "--uri", sample.uri, "runs", "lgb", "--filter", "metrics.loss > 1000")
    assert outcome.code == 0 and "no recorders match the filter" in outcome.out


def test_runs_columns(capsys: pytest.CaptureFixture[str], sample: Sample) -> None:
    base = ["--uri", sample.uri, "runs", "lgb", "--format", "csv"]
    fields = run_cli(capsys, *base, "--columns", "loss,params.lr").csv()[0].keys()
    assert list(fields)[-2:] == ["metrics.loss", "params.lr"]
    fields = (
        run_cli(capsys, *base, "--columns", "lr", "--columns", "tags.mlflow.runName")
        .csv()[0]
        .keys()
    )
    assert list(fields)[-2:] == ["params.lr", "tags.mlflow.runName"]
    fields = run_cli(capsys, *base, "--columns", "metrics.*").csv()[0].keys()
    assert [f for f in fields if "." in f] == ["metrics.ic", "metrics.loss"]
    # A provenance param can be asked for explicitly.
    rows = run_cli(capsys, *base, "--columns", "cmd-sys.argv").csv()
    assert "params.cmd-sys.argv" in rows[0]
    line = one_error_line(run_cli(capsys, *base, "--columns", "nope"))
    assert "no column 'nope'" in line and "metrics.ic" in line


def test_runs_table_fits_the_terminal(
    capsys: pytest.CaptureFixture[str], sample: Sample, monkeypatch: pytest.MonkeyPatch
) -> None:
    wide = run_cli(capsys, "--uri", sample.uri, "runs", "lgb", "--columns", "note,loss")
    assert "x" * 23 + "…" in wide.out  # a long cell is cut with an ellipsis even when piped
    monkeypatch.setenv("COLUMNS", "60")
    outcome = run_cli(capsys, "--uri", sample.uri, "runs", "lgb", "--columns", "note,loss,lr")
    lines = outcome.out.splitlines()
    assert all(len(line) <= 60 for line in lines), outcome.out
    assert lines[-1].startswith("(")
    assert "more columns not shown" in lines[-1]
    # Machine formats are never cut.
    rows = run_cli(
        capsys, "--uri", sample.uri, "runs", "lgb", "--columns", "note", "--format", "csv"
    ).csv()
    assert rows[-1]["params.note"] == "x" * 120


def test_runs_deleted(capsys: pytest.CaptureFixture[str], sample: Sample, R: QlibRecorder) -> None:
    R.get_exp(experiment_name="lgb", create=False).delete_recorder(recorder_id=sample.slow)
    names = [
        r["name"]
        for r in run_cli(capsys, "--uri", sample.uri, "runs", "lgb", "--format", "csv").csv()
    ]
    assert names == ["broken", "fast"]
    outcome = run_cli(capsys, "--uri", sample.uri, "runs", "lgb", "--deleted")
    assert "FINISHED (deleted)" in outcome.out
    rows = run_cli(capsys, "--uri", sample.uri, "runs", "lgb", "--deleted", "--format", "csv").csv()
    assert {r["name"]: r["lifecycle"] for r in rows}["slow"] == "deleted"


def test_runs_of_a_deleted_experiment_by_id(
    capsys: pytest.CaptureFixture[str],
    sample: Sample,
    R: QlibRecorder,
) -> None:
    R.delete_exp(experiment_name="other")
    line = one_error_line(run_cli(capsys, "--uri", sample.uri, "runs", "other"))
    assert "no experiment named 'other'" in line
    outcome = run_cli(capsys, "--uri", sample.uri, "runs", sample.other_id, "--format", "csv")
    assert [r["id"] for r in outcome.csv()] == [sample.lone]


# ------------------------------------------------------------------ show


def test_show(capsys: pytest.CaptureFixture[str], sample: Sample) -> None:
    outcome = run_cli(capsys, "--uri", sample.uri, "show", sample.fast[:14])
    assert outcome.code == 0
    text = outcome.out
    assert f"recorder    {sample.fast}" in text
    assert "experiment  lgb (" in text and "status      FINISHED" in text
    assert "params (4)" in text and "  lr " in text and "  num_leaves" in text
    assert "mlflow.runName" in text
    assert "metrics (2, latest value)" in text
    size = os.path.getsize(
        Path(sample.uri) / sample.exp_id / sample.fast / "artifacts" / "sig" / "pred.pkl"
    )
    assert "artifacts (1 file," in text
    assert "sig/pred.pkl" in text and f"{size} B" in text


def test_show_json_and_csv(capsys: pytest.CaptureFixture[str], sample: Sample) -> None:
    doc = run_cli(capsys, "--uri", sample.uri, "show", sample.slow, "--format", "json").json()
    assert doc["info"]["id"] == sample.slow and doc["info"]["status"] == "FINISHED"
    assert doc["params"]["lr"] == "0.01"
    assert doc["metrics"]["loss"]["step"] == 7
    assert doc["metrics"]["loss"]["value"] == pytest.approx(1 / 8 + 0.01)
    datetime.fromisoformat(doc["metrics"]["loss"]["timestamp"])
    [artifact] = doc["artifacts"]
    assert artifact["path"] == "sig/pred.pkl" and artifact["size"] > 0
    rows = run_cli(capsys, "--uri", sample.uri, "show", sample.slow, "--format", "csv").csv()
    sections = {r["section"] for r in rows}
    assert sections == {"info", "params", "tags", "metrics", "artifacts"}
    assert {"section": "params", "key": "num_leaves", "value": "63"} in rows


def test_show_failed_run_has_no_artifacts(
    capsys: pytest.CaptureFixture[str], sample: Sample
) -> None:
    outcome = run_cli(capsys, "--uri", sample.uri, "show", sample.failed)
    assert "status      FAILED" in outcome.out
    assert "artifacts (0 files, 0 B)" in outcome.out


def test_show_prefix_errors(capsys: pytest.CaptureFixture[str], sample: Sample) -> None:
    # Ids start with their creation time: a short prefix matches every recorder of the sample.
    line = one_error_line(run_cli(capsys, "--uri", sample.uri, "show", sample.fast[:4]))
    assert f"{sample.fast[:4]!r} names 4 recorders" in line
    for rec_id in (sample.fast, sample.slow, sample.failed, sample.lone):
        assert rec_id in line
    assert "other/lone" in line and "give EXPERIMENT/NAME or an id" in line
    line = one_error_line(run_cli(capsys, "--uri", sample.uri, "show", "ffffffff"))
    assert "no recorder named 'ffffffff' or with that id" in line
    line = one_error_line(run_cli(capsys, "--uri", sample.uri, "show", "../etc"))
    assert "no recorder named '../etc'" in line


def test_recorders_by_name(
    capsys: pytest.CaptureFixture[str], sample: Sample, R: QlibRecorder
) -> None:
    outcome = run_cli(capsys, "--uri", sample.uri, "show", "slow")
    assert outcome.code == 0 and f"recorder    {sample.slow}" in outcome.out
    # Another experiment with a recorder of the same name: the name alone is ambiguous.
    with R.start(experiment_name="xgb", recorder_name="slow"):
        R.log_metrics(step=0, loss=1.0)
        other = R.get_recorder().id
    line = one_error_line(run_cli(capsys, "--uri", sample.uri, "show", "slow"))
    assert "'slow' names 2 recorders" in line
    assert f"lgb/slow ({sample.slow})" in line and f"xgb/slow ({other})" in line
    for text, rec_id in (("lgb/slow", sample.slow), ("xgb/slow", other)):
        outcome = run_cli(capsys, "--uri", sample.uri, "metrics", text, "--format", "csv")
        assert outcome.code == 0, outcome.err
        shown = run_cli(capsys, "--uri", sample.uri, "show", text, "--format", "json")
        assert json.loads(shown.out)["info"]["id"] == rec_id
    outcome = run_cli(capsys, "--uri", sample.uri, "compare", "fast", "lgb/slow", "--format", "csv")
    assert outcome.code == 0 and sample.fast in outcome.out and sample.slow in outcome.out
    # A typo is answered with the names it resembles.
    line = one_error_line(run_cli(capsys, "--uri", sample.uri, "show", "slwo"))
    assert "did you mean 'slow'?" in line
    line = one_error_line(run_cli(capsys, "--uri", sample.uri, "runs", "lbg"))
    assert "did you mean 'lgb'?" in line
    line = one_error_line(run_cli(capsys, "--uri", sample.uri, "rnus", "lgb"))
    assert "did you mean 'runs'?" in line
    # delete and restore take names too.
    assert run_cli(capsys, "--uri", sample.uri, "delete", "xgb/slow").code == 0
    assert run_cli(capsys, "--uri", sample.uri, "show", "slow").code == 0  # the active one wins
    assert run_cli(capsys, "--uri", sample.uri, "restore", "xgb/slow").code == 0


def test_a_name_repeated_in_one_experiment_asks_for_an_id(
    capsys: pytest.CaptureFixture[str], sample: Sample, R: QlibRecorder
) -> None:
    # qlib names every run "mlflow_recorder" unless told otherwise: EXPERIMENT/NAME cannot help.
    made = []
    for _ in range(2):
        with R.start(experiment_name="xgb"):
            made.append(R.get_recorder().id)
    for text in ("mlflow_recorder", "xgb/mlflow_recorder"):
        line = one_error_line(run_cli(capsys, "--uri", sample.uri, "show", text))
        assert f"{text!r} names 2 recorders" in line and all(i in line for i in made)
        assert line.endswith("; give an id or an unambiguous id prefix"), line


# ------------------------------------------------------------------ metrics


def test_metrics_history(capsys: pytest.CaptureFixture[str], sample: Sample) -> None:
    rows = run_cli(capsys, "--uri", sample.uri, "metrics", sample.slow, "--format", "csv").csv()
    assert len(rows) == 16
    loss = [r for r in rows if r["key"] == "loss"]
    assert [int(r["step"]) for r in loss] == list(range(8))
    assert float(loss[3]["value"]) == pytest.approx(1 / 4 + 0.01)
    datetime.fromisoformat(loss[0]["timestamp"])
    table = run_cli(
        capsys, "--uri", sample.uri, "metrics", sample.slow, "--key", "ic", "--tail", "2"
    )
    header, *lines = table.out.splitlines()
    assert header.split() == ["key", "step", "value", "time"]
    assert [line.split()[:2] for line in lines] == [["ic", "6"], ["ic", "7"]]
    data = run_cli(
        capsys,
        "--uri",
        sample.uri,
        "metrics",
        sample.slow,
        "--key",
        "ic",
        "--key",
        "loss",
        "--format",
        "json",
    ).json()
    assert len(data) == 16 and {d["key"] for d in data} == {"ic", "loss"}


def test_metrics_unknown_key(capsys: pytest.CaptureFixture[str], sample: Sample) -> None:
    line = one_error_line(
        run_cli(capsys, "--uri", sample.uri, "metrics", sample.slow, "--key", "acc")
    )
    assert "no metric 'acc'" in line and "ic, loss" in line


def test_metrics_plot_lists_single_points(
    capsys: pytest.CaptureFixture[str], sample: Sample, R: QlibRecorder
) -> None:
    with R.start(experiment_name="bt", recorder_name="backtest"):
        R.log_metrics(step=0, sharpe=1.5, ic=0.01)
        R.log_metrics(step=1, ic=0.02)
    outcome = run_cli(capsys, "--uri", sample.uri, "metrics", "backtest", "--plot")
    assert outcome.code == 0, outcome.err
    lines = outcome.out.splitlines()
    assert lines[0].startswith("ic: 2 points, steps 0..1")
    at = lines.index("1 key with a single point (nothing to draw):")
    assert lines[at + 1].split() == ["key", "step", "value"]
    assert lines[at + 2].split() == ["sharpe", "0", "1.5"]
    assert not any(line.startswith("sharpe:") for line in lines)  # no one-dot plot


def test_deleted_flag_has_one_name(capsys: pytest.CaptureFixture[str], sample: Sample) -> None:
    run_cli(capsys, "--uri", sample.uri, "delete", "-e", "other")
    for flag in ("--deleted", "--include-deleted"):
        listed = run_cli(capsys, "--uri", sample.uri, "experiments", flag, "--format", "json")
        assert {e["name"] for e in listed.json()} == {"lgb", "other"}, flag
    helps = [
        run_cli(capsys, command, "--help").out
        for command in ("experiments", "runs", "export", "export-mlflow", "import-mlflow")
    ]
    assert all("--deleted" in h and "--include-deleted" not in h for h in helps)


def test_metrics_plot(
    capsys: pytest.CaptureFixture[str], sample: Sample, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "50")
    outcome = run_cli(
        capsys,
        "--uri",
        sample.uri,
        "metrics",
        sample.slow,
        "--key",
        "loss",
        "--plot",
        "--height",
        "6",
    )
    assert outcome.code == 0
    lines = outcome.out.splitlines()
    assert lines[0].startswith("loss: 8 points, steps 0..7, last 0.135")
    assert len(lines) == 1 + 6 + 2  # title, rows, axis, step labels
    assert all(len(line) <= 50 for line in lines)
    assert lines[1].lstrip().startswith("1.01")  # the highest value labels the top row
    # The loss falls: its first point is top left, its last bottom right.
    assert lines[1].split("┤")[1].startswith("•")
    assert lines[6].endswith("•") and lines[6].split("┤")[1][0] == " "
    assert lines[-1].split() == ["0", "7"]
    both = run_cli(capsys, "--uri", sample.uri, "metrics", sample.slow, "--plot")
    assert both.out.count(" points, steps ") == 2
    line = one_error_line(
        run_cli(capsys, "--uri", sample.uri, "metrics", sample.slow, "--plot", "--format", "csv")
    )
    assert "--plot" in line


# ------------------------------------------------------------------ compare


def test_compare(capsys: pytest.CaptureFixture[str], sample: Sample) -> None:
    outcome = run_cli(capsys, "--uri", sample.uri, "compare", sample.fast, sample.slow[:16])
    assert outcome.code == 0
    lines = {line[3:].split()[0]: line for line in outcome.out.splitlines()[1:]}
    assert lines["params.lr"].startswith("*")
    assert lines["metrics.loss"].startswith("*")
    assert not lines["params.note"].startswith("*")  # same value in both
    assert not lines["experiment"].startswith("*")
    assert not lines["start"].startswith("*")  # times always differ; never flagged
    rows = run_cli(
        capsys,
        "--uri",
        sample.uri,
        "compare",
        sample.fast,
        sample.slow,
        "--diff-only",
        "--format",
        "csv",
    ).csv()
    assert {r["key"] for r in rows} == {
        "name",
        "params.lr",
        "params.num_leaves",
        "metrics.loss",
        "metrics.ic",
    }
    lr = next(r for r in rows if r["key"] == "params.lr")
    assert (lr[sample.fast], lr[sample.slow]) == ("0.1", "0.01")


def test_compare_missing_values_differ(capsys: pytest.CaptureFixture[str], sample: Sample) -> None:
    data = run_cli(
        capsys, "--uri", sample.uri, "compare", sample.fast, sample.lone, "--format", "json"
    ).json()
    acc = next(r for r in data if r["key"] == "metrics.acc")
    assert acc["differs"] is True and acc[sample.fast] is None and acc[sample.lone] == 0.5
    assert next(r for r in data if r["key"] == "experiment")["differs"] is True


def test_compare_errors(capsys: pytest.CaptureFixture[str], sample: Sample) -> None:
    line = one_error_line(
        run_cli(capsys, "--uri", sample.uri, "compare", sample.fast, sample.fast[:20])
    )
    assert "given twice" in line
    assert "names 4 recorders" in one_error_line(
        run_cli(capsys, "--uri", sample.uri, "compare", sample.fast, "0")
    )
