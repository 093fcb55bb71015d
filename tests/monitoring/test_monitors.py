"""Monitors as records and the alert rule, on SQLite and PostgreSQL: one stored result per
window, K breaching windows in a row open one alert (updated, not repeated, while open), a
window within bounds resolves it, a cooldown holds the next one back, and insufficient data is
never a breach. A KPI monitor of revenue (sum per window at least 10) drives the rule, since
what each window holds is set exactly (``kpi_in_window``); a window without events sums to 0.
Tests share one project per backend and keep apart by deployment and monitor names.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import timedelta

import pytest

from shipyard.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from shipyard.monitoring.monitors import RunOutcome
from shipyard.project import Project
from shipyard.stores.audit import count_events
from tests.monitoring.conftest import T0, WINDOW, at, fresh, kpi_in_window


@dataclass(frozen=True)
class Case:
    """The shared project, and this test's deployment and monitor names."""

    project: Project
    deployment: str
    monitor: str

    def kpi(self, k: int, value: float) -> None:
        kpi_in_window(self.project, k, value, deployment=self.deployment)

    def add(self, project: Project | None = None, **kw: object) -> None:
        """The monitor: revenue summed per 10-minute window must be at least 10, three
        breaching windows in a row open an alert, one hour of cooldown."""
        self.kpi(-100, 50.0)  # the deployment has logged something
        args: dict[str, object] = {
            "deployment": self.deployment,
            "kind": "kpi",
            "window_seconds": WINDOW,
            "every_seconds": WINDOW,
            "kpi": "revenue",
            "min_value": 10.0,
            "consecutive": 3,
            "cooldown_seconds": 3600,
        }
        (project or self.project).monitors.add(self.monitor, **(args | kw))  # type: ignore[arg-type]

    def run(self, k: int | None = None, **kw: object) -> RunOutcome:
        now = kw.pop("now", None) or at(k or 0)
        return self.project.monitors.run(self.monitor, now=now)  # type: ignore[arg-type]

    def statuses(self) -> list[str]:
        return [r.status for r in reversed(self.project.monitors.history(self.monitor))]


@pytest.fixture
def case(shared: Project) -> Case:
    return Case(shared, fresh("checkout"), fresh("revenue-floor"))


def test_k_breaching_windows_in_a_row_open_one_alert_that_a_good_window_resolves(
    case: Case,
) -> None:
    """Two breaching windows open nothing; the third opens an alert naming the metric and its
    bound; a fourth updates the same alert; a window with enough revenue resolves it."""
    case.add()
    case.kpi(5, 4.0)
    case.kpi(5, 3.0)
    case.kpi(6, 25.0)
    first, second, third = (case.run(k) for k in (2, 3, 4))
    assert [o.alert_event for o in (first, second)] == [None, None]
    assert third.fired and third.alert is not None
    alert = third.alert
    assert alert.status == "open" and alert.opened_at == at(4)
    assert "sum 0 (expected sum >= 10)" in alert.summary and "3 windows in a row" in alert.summary
    fourth = case.run(now=at(5))
    assert fourth.result.values["sum"] == pytest.approx(7.0)
    assert (fourth.alert_event, fourth.alert and fourth.alert.id) == ("updated", alert.id)
    assert [a.id for a in case.project.alerts.list(open_only=True, monitor=case.monitor)] == [
        alert.id
    ]
    fifth = case.run(now=at(6))
    assert fifth.result.status == "ok" and fifth.alert_event == "resolved"
    resolved = case.project.alerts.get(alert.id)
    assert (resolved.status, resolved.resolved_at) == ("resolved", at(6))
    assert resolved.last_result_id == fourth.result.id
    assert case.project.alerts.list(open_only=True, monitor=case.monitor) == []
    assert case.statuses() == ["breach"] * 4 + ["ok"]


def test_a_window_is_measured_and_stored_once(case: Case) -> None:
    """Running again within the same window returns the stored result (``new`` false) and
    stores nothing; the next window gets its own result."""
    case.add()
    first = case.run(now=at(2))
    again = case.run(now=at(2) + timedelta(seconds=400))
    assert (first.new, again.new) == (True, False)
    assert again.result == first.result
    assert (first.result.window_start, first.result.window_end) == (
        T0 + timedelta(seconds=WINDOW),
        T0 + timedelta(seconds=2 * WINDOW),
    )
    case.run(now=at(3))
    assert len(case.project.monitors.history(case.monitor)) == 2


def test_the_cooldown_holds_a_new_alert_back_after_one_resolves(case: Case) -> None:
    """After an alert resolves, breaching windows within the cooldown (1 h) open nothing; the
    first breaching window an hour after it resolved opens a new alert."""
    case.add(consecutive=1)
    case.kpi(3, 30.0)
    opened = case.run(now=at(2))
    assert opened.fired
    assert case.run(now=at(3)).alert_event == "resolved"
    held = [case.run(k) for k in (4, 5, 6, 7, 8)]
    assert [o.result.status for o in held] == ["breach"] * 5
    assert [o.alert_event for o in held] == [None] * 5
    after = case.run(now=at(9))  # 1 h after it resolved
    assert after.fired and after.alert is not None and after.alert.id != opened.alert.id  # type: ignore[union-attr]
    assert [a.status for a in case.project.alerts.list(monitor=case.monitor)] == [
        "open",
        "resolved",
    ]


def test_insufficient_data_is_never_a_breach_and_breaks_a_run_of_breaches(
    case: Case,
) -> None:
    """A mean of revenue (at least 10) with no event is "insufficient data": it neither counts
    toward two breaching windows in a row nor resolves an open alert."""
    case.add(aggregation="mean", consecutive=2)
    for k in (2, 4, 5, 7, 8):
        case.kpi(k, 1.0)
    outcomes = [case.run(k) for k in range(2, 10)]
    assert [o.result.status for o in outcomes] == [
        "breach",
        "insufficient data",
        "breach",
        "breach",
        "insufficient data",
        "breach",
        "breach",
        "insufficient data",
    ]
    assert [o.alert_event for o in outcomes] == [
        None,
        None,
        None,
        "opened",
        None,
        "updated",
        "updated",
        None,
    ]
    assert "1 revenue events" not in outcomes[1].result.message
    assert outcomes[1].result.message == "0 revenue events in the window; the check needs 1"
    assert [a.status for a in case.project.alerts.list(monitor=case.monitor)] == ["open"]


def test_watch_runs_each_window_once_and_stops_when_asked(case: Case) -> None:
    """Three looks at a clock moving one window each time store three results; a set stop
    event ends the loop before its first look."""
    case.add()
    times = iter([at(2), at(3), at(4)])
    seen: list[str] = []
    waits: list[float] = []
    stored = case.project.monitors.watch(
        deployment=case.deployment,
        clock=lambda: next(times),
        iterations=3,
        on_outcome=lambda o: seen.append(o.result.status),
        sleep=waits.append,
    )
    assert stored == 3 and seen == ["breach"] * 3
    assert len(waits) == 2 and all(0 < w <= 61 for w in waits)
    assert len(case.project.alerts.list(open_only=True, monitor=case.monitor)) == 1
    stop = threading.Event()
    stop.set()
    assert (
        case.project.monitors.watch(deployment=case.deployment, clock=lambda: at(9), stop=stop) == 0
    )
    assert len(case.project.monitors.history(case.monitor)) == 3


def test_a_disabled_monitor_is_left_out_of_run_all(case: Case) -> None:
    """``run_all`` runs enabled monitors only; disabling and enabling are audited."""
    case.add()
    case.project.monitors.disable(case.monitor)
    assert case.project.monitors.run_all(now=at(2), deployment=case.deployment) == []
    case.project.monitors.enable(case.monitor)
    [outcome] = case.project.monitors.run_all(now=at(2), deployment=case.deployment)
    assert outcome.monitor == case.monitor and outcome.new
    actions = [e.action for e in case.project.audit.list(limit=5, newest_first=True)]
    assert actions[:2] == ["monitor.enable", "monitor.disable"]


def test_bad_monitors_are_refused_listing_every_problem_and_store_nothing(
    case: Case,
) -> None:
    """A bad kind, window and threshold are reported together; a KPI monitor needs its KPI
    and a band; a performance monitor a threshold; an unknown deployment or webhook is not
    found; nothing is written."""
    case.kpi(1, 1.0)
    with case.project.db.read() as conn:
        before = count_events(conn)
    with pytest.raises(InvalidInputError) as bad:
        case.project.monitors.add(
            "m", deployment=case.deployment, kind="latency", window_seconds=0, thresholds=["x<=1"]
        )
    assert "unknown kind 'latency'" in str(bad.value) and "the window must be" in str(bad.value)
    with pytest.raises(InvalidInputError, match="accuracy, roc_auc, rmse, mae, label_coverage"):
        case.project.monitors.add(
            "m", deployment=case.deployment, kind="performance", thresholds=["f1>=1"]
        )
    with pytest.raises(InvalidInputError, match="needs a --threshold"):
        case.project.monitors.add("m", deployment=case.deployment, kind="performance")
    with pytest.raises(InvalidInputError, match=r"needs --kpi NAME.*needs a band"):
        case.project.monitors.add("m", deployment=case.deployment, kind="kpi")
    with pytest.raises(NotFoundError, match="no deployment 'nowhere'"):
        case.project.monitors.add("m", deployment="nowhere", kind="quality")
    with pytest.raises(NotFoundError, match="no webhook 7"):
        case.project.monitors.add("m", deployment=case.deployment, kind="quality", notify=[7])
    with case.project.db.read() as conn:
        assert count_events(conn) == before
    assert "m" not in [m.name for m in case.project.monitors.list()]


def test_roles_viewers_read_contributors_add_and_run_admins_remove(case: Case) -> None:
    """A viewer lists and reads but cannot add or run; a contributor adds and runs but cannot
    remove; an admin removes, which keeps the alerts and resolves the open one."""
    case.project.users.add("vic", "viewer")
    case.project.users.add("cat", "contributor")
    case.add(case.project.as_actor("cat"), consecutive=1)
    viewer = case.project.as_actor("vic")
    with pytest.raises(PermissionDeniedError, match="cannot run monitors"):
        viewer.monitors.run(case.monitor, now=at(2))
    with pytest.raises(PermissionDeniedError, match="cannot add monitors"):
        viewer.monitors.add("other", deployment=case.deployment, kind="quality")
    fired = case.project.as_actor("cat").monitors.run(case.monitor, now=at(2))
    assert fired.fired
    assert [m.name for m in viewer.monitors.list(deployment=case.deployment)] == [case.monitor]
    assert len(viewer.monitors.history(case.monitor)) == 1
    assert [a.status for a in viewer.alerts.list(monitor=case.monitor)] == ["open"]
    with pytest.raises(ConflictError, match="exists"):
        case.add()
    with pytest.raises(PermissionDeniedError, match="cannot remove monitors"):
        case.project.as_actor("cat").monitors.remove(case.monitor)
    case.project.monitors.remove(case.monitor)
    with pytest.raises(NotFoundError, match=f"no monitor '{case.monitor}'"):
        case.project.monitors.get(case.monitor)
    [kept] = case.project.alerts.list(monitor=case.monitor)
    assert (kept.monitor, kept.status) == (case.monitor, "resolved")
