"""Point-in-time joins, checked row for row against DuckDB's ``ASOF LEFT JOIN``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from shipyard.errors import InvalidInputError
from shipyard.features.offline import ViewFrame, latest_per_entity, point_in_time_join

duckdb = pytest.importorskip("duckdb")

START = datetime(2026, 1, 1)


def _data() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Entity rows and two views' events with everything that trips joins up: events stored
    out of time order (late), entities with no events or only later ones (missing), events
    older than the TTL (stale), entity rows and events sharing a key and a time (duplicates,
    events with different values), and entity rows without a time."""
    rng = np.random.default_rng(7)
    n_events, n_rows = 3000, 1500
    days = rng.integers(0, 120, n_events)
    payments = pl.DataFrame(
        {
            "applicant_id": rng.integers(0, 150, n_events),  # 150..199 never appear: missing
            "paid_at": [START + timedelta(days=int(d)) for d in days],  # unsorted: late rows
            "late": rng.integers(0, 5, n_events),
            "amount": rng.normal(100, 20, n_events).round(2),
        }
    )
    balances = pl.DataFrame(
        {
            "applicant_id": rng.integers(0, 200, 800),
            "seen_at": [START + timedelta(days=int(d)) for d in rng.integers(0, 120, 800)],
            "balance": rng.normal(1000, 300, 800).round(2),
        }
    )
    times: list[datetime | None] = [
        START + timedelta(days=int(d), hours=int(h))
        for d, h in zip(rng.integers(0, 130, n_rows), rng.choice([0, 0, 12], n_rows), strict=True)
    ]
    times[5] = None
    ids = rng.integers(0, 200, n_rows)
    ids[10:20], times[10:20] = ids[9], [times[9]] * 10  # entity rows sharing key and time
    entities = pl.DataFrame({"applicant_id": ids, "applied_at": times, "label": range(n_rows)})
    return entities, payments, balances


def _duckdb_join(
    entities: pl.DataFrame, payments: pl.DataFrame, balances: pl.DataFrame
) -> pl.DataFrame:
    con = duckdb.connect()
    con.register("e", entities.with_row_index("rn").to_arrow())
    con.register("p", payments.with_row_index("rn").to_arrow())
    con.register("b", balances.with_row_index("rn").to_arrow())
    # Events sharing a key and a time: the last one in the source counts (as in shipyard).
    query = """
        WITH p1 AS (SELECT * FROM p QUALIFY row_number() OVER
                      (PARTITION BY applicant_id, paid_at ORDER BY rn DESC) = 1),
             b1 AS (SELECT * FROM b QUALIFY row_number() OVER
                      (PARTITION BY applicant_id, seen_at ORDER BY rn DESC) = 1),
             j1 AS (SELECT e.*, p1.paid_at, p1.late, p1.amount FROM e
                    ASOF LEFT JOIN p1 ON e.applicant_id = p1.applicant_id
                                     AND e.applied_at >= p1.paid_at),
             j2 AS (SELECT j1.*, b1.balance FROM j1
                    ASOF LEFT JOIN b1 ON j1.applicant_id = b1.applicant_id
                                     AND j1.applied_at >= b1.seen_at)
        SELECT applicant_id, applied_at, label,
               CASE WHEN applied_at - paid_at <= INTERVAL 10 DAY THEN late END AS late,
               CASE WHEN applied_at - paid_at <= INTERVAL 10 DAY THEN amount END AS amount,
               balance
        FROM j2 ORDER BY rn
    """
    return pl.from_arrow(con.sql(query).to_arrow_table())  # type: ignore[return-value]


def test_the_join_matches_duckdb_asof_left_join_row_for_row() -> None:
    """Every entity row comes back in its order, each with the values DuckDB's ASOF LEFT
    JOIN finds (latest at or before, within a 10-day TTL for payments, no TTL for balances):
    nulls where nothing qualifies, duplicates kept."""
    entities, payments, balances = _data()
    views = [
        ViewFrame(
            "payments",
            payments,
            ["applicant_id"],
            "paid_at",
            ["late", "amount"],
            ["late", "amount"],
            10 * 86400,
        ),
        ViewFrame(
            "balances", balances, ["applicant_id"], "seen_at", ["balance"], ["balance"], None
        ),
    ]
    ours = point_in_time_join(entities, "applied_at", views)
    theirs = _duckdb_join(entities, payments, balances)
    assert ours.height == entities.height
    assert ours.get_column("label").to_list() == list(range(entities.height))
    for column in ("applicant_id", "applied_at", "late", "amount", "balance"):
        assert ours.get_column(column).to_list() == theirs.get_column(column).to_list(), column
    late = ours.get_column("late")
    # The data exercises every case: values found, too old or absent, and duplicates.
    assert 0 < late.null_count() < ours.height
    assert ours.slice(9, 11).get_column("late").n_unique() == 1
    assert ours.row(5, named=True)["late"] is None


def test_latest_per_entity_takes_the_last_event_of_each_key() -> None:
    """Materialization keeps one row per entity: its latest event, the last stored one when
    two share a time; with ``after``, only later events."""
    frame = pl.DataFrame(
        {
            "k": [1, 1, 2, 1],
            "t": [START, START + timedelta(days=2), START, START + timedelta(days=2)],
            "v": [1, 2, 3, 4],
        }
    )
    view = ViewFrame("v", frame, ["k"], "t", ["v"], ["v"], None)
    latest = latest_per_entity(view).sort("k")
    assert latest.get_column("v").to_list() == [4, 3]
    later = latest_per_entity(view, after=datetime(2026, 1, 2, tzinfo=UTC))
    assert later.get_column("k").to_list() == [1]


def test_a_missing_join_key_or_time_column_is_named() -> None:
    """An entity frame without the view's join key, or a time column that holds no times,
    is refused with the column named."""
    frame = pl.DataFrame({"k": [1], "t": [START], "v": [1]})
    view = ViewFrame("v", frame, ["k"], "t", ["v"], ["v"], None)
    with pytest.raises(InvalidInputError, match="'k'"):
        point_in_time_join(pl.DataFrame({"id": [1], "t": [START]}), "t", [view])
    with pytest.raises(InvalidInputError, match="not times"):
        point_in_time_join(pl.DataFrame({"k": [1], "t": [1.5]}), "t", [view])
