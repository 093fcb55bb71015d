"""Metric series rolled up at write time, so that a chart of a long series reads about a
thousand rows instead of every point.

Steps are cut into aligned blocks: at level ``k``, block ``b`` holds the steps ``b * 2**k``
to ``(b + 1) * 2**k - 1`` (``b = step >> k``). For each series and each level of
:data:`LEVELS`, ``run_metric_blocks`` keeps per non-empty block how many points fell in it and
its first lowest and first highest point (value, step, timestamp; "first" in step, timestamp,
logging order, the order a series is read in). Every logging path writes points through
:func:`add_points`, in the transaction that inserts them: the points of a batch are reduced
by numpy (one sort, then one pass a level), and each block row is merged into the stored one
by an upsert whose SET compares the stored extreme with the new one, so points logged out of
order, late, or by concurrent writers leave the same rows as if they had come in order.

A block of level ``k + 1`` is two blocks of level ``k``, so blocks merge exactly: a chart
that wants level ``k`` reads the stored level at or just below it and merges pairs
(:func:`merge_blocks`). Levels below :data:`FIRST_LEVEL` are not stored: a series that needs
them spans so few steps that reading it whole is cheap.

A series has all its blocks or none. A run written whole at its end (a short run of this
process, see :mod:`shipyard.tracking.pending`) keeps none for its series of fewer than
:data:`BLOCKS_FROM_POINTS` points (:func:`long_series`): a chart reads them whole, as it reads
any series without blocks. A later write to such a series (a run attached to again) first
gives it the blocks of every point it holds (:func:`series_without_blocks`,
:func:`stored_points`), so the blocks of a series that grows are those of all its points.

>>> [level_for(0, 99_999, 999), level_for(0, 999, 999)]  # 100,000 steps; 1,000 steps
[7, 1]
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import closing
from itertools import repeat
from operator import itemgetter
from typing import Any

from sqlalchemy.engine import Connection

__all__ = [
    "BLOCKS_FROM_POINTS",
    "FIRST_LEVEL",
    "LEVELS",
    "Block",
    "add_points",
    "blocks_of",
    "first_in_segments",
    "level_for",
    "long_series",
    "merge_blocks",
    "series_without_blocks",
    "stored_level",
    "stored_points",
]

#: The finest level stored (blocks of 32 steps): below it a series is read whole.
FIRST_LEVEL = 5
#: The stored levels: every other one, so a chart reads at most twice the blocks it draws;
#: the last (blocks of 2**41 steps) serves series that span up to about 2**42 buckets' worth
#: of steps; one that spans more is read whole.
LEVELS = tuple(range(FIRST_LEVEL, 42, 2))
#: In a run written whole, a series of fewer points keeps no blocks: reading it whole costs
#: no more than reading a chart's thousand or so blocks.
BLOCKS_FROM_POINTS = 1_000
#: Steps are signed 64-bit; adding this makes them unsigned, so that blocks at levels up to
#: 64 are aligned from the lowest possible step (at 64, every step is in one block).
_OFFSET = 2**63

#: A stored or merged block: (block, points, min_step, min_timestamp, min_value, max_step,
#: max_timestamp, max_value).
Block = tuple[int, int, int, int, float, int, int, float]

_COLUMNS = (
    "run_id, key, level, block, points, min_step, min_timestamp, min_value, "
    "max_step, max_timestamp, max_value"
)
# Every SET expression reads the stored row as it was before the update, on both databases.
# A new extreme replaces the stored one when it is lower (higher), or as low (high) and
# earlier in (step, timestamp); on a full tie the stored point came first.
_MERGE = """
points = run_metric_blocks.points + excluded.points,
min_step = CASE WHEN {newer_min} THEN excluded.min_step ELSE run_metric_blocks.min_step END,
min_timestamp = CASE WHEN {newer_min} THEN excluded.min_timestamp
    ELSE run_metric_blocks.min_timestamp END,
min_value = CASE WHEN {newer_min} THEN excluded.min_value ELSE run_metric_blocks.min_value END,
max_step = CASE WHEN {newer_max} THEN excluded.max_step ELSE run_metric_blocks.max_step END,
max_timestamp = CASE WHEN {newer_max} THEN excluded.max_timestamp
    ELSE run_metric_blocks.max_timestamp END,
max_value = CASE WHEN {newer_max} THEN excluded.max_value ELSE run_metric_blocks.max_value END
""".format(
    newer_min="(excluded.min_value, excluded.min_step, excluded.min_timestamp) < "
    "(run_metric_blocks.min_value, run_metric_blocks.min_step, run_metric_blocks.min_timestamp)",
    newer_max="(excluded.max_value > run_metric_blocks.max_value OR "
    "(excluded.max_value = run_metric_blocks.max_value AND "
    "(excluded.max_step, excluded.max_timestamp) < "
    "(run_metric_blocks.max_step, run_metric_blocks.max_timestamp)))",
)


def level_for(low: int, high: int, buckets: int) -> int:
    """The smallest level (0 to 64) whose blocks between steps ``low`` and ``high`` number
    at most ``buckets`` (at least 1)."""
    a, b = low + _OFFSET, high + _OFFSET
    level = max(0, (b - a).bit_length() - buckets.bit_length())
    while (b >> level) - (a >> level) + 1 > buckets:
        level += 1
    return level


def stored_level(level: int) -> int | None:
    """The stored level a chart of ``level`` reads (the one at or just below it), or None
    when it is below :data:`FIRST_LEVEL` or more than one above the last stored level."""
    if level < FIRST_LEVEL or level > LEVELS[-1] + 1:
        return None
    return min(level - (level - FIRST_LEVEL) % 2, LEVELS[-1])


def add_points(conn: Connection, points: Sequence[tuple[str, str, int, int, float]]) -> None:
    """Fold ``points`` (run id, key, step, timestamp ms, value; in logging order) into the
    stored blocks of every level, in the caller's transaction."""
    if not points:
        return
    rows = _block_rows(points)
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    conn.exec_driver_sql(
        f"INSERT INTO run_metric_blocks ({_COLUMNS}) VALUES ({', '.join([mark] * 11)}) "
        f"ON CONFLICT (run_id, key, level, block) DO UPDATE SET {_MERGE}",
        rows,  # type: ignore[arg-type]
    )


def long_series(
    points: Sequence[tuple[str, str, int, int, float]],
) -> list[tuple[str, str, int, int, float]]:
    """The points of ``points`` (all of a run written whole) whose series hold at least
    :data:`BLOCKS_FROM_POINTS` of them: the ones that get blocks."""
    counts: dict[str, int] = {}
    for p in points:
        counts[p[1]] = counts.get(p[1], 0) + 1
    if all(n < BLOCKS_FROM_POINTS for n in counts.values()):
        return []
    return [p for p in points if counts[p[1]] >= BLOCKS_FROM_POINTS]


def series_without_blocks(conn: Connection, run_id: str, keys: set[str]) -> set[str]:
    """Those of ``keys`` that name stored series of the run with finite points and no blocks
    (short series of a run written whole). On PostgreSQL their rows of the latest values are
    locked first, so that of two concurrent writers only one gives them their blocks: the
    other then finds them there. Call it before the transaction writes the new points."""
    if not keys:
        return set()
    found = _unblocked(conn, run_id) & keys
    if found and conn.dialect.name == "postgresql":
        with closing(_cursor(conn)) as cursor:
            cursor.execute(
                "SELECT key FROM run_latest_metrics WHERE run_id = %s AND key = ANY(%s) "
                "ORDER BY key FOR UPDATE",
                (run_id, sorted(found)),
            )
        found = _unblocked(conn, run_id) & keys  # a statement sees what committed meanwhile
    return found


def _unblocked(conn: Connection, run_id: str) -> set[str]:
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    with closing(_cursor(conn)) as cursor:
        # A series of NaN alone has the empty range (min above max) and never any block.
        cursor.execute(
            "SELECT l.key FROM run_latest_metrics l WHERE l.run_id = "
            f"{mark} AND l.min_value <= l.max_value AND NOT EXISTS (SELECT 1 FROM "
            "run_metric_blocks b WHERE b.run_id = l.run_id AND b.key = l.key "
            f"AND b.level = {LEVELS[-1]})",
            (run_id,),
        )
        return {row[0] for row in cursor.fetchall()}


def stored_points(
    conn: Connection, run_id: str, keys: set[str]
) -> list[tuple[str, str, int, int, float]]:
    """The stored finite points of the run's series ``keys``, in logging order."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    out: list[tuple[str, str, int, int, float]] = []
    with closing(_cursor(conn)) as cursor:
        for key in sorted(keys):
            cursor.execute(
                "SELECT step, timestamp, value FROM run_metrics "
                f"WHERE run_id = {mark} AND key = {mark} ORDER BY id",
                (run_id, key),
            )
            for step, stamp, value in cursor.fetchall():
                number = float(value)  # SQLite hands its NaN back as text
                if number == number:
                    out.append((run_id, key, int(step), int(stamp), number))
    return out


def _cursor(conn: Connection) -> Any:
    return conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]


def _block_rows(points: Sequence[tuple[str, str, int, int, float]]) -> list[tuple[Any, ...]]:
    """The block rows of every level for ``points``, in (level, run id, key, block) order:
    concurrent writers lock rows in one order, so they cannot deadlock."""
    import numpy as np

    n = len(points)
    # Column by column through C-level iteration: a Python loop over the points would cost
    # more than the rest of the work. A batch is nearly always one run's; its keys then
    # name the series.
    run_ids = set(map(itemgetter(0), points))
    series: list[Any]
    if len(run_ids) == 1:
        series = list(map(itemgetter(1), points))
        (run_id,) = run_ids
        keys = sorted(dict.fromkeys(series))
        index = {key: i for i, key in enumerate(keys)}
        names = [(run_id, key) for key in keys]
    else:
        series = list(map(itemgetter(0, 1), points))
        names = sorted(dict.fromkeys(series))
        index = {name: i for i, name in enumerate(names)}
    code = np.fromiter(map(index.__getitem__, series), dtype=np.int64, count=n)
    step = np.fromiter(map(itemgetter(2), points), dtype=np.int64, count=n)
    stamp = np.fromiter(map(itemgetter(3), points), dtype=np.int64, count=n)
    value = np.fromiter(map(itemgetter(4), points), dtype=np.float64, count=n)
    order = np.lexsort((stamp, step, code))  # stable: logging order breaks full ties
    code, step, stamp, value = code[order], step[order], stamp[order], value[order]
    # A point is a block of one: its own lowest and highest point.
    ones = np.ones(n, dtype=np.int64)
    blocks: tuple[Any, ...] = (code, step, ones, step, stamp, value, step, stamp, value)
    rows: list[tuple[Any, ...]] = []
    below = 0
    for level in LEVELS:
        if len(blocks[0]) > len(names):
            blocks = _merge_level(blocks, level - below)
        else:  # one block a series: the levels above only renumber it
            blocks = (blocks[0], blocks[1] >> (level - below), *blocks[2:])
        below = level
        c, *columns = (a.tolist() for a in blocks)
        owners = [names[i][0] for i in c]
        rows += zip(owners, [names[i][1] for i in c], repeat(level), *columns, strict=False)
    return rows


def _merge_level(blocks: tuple[Any, ...], shift: int) -> tuple[Any, ...]:
    """Blocks (arrays: series code, block, points, min step/timestamp/value, max
    step/timestamp/value; ordered by code, then step) merged into the blocks ``shift``
    levels up. Within a code, blocks come in step order, so the first block holding the
    lowest (highest) value holds the first such point."""
    import numpy as np

    code, block, points, s1, t1, v1, s2, t2, v2 = blocks
    block = block >> shift
    new = np.empty(len(code), dtype=bool)
    new[0] = True
    np.not_equal(block[1:], block[:-1], out=new[1:])
    new[1:] |= code[1:] != code[:-1]
    starts = np.flatnonzero(new)
    segment = np.cumsum(new) - 1
    low = first_in_segments(v1 == np.minimum.reduceat(v1, starts)[segment], segment)
    high = first_in_segments(v2 == np.maximum.reduceat(v2, starts)[segment], segment)
    return (
        code[starts],
        block[starts],
        np.add.reduceat(points, starts),
        s1[low],
        t1[low],
        v1[low],
        s2[high],
        t2[high],
        v2[high],
    )


def first_in_segments(mask: Any, segment: Any) -> Any:
    """For each segment (``segment`` ascending, every one holding a position where ``mask``
    holds), the first such position."""
    import numpy as np

    candidates = np.flatnonzero(mask)
    at = segment[candidates]
    first = np.empty(len(candidates), dtype=bool)
    first[0] = True
    np.not_equal(at[1:], at[:-1], out=first[1:])
    return candidates[first]


def blocks_of(conn: Connection, run_id: str, key: str, level: int) -> list[Block]:
    """The stored blocks of one series at a stored ``level``, in step order."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    with closing(conn.connection.dbapi_connection.cursor()) as cursor:  # type: ignore[union-attr]
        cursor.execute(
            "SELECT block, points, min_step, min_timestamp, min_value, max_step, "
            f"max_timestamp, max_value FROM run_metric_blocks WHERE run_id = {mark} "
            f"AND key = {mark} AND level = {mark} ORDER BY block",
            (run_id, key, level),
        )
        return list(cursor.fetchall())


def merge_blocks(blocks: Sequence[Block], stored: int, level: int) -> list[Block]:
    """``blocks`` of level ``stored`` (in step order) merged into the blocks of ``level``
    (``stored`` or above), the extremes chosen as :func:`add_points` chooses them."""
    if level == stored:
        return list(blocks)
    out: list[Block] = []
    offset = _OFFSET >> stored
    shift = level - stored
    current: list[Any] | None = None
    for b, n, s1, t1, v1, s2, t2, v2 in blocks:
        merged = (b + offset) >> shift
        if current is None or current[0] != merged:
            if current is not None:
                out.append(tuple(current))  # type: ignore[arg-type]
            current = [merged, n, s1, t1, v1, s2, t2, v2]
            continue
        current[1] += n
        if v1 < current[4]:  # a later block: only a strictly lower value is a first lowest
            current[2:5] = s1, t1, v1
        if v2 > current[7]:
            current[5:8] = s2, t2, v2
    if current is not None:
        out.append(tuple(current))  # type: ignore[arg-type]
    return out
