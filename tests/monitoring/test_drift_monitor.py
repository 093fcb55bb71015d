"""A drift monitor on the served project (deployment ``m-live`` answered 250 rows with x1
moved by 3 a minute ago), on SQLite and PostgreSQL: the window drifts against ``m@1``'s
training data and opens an alert; a window too small for the statistics is insufficient data,
never a breach."""

from __future__ import annotations

from datetime import UTC, datetime

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
