"""Commands backed by library functions: compact, check, doctor, import-mlflow, the exports,
and the lazy wiring that reports a missing module in one line."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest
from test_cli_helpers import Sample, make_sample, one_error_line, run_cli

from tracklite import Catalog, QlibRecorder
from tracklite.cli.commands import library
from tracklite.cli.context import Context
from tracklite.cli.errors import CliError

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "qlib-mlflow3-mlruns" / "mlruns"


@pytest.fixture
def sample(R: QlibRecorder) -> Sample:
    return make_sample(R)


def test_load_reports_a_missing_module_in_one_line() -> None:
    with pytest.raises(
        CliError, match=r"`tracklite frob` is not available in this build \(tracklite"
    ):
        library.load("frob", "tracklite.no_such_module", "frob")
    with pytest.raises(CliError, match=r"tracklite\.store\.layout\.no_such_function is missing"):
        library.load("frob", "tracklite.store.layout", "no_such_function")
    assert library.load("x", "tracklite.store.layout", "uri_to_path").__name__ == "uri_to_path"


def test_load_keeps_a_broken_dependency_loud(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The module exists but imports something missing: a real error, not "not in this build".
    (tmp_path / "tl_broken_backend.py").write_text("import tl_dependency_that_is_missing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="tl_dependency_that_is_missing"):
        library.load("frob", "tl_broken_backend", "frob")
    sys.modules.pop("tl_broken_backend", None)


def test_report_prints_results_and_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    ctx = Context(uri="unused", out=sys.stdout, err=sys.stderr)

    class Report:
        ok = False

        def __str__(self) -> str:
            return "2 problems"

    assert library.report(ctx, Report()) == 1
    assert library.report(ctx, {"a": 1}) == 0
    assert library.report(ctx, ["x", "y"]) == 0
    assert library.report(ctx, None) == 0
    assert capsys.readouterr().out == "2 problems\na: 1\nx\ny\ndone\n"


def test_call_passes_progress_only_to_functions_that_take_it() -> None:
    ctx = Context(uri="unused", out=sys.stdout, err=sys.stderr)
    seen: list[object] = []

    def with_progress(a: int, progress: object = None) -> int:
        seen.append(progress)
        return a

    def without(a: int) -> int:
        return a * 2

    assert library.call(ctx, "x", with_progress, 3) == 3
    assert callable(seen[0])
    assert library.call(ctx, "x", without, 3) == 6


def test_compact(capsys: pytest.CaptureFixture[str], sample: Sample) -> None:
    pytest.importorskip("tracklite.metrics.compaction")
    outcome = run_cli(capsys, "--uri", sample.uri, "compact", "lgb")
    assert outcome.code == 0
    # Runs are compacted when they end: nothing is left to do, and the summary says so.
    assert outcome.out.splitlines() == [
        f"compacted {sample.uri} (experiment lgb)",
        "recorders: 0 compacted, 3 already in one file, 0 failed",
        "segments: 0 merged; points: 0 rewritten",
    ]
    whole = run_cli(capsys, "--uri", sample.uri, "compact")
    assert whole.code == 0 and "recorders: 0 compacted, 4 already in one file" in whole.out
    assert "no experiment" in one_error_line(
        run_cli(capsys, "--uri", sample.uri, "compact", "nope")
    )


def test_check_clean_and_broken(capsys: pytest.CaptureFixture[str], sample: Sample) -> None:
    pytest.importorskip("tracklite.maintenance.check")
    outcome = run_cli(capsys, "--uri", sample.uri, "check")
    assert outcome.code == 0 and "clean" in outcome.out
    broken = Path(sample.uri) / sample.exp_id / sample.slow / "recorder.json"
    broken.write_text('{"id": ')  # truncated metadata
    outcome = run_cli(capsys, "--uri", sample.uri, "check")
    assert outcome.code == 1
    assert "recorder.json" in outcome.out
    fixed = run_cli(capsys, "--uri", sample.uri, "check", "--fix")
    assert fixed.code == 0 and "fixed" in fixed.out
    assert run_cli(capsys, "--uri", sample.uri, "check").code == 0


def test_check_on_a_missing_store(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("tracklite.maintenance.check")
    line = one_error_line(run_cli(capsys, "--uri", str(tmp_path / "none"), "check"))
    assert str(tmp_path / "none") in line


def test_doctor(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("tracklite.maintenance.doctor")
    outcome = run_cli(capsys, "doctor", "--fs", str(tmp_path))
    assert outcome.out.startswith(f"{tmp_path}: ")
    assert "rename" in outcome.out and "lock" in outcome.out
    # The exit code follows the report's verdict (the lock probe can call a loaded machine
    # inconclusive, so the verdict itself is not asserted here).
    safe = "tracklite can use this filesystem" in outcome.out
    assert outcome.code == (0 if safe else 1)


def test_import_mlflow_fixture(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pytest.importorskip("tracklite.mlflow_io.importer")
    if not FIXTURE.is_dir():
        pytest.skip(f"fixture {FIXTURE} is not there")
    src = tmp_path / "mlruns"
    shutil.copytree(FIXTURE, src)
    dst = tmp_path / "imported"
    outcome = run_cli(capsys, "import-mlflow", str(src), "--to", str(dst))
    assert outcome.code == 0, outcome.out
    assert "runs: 6 new" in outcome.out
    rows = run_cli(capsys, "--uri", str(dst), "runs", "workflow", "--format", "json").json()
    assert {r["name"]: r["status"] for r in rows} == {
        "lgb_train": "FINISHED",
        "crashed": "FAILED",
        "slash_keys": "KILLED",
    }
    again = run_cli(capsys, "import-mlflow", str(src), "--to", str(dst), "--include-deleted")
    assert again.code == 0 and "6 unchanged" in again.out
    listed = run_cli(
        capsys, "--uri", str(dst), "experiments", "--deleted", "--format", "json"
    ).json()
    assert "scratch" in {e["name"] for e in listed}


def _available(module: str, name: str) -> bool:
    return importlib.util.find_spec(module) is not None and hasattr(
        importlib.import_module(module), name
    )


def test_export_tables(capsys: pytest.CaptureFixture[str], sample: Sample, tmp_path: Path) -> None:
    out = tmp_path / "out"
    outcome = run_cli(
        capsys, "--uri", sample.uri, "export", "lgb", "--to", str(out), "--format", "csv"
    )
    if not _available("tracklite.mlflow_io.exporter", "export_table"):
        assert "`tracklite export` is not available" in one_error_line(outcome)
        return
    assert outcome.code == 0, outcome.err
    recorders = (out / "recorders.csv").read_text()
    assert sample.fast in recorders and sample.lone not in recorders
    assert (out / "metrics.csv").is_file()
    line = one_error_line(run_cli(capsys, "--uri", sample.uri, "export", "nope", "--to", str(out)))
    assert "no experiment named 'nope'" in line


@pytest.mark.parametrize(
    ("where", "given", "written"),
    [
        ("before", "csv", "csv"),
        ("after", "csv", "csv"),
        ("before", None, "parquet"),
        ("after", "parquet", "parquet"),
    ],
)
def test_export_format_before_or_after_the_command(
    capsys: pytest.CaptureFixture[str],
    sample: Sample,
    tmp_path: Path,
    where: str,
    given: str | None,
    written: str,
) -> None:
    out = tmp_path / "out"
    option = ["--format", given] if given else []
    head, tail = (option, []) if where == "before" else ([], option)
    outcome = run_cli(capsys, "--uri", sample.uri, *head, "export", "--to", str(out), *tail)
    assert outcome.code == 0, outcome.err
    assert sorted(p.name for p in out.iterdir()) == [f"metrics.{written}", f"recorders.{written}"]


def test_format_a_command_cannot_write_is_refused(
    capsys: pytest.CaptureFixture[str], sample: Sample, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    for argv, says in (
        (["--format", "json", "export", "--to", str(out)], "is one of parquet, csv, not 'json'"),
        (["--format", "parquet", "runs", "lgb"], "is one of table, csv, json, not 'parquet'"),
        (["--format", "csv", "check"], "`tracklite check` prints no table"),
    ):
        outcome = run_cli(capsys, "--uri", sample.uri, *argv)
        assert outcome.code == 2 and says in one_error_line(outcome), argv
    assert not out.exists()


def test_export_mlflow(capsys: pytest.CaptureFixture[str], sample: Sample, tmp_path: Path) -> None:
    out = tmp_path / "mlruns"
    outcome = run_cli(capsys, "--uri", sample.uri, "export-mlflow", "--to", str(out))
    if not _available("tracklite.mlflow_io.exporter", "export_mlflow"):
        assert "`tracklite export-mlflow` is not available" in one_error_line(outcome)
        return
    assert outcome.code == 0, outcome.err
    assert (out / sample.exp_id / sample.fast / "meta.yaml").is_file()
    assert (out / sample.other_id / sample.lone / "meta.yaml").is_file()


def test_json_is_parseable_for_machine_commands(
    capsys: pytest.CaptureFixture[str], sample: Sample
) -> None:
    # Every tabular command's JSON output parses, with full ids (never the table's prefixes).
    for argv in (
        ["experiments"],
        ["runs", "lgb"],
        ["show", sample.fast],
        ["metrics", sample.fast],
        ["compare", sample.fast, sample.slow],
        ["gc", "--dry-run"],
    ):
        outcome = run_cli(capsys, "--uri", sample.uri, *argv, "--format", "json")
        assert outcome.code == 0, argv
        json.loads(outcome.out or "[]")


def test_doctor_fits_an_80_column_terminal(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    root = tmp_path / "a-store-folder-with-a-rather-long-name"
    Catalog(root).create()
    outcome = run_cli(capsys, "--uri", str(root), "doctor", "--modes")
    assert outcome.code == 0, outcome.err
    lines = outcome.out.splitlines()
    # Only a path too long for any line stands alone on a longer one.
    assert [line for line in lines if len(line) > 80 and " " in line.strip()] == []
    assert "single-user store" in outcome.out and "docs/shared-stores.md" in outcome.out
    # Wrapped lines are indented under the first: the report still reads as one item.
    assert len(lines) > 1 and all(line.startswith("  ") for line in lines[1:])
