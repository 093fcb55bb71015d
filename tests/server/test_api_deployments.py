"""``/api/v1/deployments`` as `shipyard deployments`: approvers change what serves, every
alias must be held by an approved version that passes its policy (422 ``check_failed`` with
the reasons otherwise), and show and history say who serves what."""

from __future__ import annotations

from shipyard.project import Project
from tests.server.conftest import Team, TestClient
from tests.server.credit_team import MODEL, V1, V2, call, credit, project, token_id

__all__ = ["credit", "project"]  # the fixtures, imported for this module's tests


def _in_production(project: Project) -> None:
    abe = project.as_actor("abe")
    abe.approvals.approve(V1)
    abe.promotions.promote(V1)


def test_an_approver_sets_a_canary_once_the_challenger_is_approved(
    credit: Project, team: Team, api: TestClient
) -> None:
    """Routing 10% to a challenger held by an unapproved version is 422 naming it and stores
    nothing; once abe approves and promotes it, the canary is stored (recorded with his
    token), and show lists both holders as servable."""
    _in_production(credit)
    credit.as_actor("carol").models.set_alias(V2, "challenger")
    body = {"routes": {"production": 90, "challenger": 10}, "comment": "canary"}
    refused = call(api, team, "approver", "PUT", f"/deployments/{MODEL}", json=body)
    assert refused.status_code == 422
    doc = refused.json()
    assert doc["error"] == "check_failed" and f"{V2} is not approved" in doc["message"]
    assert [(a["alias"], a["passed"]) for a in doc["details"]["aliases"]] == [
        ("production", True),
        ("challenger", False),
    ]
    assert credit.deployments.list() == []

    abe = credit.as_actor("abe")
    abe.approvals.approve(V2)
    abe.promotions.promote(V2, to="challenger")
    stored = call(api, team, "approver", "PUT", f"/deployments/{MODEL}", json=body)
    assert stored.status_code == 200, stored.text
    assert stored.json() == credit.deployments.get(MODEL).to_dict()
    assert (stored.json()["version"], stored.json()["updated_by"]) == (1, "abe")
    shown = call(api, team, "viewer", "GET", f"/deployments/{MODEL}").json()
    assert shown == credit.deployments.show(MODEL).to_dict()
    assert shown["routes"] == {"production": 90, "challenger": 10}
    assert [(s["alias"], s["ref"], s["servable"]) for s in shown["serving"]] == [
        ("production", V1, True),
        ("challenger", V2, True),
    ]
    [event] = credit.audit.list(action="deployment.set")
    assert (event.actor, event.token_id) == ("abe", token_id(team, "approver"))
    # the challenger is protected now: a plain alias move is refused
    moved = credit.as_actor("carol")
    assert "challenger" in moved.deployments.protected(MODEL)


def test_list_show_and_history_and_the_default_deployment(
    credit: Project, team: Team, api: TestClient
) -> None:
    """A model without a stored deployment shows its default (production alone, not
    stored) and has no history (404); after two changes, list and history show them in
    order; an unknown name is 404."""
    _in_production(credit)
    default = call(api, team, "viewer", "GET", f"/deployments/{MODEL}").json()
    assert (default["routes"], default["stored"], default["version"]) == (
        {"production": 100}, False, 0,
    )  # fmt: skip
    missing = call(api, team, "viewer", "GET", f"/deployments/{MODEL}/history")
    assert missing.status_code == 404 and "deployments set" in missing.json()["message"]
    assert call(api, team, "viewer", "GET", "/deployments/nothing").status_code == 404

    for routes in ({"production": 100}, {"production": 100, "staging": 0}):
        credit.as_actor("carol").models.set_alias(V1, "staging") if "staging" in routes else None
        response = call(
            api, team, "approver", "PUT", f"/deployments/{MODEL}", json={"routes": routes}
        )
        assert response.status_code == 200, response.text
    listed = call(api, team, "viewer", "GET", "/deployments").json()
    assert listed == [d.to_dict() for d in credit.deployments.list()]
    assert listed[0]["routes"] == {"production": 100, "staging": 0}
    history = call(api, team, "viewer", "GET", f"/deployments/{MODEL}/history").json()
    assert history == [c.to_dict() for c in credit.deployments.history(MODEL)]
    assert [(h["version"], h["to_routes"], h["actor"]) for h in history] == [
        (1, {"production": 100}, "abe"),
        (2, {"production": 100, "staging": 0}, "abe"),
    ]


def test_bad_deployments_are_refused_with_the_reason(
    credit: Project, team: Team, api: TestClient
) -> None:
    """Routes without any traffic, or not a mapping, are 422; an unknown model is 404; an
    alias nobody holds is 404 saying how to promote one."""
    _in_production(credit)
    path = f"/deployments/{MODEL}"
    zero = call(api, team, "approver", "PUT", path, json={"routes": {"production": 0}})
    assert zero.status_code == 422 and zero.json()["error"] == "invalid_input"
    shape = call(api, team, "approver", "PUT", path, json={"routes": ["production"]})
    assert shape.status_code == 422 and "routes" in shape.json()["message"]
    other = call(api, team, "approver", "PUT", "/deployments/x", json={"routes": {"production": 1}})
    assert other.status_code == 404
    nobody = call(api, team, "approver", "PUT", path, json={"routes": {"production": 1, "blue": 1}})
    assert nobody.status_code == 404 and "blue" in nobody.json()["message"]
    assert credit.deployments.list() == []


def test_every_deployment_route_needs_its_role(
    credit: Project, team: Team, api: TestClient
) -> None:
    """Reads are open to a viewer; changing a deployment needs an approver (a contributor
    is refused with the role it needs); nothing answers without a token."""
    _in_production(credit)
    body = {"routes": {"production": 100}}
    for method, path, json in (
        ("GET", "/deployments", None),
        ("GET", f"/deployments/{MODEL}", None),
        ("PUT", f"/deployments/{MODEL}", body),
        ("GET", f"/deployments/{MODEL}/history", None),
    ):
        assert call(api, team, None, method, path, json=json).status_code == 401, path
    refused = call(api, team, "contributor", "PUT", f"/deployments/{MODEL}", json=body)
    assert refused.status_code == 403 and "approver" in refused.json()["message"]
    assert call(api, team, "approver", "PUT", f"/deployments/{MODEL}", json=body).status_code == 200
    for path in ("/deployments", f"/deployments/{MODEL}", f"/deployments/{MODEL}/history"):
        assert call(api, team, "viewer", "GET", path).status_code == 200, path
