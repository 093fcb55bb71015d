"""Alerts reach receivers through the webhook queue, on SQLite and PostgreSQL: a real local
receiver gets ``alert.opened`` and ``alert.resolved`` signed (generic) and as Slack messages,
a monitor's ``notify`` list limits delivery to the webhooks it names, and open alerts show in
the team digest."""

from __future__ import annotations

from pathlib import Path

import pytest
from standardwebhooks import Webhook as Verifier

from shipyard.collaboration.webhooks import new_secret
from shipyard.project import Project
from tests.collaboration.conftest import Receiver
from tests.monitoring.conftest import DEPLOYMENT, WINDOW, at, kpi_in_window

EVENTS = ["alert.opened", "alert.resolved"]


@pytest.fixture
def secret(tmp_path: Path) -> tuple[str, str]:
    """A signing secret and the file holding it."""
    value = new_secret()
    path = tmp_path / "hook.secret"
    path.write_text(value, encoding="utf-8")
    return value, str(path)


def add_monitor(project: Project, name: str, notify: list[int] | None = None) -> None:
    """A KPI monitor of ``DEPLOYMENT`` that breaches on any window with less than 10 revenue,
    and opens an alert at the first such window."""
    kpi_in_window(project, -100, 50.0)
    project.monitors.add(
        name,
        deployment=DEPLOYMENT,
        kind="kpi",
        window_seconds=WINDOW,
        every_seconds=WINDOW,
        kpi="revenue",
        min_value=10.0,
        notify=notify or [],
    )


def by_path(receiver: Receiver, path: str) -> list[dict[str, object]]:
    return [r.json() for r in receiver.received if r.path == path]


def test_an_alert_and_its_resolution_reach_signed_and_slack_receivers(
    project: Project, receiver: Receiver, secret: tuple[str, str]
) -> None:
    """The opened alert reaches a generic webhook as a signed ``alert.opened`` naming the
    monitor, deployment and breached bound, and a Slack webhook as a message led by
    "ALERT"; when a window clears, both get ``alert.resolved`` ("RESOLVED")."""
    value, path = secret
    project.webhooks.add(receiver.url, EVENTS, secret_file=path)
    project.webhooks.add(receiver.url + "/slack", EVENTS, format="slack")
    add_monitor(project, "revenue-floor")
    opened = project.monitors.run("revenue-floor", now=at(2))
    assert opened.fired and opened.alert is not None
    assert project.webhooks.deliver().delivered == 2
    [signed] = [r for r in receiver.received if r.path == "/hook"]
    doc = Verifier(value).verify(signed.body, signed.headers)
    assert doc["type"] == "alert.opened"
    data = doc["data"]
    assert (data["alert_id"], data["monitor"], data["deployment"], data["kind"]) == (
        opened.alert.id,
        "revenue-floor",
        DEPLOYMENT,
        "kpi",
    )
    assert data["details"]["breached"] == ["sum >= 10"]
    assert data["summary"].startswith("ALERT monitor revenue-floor (kpi) on deployment checkout")
    [slack] = by_path(receiver, "/hook/slack")
    assert slack["text"] == data["summary"]
    kpi_in_window(project, 3, 12.0)
    resolved = project.monitors.run("revenue-floor", now=at(3))
    assert resolved.alert_event == "resolved"
    assert project.webhooks.deliver().delivered == 2
    last = [r for r in receiver.received if r.path == "/hook"][-1]
    later = Verifier(value).verify(last.body, last.headers)
    assert later["type"] == "alert.resolved"
    assert later["data"]["alert_id"] == opened.alert.id
    assert later["data"]["summary"].startswith("RESOLVED monitor revenue-floor resolved")
    assert str(by_path(receiver, "/hook/slack")[-1]["text"]).startswith("RESOLVED")


def test_notify_limits_an_alert_to_the_named_webhooks(project: Project, receiver: Receiver) -> None:
    """A monitor naming webhook B sends its alert to B only (B subscribes to other events),
    not to A, subscribed to alerts; a monitor naming none sends to A only. Both open alerts
    are in the team digest."""
    project.webhooks.add(receiver.url + "/a", EVENTS, format="slack")
    b = project.webhooks.add(receiver.url + "/b", ["dataset.created"], format="slack")
    add_monitor(project, "to-b", notify=[b.id])
    assert project.monitors.get("to-b").notify == (b.id,)
    project.monitors.run("to-b", now=at(2))
    project.webhooks.deliver()
    assert (len(by_path(receiver, "/hook/a")), len(by_path(receiver, "/hook/b"))) == (0, 1)
    assert "to-b" in str(by_path(receiver, "/hook/b")[0]["text"])
    add_monitor(project, "to-subscribers")
    project.monitors.run("to-subscribers", now=at(2))
    project.webhooks.deliver()
    assert (len(by_path(receiver, "/hook/a")), len(by_path(receiver, "/hook/b"))) == (1, 1)
    assert "to-subscribers" in str(by_path(receiver, "/hook/a")[0]["text"])
    digest = project.digests.get("1d")
    assert digest.alerts is not None
    assert sorted(x.name for x in digest.alerts) == [
        f"alert {x.id} ({x.monitor})" for x in sorted(project.alerts.list(), key=lambda x: x.id)
    ]
    assert {x.severity for x in digest.alerts} == {"open"}
