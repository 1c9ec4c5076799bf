"""Every ```python block in README.md and docs/*.md runs.

The blocks of one page run in order in one fresh interpreter, in an empty folder with no store
configured, so a page reads as a script: later blocks may use what earlier ones defined. A
block whose first line is ``# requires: <module>`` is skipped when that module is missing.
Snippets that are not meant to run use another fence (```text, ```console).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def _blocks(page: Path) -> list[str]:
    return BLOCK.findall(page.read_text(encoding="utf-8"))


def _runnable(block: str) -> bool:
    first = block.lstrip().splitlines()[0] if block.strip() else ""
    match = re.match(r"#\s*requires:\s*([\w.]+)", first)
    return match is None or importlib.util.find_spec(match.group(1)) is not None


@pytest.mark.parametrize(
    "page", [p for p in PAGES if _blocks(p)], ids=lambda p: p.relative_to(ROOT).as_posix()
)
def test_page_examples_run(page: Path, tmp_path: Path) -> None:
    blocks = [b for b in _blocks(page) if _runnable(b)]
    if not blocks:
        pytest.skip("every example on this page needs a module that is not installed")
    script = "\n\n".join(blocks)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKLITE_")}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, (
        f"examples of {page.name} failed:\n{done.stderr[-3000:]}\n--- script ---\n{script}"
    )


def test_pages_have_examples() -> None:
    assert _blocks(ROOT / "README.md"), "the README shows code"
