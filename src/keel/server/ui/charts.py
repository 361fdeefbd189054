"""Chart descriptions for ``static/keel.js``: plain dicts a page embeds as JSON,
one per ``<canvas data-chart="ID">``; keel.js turns each into a Chart.js chart.

Kept to two shapes, a line chart over x/y points and a bar chart over
labels, so the script stays small and every page draws the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from keel.entities import MetricPoint

# Points per line: a canvas ~1,000 px wide shows no more, and a metric logged
# at every one of 1,000,000 steps would otherwise put 20 MB of JSON in the page.
MAX_POINTS = 2_000
Point = tuple[int, float | None]


def line(series: Sequence[dict[str, Any]], x: str = "step", x_title: str = "",
         y_title: str = "", percent: bool = False) -> dict[str, Any]:
    """A line chart: ``series`` of ``{"label", "points": [[x, y], ...]}``; ``x`` is
    ``step`` (whole numbers), ``time`` (epoch ms, shown in UTC) or ``number``."""
    return {"type": "line", "x": x, "xTitle": x_title or x, "yTitle": y_title,
            "percent": percent, "series": list(series)}


def bar(labels: Sequence[str], series: Sequence[dict[str, Any]], x_title: str = "",
        y_title: str = "", stacked: bool = False) -> dict[str, Any]:
    """A bar chart: one bar per label for each of ``series`` (``{"label", "values"}``)."""
    return {"type": "bar", "labels": list(labels), "xTitle": x_title, "yTitle": y_title,
            "stacked": stacked, "series": list(series)}


def metric_points(history: Sequence[MetricPoint]) -> list[Point]:
    """``(step, value)`` pairs of a metric's history, in step order, at most
    ``MAX_POINTS``. Longer histories keep each bucket's lowest and highest value,
    so spikes survive the thinning; NaN and infinities become gaps."""
    ordered = sorted(history, key=lambda p: (p.step, p.timestamp))
    points: list[Point] = [(p.step, p.value if math.isfinite(p.value) else None)
                           for p in ordered]
    return points if len(points) <= MAX_POINTS else _thin(points)


def _thin(points: list[Point]) -> list[Point]:
    buckets = MAX_POINTS // 2
    size = len(points) / buckets
    out: list[Point] = []
    for index in range(buckets):
        chunk = points[int(index * size):int((index + 1) * size)]
        valued = [(step, value) for step, value in chunk if value is not None]
        if not valued:
            out.append(chunk[0])
            continue
        low = min(valued, key=lambda p: p[1])
        high = max(valued, key=lambda p: p[1])
        out += [low] if low == high else sorted((low, high))
    if out[-1] != points[-1]:
        out.append(points[-1])  # the last logged value is the one people look for
    return out
