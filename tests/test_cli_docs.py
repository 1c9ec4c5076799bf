"""Every command in the ``console`` blocks of docs/cli.md runs, in order, in a fresh folder.

The page was produced by running those commands; here they run again on a new store. Recorder
ids differ, so the page's ids are mapped to the new ones through the recorder names that
``tracklite demo`` prints. Where the first line of an example's output is made only of words
(a table header), it must still read the same.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from test_cli_helpers import run_cli

PAGE = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
_DEMO_ROW = re.compile(r"^([0-9a-f]{8,32})\s+(\S+)")  # prefix length depends on timing


def _examples() -> list[tuple[str, list[str]]]:
    """``(command, output lines)`` of every ``$ tracklite`` line in a console block."""
    examples: list[tuple[str, list[str]]] = []
    in_console = False
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_console = line == "```console"
            continue
        if not in_console:
            continue
        if line.startswith("$ tracklite"):
            examples.append((line[2:], []))
        elif examples:
            examples[-1][1].append(line)
    return examples


def _ids_by_name(demo_output: list[str] | str) -> dict[str, str]:
    lines = demo_output.splitlines() if isinstance(demo_output, str) else demo_output
    return {m.group(2): m.group(1) for m in map(_DEMO_ROW.match, lines) if m}


def _words(line: str) -> list[str]:
    return [w for w in line.split() if "/" not in w]


def test_every_console_example_runs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    examples = _examples()
    assert examples[0][0] == "tracklite demo"
    assert len(examples) >= 25
    page_ids = _ids_by_name(examples[0][1])
    assert set(page_ids) == {"lgb-lr0.10", "lgb-lr0.05", "lgb-lr0.02", "lgb-diverged"}
    mapping: dict[str, str] = {}
    for command, expected in examples:
        for old, new in mapping.items():
            command = command.replace(old, new)
        outcome = run_cli(capsys, *shlex.split(command)[1:])
        if command == "tracklite demo" and not mapping:
            fresh = _ids_by_name(outcome.out)
            mapping = {page_ids[name]: fresh[name] for name in page_ids}
        allowed = {0, 1} if command.startswith("tracklite doctor") else {0}
        assert outcome.code in allowed, f"{command}: {outcome.err}"
        first = expected[0] if expected else ""
        if first and not any(ch.isdigit() for ch in first):
            actual = (outcome.out + outcome.err).splitlines()[0]
            assert _words(actual) == _words(first), command
