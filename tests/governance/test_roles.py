"""Roles in the services: viewer < contributor < approver < admin. Every refusal names the
user's role and the role needed, and writes nothing; an admin may do all of it.

The refusals run on copies of the SQLite credit project (see test_governance_service): the
role check is the same code on every backend. That a refusal inside an open transaction
leaves nothing behind on PostgreSQL too is pinned by the last test, which runs on both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shipyard.demo.data import credit_applicants
from shipyard.errors import PermissionDeniedError
from shipyard.project import Project
from tests.governance.test_governance_service import (
    BOOTSTRAP,
    LABEL,
    MODEL,
    TEST,
    TRAIN,
    V1,
    V2,
    candidate,
    clone_credit_project,
)

POLICY = {"metrics": {"roc_auc": {"min": 0.5}}, "approvals": {"min": 1}}


@pytest.fixture
def credit(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """The evaluated credit project: alice (admin), bob (approver), carol (contributor) and
    victor (viewer); credit-risk@1 and @2 registered by alice and evaluated."""
    project = clone_credit_project(tmp_path_factory, tmp_path / "proj", evaluated=True)
    yield project
    project.close()


def _example(project: Project) -> Any:
    return project.datasets.get(TRAIN).to_pandas().drop(columns=[LABEL]).head(20)


def _promote_twice(project: Project) -> None:
    """Bob approves and promotes v1, then v2, so that production has a previous holder."""
    bob = project.as_actor("bob")
    for ref in (V1, V2):
        bob.approvals.approve(ref)
        bob.promotions.promote(ref)


@dataclass(frozen=True)
class Denial:
    """An action a role may not take: what the message says it cannot do, the role it needs,
    and how to try it (as the refused user, given an input example for registering)."""

    doing: str
    needed: str
    act: Callable[[Project, Any], object]
    arrange: Callable[[Project], None] | None = None


VIEWER = {
    "add data": Denial(
        "add data",
        "contributor",
        lambda me, example: me.datasets.add("credit", credit_applicants(50, seed=9)),
    ),
    "add contracts": Denial(
        "add contracts",
        "contributor",
        lambda me, example: me.contracts.add("limits", {"columns": {"age": {"type": "int"}}}),
    ),
    "bind contracts": Denial(
        "bind contracts",
        "contributor",
        lambda me, example: me.contracts.bind("credit", "applicants", new=True),
    ),
    "start runs": Denial("start runs", "contributor", lambda me, example: me.start_run(MODEL)),
    "register models": Denial(
        "register models",
        "contributor",
        lambda me, example: me.models.register_model(MODEL, candidate(), input_example=example),
    ),
    "set aliases": Denial(
        "move model aliases (staging)",
        "contributor",
        lambda me, example: me.models.set_alias(V1, "staging"),
    ),
    "evaluate": Denial(
        "evaluate models",
        "contributor",
        lambda me, example: me.evaluations.evaluate(V1, TEST, bootstrap=BOOTSTRAP),
    ),
    "describe cards": Denial(
        "write model cards",
        "contributor",
        lambda me, example: me.cards.describe(V1, "intended_use", "Ranks applications."),
    ),
}
CONTRIBUTOR = {
    "approve": Denial("approve models", "approver", lambda me, example: me.approvals.approve(V1)),
    "reject": Denial("reject models", "approver", lambda me, example: me.approvals.reject(V1)),
    "promote": Denial("promote models", "approver", lambda me, example: me.promotions.promote(V1)),
    "rollback": Denial(
        "roll back models",
        "approver",
        lambda me, example: me.promotions.rollback(MODEL),
        arrange=_promote_twice,
    ),
    "set policies": Denial(
        "set policies", "admin", lambda me, example: me.policies.set(MODEL, POLICY)
    ),
    "set risk tiers": Denial(
        "set risk tiers", "admin", lambda me, example: me.policies.set_risk_tier(MODEL, "high")
    ),
    "manage users": Denial(
        "manage users", "admin", lambda me, example: me.users.add("eve", "admin")
    ),
}
APPROVER = {
    "set policies": CONTRIBUTOR["set policies"],
    "set risk tiers": CONTRIBUTOR["set risk tiers"],
    "manage users": CONTRIBUTOR["manage users"],
}
CASES = [
    pytest.param(user, role, denial, id=f"{role} cannot {what}")
    for user, role, denials in (
        ("victor", "viewer", VIEWER),
        ("carol", "contributor", CONTRIBUTOR),
        ("bob", "approver", APPROVER),
    )
    for what, denial in denials.items()
]


@pytest.mark.parametrize(("user", "role", "denial"), CASES)
def test_a_role_below_the_one_needed_is_refused_and_nothing_is_written(
    credit: Project,
    project_state: Callable[[Project], Any],
    user: str,
    role: str,
    denial: Denial,
) -> None:
    """The action raises PermissionDeniedError naming the user's role and the one needed,
    and leaves no event, version, blob or staging file behind."""
    if denial.arrange is not None:
        denial.arrange(credit)
    example = _example(credit)  # reading the data is logged, so before the snapshot
    production = [e.to_version for e in credit.models.alias_history(MODEL, "production")]
    before = project_state(credit)
    with pytest.raises(PermissionDeniedError) as info:
        denial.act(credit.as_actor(user), example)
    article = "an" if role[0] in "aeiou" else "a"
    assert info.value.message.startswith(
        f"user '{user}' is {article} {role} and cannot {denial.doing}: this needs the "
        f"{denial.needed} role or higher"
    )
    assert info.value.details == {"actor": user, "role": role, "needed": denial.needed}
    assert project_state(credit) == before
    assert [e.to_version for e in credit.models.alias_history(MODEL, "production")] == production


def test_an_admin_may_do_what_the_other_roles_were_refused(credit: Project) -> None:
    """Ada, a second admin who authored nothing, sets policies and risk tiers, manages users,
    approves, promotes and rolls back; alice, the first admin, adds data and contracts, runs,
    registers, aliases, evaluates and writes cards."""
    credit.users.add("ada", "admin")
    ada = credit.as_actor("ada")
    assert ada.policies.set(MODEL, POLICY).created_by == "ada"
    ada.policies.set_risk_tier(MODEL, "high")
    assert ada.users.add("eve", "viewer").created_by == "ada"
    for ref in (V1, V2):
        assert ada.approvals.approve(ref).approver == "ada"
        assert ada.promotions.promote(ref)["promoted"]
    assert ada.promotions.rollback(MODEL)["to"] == 1
    assert credit.models.get(f"{MODEL}@production").ref == V1

    assert credit.datasets.add("credit", credit_applicants(50, seed=9)).ref == "credit@2"
    credit.contracts.add("limits", {"columns": {"age": {"type": "int"}}})
    credit.contracts.bind("credit", "applicants", new=True)
    with credit.start_run(MODEL, name="admin-run") as run:
        mv = run.log_model(candidate(), MODEL, input_example=_example(credit))
    assert credit.models.set_alias(mv.ref, "staging").aliases == ["staging"]
    assert credit.evaluations.evaluate(mv.ref, TEST, bootstrap=BOOTSTRAP).created_by == "alice"
    credit.cards.describe(mv.ref, "intended_use", "Ranks applications.")
    assert set(credit.cards.sections(mv.ref)) == {"intended_use"}


def test_refusals_inside_a_transaction_write_nothing_on_either_backend(
    project: Project, project_state: Callable[[Project], Any]
) -> None:
    """Refusals checked inside the audited transaction (policies, users, contract binding)
    roll it back on SQLite and PostgreSQL alike."""
    project.users.add("bob", "approver")
    project.users.add("victor", "viewer")
    project.contracts.add("applicants", {"columns": {"age": {"type": "int"}}})
    before = project_state(project)
    bob, victor = project.as_actor("bob"), project.as_actor("victor")
    with pytest.raises(PermissionDeniedError, match="is an approver and cannot set policies"):
        bob.policies.set(MODEL, POLICY)
    with pytest.raises(PermissionDeniedError, match="is an approver and cannot manage users"):
        bob.users.add("bob", "admin")
    with pytest.raises(PermissionDeniedError, match="is a viewer and cannot bind contracts"):
        victor.contracts.bind("credit", "applicants", new=True)
    assert project_state(project) == before
    assert project.policies.get(MODEL) is None
    assert project.users.get("bob").role == "approver"
    assert project.contracts.binding("credit") is None
