"""Governance through ``/api/v1``: policies, ``check``, approvals, promotion and rollback,
governed exactly as the CLI (the token's user is the actor, the registrant never approves,
only approvers move protected aliases, refused moves list every check), leaving the same
audit events as the CLI with the token's id on each, and an audit log that still verifies."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

import shipyard
from shipyard.project import Project
from tests.cli.conftest import Cli, cli
from tests.governance.test_governance_service import clone_credit_project
from tests.server.conftest import ROLE_USERS, Team, TestClient, create_app
from tests.server.credit_team import MODEL, V1, V2, call, credit, project, token_id

__all__ = ["cli", "credit", "project"]  # the fixtures, imported for this module's tests

POLICY = "require: [evaluation]\nmetrics:\n  roc_auc: {min: 0.6}\napprovals: {min: 1}\n"


def failing(doc: dict[str, Any]) -> list[str]:
    return [c["name"] for c in doc["checks"] if not c["passed"]]


# -- policies -------------------------------------------------------------------------------------


def test_an_admin_stores_policies_as_yaml_or_json_and_others_are_refused(
    credit: Project, team: Team, api: TestClient
) -> None:
    """PUT /policies/{model} stores a new version from YAML text or JSON {"text"} (admin);
    an approver gets 403; a policy with problems is 422 listing each; GET shows them."""
    headers = {"Content-Type": "text/yaml"}
    refused = api.put(
        f"/api/v1/policies/{MODEL}",
        content=POLICY,
        headers={**team.headers("approver"), **headers},
    )
    assert refused.status_code == 403
    assert "cannot set policies" in refused.json()["message"]
    assert credit.policies.get(MODEL) is None

    stored = api.put(
        f"/api/v1/policies/{MODEL}", content=POLICY, headers={**team.headers("admin"), **headers}
    )
    assert stored.status_code == 200, stored.text
    doc = stored.json()
    assert (doc["name"], doc["version"], doc["created_by"]) == (MODEL, 1, "alice")
    assert doc["spec"]["metrics"] == {"roc_auc": {"min": 0.6}}
    again = call(api, team, "admin", "PUT", "/policies/*", json={"text": "approvals: {min: 2}\n"})
    assert again.status_code == 200 and again.json()["spec"] == {"approvals": {"min": 2}}

    bad = call(
        api, team, "admin", "PUT", f"/policies/{MODEL}",
        json={"text": "metrics:\n  roc_acu: {min: 0.7}\napprovals: {min: -1}\n"},
    )  # fmt: skip
    assert bad.status_code == 422
    assert bad.json()["error"] == "invalid_input"
    assert "did you mean 'roc_auc'?" in bad.json()["message"]
    assert len(bad.json()["details"]["problems"]) == 2
    not_text = call(api, team, "admin", "PUT", f"/policies/{MODEL}", json={"spec": {}})
    assert not_text.status_code == 422 and '{"text"' in not_text.json()["message"]

    listed = call(api, team, "viewer", "GET", "/policies")
    assert listed.json() == [p.to_dict() for p in credit.policies.list()]
    assert [p["name"] for p in listed.json()] == ["*", MODEL]
    shown = call(api, team, "viewer", "GET", f"/policies/{MODEL}")
    assert shown.json() == {**doc, "created": False}  # what this call created: nothing
    missing = call(api, team, "viewer", "GET", "/policies/other-model")
    assert (
        missing.status_code == 404
        and "no policy stored for 'other-model'" in missing.json()["message"]
    )


def test_check_answers_200_with_passed_false_until_the_policy_is_met(
    credit: Project, team: Team, api: TestClient
) -> None:
    """POST /check gives `shipyard check --json`'s document: 200 with passed false and the
    failing checks while no one approved, passed true once abe approved."""
    body = {"ref": V1, "alias": "production"}
    response = call(api, team, "viewer", "POST", "/check", json=body)
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc == credit.promotions.gate(V1, for_alias="production")
    assert (doc["model"], doc["alias"], doc["passed"]) == (V1, "production", False)
    assert failing(doc) == ["approvals >= 1"]
    credit.as_actor("abe").approvals.approve(V1)
    doc = call(api, team, "viewer", "POST", "/check", json={"ref": V1}).json()
    assert doc["passed"] is True
    missing = call(api, team, "viewer", "POST", "/check", json={"ref": f"{MODEL}@9"})
    assert missing.status_code == 404
    no_ref = call(api, team, "viewer", "POST", "/check", json={})
    assert no_ref.status_code == 422 and "ref" in no_ref.json()["message"]


# -- approvals ------------------------------------------------------------------------------------


def test_an_approver_decides_and_the_registrant_never_does(
    credit: Project, team: Team, api: TestClient
) -> None:
    """abe's approval and rejection are recorded as his, with his token on the events; the
    contributor is refused for the role and alice, who registered the versions, for
    separation of duties; the decisions list back."""
    refused = call(api, team, "contributor", "POST", f"/models/{V1}/approve", json={})
    assert refused.status_code == 403 and refused.json()["error"] == "permission"
    assert "approver" in refused.json()["message"]
    own = call(api, team, "admin", "POST", f"/models/{V1}/approve", json={"comment": "mine"})
    assert own.status_code == 403 and "separation of duties" in own.json()["message"]
    assert own.json()["details"]["authors"] == ["alice"]

    approved = call(api, team, "approver", "POST", f"/models/{V1}/approve", json={"comment": "ok"})
    assert approved.status_code == 200, approved.text
    doc = approved.json()
    assert (doc["model"], doc["approver"], doc["decision"], doc["comment"]) == (
        V1, "abe", "approve", "ok",
    )  # fmt: skip
    rejected = call(api, team, "approver", "POST", f"/models/{V2}/reject", json={"comment": "weak"})
    assert rejected.status_code == 200 and rejected.json()["decision"] == "reject"
    assert credit.models.get(V1).status == "approved"
    assert credit.models.get(V2).status == "rejected"

    listed = call(api, team, "viewer", "GET", f"/models/{V1}/approvals")
    assert listed.json() == [a.to_dict() for a in credit.approvals.list(V1)]
    assert [(a["approver"], a["confirmed"]) for a in listed.json()] == [("abe", True)]
    events = credit.audit.list(actor="abe")
    assert [(e.action, e.entity) for e in events] == [("model.approve", V1), ("model.reject", V2)]
    assert {e.token_id for e in events} == {token_id(team, "approver")}
    missing = call(api, team, "approver", "POST", f"/models/{MODEL}@7/approve", json={})
    assert missing.status_code == 404


# -- promotion and rollback -----------------------------------------------------------------------


def test_promotion_is_refused_with_every_check_until_the_policy_passes(
    credit: Project, team: Team, api: TestClient
) -> None:
    """A contributor may not promote (403); abe promoting an unapproved version gets 422
    ``check_failed`` with every check in details and nothing moves; once approved, the
    promotion moves production and names every check it ran."""
    body = {"version": 1, "to": "production", "comment": "first"}
    refused = call(api, team, "contributor", "POST", f"/models/{MODEL}/promote", json=body)
    assert refused.status_code == 403 and "promote models" in refused.json()["message"]
    failed = call(api, team, "approver", "POST", f"/models/{MODEL}/promote", json=body)
    assert failed.status_code == 422
    doc = failed.json()
    assert doc["error"] == "check_failed"
    assert f"promotion of {V1} to production refused" in doc["message"]
    assert doc["details"]["passed"] is False
    assert failing(doc["details"]) == ["servable", "approvals >= 1"]
    assert credit.models.aliases(MODEL) == {}

    credit.as_actor("abe").approvals.approve(V1)
    promoted = call(api, team, "approver", "POST", f"/models/{MODEL}/promote", json=body)
    assert promoted.status_code == 200, promoted.text
    doc = promoted.json()
    assert (doc["model"], doc["alias"], doc["passed"], doc["promoted"]) == (
        V1, "production", True, True,
    )  # fmt: skip
    assert "approvals >= 1" in [c["name"] for c in doc["checks"]]
    assert credit.models.aliases(MODEL) == {"production": 1}
    [move] = credit.models.alias_history(MODEL, "production")
    assert (move.actor, move.reason, move.comment) == ("abe", "promote", "first")


def test_promote_takes_a_number_or_a_reference_to_the_same_model(
    credit: Project, team: Team, api: TestClient
) -> None:
    """The version may be given as a number, NAME@N or an alias of the model; a version of
    another model is 422 and an unknown one 404."""
    bob = credit.as_actor("abe")
    bob.approvals.approve(V1)
    bob.approvals.approve(V2)
    credit.as_actor("carol").models.set_alias(V2, "staging")
    path = f"/models/{MODEL}/promote"
    for version, held in ((V1, 1), ("staging", 2), (1, 1)):
        response = call(
            api, team, "approver", "POST", path, json={"version": version, "to": "champion"}
        )
        assert response.status_code == 200, (version, response.text)
        assert credit.models.aliases(MODEL)["champion"] == held
    other = call(api, team, "approver", "POST", path, json={"version": "churn@1"})
    assert other.status_code == 422 and "not a version of 'credit-risk'" in other.json()["message"]
    unknown = call(api, team, "approver", "POST", path, json={"version": 9})
    assert unknown.status_code == 404
    bad_alias = call(api, team, "approver", "POST", path, json={"version": 1, "to": "Prod uction"})
    assert bad_alias.status_code == 422


def test_rollback_moves_production_back_and_needs_an_approver(
    credit: Project, team: Team, api: TestClient
) -> None:
    """After v1 then v2 were promoted, abe rolls production back to v1 (a contributor is
    refused); with no earlier holder left, rollback is 404; rolling back to a version
    rejected since is 422 with the servable check failing."""
    abe = credit.as_actor("abe")
    abe.approvals.approve(V1)
    abe.promotions.promote(V1)
    first = call(api, team, "approver", "POST", f"/models/{MODEL}/rollback", json={})
    assert first.status_code == 404 and "no earlier holder" in first.json()["message"]
    abe.approvals.approve(V2)
    abe.promotions.promote(V2)

    body = {"alias": "production", "comment": "v2 regresses"}
    refused = call(api, team, "contributor", "POST", f"/models/{MODEL}/rollback", json=body)
    assert refused.status_code == 403
    abe.approvals.reject(V1, comment="found a leak")
    blocked = call(api, team, "approver", "POST", f"/models/{MODEL}/rollback", json=body)
    assert blocked.status_code == 422 and blocked.json()["error"] == "check_failed"
    assert "servable" in failing(blocked.json()["details"])
    abe.approvals.approve(V1, comment="leak fixed upstream")

    done = call(api, team, "approver", "POST", f"/models/{MODEL}/rollback", json=body)
    assert done.status_code == 200, done.text
    doc = done.json()
    assert (doc["model"], doc["alias"], doc["from"], doc["to"], doc["passed"]) == (
        MODEL, "production", 2, 1, True,
    )  # fmt: skip
    assert credit.models.aliases(MODEL) == {"production": 1}
    assert credit.models.alias_history(MODEL, "production")[-1].reason == "rollback"


def test_an_archived_version_cannot_be_promoted(
    credit: Project, team: Team, api: TestClient
) -> None:
    """Promoting an approved version that was archived since is refused by the servable
    check (422 ``check_failed``), as the CLI refuses it."""
    credit.as_actor("abe").approvals.approve(V2)
    credit.models.archive(V2)
    response = call(api, team, "approver", "POST", f"/models/{MODEL}/promote", json={"version": 2})
    assert response.status_code == 422
    assert response.json()["error"] == "check_failed"
    assert "servable: credit-risk@2 is archived" in response.json()["message"]


# -- the same audit events as the CLI -------------------------------------------------------------


def _story_events(project: Project, since: int) -> list[tuple[Any, ...]]:
    """The events after ``since`` as a user reads them, without times and hashes."""
    return [
        (e.actor, e.action, e.entity_kind, e.entity, e.payload)
        for e in project.audit.list()
        if e.seq > since
    ]


def test_approve_promote_rollback_leave_the_cli_s_audit_events(
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    cli: Cli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same story (abe approves v1 and v2, promotes v1 then v2, rolls back) told through
    the CLI in one copy of the credit project and through the API in another leaves the
    same audit events; the API's carry abe's token id, and both logs verify."""
    story_cli = clone_credit_project(tmp_path_factory, tmp_path / "by-cli", evaluated=True)
    story_cli.close()
    shutil.copytree(tmp_path / "by-cli", tmp_path / "by-api")
    with shipyard.open_project(tmp_path / "by-cli", actor="alice") as project:
        project.users.add("abe", "approver")
        start = project.audit.list(newest_first=True, limit=1)[0].seq
    monkeypatch.chdir(tmp_path / "by-cli")
    for args in (
        ("models", "approve", V1, "--comment", "ok"),
        ("models", "approve", V2, "--comment", "ok"),
        ("models", "promote", V1, "--to", "production", "--comment", "first"),
        ("models", "promote", V2, "--to", "production", "--comment", "second"),
        ("models", "rollback", MODEL, "--alias", "production", "--comment", "back"),
    ):
        result = cli(*args, "--json", user="abe")
        assert result.code == 0, (args, result.stderr)
    with shipyard.open_project(tmp_path / "by-cli", actor="alice") as project:
        by_cli = _story_events(project, start)

    with shipyard.open_project(tmp_path / "by-api", actor="alice") as project:
        project.users.add("abe", "approver")
        abe_token = project.tokens.create("abe")
        start = project.audit.list(newest_first=True, limit=1)[0].seq
        headers = {"Authorization": f"Bearer {abe_token.token}"}
        with TestClient(create_app(project), raise_server_exceptions=False) as api:
            for path, body in (
                (f"/models/{V1}/approve", {"comment": "ok"}),
                (f"/models/{V2}/approve", {"comment": "ok"}),
                (
                    f"/models/{MODEL}/promote",
                    {"version": 1, "to": "production", "comment": "first"},
                ),
                (
                    f"/models/{MODEL}/promote",
                    {"version": 2, "to": "production", "comment": "second"},
                ),
                (f"/models/{MODEL}/rollback", {"alias": "production", "comment": "back"}),
            ):
                response = api.post(f"/api/v1{path}", json=body, headers=headers)
                assert response.status_code == 200, (path, response.text)
        by_api = _story_events(project, start)
        story = [e for e in project.audit.list() if e.seq > start]
        assert {e.token_id for e in story} == {abe_token.info.id}
        assert project.audit.verify().ok
    assert by_api == by_cli
    assert [a for _, a, *_ in by_api] == [
        "model.approve", "model.approve",
        "model.alias.promote", "model.promote",
        "model.alias.promote", "model.promote",
        "model.alias.rollback",
    ]  # fmt: skip
    with shipyard.open_project(tmp_path / "by-cli", actor="alice") as project:
        assert project.audit.verify().ok


def test_every_governance_write_needs_its_role(
    credit: Project, team: Team, api: TestClient
) -> None:
    """Each governance route answers 401 without a token and 403 to the role just below the
    one it needs; reads are open to a viewer."""
    del credit
    writes = [
        ("PUT", f"/policies/{MODEL}", {"text": POLICY}, "approver"),
        ("POST", f"/models/{V1}/approve", {}, "contributor"),
        ("POST", f"/models/{V1}/reject", {}, "contributor"),
        ("POST", f"/models/{MODEL}/promote", {"version": 1}, "contributor"),
        ("POST", f"/models/{MODEL}/rollback", {}, "contributor"),
    ]
    for method, path, body, below in writes:
        assert call(api, team, None, method, path, json=body).status_code == 401, path
        response = call(api, team, below, method, path, json=body)
        assert response.status_code == 403, (path, response.text)
        assert f"'{ROLE_USERS[below]}'" in response.json()["message"]
    for method, path, body in (
        ("GET", "/policies", None),
        ("GET", f"/models/{V1}/approvals", None),
        ("POST", "/check", {"ref": V1}),
    ):
        assert call(api, team, None, method, path, json=body).status_code == 401, path
        assert call(api, team, "viewer", method, path, json=body).status_code == 200, path
