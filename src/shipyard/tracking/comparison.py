"""Comparing 2 to 20 runs for charts: which parameters differ, each chosen metric's series
(downsampled on the server, min/max per bucket), bands of mean ± standard deviation per step
for the runs grouped by a parameter's value, and the axes of a parallel-coordinates chart.

>>> c = project.runs.comparison([a, b, c], metrics=["loss"], group_by="model")  # doctest: +SKIP
>>> [g.group for g in c.groups]                                                  # doctest: +SKIP
['gbm', 'lr']

Bands: a run's value at step ``s`` is its last point at or before ``s`` (within its own first
and last step), so runs logged at the same steps give the exact mean and (population, numpy's
default) standard deviation at each step, and downsampled series still line up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shipyard._internal.encode import ReadModel
from shipyard.tracking.series import MetricSeries
from shipyard.tracking.table import MetricCell, RunRow

__all__ = [
    "MAX_RUNS",
    "ChartSeries",
    "GroupBand",
    "MetricRow",
    "ParallelAxis",
    "ParamDiff",
    "RunComparison",
    "build_comparison",
    "side_by_side",
]

#: The most runs one comparison holds (and the fewest: 2).
MAX_RUNS = 20
#: The most points of a series or a band, by default and at most.
MAX_POINTS = 2000


@dataclass(frozen=True)
class ParamDiff(ReadModel):
    """A key with each run's value (None: not logged), and whether they are not all equal."""

    key: str
    values: list[Any]
    differs: bool


@dataclass(frozen=True)
class MetricRow(ReadModel):
    """A metric with each run's last, lowest and highest value (None: not logged)."""

    key: str
    cells: list[MetricCell | None]
    differs: bool


@dataclass(frozen=True)
class ChartSeries(ReadModel):
    """One run's metric over steps, as the two arrays a chart draws; ``downsampled`` when only
    some of its ``total`` points are here."""

    run_id: str
    key: str
    steps: list[int]
    values: list[float]
    downsampled: bool
    total: int


@dataclass(frozen=True)
class GroupBand(ReadModel):
    """The runs whose ``group_by`` parameter is ``group`` (None: not logged): per step, the
    mean and standard deviation of ``key`` over the ``count`` runs that have a value there."""

    key: str
    group: str | None
    runs: list[str]
    steps: list[int]
    mean: list[float]
    std: list[float]
    count: list[int]


@dataclass(frozen=True)
class ParallelAxis(ReadModel):
    """An axis of a parallel-coordinates chart: a parameter or a metric's last value, one value
    per run (in the comparison's order); ``numeric`` when every value logged is a number."""

    name: str
    numeric: bool
    values: list[Any]


@dataclass(frozen=True)
class RunComparison(ReadModel):
    """What a comparison page draws for ``runs`` (id, name, experiment, status, in order)."""

    runs: list[dict[str, str]]
    params: list[ParamDiff]
    metrics: list[MetricRow]
    series: list[ChartSeries]
    group_by: str | None
    groups: list[GroupBand]
    parallel: list[ParallelAxis]


def side_by_side(mappings: Sequence[Mapping[str, Any]]) -> list[ParamDiff]:
    """Every key of ``mappings`` with each one's value, and whether they differ.

    >>> [d.to_dict() for d in side_by_side([{"C": "1"}, {"C": "2", "x": "a"}])]
    [{'key': 'C', 'values': ['1', '2'], 'differs': True}, {'key': 'x', 'values': [None, 'a'], 'differs': True}]
    """  # noqa: E501
    keys = sorted({k for m in mappings for k in m})
    out = []
    for k in keys:
        values = [m.get(k) for m in mappings]
        out.append(ParamDiff(k, values, len(set(map(repr, values))) > 1))
    return out


def build_comparison(
    rows: Sequence[RunRow],
    series: Mapping[tuple[str, str], MetricSeries],
    metrics: Sequence[str],
    group_by: str | None,
    max_points: int,
) -> RunComparison:
    """The comparison of ``rows`` (with every param and metric loaded) given each (run id,
    metric) ``series``."""
    chart = [
        ChartSeries(
            run_id=run_id,
            key=key,
            steps=[p.step for p in s.points],
            values=[p.value for p in s.points],
            downsampled=s.downsampled,
            total=s.total,
        )
        for (run_id, key), s in series.items()
    ]
    metric_keys = sorted({k for r in rows for k in r.metrics})
    metric_rows = []
    for k in metric_keys:
        cells = [r.metrics.get(k) for r in rows]
        lasts = {None if c is None else c.last for c in cells}
        metric_rows.append(MetricRow(k, cells, len(lasts) > 1))
    groups: list[GroupBand] = []
    if group_by is not None:
        by_value: dict[str | None, list[str]] = {}
        for r in rows:
            by_value.setdefault(r.params.get(group_by), []).append(r.id)
        order = sorted(by_value, key=lambda v: (v is None, v or ""))
        for key in metrics:
            for value in order:
                members = by_value[value]
                parts = [series[(m, key)] for m in members if (m, key) in series]
                groups.append(_band(key, value, members, parts, max_points))
    parallel = [
        _axis(f"params.{d.key}", d.values) for d in side_by_side([r.params for r in rows])
    ] + [
        _axis(f"metrics.{m.key}", [None if c is None else c.last for c in m.cells])
        for m in metric_rows
        if m.key in metrics or not metrics
    ]
    return RunComparison(
        runs=[
            {"id": r.id, "name": r.name, "experiment": r.experiment, "status": r.status}
            for r in rows
        ],
        params=side_by_side([r.params for r in rows]),
        metrics=metric_rows,
        series=chart,
        group_by=group_by,
        groups=groups,
        parallel=parallel,
    )


def _band(
    key: str, group: str | None, members: list[str], parts: list[MetricSeries], max_points: int
) -> GroupBand:
    import numpy as np

    usable = [s for s in parts if s.points]
    if not usable:
        return GroupBand(key, group, members, [], [], [], [])
    steps = np.unique(np.concatenate([[p.step for p in s.points] for s in usable]))
    if len(steps) > max_points:  # evenly spaced steps of the union, first and last kept
        steps = steps[np.unique(np.linspace(0, len(steps) - 1, max_points).round().astype(int))]
    grid = np.full((len(usable), len(steps)), np.nan)
    for row, s in enumerate(usable):
        own = np.array([p.step for p in s.points])
        values = np.array([p.value for p in s.points])
        # the last point at or before each step: searchsorted on the right, minus one
        at = np.searchsorted(own, steps, side="right") - 1
        inside = (steps >= own[0]) & (steps <= own[-1])
        grid[row, inside] = values[at[inside]]
    count = np.sum(~np.isnan(grid), axis=0)
    keep = count > 0
    grid, steps, count = grid[:, keep], steps[keep], count[keep]
    mean = np.nanmean(grid, axis=0)
    std = np.sqrt(np.nanmean((grid - mean) ** 2, axis=0))
    return GroupBand(
        key,
        group,
        members,
        [int(s) for s in steps],
        mean.tolist(),
        std.tolist(),
        [int(c) for c in count],
    )


def _axis(name: str, values: list[Any]) -> ParallelAxis:
    numbers: list[float | None] = []
    for v in values:
        if v is None:
            numbers.append(None)
            continue
        try:
            numbers.append(float(v))
        except (TypeError, ValueError):
            return ParallelAxis(name, False, values)
    return ParallelAxis(name, True, numbers)
