"""A small line plot drawn with text, for ``tracklite metrics --plot``.

Steps go across, values up. Each point is a ``•``; when there are more points than columns, a
column shows the span of its points (min to max), so noise stays visible. Fainter ``·`` marks
join consecutive points so that a sparse curve still reads as a line.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from . import text

_GLYPHS = {True: ("•", "·", "┤", "│", "└", "─"), False: ("*", ".", "+", "|", "+", "-")}


def line_plot(
    steps: Sequence[float],
    values: Sequence[float],
    width: int = 72,
    height: int = 12,
    unicode: bool = True,
) -> list[str]:
    """The plot's lines, at most ``width`` columns wide and ``height`` rows of data tall."""
    points = [
        (float(s), float(v))
        for s, v in zip(steps, values, strict=True)
        if math.isfinite(float(s)) and math.isfinite(float(v))
    ]
    if not points:
        return ["(no finite values to plot)"]
    dot, faint, tick, rule, corner, dash = _GLYPHS[unicode]
    height = max(height, 3)
    low = min(v for _, v in points)
    high = max(v for _, v in points)
    labels = _value_labels(low, high, height)
    label_width = max(text.display_width(label) for label in labels.values())
    plot_width = max(width - label_width - 2, 10)
    columns = _columns(points, low, high, plot_width, height)
    grid = _draw(columns, plot_width, height, dot, faint)

    lines = []
    for row in range(height - 1, -1, -1):
        label = labels.get(row, "")
        axis = tick if row in labels else rule
        lines.append(
            f"{text.pad(label, label_width, right=True)} {axis}{''.join(grid[row])}".rstrip()
        )
    lines.append(" " * label_width + " " + corner + dash * plot_width)
    first, last = min(s for s, _ in points), max(s for s, _ in points)
    left, right = _short(first), _short(last)
    gap = max(plot_width - len(left) - len(right), 1)
    lines.append(" " * (label_width + 2) + left + " " * gap + (right if last != first else ""))
    return lines


def _value_labels(low: float, high: float, height: int) -> dict[int, str]:
    """Axis labels by row: the top, the bottom and (when there is room) the middle value."""
    if high == low:
        return {height // 2: _short(high)}
    labels = {height - 1: _short(high), 0: _short(low)}
    if height >= 5:
        middle = (height - 1) // 2
        labels[middle] = _short(low + (high - low) * middle / (height - 1))
    return labels


def _columns(
    points: list[tuple[float, float]], low: float, high: float, plot_width: int, height: int
) -> dict[int, list[int]]:
    """The rows of the points falling in each plot column, in step order."""
    first = min(s for s, _ in points)
    last = max(s for s, _ in points)
    columns: dict[int, list[int]] = {}
    for step, value in sorted(points, key=lambda p: p[0]):
        col = 0 if last == first else round((step - first) / (last - first) * (plot_width - 1))
        row = height // 2 if high == low else round((value - low) / (high - low) * (height - 1))
        columns.setdefault(col, []).append(row)
    return columns


def _draw(
    columns: dict[int, list[int]], plot_width: int, height: int, dot: str, faint: str
) -> list[list[str]]:
    """The grid of marks: each column's span of points, joined to the next by fainter marks."""
    grid = [[" "] * plot_width for _ in range(height)]
    for col, rows in columns.items():
        # Many points in one column: their whole span, so noise stays visible.
        for row in range(min(rows), max(rows) + 1):
            grid[row][col] = dot
    # Interpolate through empty columns, and fill vertical jumps, with a fainter mark.
    path: list[tuple[int, int]] = []
    for here, there in itertools.pairwise(sorted(columns)):
        start, end = columns[here][-1], columns[there][0]
        path.append((here, start))
        for col in range(here + 1, there):
            path.append((col, round(start + (end - start) * (col - here) / (there - here))))
        path.append((there, end))
    for (_, row0), (col, row1) in itertools.pairwise(path):
        step = 1 if row1 > row0 else -1
        for row in range(row0 + step, row1 + step, step) if row0 != row1 else [row1]:
            if grid[row][col] == " ":
                grid[row][col] = faint
    return grid


def _short(value: float) -> str:
    # Axis labels only need to locate the curve; four digits keep the label column narrow.
    return f"{value:.4g}"
