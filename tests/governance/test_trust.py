"""Trust in governance: protected aliases and deployments, checks that hold under concurrent
changes, rollback that re-checks, and tables that cannot be edited behind the audit log.

Every test runs on its own copy of the evaluated SQLite credit project of
test_governance_service (alice admin, bob approver, carol contributor, victor viewer;
credit-risk@1 full and @2 lean, both evaluated on credit.test@1).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, update

from shipyard.errors import CheckFailedError, NotFoundError, PermissionDeniedError
from shipyard.project import Project
from shipyard.stores.db.tables import (
    approvals,
    deployments,
    model_aliases,
    policies,
    users,
)
from tests.governance.test_governance_service import (
    MODEL,
    V1,
    V2,
    bob,
    clone_credit_project,
)


@pytest.fixture
def evaluated(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """The credit project with both candidates evaluated on credit.test@1."""
    project = clone_credit_project(tmp_path_factory, tmp_path / "proj", evaluated=True)
    yield project
    project.close()


def _sql(project: Project, statement: Any) -> None:
    """Change the database directly, as someone with write access to it could."""
    with project.db.write() as conn:
        conn.execute(statement)


def _mismatches(project: Project) -> list[tuple[str, str, str]]:
    report = project.audit.verify()
    return [(m.table, m.key, m.problem) for m in report.state]


def _model_id(project: Project) -> int:
    from shipyard.registry.versions import find_model_id

    with project.db.read() as conn:
        return find_model_id(conn, MODEL)


# -- protected aliases and deployments -----------------------------------------------------------


def test_an_alias_a_deployment_serves_is_protected_from_set_alias(evaluated: Project) -> None:
    """Once a deployment routes traffic to `challenger`, a contributor (or admin) can no
    longer point it at a version with `set_alias`; it moves only through promotion."""
    reviewer = bob(evaluated)
    for ref in (V1, V2):
        reviewer.approvals.approve(ref)
    evaluated.policies.set(MODEL, {"require": ["evaluation"]})
    reviewer.promotions.promote(V1)
    reviewer.promotions.promote(V2, to="challenger")
    reviewer.deployments.set(MODEL, {"production": 90, "challenger": 10})
    assert evaluated.deployments.protected(MODEL) == {"production", "challenger"}
    for who in ("carol", "alice"):
        with pytest.raises(PermissionDeniedError, match="alias 'challenger' is protected"):
            evaluated.as_actor(who).models.set_alias(V1, "challenger")
    with pytest.raises(PermissionDeniedError, match="protected"):
        evaluated.models.remove_alias(MODEL, "challenger")
    assert evaluated.models.get(f"{MODEL}@challenger").ref == V2


def test_a_deployment_refuses_an_alias_held_by_an_unapproved_or_rejected_version(
    evaluated: Project,
) -> None:
    """A contributor can point `staging` at a version nobody approved, but a deployment that
    routes traffic to it is refused (exit 3, with the reason), and so is one whose holder was
    rejected; nothing is stored."""
    reviewer = bob(evaluated)
    reviewer.approvals.approve(V1)
    reviewer.promotions.promote(V1)
    evaluated.as_actor("carol").models.set_alias(V2, "staging")
    with pytest.raises(CheckFailedError) as info:
        reviewer.deployments.set(MODEL, {"production": 90, "staging": 10})
    assert f"{V2} is not approved" in info.value.message
    [staging] = [a for a in info.value.details["aliases"] if a["alias"] == "staging"]
    assert staging["model"] == V2 and not staging["passed"]
    evaluated.users.add("dora", "approver")
    evaluated.as_actor("dora").approvals.approve(V2)
    reviewer.approvals.reject(V2, comment="leaks the label")
    with pytest.raises(CheckFailedError, match="was rejected"):
        reviewer.deployments.set(MODEL, {"production": 90, "staging": 10})
    assert evaluated.deployments.list() == []
    with pytest.raises(NotFoundError):
        evaluated.deployments.get(MODEL)


def test_deployment_changes_need_an_approver_and_are_kept_in_order(evaluated: Project) -> None:
    """A contributor cannot change a deployment; an approver's changes are versioned with
    who, when, from and to; setting the same routes again changes nothing."""
    reviewer = bob(evaluated)
    for ref in (V1, V2):
        reviewer.approvals.approve(ref)
    evaluated.policies.set(MODEL, {"require": ["evaluation"]})
    reviewer.promotions.promote(V1)
    reviewer.promotions.promote(V2, to="challenger")
    with pytest.raises(PermissionDeniedError, match="change deployments"):
        evaluated.as_actor("carol").deployments.set(MODEL, {"production": 100})
    first = reviewer.deployments.set(MODEL, {"production": 100})
    second = reviewer.deployments.set(MODEL, {"production": 90, "challenger": 10}, comment="canary")
    again = reviewer.deployments.set(MODEL, {"production": 90, "challenger": 10})
    third = reviewer.deployments.set(MODEL, {"production": 100}, shadow="challenger")
    assert [first.version, second.version, again.version, third.version] == [1, 2, 2, 3]
    history = evaluated.deployments.history(MODEL)
    assert [(c.from_routes, c.to_routes, c.to_shadow, c.actor) for c in history] == [
        (None, {"production": 100}, None, "bob"),
        ({"production": 100}, {"production": 90, "challenger": 10}, None, "bob"),
        ({"production": 90, "challenger": 10}, {"production": 100}, "challenger", "bob"),
    ]
    assert history[1].comment == "canary"
    assert evaluated.audit.verify().ok


# -- promotion and rollback under concurrent changes ---------------------------------------------


def test_a_policy_changed_while_promotion_checks_cannot_slip_between_check_and_move(
    evaluated: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An admin tightens the policy (five approvals) while bob's promotion is checking: the
    new policy cannot land between the check and the move. Either the promotion saw it and
    was refused, or the move was recorded before the policy changed."""
    reviewer = bob(evaluated)
    reviewer.approvals.approve(V1)
    evaluated.policies.set(MODEL, {"require": ["evaluation"], "approvals": {"min": 1}})
    real_latest = reviewer.evaluations.latest
    tighten = threading.Thread(
        target=lambda: evaluated.policies.set(MODEL, {"approvals": {"min": 5}})
    )

    def latest_while_the_policy_changes(*args: Any, **kwargs: Any) -> Any:
        if tighten.ident is None:
            tighten.start()
            tighten.join(timeout=2.0)  # it lands now unless the check holds the write lock
        return real_latest(*args, **kwargs)

    monkeypatch.setattr(reviewer.evaluations, "latest", latest_while_the_policy_changes)
    try:
        reviewer.promotions.promote(V1)
        moved = True
    except CheckFailedError:
        moved = False
    tighten.join(timeout=60)
    assert not tighten.is_alive()
    seqs = {e.action: e.seq for e in evaluated.audit.list(entity=MODEL)}
    if moved:
        assert seqs["model.promote"] < max(
            e.seq for e in evaluated.audit.list(action="policy.set")
        ), "the promotion moved production under a policy its check never saw"


def test_rollback_refuses_a_version_rejected_since_it_left(evaluated: Project) -> None:
    """v1 held production, v2 replaced it, then v1 was rejected: rolling back to v1 is
    refused (exit 3) naming the rejection, and production stays on v2."""
    evaluated.users.add("dora", "approver")
    evaluated.policies.set(MODEL, {"require": ["evaluation"]})
    reviewer = bob(evaluated)
    for ref in (V1, V2):
        reviewer.approvals.approve(ref)
        reviewer.promotions.promote(ref)
    evaluated.as_actor("dora").approvals.reject(V1, comment="bias found later")
    with pytest.raises(CheckFailedError) as info:
        reviewer.promotions.rollback(MODEL)
    assert "rejected" in info.value.message
    assert evaluated.models.get(f"{MODEL}@production").ref == V2


def test_repeated_rollbacks_walk_back_through_the_history(evaluated: Project) -> None:
    """Promoting v1, v2 then v1 again, two rollbacks go to v2 then v1's first tenure's
    predecessor is none: the history is read as a stack, not toggled between two holders."""
    evaluated.policies.set(MODEL, {"require": ["evaluation"]})
    reviewer = bob(evaluated)
    for ref in (V1, V2):
        reviewer.approvals.approve(ref)
    for ref in (V1, V2):
        reviewer.promotions.promote(ref)
    assert reviewer.promotions.rollback(MODEL)["to"] == 1
    with pytest.raises(NotFoundError, match="no earlier holder"):
        reviewer.promotions.rollback(MODEL)
    assert evaluated.models.get(f"{MODEL}@production").ref == V1


# -- tables edited behind the audit log ----------------------------------------------------------


def test_a_hand_written_approval_is_caught_and_never_counted(evaluated: Project) -> None:
    """An approvals row inserted with SQL (as 'bob', on v2) is reported by `audit verify`
    with its table and key, is listed as unconfirmed, does not count for the policy's
    approvals check nor make v2 servable, and the model card leaves it out."""
    _sql(
        evaluated,
        insert(approvals).values(
            model_id=_model_id(evaluated),
            version=2,
            approver="bob",
            decision="approve",
            comment="looks fine",
            time=datetime.now(UTC),
        ),
    )
    assert ("approvals", f"{V2}#1", "not in the audit log") in _mismatches(evaluated)
    assert not evaluated.audit.verify().ok
    [forged] = evaluated.approvals.list(V2)
    assert (forged.approver, forged.confirmed) == ("bob", False)
    assert evaluated.approvals.standing(V2) == "pending"
    [check] = [c for c in evaluated.promotions.check(V2).checks if c.name.startswith("approvals")]
    assert not check.passed
    [reason] = evaluated.deployments.servable(V2)
    assert reason.startswith(f"1 decision on {V2} not confirmed by the audit log")
    card = evaluated.cards.render(V2)
    assert "approve by bob" not in card
    assert "not confirmed by the audit log" in card


def test_an_edited_approval_comment_or_decision_is_caught(evaluated: Project) -> None:
    """Turning bob's rejection into an approval with SQL is reported by `audit verify`, and
    the edited row no longer counts: v1 stays unapproved."""
    bob(evaluated).approvals.reject(V1, comment="no")
    _sql(evaluated, update(approvals).values(decision="approve", comment="yes"))
    assert ("approvals", f"{V1}#1", "differs from the audit log") in _mismatches(evaluated)
    assert [a.confirmed for a in evaluated.approvals.list(V1)] == [False]
    assert evaluated.approvals.standing(V1) == "pending"


def test_aliases_policies_deployments_and_roles_edited_with_sql_are_caught(
    evaluated: Project,
) -> None:
    """Production pointed at v2 with SQL, a policy's rules edited, a deployment's weights
    edited and a contributor made admin are each reported with their table and key."""
    reviewer = bob(evaluated)
    reviewer.approvals.approve(V1)
    evaluated.policies.set(MODEL, {"require": ["evaluation"]})
    reviewer.promotions.promote(V1)
    reviewer.deployments.set(MODEL, {"production": 100})
    assert evaluated.audit.verify().ok
    _sql(evaluated, update(model_aliases).values(version=2))
    _sql(evaluated, update(policies).where(policies.c.name == MODEL).values(spec={}))
    _sql(evaluated, update(deployments).values(routes={"production": 1, "staging": 99}))
    _sql(evaluated, update(users).where(users.c.name == "carol").values(role="admin"))
    found = _mismatches(evaluated)
    assert ("model_aliases", f"{MODEL}/production", "differs from the audit log") in found
    assert ("policies", f"{MODEL}@1", "differs from the audit log") in found
    assert ("deployments", MODEL, "differs from the audit log") in found
    assert ("users", "carol", "differs from the audit log") in found


def test_audit_verify_cli_names_the_table_and_key_and_exits_3(
    evaluated: Project, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`shipyard audit verify --json` exits 3 with the state section naming the table and
    the key of a row edited behind the log."""
    import json

    from shipyard.cli.main import run

    _sql(evaluated, update(users).where(users.c.name == "victor").values(role="admin"))
    monkeypatch.setattr("sys.argv", ["shipyard", "-P", str(evaluated.root), "audit", "verify",
                                     "--json"])  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        run()
    assert exit_info.value.code == 3
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False
    assert [(m["table"], m["key"]) for m in doc["state"]] == [("users", "victor")]
    assert doc["state"][0]["expected"] == "viewer" and doc["state"][0]["found"] == "admin"


# -- fail closed --------------------------------------------------------------------------------


def test_promotion_refuses_a_rejected_version_whatever_the_policy(evaluated: Project) -> None:
    """With a policy that asks for no approvals at all, a rejected version still cannot take
    production: the servable check runs on every protected alias move."""
    evaluated.policies.set("*", {"require": ["evaluation"]})
    bob(evaluated).approvals.reject(V2, comment="leaks the label")
    with pytest.raises(CheckFailedError) as info:
        bob(evaluated).promotions.promote(V2)
    assert f"{V2} was rejected (by bob)" in info.value.message
    with pytest.raises(NotFoundError):
        evaluated.models.get(f"{MODEL}@production")


def test_an_edited_rejection_keeps_the_version_from_serving(evaluated: Project) -> None:
    """v2 approved by dora and rejected by bob: editing bob's rejection row by hand does not
    make v2 servable (a decision the log does not confirm could hide a rejection), nor
    promotable."""
    evaluated.users.add("dora", "approver")
    evaluated.as_actor("dora").approvals.approve(V2)
    bob(evaluated).approvals.reject(V2, comment="no")
    _sql(evaluated, update(approvals).where(approvals.c.decision == "reject").values(comment="ok"))
    [reason] = evaluated.deployments.servable(V2)
    assert "not confirmed by the audit log" in reason
    with pytest.raises(CheckFailedError, match="not confirmed by the audit log"):
        bob(evaluated).promotions.promote(V2)


def test_a_copied_approval_row_confirms_nothing(evaluated: Project) -> None:
    """A copy of bob's approval row (same event) added after his later rejection is not
    confirmed, so it cannot override the rejection."""
    bob(evaluated).approvals.approve(V1)
    bob(evaluated).approvals.reject(V1, comment="changed my mind")
    [first, _] = evaluated.approvals.list(V1)
    with evaluated.db.read() as conn:
        original = conn.execute(approvals.select().order_by(approvals.c.id)).first()
    assert original is not None
    copy = {k: v for k, v in original._mapping.items() if k != "id"}
    _sql(evaluated, insert(approvals).values(**copy))
    decisions = evaluated.approvals.list(V1)
    assert [d.confirmed for d in decisions] == [True, True, False]
    assert decisions[2].event_seq == first.event_seq
    assert evaluated.approvals.standing(V1) == "rejected"


def test_a_contract_bound_while_promotion_prepares_is_a_conflict_not_a_wait(
    evaluated: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A contract bound to the training data after promotion checked the data and before it
    took the write lock makes it refuse with ConflictError (run again), instead of waiting
    for its own lock to read the data again."""
    from shipyard.errors import ConflictError

    reviewer = bob(evaluated)
    reviewer.approvals.approve(V1)
    evaluated.policies.set(MODEL, {"require": ["evaluation", "contract"]})
    real_prepare = reviewer.promotions.prepare

    def prepare_then_bind(ref: str) -> Any:
        checked = real_prepare(ref)
        evaluated.contracts.bind("credit", "applicants", new=True)
        return checked

    monkeypatch.setattr(reviewer.promotions, "prepare", prepare_then_bind)
    with pytest.raises(ConflictError, match="run the command again"):
        reviewer.promotions.promote(V1)
    with pytest.raises(NotFoundError):
        evaluated.models.get(f"{MODEL}@production")
