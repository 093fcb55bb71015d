"""Comments and webhooks over the team server's API, and the server's background delivery."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from shipyard.project import Project
from tests.collaboration.conftest import Receiver, receiver, webhook_settings
from tests.server.conftest import Team, TestClient

__all__ = ["receiver", "webhook_settings"]  # fixtures of tests/collaboration, used here


def test_comments_through_the_api_follow_the_roles_and_keep_history(
    project: Project, api: TestClient, team: Team, sample_csv: Callable[..., Path]
) -> None:
    """carol posts and edits a comment; vic reads it but may not post; the history has both
    texts; an unknown entity is a 404."""
    project.datasets.add("sales", sample_csv())
    url = "/api/v1/comments"
    on = {"entity": "dataset:sales@latest"}
    posted = api.post(
        url, params=on, json={"text": "@abe look"}, headers=team.headers("contributor")
    )
    assert posted.status_code == 201, posted.text
    comment = posted.json()
    assert (comment["on"], comment["mentions"]) == ("dataset:sales@1", ["abe"])
    refused = api.post(url, params=on, json={"text": "hi"}, headers=team.headers("viewer"))
    assert refused.status_code == 403
    edited = api.patch(
        f"{url}/{comment['id']}",
        json={"text": "@abe look again"},
        headers=team.headers("contributor"),
    )
    assert edited.json()["revisions"] == 2
    listed = api.get(url, params=on, headers=team.headers("viewer")).json()
    assert [c["text"] for c in listed] == ["@abe look again"]
    history = api.get(f"{url}/{comment['id']}/history", headers=team.headers("viewer")).json()
    assert [h["text"] for h in history] == ["@abe look", "@abe look again"]
    missing = api.get(url, params={"entity": "dataset:nope@1"}, headers=team.headers("viewer"))
    assert missing.status_code == 404


def test_the_server_delivers_in_the_background_and_webhooks_are_admin_only(
    project: Project,
    api: TestClient,
    team: Team,
    receiver: Receiver,
    sample_csv: Callable[..., Path],
) -> None:
    """An admin adds a Slack webhook through the API; a new dataset reaches the receiver
    without any call to deliver (the server's background worker); an approver may not list
    webhooks; the deliveries are listed with their attempt."""
    added = api.post(
        "/api/v1/webhooks",
        json={"url": receiver.url, "events": ["dataset.created"], "format": "slack"},
        headers=team.headers("admin"),
    )
    assert added.status_code == 201, added.text
    hook = added.json()
    assert api.get("/api/v1/webhooks", headers=team.headers("approver")).status_code == 403
    project.datasets.add("sales", sample_csv())
    deadline = time.monotonic() + 10
    while not receiver.received and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [r.json()["text"] for r in receiver.received] == ["alice added dataset sales@1 (4 rows)"]
    deliveries = api.get(
        f"/api/v1/webhooks/{hook['id']}/deliveries", headers=team.headers("admin")
    ).json()
    assert deliveries[0]["status"] in ("sending", "delivered")
    tested = api.post(f"/api/v1/webhooks/{hook['id']}/test", headers=team.headers("admin")).json()
    assert (tested["event"], tested["status"]) == ("webhook.test", "delivered")
    again = api.post(
        f"/api/v1/webhook-deliveries/{tested['id']}/redeliver", headers=team.headers("admin")
    ).json()
    assert again["redelivery_of"] == tested["id"]
    removed = api.delete(f"/api/v1/webhooks/{hook['id']}", headers=team.headers("admin"))
    assert removed.json()["enabled"] is False
    assert api.get("/api/v1/webhooks", headers=team.headers("admin")).json() == []
