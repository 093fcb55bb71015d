"""NaN and infinite metrics are recorded as MLflow records them, shown as ``NaN`` and ``inf``,
and treated alike by filters and ordering on SQLite and PostgreSQL (docs/search.md)."""

from __future__ import annotations

import math

import pytest

from shipyard.project import Project

NAN, INF = float("nan"), float("inf")


@pytest.fixture
def runs(project: Project) -> dict[str, str]:
    """Four runs: loss 0.2, loss NaN (after 1.0), loss inf and no loss at all."""
    ids = {}
    for name, losses in (("low", [0.2]), ("nan", [1.0, NAN]), ("inf", [INF]), ("none", [])):
        with project.start_run(experiment="sweep", name=name) as run:
            for step, loss in enumerate(losses):
                run.log_metric("loss", loss, step=step)
            run.log_metric("auc", 0.5)
        ids[name] = run.id
    return ids


def test_nan_and_inf_are_recorded_and_the_run_finishes(
    project: Project, runs: dict[str, str]
) -> None:
    """A NaN or an infinite loss does not fail its run: the value is kept, in the history too,
    and the range of a series leaves NaN out."""
    nan_run = project.runs.get(runs["nan"])
    assert nan_run.status == "FINISHED"
    assert math.isnan(nan_run.metrics["loss"])
    assert project.runs.get(runs["inf"]).metrics["loss"] == INF
    history = [p["value"] for p in project.runs.metric_history(runs["nan"], "loss")]
    assert history[0] == 1.0 and math.isnan(history[1])
    table = project.runs.table(experiments=["sweep"])
    cell = next(r for r in table.rows if r.id == runs["nan"]).metrics["loss"]
    assert math.isnan(cell.last) and (cell.min, cell.max) == (1.0, 1.0)


def test_filters_never_match_nan_and_ordering_puts_it_after_every_number(
    project: Project, runs: dict[str, str]
) -> None:
    """``metrics.loss < 1`` and ``> 0.1`` leave the NaN run out (inf is above every number);
    in both directions a NaN loss sorts after the numbers and before a missing one."""

    def names(**kw: object) -> list[str]:
        return [r.name for r in project.runs.list(experiment="sweep", **kw)]  # type: ignore[arg-type]

    assert names(filter="metrics.loss < 1") == ["low"]
    assert sorted(names(filter="metrics.loss > 0.1")) == ["inf", "low"]
    assert sorted(names(filter="metrics.loss != 0.2")) == ["inf", "nan"]
    assert names(order_by="metrics.loss ASC") == ["low", "inf", "nan", "none"]
    assert names(order_by="metrics.loss DESC") == ["inf", "low", "nan", "none"]
