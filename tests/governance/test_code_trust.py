"""Approvals of custom model code are governed state: a custom code model whose code digest no
approver approved never serves (promotion, deployments and the model server all refuse it),
and `audit verify` replays the code approvals and catches one added or edited with SQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import insert, select, update

import shipyard
from shipyard.errors import CheckFailedError
from shipyard.project import Project
from shipyard.registry.flavors.code import CodeModel
from shipyard.stores.db.tables import code_approvals
from tests.registry.flavor_code_model import HandLogistic

REF = "hand@1"


def hand_model() -> CodeModel:
    """A small hand-written logistic model over two numbers and one text column."""
    weights = {
        "numbers": np.asarray(["a", "b"]),
        "text": np.asarray(["city"]),
        "categories_city": np.asarray(["north", "south", "west"]),
        "mean": np.zeros(2),
        "scale": np.ones(2),
        "coef": np.asarray([1.0, -1.0, 0.5, 0.0, -0.5]),
        "intercept": np.asarray([0.1]),
        "classes": np.asarray([0, 1]),
    }
    return CodeModel(HandLogistic, weights)


EXAMPLE = pd.DataFrame({"a": [0.5, 1.0], "b": [2.0, 0.1], "city": ["north", "west"]})


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    """alice (admin) registered hand@1, a custom code model; bob is an approver, and the
    project policy asks for one approval."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    with shipyard.init_project(tmp_path / "proj", actor="alice") as p:
        p.users.add("bob", "approver")
        p.policies.set("*", {"approvals": {"min": 1}})
        p.models.register_model("hand", hand_model(), input_example=EXAMPLE)
        yield p


def test_an_approved_version_whose_code_is_not_approved_does_not_serve(project: Project) -> None:
    """bob approves hand@1 but not its code: it is not servable, so it cannot be promoted
    (the servable check names the code and the command that approves it); once bob approves
    the code it is promoted and a deployment serves it."""
    bob = project.as_actor("bob")
    bob.approvals.approve(REF, comment="metrics fine")
    [reason] = project.deployments.servable(REF)
    assert "custom Python code" in reason and f"models approve-code {REF}" in reason
    with pytest.raises(CheckFailedError) as refused:
        bob.promotions.promote(REF)
    [servable] = [c for c in refused.value.details["checks"] if c["name"] == "servable"]
    assert not servable["passed"]
    bob.models.approve_code(REF, comment="read it")
    assert project.deployments.servable(REF) == []
    bob.promotions.promote(REF)
    deployment = bob.deployments.set("hand", {"production": 100})
    [holder] = project.deployments.holders(deployment).values()
    assert holder.servable


def test_audit_verify_replays_code_approvals(project: Project) -> None:
    """A code approval is in `audit verify`'s state: a row added with SQL (even one that
    copies a real approval's event) and an edited comment are each named by table and key."""
    approval = project.as_actor("bob").models.approve_code(REF, comment="read it")
    assert project.audit.verify().ok
    with project.db.write() as conn:
        conn.execute(
            insert(code_approvals).values(
                digest=approval.digest,
                model=REF,
                approver="carol",
                comment="copied",
                time=datetime.now(UTC),
                event_seq=approval.event_seq,
            )
        )
        conn.execute(
            update(code_approvals)
            .where(code_approvals.c.comment == "read it")
            .values(comment="reviewed twice")
        )
        ids = [r.id for r in conn.execute(select(code_approvals.c.id).order_by("id"))]
    report = project.audit.verify()
    assert not report.ok
    found = {(m.table, m.key, m.problem) for m in report.state}
    assert found == {
        ("code_approvals", f"{approval.digest}#{ids[0]}", "differs from the audit log"),
        ("code_approvals", f"{approval.digest}#{ids[1]}", "not in the audit log"),
    }
