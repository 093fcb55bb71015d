"""Metric series and their downsampling for charts.

A chart a few hundred pixels wide cannot show a million points, but it must still show the
spike at step 731,002. :func:`downsample` keeps the first and the last point and, in each of
``(max_points - 2) // 2`` buckets of equal step width between them, the point with the lowest
and the point with the highest value (in step order): the M4 / min-max reduction that chart
libraries use, so every extreme survives, whatever its width. Buckets with no points give
nothing, so a series may come back shorter than ``max_points``.

The bucket of a point is ``(step - low) * buckets // (high - low + 1)`` in integers, where
``low`` and ``high`` are the steps of the second and the second-to-last point (in (step,
timestamp, id) order); ties go to the earlier point. On points in memory the work is done by
numpy (:func:`kept_indices`). A stored series (:func:`series_of`) is reduced by the database
when it is long: each bucket is a range of steps (:func:`bucket_ranges`) scanned over the
series index, so only the kept points reach Python; reading 100,000 rows into Python costs
far more than choosing among them. Both ways keep the same points (a test holds them to the
rule written plainly, on SQLite and PostgreSQL).

>>> pts = [MetricPoint(s, 0, 100.0 if s == 500 else 1.0) for s in range(1000)]
>>> [p.value for p in downsample(pts, 10) if p.value > 1]
[100.0]
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from sqlalchemy.engine import Connection

from shipyard._internal.encode import ReadModel
from shipyard.errors import InvalidInputError

__all__ = [
    "MIN_POINTS",
    "MetricPoint",
    "MetricSeries",
    "bucket_ranges",
    "downsample",
    "kept_indices",
    "series_of",
]

#: The smallest ``max_points``: the first and last point.
MIN_POINTS = 2
#: From this many points a bucket on average, :func:`series_of` lets the database reduce a
#: series; below it, reading every point is faster (each bucket costs the database two small
#: queries). See docs/performance.md, "Runs pages".
DATABASE_MIN_PER_BUCKET = 20


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

    _check_max_points(max_points)
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


def series_of(
    conn: Connection,
    run_id: str,
    key: str,
    max_points: int,
    *,
    in_database: bool | None = None,
) -> MetricSeries:
    """One stored metric series of a run (by full id), downsampled to ``max_points`` by the
    rule of :func:`downsample`.

    A long series is reduced by the database (:func:`_reduced_in_database`), so only the kept
    points reach Python; a short one, or one with fewer than :data:`DATABASE_MIN_PER_BUCKET`
    points a bucket, is read whole and reduced by :func:`kept_indices`, which is faster there.
    ``in_database`` forces one way (the tests check that both keep the same points).

    Raises:
        InvalidInputError: ``max_points`` is below :data:`MIN_POINTS`.
    """
    _check_max_points(max_points)
    buckets = (max_points - 2) // 2
    # Counting stops where the choice is made; the database's pass counts the rest.
    enough = max(max_points, DATABASE_MIN_PER_BUCKET * buckets) + 1
    mark = _mark(conn)
    with closing(_cursor(conn)) as cursor:
        cursor.execute(
            "SELECT count(*) FROM (SELECT 1 FROM run_metrics "
            f"WHERE run_id = {mark} AND key = {mark} LIMIT {mark}) AS head",
            (run_id, key, enough),
        )
        seen = int(cursor.fetchone()[0])
    if in_database is None:
        in_database = seen == enough
    if seen > max_points and in_database:
        points, total = _reduced_in_database(conn, run_id, key, buckets)
        return MetricSeries(key, points, downsampled=len(points) < total, total=total)
    rows = _all_points(conn, run_id, key)
    keep = kept_indices([r[0] for r in rows], [r[2] for r in rows], max_points)
    points = [MetricPoint(int(rows[i][0]), int(rows[i][1]), float(rows[i][2])) for i in keep]
    return MetricSeries(key, points, downsampled=len(points) < len(rows), total=len(rows))


def _reduced_in_database(
    conn: Connection, run_id: str, key: str, buckets: int
) -> tuple[list[MetricPoint], int]:
    """The points :func:`kept_indices` keeps of a stored series longer than
    ``2 * buckets + 2`` points, chosen by the database so that only they reach Python, and
    the series' length.

    The first and the last two points (in (step, timestamp, id) order) give the first and
    last point and the step span of the rest; the buckets become step ranges (computed here
    in Python integers, so no product overflows), and one query picks, per range and apart
    from the first and last point, the first lowest and the first highest point.
    """
    mark = _mark(conn)
    ends = []
    with closing(_cursor(conn)) as cursor:
        for direction in ("", " DESC"):
            cursor.execute(
                "SELECT id, step, timestamp, value FROM run_metrics "
                f"WHERE run_id = {mark} AND key = {mark} "
                f"ORDER BY step{direction}, timestamp{direction}, id{direction} LIMIT 2",
                (run_id, key),
            )
            ends.append(cursor.fetchall())
    (first, second), (last, second_last) = ends
    ranges = bucket_ranges(int(second[1]), int(second_last[1]), buckets) if buckets else []
    if conn.dialect.name == "postgresql":
        middle, inside = _extremes_postgresql(conn, run_id, key, first[0], last[0], ranges)
    else:
        middle, inside = _extremes_sqlite(conn, run_id, key, first[0], last[0], ranges)
    points = [MetricPoint(int(r[1]), int(r[2]), float(r[3])) for r in (first, *middle, last)]
    return points, inside + 2


def bucket_ranges(low: int, high: int, buckets: int) -> list[tuple[int, int]]:
    """The inclusive step ranges of the non-empty buckets of :func:`kept_indices` for steps
    ``low`` to ``high``: step ``s`` is in bucket ``(s - low) * buckets // (high - low + 1)``,
    so bucket ``b`` starts at ``low + ceil(b * span / buckets)``.

    >>> bucket_ranges(0, 9, 3)
    [(0, 3), (4, 6), (7, 9)]
    >>> bucket_ranges(5, 6, 4)  # two steps, four buckets: two are empty
    [(5, 5), (6, 6)]
    """
    span = high - low + 1
    starts = [low + -(-b * span // buckets) for b in range(buckets + 1)]
    return [(a, b - 1) for a, b in pairwise(starts) if a < b]


def _extremes_sqlite(
    conn: Connection, run_id: str, key: str, first: int, last: int, ranges: list[tuple[int, int]]
) -> tuple[list[tuple[Any, ...]], int]:
    # Per range, an index range scan with min() (then max()) and a bare column: SQLite takes
    # the bare column from the row holding the extreme, and on ties from the first such row
    # it visits, which is the first in index order (run_id, key, step, timestamp, rowid), as
    # the rule wants (the documentation leaves ties open; the tests pin it on tied values).
    # Per-range subqueries keep the ranges apart without a GROUP BY, whose sort costs more
    # than the scan. The ranges come as one JSON parameter: a list of parameters could pass
    # SQLite's limit on their number. Only the two end ranges can hold the first or the last
    # point, so only they pay for leaving them out. The lowest point's pass also counts.
    def picks(part: list[tuple[int, int]], skip_ends: bool) -> tuple[list[int], int]:
        where = "FROM run_metrics WHERE run_id = :run AND key = :key AND step BETWEEN lo AND hi" + (
            " AND id <> :first AND id <> :last" if skip_ends else ""
        )
        sql = (
            "SELECT "
            f"(SELECT json_array(id, n) FROM (SELECT min(value), id, count(*) AS n {where})), "
            f"(SELECT id FROM (SELECT max(value), id {where})) "
            "FROM (SELECT json_extract(value, '$[0]') AS lo, json_extract(value, '$[1]') AS hi "
            "FROM json_each(:ranges))"
        )
        params: dict[str, Any] = {"run": run_id, "key": key, "ranges": json.dumps(part)}
        if skip_ends:
            params.update(first=first, last=last)
        ids, inside = [], 0
        with closing(_cursor(conn)) as cursor:
            cursor.execute(sql, params)
            for lowest, highest in cursor.fetchall():
                lowest_id, n = json.loads(lowest)
                if n:
                    ids += [lowest_id, highest]
                    inside += n
        return ids, inside

    if not ranges:  # only the first and the last point are kept
        return [], _count(conn, run_id, key) - 2
    ends = [ranges[0]] if len(ranges) == 1 else [ranges[0], ranges[-1]]
    at_ends, inside_ends = picks(ends, True)
    between, inside = picks(ranges[1:-1], False) if len(ranges) > 2 else ([], 0)
    with closing(_cursor(conn)) as cursor:
        cursor.execute(
            "SELECT id, step, timestamp, value FROM run_metrics "
            "WHERE id IN (SELECT value FROM json_each(?))",
            (json.dumps(sorted({*at_ends, *between})),),
        )
        rows: list[tuple[Any, ...]] = cursor.fetchall()
    return sorted(rows, key=lambda r: (r[1], r[2], r[0])), inside_ends + inside


def _extremes_postgresql(
    conn: Connection, run_id: str, key: str, first: int, last: int, ranges: list[tuple[int, int]]
) -> tuple[list[tuple[Any, ...]], int]:
    # Per range, two LATERAL subqueries over the series index, each ORDER BY ... LIMIT 1 in
    # an order that spells out the tie rule (a top-1 pass, no sort of the series); the
    # ranges come as two arrays. Bucketing every point in one query (width_bucket, DISTINCT
    # ON) sorted the whole series twice and was no faster than reading it into Python.
    inside = _count(conn, run_id, key) - 2
    if not ranges:
        return [], inside
    pick = (
        "SELECT id, step, timestamp, value FROM run_metrics "
        "WHERE run_id = %(run)s AND key = %(key)s AND step BETWEEN r.lo AND r.hi "
        "AND id <> %(first)s AND id <> %(last)s ORDER BY value{order}, step, timestamp, id "
        "LIMIT 1"
    )
    sql = (
        "SELECT lowest.*, highest.* FROM "
        "unnest(CAST(%(los)s AS BIGINT[]), CAST(%(his)s AS BIGINT[])) AS r(lo, hi) "
        f"CROSS JOIN LATERAL ({pick.format(order='')}) AS lowest "
        f"CROSS JOIN LATERAL ({pick.format(order=' DESC')}) AS highest"
    )
    params = {
        "run": run_id,
        "key": key,
        "first": first,
        "last": last,
        "los": [lo for lo, _ in ranges],
        "his": [hi for _, hi in ranges],
    }
    with closing(_cursor(conn)) as cursor:
        cursor.execute(sql, params)
        pairs = cursor.fetchall()
    kept = {r[0]: r for pair in pairs for r in (pair[:4], pair[4:])}
    return sorted(kept.values(), key=lambda r: (r[1], r[2], r[0])), inside


def _count(conn: Connection, run_id: str, key: str) -> int:
    mark = _mark(conn)
    with closing(_cursor(conn)) as cursor:
        cursor.execute(
            f"SELECT count(*) FROM run_metrics WHERE run_id = {mark} AND key = {mark}",
            (run_id, key),
        )
        return int(cursor.fetchone()[0])


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
