"""``/api/v1/audit``: the log as `shipyard audit log --json` gives it, with filters and the
token id of every change made through the server, and its verification, which answers 200
with ``ok`` false when the chain was edited."""

from __future__ import annotations

from sqlalchemy import update

from shipyard.project import Project
from shipyard.stores.db.tables import audit_events
from tests.server.conftest import Team, TestClient
from tests.server.credit_team import V1, call, credit, project, token_id

__all__ = ["credit", "project"]  # the fixtures, imported for this module's tests


def test_the_log_with_filters_names_the_token_of_every_api_change(
    credit: Project, team: Team, api: TestClient
) -> None:
    """A viewer reads the whole log as the service lists it; entity, action, actor,
    limit and newest_first filter it; abe's approval through the API carries his token id,
    alice's registrations (through the Python API) none."""
    approved = call(api, team, "approver", "POST", f"/models/{V1}/approve", json={})
    assert approved.status_code == 200
    everything = call(api, team, "viewer", "GET", "/audit")
    assert everything.status_code == 200
    assert everything.json() == [e.to_dict() for e in credit.audit.list()]

    [event] = call(api, team, "viewer", "GET", "/audit?action=model.approve").json()
    assert (event["actor"], event["entity"]) == ("abe", V1)
    assert event["token_id"] == token_id(team, "approver")
    registered = call(api, team, "viewer", "GET", f"/audit?entity={V1}&action=model.register")
    assert [(e["actor"], e["token_id"]) for e in registered.json()] == [("alice", None)]
    kinds = call(api, team, "viewer", "GET", "/audit?entity_kind=model&actor=abe").json()
    assert [e["action"] for e in kinds] == ["model.approve"]
    by_kind = call(api, team, "viewer", "GET", f"/audit?entity=model:{V1}").json()
    assert {e["entity"] for e in by_kind} == {V1}
    newest = call(api, team, "viewer", "GET", "/audit?limit=2&newest_first=true").json()
    assert [e["seq"] for e in newest] == [e["seq"] for e in everything.json()][::-1][:2]
    bad = call(api, team, "viewer", "GET", "/audit?limit=0")
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_input"


def test_verify_is_ok_and_answers_200_with_ok_false_when_an_event_was_edited(
    credit: Project, team: Team, api: TestClient
) -> None:
    """After changes through the API the chain verifies; when someone edits an event in the
    database, verify still answers 200, with ok false and the first bad event named."""
    call(api, team, "approver", "POST", f"/models/{V1}/approve", json={})
    response = call(api, team, "viewer", "GET", "/audit/verify")
    assert response.status_code == 200
    doc = response.json()
    assert doc["ok"] is True and doc["events"] == len(credit.audit.list())
    assert doc == credit.audit.verify().to_dict()

    [event] = credit.audit.list(action="model.approve")
    with credit.db.write() as conn:
        conn.execute(
            update(audit_events).where(audit_events.c.seq == event.seq).values(actor="mallory")
        )
    response = call(api, team, "viewer", "GET", "/audit/verify")
    assert response.status_code == 200
    doc = response.json()
    assert doc["ok"] is False and doc["first_bad_seq"] == event.seq
    assert call(api, team, None, "GET", "/audit/verify").status_code == 401
    assert call(api, team, None, "GET", "/audit").status_code == 401
