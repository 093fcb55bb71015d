"""Drift and performance monitors on the served project (deployment ``m-live`` answered 250
rows with x1 moved by 3 a minute ago, no label came back), on SQLite and PostgreSQL: the
window drifts against ``m@1``'s training data and opens an alert; a window too small for the
statistics is insufficient data, never a breach; without labels, a performance monitor holds
the estimate made from the model's calibrated confidence (CBPE) against its bound."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shipyard.monitoring.performance import estimate_window
from shipyard.project import Project


def test_a_drifting_window_breaches_and_opens_an_alert(served: Project) -> None:
    """The window's x1 drifted (nearly all the model's permutation importance), so the
    weighted drift share is above 0.5: a breach, naming the drifted column and the reference
    (train@1, found through the model's lineage), that opens an alert."""
    served.monitors.add(
        "m-drift", deployment="m-live", kind="drift", window_seconds=3600, every_seconds=60
    )
    outcome = served.monitors.run("m-drift", now=datetime.now(UTC))
    result = outcome.result
    assert (result.status, result.rows) == ("breach", 250)
    assert result.values["drifted_columns"] == ["x1"]
    assert result.values["drift_share"] > 0.5
    assert result.values["model"] == "m@1"
    assert result.values["reference"] == "train@1"
    assert result.breached == ("drift_share <= 0.5",)
    assert outcome.fired and outcome.alert is not None
    assert "drift_share" in outcome.alert.summary


def test_a_window_below_the_minimum_rows_is_insufficient_data(served: Project) -> None:
    """With a minimum of 1,000 rows, the 250-row window is insufficient data: no breach and
    no alert."""
    served.monitors.add(
        "m-drift-strict",
        deployment="m-live",
        kind="drift",
        window_seconds=3600,
        every_seconds=60,
        min_rows=1000,
    )
    outcome = served.monitors.run("m-drift-strict", now=datetime.now(UTC))
    assert (outcome.result.status, outcome.result.breached) == ("insufficient data", ())
    assert outcome.alert_event is None


def test_without_labels_a_performance_monitor_checks_the_estimated_accuracy(
    served: Project,
) -> None:
    """No label came back, so there is no realized accuracy; the estimated accuracy (the
    same figure ``estimate_window`` gives for the window) is below the 0.99 bound: a breach."""
    served.monitors.add(
        "m-accuracy",
        deployment="m-live",
        kind="performance",
        window_seconds=3600,
        every_seconds=60,
        thresholds=["estimated_accuracy>=0.99"],
    )
    result = served.monitors.run("m-accuracy", now=datetime.now(UTC)).result
    start, end = result.window_start.timestamp(), result.window_end.timestamp()
    [window] = estimate_window(served, "m-live", start, end)
    assert window.estimate is not None
    assert result.status == "breach"
    assert result.values["estimated_accuracy"] == pytest.approx(window.estimate.accuracy)
    assert (result.values["labelled"], result.values["label_coverage"]) == (0, 0.0)
    assert "accuracy" not in result.values
    assert result.breached == ("estimated_accuracy >= 0.99",)
