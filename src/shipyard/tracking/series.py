"""Metric series and their downsampling for charts.

A chart a few hundred pixels wide cannot show a million points, but it must still show the
spike at step 731,002. :func:`downsample` keeps the first and the last point and, in each
aligned block of ``2**k`` steps, the first lowest and the first highest point (in step,
timestamp, logging order): the M4 / min-max reduction that chart libraries use, so every
extreme survives, whatever its width. ``k`` is the smallest level at which the steps from the
first to the last point fall in at most ``(max_points - 2) // 2`` blocks (block of a step:
``(step + 2**63) >> k``; see :mod:`shipyard.tracking.blocks`), so a series comes back with at
most ``max_points`` points, and with at least a quarter of that once it is long enough. The
kept points are distinct (step, timestamp, value) and come in that order.

On points in memory the work is done by numpy (:func:`kept_indices`). A stored series
(:func:`series_of`) is not read whole when it is long: the blocks are rolled up when points
are written (``run_metric_blocks``), and a chart reads about a thousand of them. Both ways
keep the same points (a test holds them to the rule written plainly, on SQLite and
PostgreSQL).

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
from shipyard.tracking.blocks import (
    FIRST_LEVEL,
    LEVELS,
    blocks_of,
    first_in_segments,
    level_for,
    merge_blocks,
    stored_level,
)

__all__ = [
    "MIN_POINTS",
    "MetricPoint",
    "MetricSeries",
    "downsample",
    "kept_indices",
    "series_of",
]

#: The smallest ``max_points``: the first and last point.
MIN_POINTS = 2
#: From this level on, :func:`series_of` reads a long series' stored blocks instead of its
#: points (bench/ui.py raises it past 64 to time reading every point).
BLOCKS_FROM_LEVEL = FIRST_LEVEL


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
    """At most ``max_points`` of ``points`` (sorted by step, then timestamp) that keep the
    series' shape: the first, the last, and each block's minimum and maximum (see the module
    docstring).

    Raises:
        InvalidInputError: ``max_points`` is below :data:`MIN_POINTS`.
    """
    steps = [p.step for p in points]
    stamps = [p.timestamp for p in points]
    values = [p.value for p in points]
    return [points[i] for i in kept_indices(steps, stamps, values, max_points)]


def kept_indices(
    steps: Sequence[int], timestamps: Sequence[int], values: Sequence[float], max_points: int
) -> list[int]:
    """The positions :func:`downsample` keeps of a series given as its steps, timestamps
    (ascending by step, then timestamp) and values: all of them when there are at most
    ``max_points``, else one position for each kept point (the first of equal ones), in
    (step, timestamp, value) order.

    Raises:
        InvalidInputError: ``max_points`` is below :data:`MIN_POINTS`.
    """
    import numpy as np

    _check_max_points(max_points)
    n = len(steps)
    if n <= max_points:
        return list(range(n))
    step = np.asarray(steps, dtype=np.int64)
    stamp = np.asarray(timestamps, dtype=np.int64)
    value = np.asarray(values, dtype=np.float64)
    buckets = (max_points - 2) // 2
    picked = [np.array([0, n - 1])]
    if buckets:
        level = level_for(int(step[0]), int(step[-1]), buckets)
        if level < 64:
            unsigned = step.view(np.uint64) ^ np.uint64(2**63)
            block = unsigned >> np.uint64(level)
        else:
            block = np.zeros(n, dtype=np.uint64)
        new = np.empty(n, dtype=bool)
        new[0] = True
        np.not_equal(block[1:], block[:-1], out=new[1:])
        starts = np.flatnonzero(new)
        segment = np.cumsum(new) - 1
        picked.append(
            first_in_segments(value == np.minimum.reduceat(value, starts)[segment], segment)
        )
        picked.append(
            first_in_segments(value == np.maximum.reduceat(value, starts)[segment], segment)
        )
    at = np.unique(np.concatenate(picked))
    at = at[np.lexsort((value[at], stamp[at], step[at]))]  # stable: the first of equal points
    same = (
        (step[at][1:] == step[at][:-1])
        & (stamp[at][1:] == stamp[at][:-1])
        & (value[at][1:] == value[at][:-1])
    )
    return [int(i) for i in at[np.concatenate(([True], ~same))]]


def series_of(
    conn: Connection,
    run_id: str,
    key: str,
    max_points: int,
    *,
    from_blocks: bool = True,
) -> MetricSeries:
    """One stored metric series of a run (by full id), downsampled to ``max_points`` by the
    rule of :func:`downsample`.

    A long series whose chart level is stored (:func:`~shipyard.tracking.blocks.stored_level`)
    is read from its blocks: the first and the last point, then a thousand or so blocks; any
    other is read whole and reduced by :func:`kept_indices`. ``from_blocks=False`` always
    reads it whole (the tests check that both ways keep the same points).

    Raises:
        InvalidInputError: ``max_points`` is below :data:`MIN_POINTS`.
    """
    _check_max_points(max_points)
    buckets = (max_points - 2) // 2
    ends = _ends(conn, run_id, key)
    if ends is None:
        return MetricSeries(key, [], downsampled=False, total=0)
    first, last = ends
    stored = level = None
    if from_blocks and buckets:
        level = level_for(first[0], last[0], buckets)
        stored = stored_level(level) if level >= BLOCKS_FROM_LEVEL else None
    elif from_blocks:  # only the first and the last point: the blocks give the count
        stored = LEVELS[-1]
    if stored is not None:
        blocks = blocks_of(conn, run_id, key, stored)
        total = sum(b[1] for b in blocks)
        # Fewer points than the chart holds are read whole, and so is a series whose blocks
        # are missing (written by hand into run_metrics; migration 0013 fills the others).
        if total > max_points:
            kept = {first, last}
            for b in merge_blocks(blocks, stored, level) if level is not None else ():
                kept.add((b[2], b[3], b[4]))
                kept.add((b[5], b[6], b[7]))
            points = [MetricPoint(*point) for point in sorted(kept)]
            return MetricSeries(key, points, downsampled=len(points) < total, total=total)
    rows = _all_points(conn, run_id, key)
    keep = kept_indices(
        [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], max_points
    )
    points = [MetricPoint(int(rows[i][0]), int(rows[i][1]), float(rows[i][2])) for i in keep]
    return MetricSeries(key, points, downsampled=len(points) < len(rows), total=len(rows))


def _ends(
    conn: Connection, run_id: str, key: str
) -> tuple[tuple[int, int, float], tuple[int, int, float]] | None:
    """The first and the last point (step, timestamp, value) of a series, or None."""
    mark = _mark(conn)
    ends = []
    with closing(_cursor(conn)) as cursor:
        for direction in ("", " DESC"):
            cursor.execute(
                "SELECT step, timestamp, value FROM run_metrics "
                f"WHERE run_id = {mark} AND key = {mark} "
                f"ORDER BY step{direction}, timestamp{direction}, id{direction} LIMIT 1",
                (run_id, key),
            )
            row = cursor.fetchone()
            if row is None:
                return None
            ends.append((int(row[0]), int(row[1]), float(row[2])))
    return ends[0], ends[1]


def _all_points(conn: Connection, run_id: str, key: str) -> list[tuple[Any, ...]]:
    # The points go straight from the driver as plain tuples, and a MetricPoint is made only
    # for those kept: for 100,000 points, most of the time of building one per point.
    mark = _mark(conn)
    with closing(_cursor(conn)) as cursor:
        cursor.execute(
            "SELECT step, timestamp, value FROM run_metrics "
            f"WHERE run_id = {mark} AND key = {mark} ORDER BY step, timestamp, id",
            (run_id, key),
        )
        return list(cursor.fetchall())


def _check_max_points(max_points: int) -> None:
    if max_points < MIN_POINTS:
        raise InvalidInputError(
            f"max_points must be at least {MIN_POINTS} (the first and the last point), "
            f"not {max_points}"
        )


def _mark(conn: Connection) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def _cursor(conn: Connection) -> Any:
    return conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
