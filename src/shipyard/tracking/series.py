"""Metric series and their downsampling for charts.

A chart a few hundred pixels wide cannot show a million points, but it must still show the
spike at step 731,002. :func:`downsample` keeps the first and the last point and, in each of
``(max_points - 2) // 2`` buckets of equal step width between them, the point with the lowest
and the point with the highest value (in step order): the M4 / min-max reduction that chart
libraries use, so every extreme survives, whatever its width. Buckets with no points give
nothing, so a series may come back shorter than ``max_points``.

>>> pts = [MetricPoint(s, 0, 100.0 if s == 500 else 1.0) for s in range(1000)]
>>> [p.value for p in downsample(pts, 10) if p.value > 1]
[100.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from shipyard._internal.encode import ReadModel
from shipyard.errors import InvalidInputError

__all__ = ["MIN_POINTS", "MetricPoint", "MetricSeries", "downsample"]

#: The smallest ``max_points``: the first and last point.
MIN_POINTS = 2


@dataclass(frozen=True)
class MetricPoint(ReadModel):
    """One point of a metric series; ``timestamp`` in milliseconds since the epoch."""

    step: int
    timestamp: int
    value: float


@dataclass(frozen=True)
class MetricSeries(ReadModel):
    """A metric's points in step order; ``downsampled`` when only some of its ``total``
    points are here (see :func:`downsample`)."""

    key: str
    points: list[MetricPoint] = field(default_factory=list)
    downsampled: bool = False
    total: int = 0


def downsample(points: Sequence[MetricPoint], max_points: int) -> list[MetricPoint]:
    """At most ``max_points`` of ``points`` (sorted by step) that keep the series' shape: the
    first, the last, and each bucket's minimum and maximum (see the module docstring).

    Raises:
        InvalidInputError: ``max_points`` is below :data:`MIN_POINTS`.
    """
    if max_points < MIN_POINTS:
        raise InvalidInputError(
            f"max_points must be at least {MIN_POINTS} (the first and the last point), "
            f"not {max_points}"
        )
    n = len(points)
    if n <= max_points:
        return list(points)
    first, last = points[0], points[-1]
    inner = points[1:-1]
    buckets = (max_points - 2) // 2
    if buckets == 0 or not inner:
        return [first, last]
    low, high = inner[0].step, inner[-1].step
    width = (high - low + 1) / buckets
    kept: list[MetricPoint] = [first]
    start = 0
    for b in range(buckets):
        end_step = low + (b + 1) * width
        end = start
        while end < len(inner) and (inner[end].step < end_step or b == buckets - 1):
            end += 1
        if end > start:
            chunk = range(start, end)
            lo = min(chunk, key=lambda i: inner[i].value)
            hi = max(chunk, key=lambda i: inner[i].value)
            kept.extend(inner[i] for i in sorted({lo, hi}))
        start = end
    kept.append(last)
    return kept
