"""`shipyard deployments set/list/show/history` as a user runs them: approvers change what
serves, every alias must be held by an approved version that passes its policy (exit 3 with
the reasons otherwise), and the history and `show` say who serves what.

Each test works in its own copy of the SQLite credit project of the governance service tests
(alice admin, bob approver, carol contributor; credit-risk@1 and @2 evaluated), as the current
directory, with a policy that asks for an evaluation.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.project import Project
from tests.cli.conftest import Cli
from tests.governance.test_governance_service import MODEL, V1, V2, clone_credit_project


@pytest.fixture
def opened(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Project]:
    """The credit project as the current directory, v1 approved by bob and in production."""
    root = tmp_path / "proj"
    project = clone_credit_project(tmp_path_factory, root, evaluated=True)
    project.policies.set(MODEL, {"require": ["evaluation"]})
    bob = project.as_actor("bob")
    bob.approvals.approve(V1)
    bob.promotions.promote(V1)
    monkeypatch.chdir(root)
    yield project
    project.close()


def test_a_canary_needs_an_approved_challenger(cli: Cli, opened: Project) -> None:
    """Routing 10% to a challenger held by an unapproved version exits 3 naming it; once bob
    approves it and promotes it to challenger, the canary is stored and `show` lists both
    holders as servable."""
    assert cli("models", "alias", V2, "challenger", user="carol").code == 0
    res = cli("deployments", "set", MODEL, "--route", "production=90,challenger=10", user="bob")
    assert res.code == 3
    assert f"{V2} is not approved" in res.stderr
    assert opened.deployments.list() == []
    assert cli("models", "approve", V2, user="bob").code == 0
    assert cli("models", "promote", V2, "--to", "challenger", user="bob").code == 0
    res = cli(
        "deployments", "set", MODEL, "--route", "production=90,challenger=10",
        "--comment", "canary", "--json", user="bob",
    )  # fmt: skip
    assert res.code == 0, res.stderr
    assert res.json()["routes"] == {"production": 90, "challenger": 10}
    shown = cli("deployments", "show", MODEL, "--json").json()
    assert [(s["alias"], s["ref"], s["servable"]) for s in shown["serving"]] == [
        ("production", V1, True),
        ("challenger", V2, True),
    ]
    res = cli("models", "alias", V1, "challenger", user="alice")
    assert res.code == 1 and "protected" in res.stderr


def test_only_an_approver_changes_a_deployment_and_every_change_is_listed(
    cli: Cli, opened: Project
) -> None:
    """A contributor's `deployments set` exits 1 with the role it needs; an approver's
    changes appear in `list` and, in order, in `history`."""
    res = cli("deployments", "set", MODEL, "--route", "production=100", user="carol")
    assert res.code == 1 and "approver" in res.stderr
    assert cli("deployments", "set", MODEL, "--route", "production=100", user="bob").code == 0
    assert cli("deployments", "list", "--json").json()[0]["routes"] == {"production": 100}
    history = cli("deployments", "history", MODEL, "--json").json()
    assert [(h["version"], h["to_routes"], h["actor"]) for h in history] == [
        (1, {"production": 100}, "bob")
    ]


def test_show_without_a_stored_deployment_is_the_models_default(cli: Cli, opened: Project) -> None:
    """`deployments show MODEL` for a model without a stored deployment shows production
    taking all traffic, not stored; `history` of it is not found (exit 1)."""
    doc = cli("deployments", "show", MODEL, "--json").json()
    assert (doc["routes"], doc["stored"], doc["version"]) == ({"production": 100}, False, 0)
    res = cli("deployments", "history", MODEL)
    assert res.code == 1 and "deployments set" in res.stderr
