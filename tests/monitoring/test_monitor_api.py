"""``/api/v1/monitors`` and ``/api/v1/alerts`` on the team server, on SQLite and PostgreSQL:
the service's roles hold over HTTP, a run answers with the result and the alert it opened,
and errors carry the service's status codes."""

from __future__ import annotations

import html

from fastapi.testclient import TestClient

from shipyard.project import Project
from tests.monitoring.conftest import kpi_in_window
from tests.server.conftest import Team, api, team
from tests.ui.conftest import log_in

__all__ = ["api", "team"]  # the fixtures, imported for this module's tests

MONITOR = {
    "name": "revenue-floor",
    "deployment": "checkout",
    "kind": "kpi",
    "window_seconds": 600,
    "every_seconds": 600,
    "kpi": "revenue",
    "min_value": 10,
}


def test_monitors_and_alerts_over_http(project: Project, team: Team, api: TestClient) -> None:
    """A viewer cannot add (403) but lists; a contributor adds (201) and runs, which opens an
    alert (the current window has no revenue); the alert is listed open, shown, and on the UI's
    home page; a duplicate is 409, an unknown monitor 404; only the admin removes."""
    kpi_in_window(project, -100, 50.0)
    client = api
    denied = client.post("/api/v1/monitors", json=MONITOR, headers=team.headers("viewer"))
    assert denied.status_code == 403
    added = client.post("/api/v1/monitors", json=MONITOR, headers=team.headers("contributor"))
    assert added.status_code == 201, added.text
    assert added.json()["thresholds"] == [{"metric": "sum", "min": 10.0, "max": None}]
    again = client.post("/api/v1/monitors", json=MONITOR, headers=team.headers("contributor"))
    assert again.status_code == 409
    listed = client.get("/api/v1/monitors", headers=team.headers("viewer"))
    assert [m["name"] for m in listed.json()] == ["revenue-floor"]
    ran = client.post("/api/v1/monitors/revenue-floor/run", headers=team.headers("contributor"))
    assert ran.status_code == 200, ran.text
    doc = ran.json()
    assert (doc["result"]["status"], doc["alert_event"]) == ("breach", "opened")
    history = client.get("/api/v1/monitors/revenue-floor/history", headers=team.headers("viewer"))
    assert [r["id"] for r in history.json()] == [doc["result"]["id"]]
    open_alerts = client.get("/api/v1/alerts?open=true", headers=team.headers("viewer"))
    assert [a["id"] for a in open_alerts.json()] == [doc["alert"]["id"]]
    shown = client.get(f"/api/v1/alerts/{doc['alert']['id']}", headers=team.headers("viewer"))
    assert shown.json()["summary"] == doc["alert"]["summary"]
    log_in(client, team.tokens["viewer"])
    home = client.get("/")
    assert home.status_code == 200 and "Open alerts" in home.text
    assert html.escape(doc["alert"]["summary"], quote=False) in home.text
    missing = client.get("/api/v1/monitors/nope", headers=team.headers("viewer"))
    assert missing.status_code == 404
    kept = client.delete("/api/v1/monitors/revenue-floor", headers=team.headers("contributor"))
    assert kept.status_code == 403
    gone = client.delete("/api/v1/monitors/revenue-floor", headers=team.headers("admin"))
    assert gone.status_code == 200
