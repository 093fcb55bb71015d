"""Metric series and their downsampling for charts.

A chart a few hundred pixels wide cannot show a million points, but it must still show the
spike at step 731,002. :func:`downsample` keeps the first and the last point and, in each of
``(max_points - 2) // 2`` buckets of equal step width between them, the point with the lowest
and the point with the highest value (in step order): the M4 / min-max reduction that chart
libraries use, so every extreme survives, whatever its width. Buckets with no points give
nothing, so a series may come back shorter than ``max_points``.

The bucket of a point is ``(step - low) * buckets // (high - low + 1)`` in integers, where
``low`` and ``high`` are the steps of the second and the second-to-last point; the work is
done by numpy (:func:`kept_indices`) so that a series of 100,000 points takes milliseconds.

>>> pts = [MetricPoint(s, 0, 100.0 if s == 500 else 1.0) for s in range(1000)]
>>> [p.value for p in downsample(pts, 10) if p.value > 1]
[100.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from shipyard._internal.encode import ReadModel
from shipyard.errors import InvalidInputError

__all__ = ["MIN_POINTS", "MetricPoint", "MetricSeries", "downsample", "kept_indices", "series_of"]

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
    steps = [p.step for p in points]
    values = [p.value for p in points]
    return [points[i] for i in kept_indices(steps, values, max_points)]


def kept_indices(steps: Sequence[int], values: Sequence[float], max_points: int) -> list[int]:
    """The positions :func:`downsample` keeps of a series given as its steps (ascending) and
    values; ties go to the earlier point, as Python's ``min`` and ``max`` would.

    Raises:
        InvalidInputError: ``max_points`` is below :data:`MIN_POINTS`.
    """
    import numpy as np

    if max_points < MIN_POINTS:
        raise InvalidInputError(
            f"max_points must be at least {MIN_POINTS} (the first and the last point), "
            f"not {max_points}"
        )
    n = len(steps)
    if n <= max_points:
        return list(range(n))
    buckets = (max_points - 2) // 2
    if buckets == 0 or n <= 2:
        return [0, n - 1]
    low, high = int(steps[1]), int(steps[n - 2])
    span = high - low + 1
    if span * buckets < 2**62:
        bucket = (np.asarray(steps[1 : n - 1], dtype=np.int64) - low) * buckets // span
    else:  # beyond 64-bit products: the same rule in Python integers
        bucket = np.array([(int(s) - low) * buckets // span for s in steps[1 : n - 1]])
    v = np.asarray(values[1 : n - 1], dtype=np.float64)
    new = np.empty(len(bucket), dtype=bool)
    new[0] = True
    np.not_equal(bucket[1:], bucket[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    segment = np.cumsum(new) - 1
    kept = [0]
    picked = np.union1d(
        _first_where(v == np.minimum.reduceat(v, starts)[segment], segment),
        _first_where(v == np.maximum.reduceat(v, starts)[segment], segment),
    )
    kept.extend((picked + 1).tolist())
    kept.append(n - 1)
    return kept


def _first_where(mask: Any, segment: Any) -> Any:
    """For each segment, the first position where ``mask`` holds."""
    import numpy as np

    candidates = np.flatnonzero(mask)
    _, first = np.unique(segment[candidates], return_index=True)
    return candidates[first]


def series_of(conn: Connection, run_id: str, key: str, max_points: int) -> MetricSeries:
    """One stored metric series of a run (by full id), downsampled to ``max_points``.

    The points go straight from the driver as plain tuples, and a MetricPoint is made only
    for those kept: for 100,000 points, most of the time of building one per point.
    """
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    with closing(conn.connection.dbapi_connection.cursor()) as cursor:  # type: ignore[union-attr]
        cursor.execute(
            "SELECT step, timestamp, value FROM run_metrics "
            f"WHERE run_id = {mark} AND key = {mark} ORDER BY step, timestamp, id",
            (run_id, key),
        )
        rows = cursor.fetchall()
    keep = kept_indices([r[0] for r in rows], [r[2] for r in rows], max_points)
    points = [MetricPoint(int(rows[i][0]), int(rows[i][1]), float(rows[i][2])) for i in keep]
    return MetricSeries(key, points, downsampled=len(points) < len(rows), total=len(rows))
