"""What the runs pages read, on SQLite and PostgreSQL: each metric's last, lowest and highest
value kept on every logging path; the runs table (filter, sort on last/min/max, columns, count,
CSV); the comparison of runs (param differences, downsampled series, group bands, parallel
coordinates)."""

from __future__ import annotations

import csv
import io
import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipyard.errors import InvalidInputError, NotFoundError
from shipyard.project import Project
from shipyard.tracking.blocks import LEVELS, level_for
from shipyard.tracking.series import MetricPoint, downsample, kept_indices, series_of
from shipyard.tracking.table import MetricCell

LOSSES = {
    # name: (model, lr, loss per step)
    "a": ("gbm", "0.1", [0.9, 0.2, 0.5]),
    "b": ("lr", "0.3", [0.8, 0.4, 0.6]),
    "c": ("gbm", "0.2", [0.7, 0.1, 0.3]),
    "d": ("rf", "=1+1", [0.95, 0.9, 0.85]),
}


@pytest.fixture
def four_runs(project: Project) -> dict[str, str]:
    """Four finished runs of experiment "exp" (and one of "other"), each with a three-step
    loss series, params model and lr, and a tag."""
    ids = {}
    for name, (model, lr, losses) in LOSSES.items():
        with project.start_run("exp", name=name, tags={"team": name.upper()}) as run:
            run.log_params({"model": model, "lr": lr})
            run.log_points([("loss", v, s, None) for s, v in enumerate(losses)])
        ids[name] = run.id
    with project.start_run("other", name="elsewhere") as run:
        run.log_metric("loss", 0.0)
    return ids


def cell(project: Project, run_id: str, key: str) -> MetricCell:
    (row,) = project.runs.table(filter=f"attributes.run_id = '{run_id}'").rows
    return row.metrics[key]


# -- ranges kept at write time --------------------------------------------------------------------


def test_every_local_logging_path_keeps_last_min_and_max(project: Project) -> None:
    """Buffered points, explicit batches (``log_points``), ``log_batch`` (what remote clients
    send) and points logged out of step order all leave the last point (highest step) with the
    lowest and highest value ever logged."""
    with project.start_run("ranges") as run:
        run.log_metric("m", 5.0, step=10)
        run.log_metric("m", -2.0, step=3)  # older step: the last value stays 5.0
        run.flush()
        run.log_points([("m", 7.5, 11, None), ("m", 1.0, 4, None)])
        run.log_batch([("m", 0.5, 1_700_000_000_000, 12), ("m", 9.0, 1_700_000_000_001, 2)])
        run.log_metric("n", 3.0)  # a single point: its own range
    assert cell(project, run.id, "m") == MetricCell(last=0.5, min=-2.0, max=9.0, step=12)
    assert cell(project, run.id, "n") == MetricCell(last=3.0, min=3.0, max=3.0, step=0)


def test_a_resumed_run_widens_the_range_it_had(project: Project) -> None:
    """Attaching to a run and logging more points keeps the earlier minimum and maximum."""
    with project.start_run("ranges") as run:
        run.log_points([("m", 1.0, 0, None), ("m", 2.0, 1, None)])
    attached = project.runs.attach(run.id)
    attached.log_points([("m", 1.5, None, None)])
    assert cell(project, run.id, "m") == MetricCell(last=1.5, min=1.0, max=2.0, step=2)


# -- the runs table -------------------------------------------------------------------------------


def test_table_sorts_on_a_metrics_last_min_or_max(
    project: Project, four_runs: dict[str, str]
) -> None:
    """The same runs come in the order of the statistic asked for, runs of other experiments
    left out, and the total counts them all."""

    def names(stat: str, order: str = "ASC") -> list[str]:
        page = project.runs.table(experiments=["exp"], order_by=f"metrics.loss {order}", stat=stat)
        assert page.total == 4
        return [r.name for r in page.rows]

    assert names("last") == ["c", "a", "b", "d"]  # 0.3 0.5 0.6 0.85
    assert names("min") == ["c", "a", "b", "d"]  # 0.1 0.2 0.4 0.85
    assert names("max", "DESC") == ["d", "a", "b", "c"]  # 0.95 0.9 0.8 0.7


def test_table_filters_pages_and_counts(project: Project, four_runs: dict[str, str]) -> None:
    """A filter of the `runs list` grammar narrows the runs; a page holds ``limit`` rows from
    ``offset`` and ``total`` counts every match."""
    page = project.runs.table(
        experiments=["exp"],
        filter="params.model = 'gbm' or metrics.loss > 0.8",
        order_by="attributes.run_name ASC",
        offset=1,
        limit=1,
    )
    assert page.total == 3 and [r.name for r in page.rows] == ["c"]
    by_param = project.runs.table(order_by="params.lr DESC", filter="params.lr IS NOT NULL")
    assert [r.name for r in by_param.rows] == ["d", "b", "c", "a"]


def test_table_shows_the_chosen_columns_or_every_key_of_the_page(
    project: Project, four_runs: dict[str, str]
) -> None:
    """Chosen columns bring only their cells (tags too); without a choice every param and
    metric of the page's runs is a column; the column catalog lists every key."""
    page = project.runs.table(experiments=["exp"], columns=["tags.team", "metrics.loss"])
    assert [str(c) for c in page.columns] == ["tags.team", "metrics.loss"]
    row = next(r for r in page.rows if r.name == "a")
    assert row.params == {} and row.tags == {"team": "A"}
    assert row.metrics["loss"] == MetricCell(last=0.5, min=0.2, max=0.9, step=2)
    default = project.runs.table(experiments=["exp"])
    assert [str(c) for c in default.columns] == ["params.lr", "params.model", "metrics.loss"]
    assert project.runs.table_columns(["exp"]) == {
        "params": ["lr", "model"],
        "metrics": ["loss"],
        "tags": ["team"],
    }


def test_table_refuses_bad_requests_with_the_fix(
    project: Project, four_runs: dict[str, str]
) -> None:
    """An unknown experiment, two sort terms, min on a param, an attribute as a column and
    a page beyond the limit are refused with a message that says what to do."""
    with pytest.raises(NotFoundError, match="no experiment 'nope'"):
        project.runs.table(experiments=["nope"])
    with pytest.raises(InvalidInputError, match="one term"):
        project.runs.table(order_by="metrics.loss, params.lr")
    with pytest.raises(InvalidInputError, match=r"order by metrics\.KEY"):
        project.runs.table(order_by="params.lr", stat="min")
    with pytest.raises(InvalidInputError, match=r"params\.KEY, metrics\.KEY or tags\.KEY"):
        project.runs.table(columns=["attributes.status"])
    with pytest.raises(InvalidInputError, match="1 to 1000 rows"):
        project.runs.table(limit=1001)


def test_csv_export_has_every_matching_run_in_order_and_defuses_formulas(
    project: Project, four_runs: dict[str, str]
) -> None:
    """The export holds every filtered run in the table's order, a metric as last, min and
    max, and a text cell starting with '=' behind an apostrophe (numbers left alone)."""
    text = "".join(
        project.runs.table_csv(
            experiments=["exp"],
            order_by="metrics.loss DESC",
            stat="max",
            filter="params.lr != '0.3'",
        )
    )
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["name"] for r in rows] == ["d", "a", "c"]
    a = rows[1]
    assert (a["metrics.loss"], a["min(metrics.loss)"], a["max(metrics.loss)"]) == (
        "0.5",
        "0.2",
        "0.9",
    )
    assert rows[0]["params.lr"] == "'=1+1" and a["params.lr"] == "0.1"
    assert a["id"] == four_runs["a"] and a["start_time"].endswith("+00:00")


def test_csv_export_refuses_a_bad_filter_before_streaming(project: Project) -> None:
    """A filter that does not parse raises at the call, not in the middle of the download."""
    with pytest.raises(InvalidInputError, match="position"):
        project.runs.table_csv(filter="metrics.loss >")


# -- comparison -----------------------------------------------------------------------------------


def test_comparison_marks_param_differences_and_builds_parallel_axes(
    project: Project, four_runs: dict[str, str]
) -> None:
    """Params that differ are marked, metrics carry last/min/max per run, and the parallel
    coordinates have a numeric axis for numbers and a text axis otherwise."""
    ids = [four_runs[n] for n in ("a", "c")]
    c = project.runs.comparison(ids, metrics=["loss"])
    assert [r["name"] for r in c.runs] == ["a", "c"]
    params = {p.key: (p.values, p.differs) for p in c.params}
    assert params == {"lr": (["0.1", "0.2"], True), "model": (["gbm", "gbm"], False)}
    assert [m.cells for m in c.metrics] == [
        [MetricCell(0.5, 0.2, 0.9, 2), MetricCell(0.3, 0.1, 0.7, 2)]
    ]
    axes = {a.name: (a.numeric, a.values) for a in c.parallel}
    assert axes == {
        "params.lr": (True, [0.1, 0.2]),
        "params.model": (False, ["gbm", "gbm"]),
        "metrics.loss": (True, [0.5, 0.3]),
    }
    with_text = project.runs.comparison([four_runs["a"], four_runs["d"]])
    assert {a.name: a.numeric for a in with_text.parallel}["params.lr"] is False


def test_group_bands_are_numpys_mean_and_std_per_step(
    project: Project, four_runs: dict[str, str]
) -> None:
    """Grouped by model, each group's band is numpy's mean and standard deviation of its runs'
    values at each step; a run without the metric leaves a gap in the count."""
    c = project.runs.comparison(list(four_runs.values()), metrics=["loss"], group_by="model")
    bands = {g.group: g for g in c.groups}
    assert list(bands) == ["gbm", "lr", "rf"]
    gbm = np.array([LOSSES["a"][2], LOSSES["c"][2]])
    assert bands["gbm"].steps == [0, 1, 2] and bands["gbm"].count == [2, 2, 2]
    assert bands["gbm"].mean == pytest.approx(gbm.mean(axis=0).tolist())
    assert bands["gbm"].std == pytest.approx(gbm.std(axis=0).tolist())
    assert bands["lr"].std == [0.0, 0.0, 0.0]
    assert sorted(bands["gbm"].runs) == sorted([four_runs["a"], four_runs["c"]])


def test_comparison_downsamples_series_and_keeps_a_spike(project: Project) -> None:
    """A 5,000-point series comes back within max_points with its single spike, its first and
    its last point; the band of a group still spans every step range."""
    ids = []
    for n in range(2):
        with project.start_run("long", name=f"long-{n}") as run:
            run.log_params({"model": "gbm"})
            run.log_points(
                [("loss", 100.0 if s == 3131 and n == 0 else 1.0 / (s + 1), s, None)
                 for s in range(5000)]
            )  # fmt: skip
        ids.append(run.id)
    c = project.runs.comparison(ids, metrics=["loss"], group_by="model", max_points=200)
    first = next(s for s in c.series if s.run_id == ids[0])
    assert first.downsampled and first.total == 5000 and len(first.steps) <= 200
    assert 100.0 in first.values and first.steps[first.values.index(100.0)] == 3131
    assert (first.steps[0], first.steps[-1]) == (0, 4999)
    (band,) = c.groups
    assert band.steps[0] == 0 and band.steps[-1] == 4999 and len(band.steps) <= 200


def test_comparison_refuses_too_few_too_many_or_repeated_runs(
    project: Project, four_runs: dict[str, str]
) -> None:
    """One run, 21 runs or a run twice are refused before anything is read."""
    a = four_runs["a"]
    with pytest.raises(InvalidInputError, match="2 to 20 runs"):
        project.runs.comparison([a])
    with pytest.raises(InvalidInputError, match="pick fewer"):
        project.runs.comparison([a] * 21)
    with pytest.raises(InvalidInputError, match="twice"):
        project.runs.comparison([a, a[:12]])
    with pytest.raises(NotFoundError):
        project.runs.comparison([a, "ffff0000"])


# -- downsampling ---------------------------------------------------------------------------------


def _reference(
    steps: list[int], stamps: list[int], values: list[float], max_points: int
) -> list[int]:
    """The downsampling rule written plainly: first, last, and per aligned block of 2**k
    steps (k the smallest level with at most (max_points - 2) // 2 blocks) the first lowest
    and the first highest point; distinct points, in (step, timestamp, value) order."""
    n = len(steps)
    if n <= max_points:
        return list(range(n))
    buckets = (max_points - 2) // 2
    kept = [0, n - 1]
    if buckets:
        level = 0
        while ((steps[-1] + 2**63) >> level) - ((steps[0] + 2**63) >> level) + 1 > buckets:
            level += 1
        groups: dict[int, list[int]] = {}
        for i in range(n):
            groups.setdefault((steps[i] + 2**63) >> level, []).append(i)
        for members in groups.values():
            kept.append(min(members, key=lambda i: values[i]))
            kept.append(max(members, key=lambda i: values[i]))
    first_of: dict[tuple[int, int, float], int] = {}
    for i in sorted(kept):
        first_of.setdefault((steps[i], stamps[i], values[i]), i)
    return [first_of[p] for p in sorted(first_of)]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(-(2**62), 2**62),
            st.sampled_from([0, 1]),
            st.sampled_from([0.0, 1.0, -1.0, 2.5, 7.0]),
        ),
        min_size=0,
        max_size=80,
    ),
    st.integers(2, 30),
)
def test_numpy_downsampling_is_the_plain_rule(points: list[Any], max_points: int) -> None:
    """For any series (huge steps, repeated steps and timestamps, tied values) the numpy
    reduction keeps exactly the points of the plain rule."""
    points.sort(key=lambda p: p[:2])
    steps, stamps, values = ([p[i] for p in points] for i in range(3))
    expected = _reference(steps, stamps, values, max_points)
    assert kept_indices(steps, stamps, values, max_points) == expected
    series = [MetricPoint(s, t, v) for s, t, v in points]
    assert downsample(series, max_points) == [series[i] for i in expected]


@settings(max_examples=80, deadline=None)
@given(st.integers(-(2**63), 2**63 - 1), st.integers(0, 2**64), st.integers(1, 2000))
def test_the_chart_level_is_the_finest_with_few_enough_blocks(
    low: int, width: int, buckets: int
) -> None:
    """At the level a chart uses, the blocks from the first to the last step number at most
    the buckets it has; one level finer they would not."""
    high = min(low + width, 2**63 - 1)

    def blocks(level: int) -> int:
        return ((high + 2**63) >> level) - ((low + 2**63) >> level) + 1

    level = level_for(low, high, buckets)
    assert 0 <= level <= 64 and blocks(level) <= buckets
    assert level == 0 or blocks(level - 1) > buckets


INT64 = 2**63
_KEYS = itertools.count()


@pytest.fixture
def open_run(project: Project) -> Any:
    """A running run that a test logs many metrics into."""
    with project.start_run("downsampling") as run:
        yield run


@settings(
    max_examples=40,
    deadline=None,
    # One run for every example; each example logs its own metric, so none sees another's.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(
        st.tuples(
            st.one_of(st.integers(0, 12), st.integers(-3000, 3000), st.integers(-INT64, INT64 - 1)),
            st.sampled_from([1_000, 2_000]),
            st.sampled_from([0.0, 1.0, -1.0, 2.5, 7.0, 1e300, -1e-300]),
        ),
        min_size=1,
        max_size=80,
    ),
    st.integers(2, 30),
    st.integers(0, 80),
)
def test_the_database_keeps_the_points_of_the_plain_rule(
    project: Project,
    open_run: Any,
    points: list[tuple[int, int, float]],
    max_points: int,
    split: int,
) -> None:
    """Logged in any order and over several writes (repeated steps and timestamps, tied
    values, steps anywhere in 64 bits), a series read from its stored blocks and one read
    whole keep exactly the points of the plain rule."""
    key = f"m{next(_KEYS)}"
    open_run.log_batch([(key, v, ts, step) for step, ts, v in points[:split]])
    open_run.log_batch([(key, v, ts, step) for step, ts, v in points[split:]])
    ordered = sorted(points, key=lambda p: (p[0], p[1]))  # stable: logging order breaks ties
    steps, stamps, values = ([p[i] for p in ordered] for i in range(3))
    expected = [MetricPoint(*ordered[i]) for i in _reference(steps, stamps, values, max_points)]
    run_id = open_run.id
    with project.db.snapshot() as conn:
        for from_blocks in (True, False):
            got = series_of(conn, run_id, key, max_points, from_blocks=from_blocks)
            assert got.points == expected, from_blocks
            assert got.total == len(points)
            assert got.downsampled == (len(expected) < len(points))
    assert project.runs.metric_series(run_id, key, max_points=max_points).points == expected


def _stored_blocks(project: Project, run_id: str) -> list[tuple[Any, ...]]:
    from sqlalchemy import select

    from shipyard.stores.db.tables import run_metric_blocks as t

    with project.db.read() as conn:
        query = select(t).where(t.c.run_id == run_id).order_by(t.c.key, t.c.level, t.c.block)
        return [tuple(r) for r in conn.execute(query)]


def test_a_long_series_logged_out_of_order_charts_from_its_blocks(project: Project) -> None:
    """A 6,000-step series logged shuffled, in batches, by log_points and log_batch, is
    charted from its stored blocks with the points of the plain rule, spikes included; the
    blocks are those of the same points logged in order in one batch."""
    import random

    rng = random.Random(7)
    points = [("loss", 1.0 / (s + 1) + rng.random() / 100, s, 1_000 + s) for s in range(6_000)]
    points[3_131] = ("loss", 50.0, 3_131, 4_131)
    points[777] = ("loss", -50.0, 777, 1_777)
    shuffled = points[:]
    rng.shuffle(shuffled)
    with project.start_run("blocks") as run:
        run.log_points(shuffled[:2_700])
        run.log_batch([(k, v, t, s) for k, v, s, t in shuffled[2_700:4_500]])
        run.log_points(shuffled[4_500:])
    with project.start_run("blocks") as in_order:
        in_order.log_points(points)
    stored = _stored_blocks(project, run.id)
    assert {r[2] for r in stored} == set(LEVELS)
    assert [r[1:] for r in stored] == [r[1:] for r in _stored_blocks(project, in_order.id)]
    series = project.runs.metric_series(run.id, "loss", max_points=300)
    expected = _reference(
        [p[2] for p in points], [p[3] for p in points], [p[1] for p in points], 300
    )
    assert [(p.step, p.value) for p in series.points] == [
        (points[i][2], points[i][1]) for i in expected
    ]
    assert (3_131, 50.0) in [(p.step, p.value) for p in series.points]
    assert (777, -50.0) in [(p.step, p.value) for p in series.points]
    assert series.total == 6_000 and 75 <= len(series.points) <= 300


def test_the_migration_fills_the_blocks_the_logging_keeps(project: Project) -> None:
    """Blocks rebuilt by migration 0013 from the stored points equal those kept while
    logging, for series with repeated steps, tied values and negative steps."""
    from alembic import command
    from alembic.config import Config

    from shipyard.stores.db.engine import MIGRATIONS_DIR

    with project.start_run("blocks") as run:
        run.log_points([("a", float(s % 7), s * 3 - 5_000, 10 + s % 3) for s in range(1_500)])
        run.log_points([("a", 3.0, 1_000, 5), ("a", 3.0, 1_000, 5), ("b", 2.0, -(2**62), 1)])
        run.log_points([("b", float(s % 5), s * 2**40, 1) for s in range(-40, 40)])
    kept = _stored_blocks(project, run.id)
    assert kept
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with project.db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0012")
    project.db.ensure_schema()
    assert _stored_blocks(project, run.id) == kept


def _series(project: Project, run_id: str, key: str, max_points: int) -> list[MetricPoint]:
    """The chart of a series read from its blocks and read whole: the two must agree."""
    with project.db.snapshot() as conn:
        got = [series_of(conn, run_id, key, max_points, from_blocks=b) for b in (True, False)]
    assert got[0] == got[1]
    return got[0].points


def _noisy(key: str, steps: range, seed: int) -> list[tuple[str, float, int, int]]:
    """Points ``(key, value, step, timestamp)``, with a tie of values and a repeated step."""
    import random

    rng = random.Random(seed)
    points = [(key, round(rng.random(), 2), s * 3, 1_000 + s) for s in steps]
    return [*points, (key, points[0][1], points[-1][2], 5)]


def test_a_short_run_stores_no_blocks_for_its_short_series(project: Project) -> None:
    """A run written whole at its end keeps blocks only for its series of at least
    BLOCKS_FROM_POINTS points; every series charts from what is stored as the plain rule
    says, and counts all its points."""
    from shipyard.tracking.blocks import BLOCKS_FROM_POINTS

    long = _noisy("long", range(BLOCKS_FROM_POINTS + 200), 1)
    mid = _noisy("mid", range(BLOCKS_FROM_POINTS - 2), 2)  # one point short of the threshold
    with project.start_run("short") as run:
        run.log_params({"C": 1.0, "penalty": "l2"})
        for i in range(20):
            run.log_metrics({f"m{i}": i / 10}, step=0)
        for key, value, step, ts in long + mid:
            run.log_metrics({key: value}, step=step, timestamp=ts)
        run.log_metrics({"nan": float("nan")}, step=0)
        assert run.pending  # written whole at its end, not flushed on the way
    assert {r[1] for r in _stored_blocks(project, run.id)} == {"long"}
    for points in (long, mid):
        ordered = sorted(points, key=lambda p: (p[2], p[3]))
        for max_points in (2, 10, 300):
            got = _series(project, run.id, points[0][0], max_points)
            expected = _reference(
                [p[2] for p in ordered],
                [p[3] for p in ordered],
                [p[1] for p in ordered],
                max_points,
            )
            assert [(p.step, p.timestamp, p.value) for p in got] == [
                (ordered[i][2], ordered[i][3], ordered[i][1]) for i in expected
            ]
        series = project.runs.metric_series(run.id, points[0][0], max_points=10)
        assert series.total == len(points)
    assert [p.value for p in _series(project, run.id, "m7", 10)] == [0.7]


def test_a_short_series_that_grows_gets_the_blocks_of_all_its_points(project: Project) -> None:
    """Series stored without blocks (a short run written whole) that later writes extend get
    the blocks of every point they hold: the same blocks as the same points logged by a run
    that had them from its first write, however often the run is attached to."""
    first = _noisy("loss", range(300), 3) + _noisy("lr", range(5), 4)
    more = _noisy("loss", range(300, 2_500), 5)
    last = _noisy("loss", range(2_500, 2_600), 6) + _noisy("lr", range(5, 7), 7)
    with project.start_run("grow") as run:
        for key, value, step, ts in first:
            run.log_metrics({key: value}, step=step, timestamp=ts)
        assert run.pending
    assert _stored_blocks(project, run.id) == []
    project.runs.attach(run.id).log_batch([(k, v, t, s) for k, v, s, t in more])
    project.runs.attach(run.id).log_points([(k, v, s, t) for k, v, s, t in last])
    with project.start_run("grow") as reference:
        reference.flush()  # stored at once: every write keeps blocks
        reference.log_points([(k, v, s, t) for k, v, s, t in first + more + last])
    stored = _stored_blocks(project, run.id)
    assert {r[1] for r in stored} == {"loss", "lr"}
    assert [r[1:] for r in stored] == [r[1:] for r in _stored_blocks(project, reference.id)]
    loss = [p for p in first + more + last if p[0] == "loss"]
    ordered = sorted(loss, key=lambda p: (p[2], p[3]))
    expected = _reference(
        [p[2] for p in ordered], [p[3] for p in ordered], [p[1] for p in ordered], 300
    )
    assert [(p.step, p.timestamp, p.value) for p in _series(project, run.id, "loss", 300)] == [
        (ordered[i][2], ordered[i][3], ordered[i][1]) for i in expected
    ]
    assert project.runs.metric_series(run.id, "loss", max_points=300).total == len(loss)
