"""One broken metadata file harms only its own experiment or recorder.

Every listing (API, search, command line) skips it with one ``CorruptMetadataWarning`` naming
the file and ``tracklite check``; asking for it directly raises ``CorruptMetadataError``.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from test_cli_helpers import one_error_line, run_cli

import tracklite
from tracklite import CorruptMetadataError, CorruptMetadataWarning, QlibRecorder, TrackliteError


def _run(R: QlibRecorder, experiment: str, name: str = "run") -> tuple[str, str]:
    with R.start(experiment_name=experiment, recorder_name=name):
        R.log_metrics(step=0, loss=1.0)
        R.log_params(lr=0.1)
        rec = R.get_recorder()
    return rec.experiment_id, str(rec.id)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:20])


def _folder_in_place(path: Path) -> None:
    path.unlink()
    path.mkdir()


def _link_outside(path: Path) -> None:
    outside = path.parents[3] / f"outside-{path.name}"
    outside.write_bytes(path.read_bytes())  # a valid file: only the link makes it wrong
    path.unlink()
    path.symlink_to(outside)


BREAKS: dict[str, Callable[[Path], None]] = {
    "truncated": _truncate,
    "folder": _folder_in_place,
    "link": _link_outside,
}


def _one_warning(caught: list[warnings.WarningMessage], path: Path) -> None:
    ours = [w for w in caught if issubclass(w.category, CorruptMetadataWarning)]
    assert len(ours) == 1, [str(w.message) for w in caught]
    text = str(ours[0].message)
    assert str(path) in text and "tracklite check" in text


@pytest.mark.parametrize("how", sorted(BREAKS))
def test_a_broken_experiment_json_harms_only_its_experiment(
    R: QlibRecorder, store_uri: str, how: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bad_exp, _ = _run(R, "bad")
    good_exp, good_rec = _run(R, "good")
    path = Path(store_uri) / bad_exp / "experiment.json"
    BREAKS[how](path)

    for listing in (
        lambda: {exp.id for exp in R.list_experiments().values()},
        lambda: set(tracklite.search_records(store_uri)["experiment_id"]),
    ):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = listing()
        _one_warning(caught, path)
        assert result == {good_exp}
    # Another experiment's recorders and a new run elsewhere are untouched.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CorruptMetadataWarning)
        assert list(R.list_recorders(experiment_name="good")) == [good_rec]
        _run(R, "third")
        assert set(R.list_experiments()) == {"good", "third"}
    # Asked for directly: a clear tracklite error naming the file.
    with pytest.raises(CorruptMetadataError) as info:
        R.get_exp(experiment_id=bad_exp, create=False)
    assert info.value.path == str(path)
    assert "tracklite check" in str(info.value)

    # The command line: the listing works and warns in one line; nothing of Python's format.
    outcome = run_cli(capsys, "--uri", store_uri, "experiments")
    assert outcome.code == 0
    assert "good" in outcome.out and "third" in outcome.out
    assert outcome.err.count("tracklite: warning: ") == 1 and str(path) in outcome.err
    assert len(outcome.err.splitlines()) == 1


@pytest.mark.parametrize("how", sorted(BREAKS))
def test_a_broken_recorder_json_harms_only_its_recorder(
    R: QlibRecorder, store_uri: str, how: str, capsys: pytest.CaptureFixture[str]
) -> None:
    exp_id, good = _run(R, "e", "good")
    _, bad = _run(R, "e", "bad")
    path = Path(store_uri) / exp_id / bad / "recorder.json"
    BREAKS[how](path)

    for listing in (
        lambda: set(R.list_recorders(experiment_name="e")),
        lambda: set(tracklite.search_records(store_uri)["run_id"]),
        lambda: set(R.search_records([exp_id])["run_id"]),
    ):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = listing()
        _one_warning(caught, path)
        assert result == {good}
    with pytest.raises(CorruptMetadataError) as info:
        R.get_recorder(recorder_id=bad, experiment_name="e")
    assert info.value.path == str(path) and info.value.recorder_id == bad
    # The recorder is also found by name through a listing, which skips the broken one.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CorruptMetadataWarning)
        assert R.get_recorder(recorder_name="good", experiment_name="e").id == good

    for argv in (("experiments",), ("runs", "e")):
        outcome = run_cli(capsys, "--uri", store_uri, *argv)
        assert outcome.code == 0, outcome.err
        assert ("good" if argv[0] == "runs" else "\ne ") in outcome.out
        assert outcome.err.count("tracklite: warning: ") == 1, outcome.err
        assert str(path) in outcome.err and "Traceback" not in outcome.err
    shown = run_cli(capsys, "--uri", store_uri, "show", bad)
    line = one_error_line(shown)
    assert str(path) in line and "tracklite check" in line
    assert run_cli(capsys, "--uri", store_uri, "show", good).code == 0


def test_a_newer_or_mismatched_recorder_json_is_skipped_the_same_way(
    R: QlibRecorder, store_uri: str
) -> None:
    exp_id, good = _run(R, "e", "good")
    _, bad = _run(R, "e", "bad")
    path = Path(store_uri) / exp_id / bad / "recorder.json"
    path.write_text(path.read_text().replace(f'"id": "{bad}"', '"id": "elsewhere"'))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        listed = list(R.list_recorders(experiment_name="e"))
    _one_warning(caught, path)
    assert listed == [good]
    shutil.rmtree(path.parent)  # gone for good: no warning at all
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert list(R.list_recorders(experiment_name="e")) == [good]


def test_errors_carry_their_path_and_are_tracklite_errors(store_uri: str) -> None:
    assert issubclass(CorruptMetadataError, TrackliteError)
    assert issubclass(CorruptMetadataWarning, tracklite.TrackliteWarning)
