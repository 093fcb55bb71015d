"""``shipyard serve`` refuses, before it listens, what governance does not let serve: an
alias a contributor can move (exit 1, naming how an approver routes traffic to it) and a
deployment whose aliases are held by versions that may not serve (exit 3, every reason).

These run the command line in-process: each one stops before a server would start.
"""

from __future__ import annotations

import pytest
from sqlalchemy import update

from shipyard.project import Project
from shipyard.stores.db.tables import model_aliases
from tests.cli.conftest import Cli
from tests.cli.conftest import cli as cli
from tests.serving.test_app import MODEL, CreditProject, train
from tests.serving.test_app import credit as credit
from tests.serving.test_app import project as project
from tests.serving.test_server_process import free_port


def serve(cli: Cli, credit: CreditProject, target: str) -> tuple[int, str]:
    """``shipyard --project ROOT serve TARGET`` on a free port: exit code and stderr."""
    res = cli("--project", credit.root, "serve", target, "--port", str(free_port()))
    assert "Traceback" not in res.stderr
    assert "serving credit-risk on" not in res.stderr, "the server started"
    return res.code, res.stderr


@pytest.fixture
def team(project: Project) -> Project:
    """The credit project with dave (contributor) and carol (a second approver)."""
    project.users.add("dave", "contributor")
    project.users.add("carol", "approver")
    return project


def test_an_alias_a_contributor_moved_is_refused_naming_the_fix(
    cli: Cli, credit: CreditProject, team: Project
) -> None:
    """``serve credit-risk@staging``, where dave (a contributor) pointed staging at a new
    version no one approved, exits 1: staging is not protected, and the message names the
    command an approver runs to route traffic to it."""
    ref = train(team)
    team.as_actor("dave").models.set_alias(ref, "staging")
    code, stderr = serve(cli, credit, f"{MODEL}@staging")
    assert code == 1
    assert "'staging' is not a protected alias of credit-risk" in stderr
    assert "shipyard deployments set credit-risk --route staging=100" in stderr


def test_a_deployment_whose_holders_were_rejected_exits_3_with_every_reason(
    cli: Cli, credit: CreditProject, team: Project
) -> None:
    """Once a deployment routes to staging (held by an approved version) and carol then
    rejects that version and production's, ``serve credit-risk`` and ``serve
    credit-risk@staging`` (now protected) exit 3, printing the reason for each alias."""
    ref = train(team)
    team.as_actor("bob").approvals.approve(ref)
    team.as_actor("dave").models.set_alias(ref, "staging")
    team.deployments.set(MODEL, {"production": 90, "staging": 10})
    carol = team.as_actor("carol")
    carol.approvals.reject(ref, comment="leaks the label")
    carol.approvals.reject(credit.production, comment="recalled")
    code, stderr = serve(cli, credit, MODEL)
    assert code == 3
    assert "credit-risk cannot be served" in stderr
    assert "production: credit-risk@1 was rejected (by carol)" in stderr
    assert "staging: credit-risk@3 was rejected (by carol)" in stderr
    code, stderr = serve(cli, credit, f"{MODEL}@staging")
    assert code == 3
    assert "staging: credit-risk@3 was rejected (by carol)" in stderr


def test_a_deployment_alias_pointed_at_an_unapproved_version_exits_3(
    cli: Cli, credit: CreditProject, team: Project
) -> None:
    """With production pointed at an unapproved version by editing the alias table (past
    governance), ``serve credit-risk`` exits 3 saying that version is not approved."""
    train(team)
    with team.db.write() as conn:
        conn.execute(
            update(model_aliases).where(model_aliases.c.alias == "production").values(version=3)
        )
    code, stderr = serve(cli, credit, MODEL)
    assert code == 3
    assert "production: credit-risk@3 is not approved (no confirmed approval)" in stderr


def test_an_alias_without_a_holder_exits_3_naming_the_promotion(
    cli: Cli, credit: CreditProject, team: Project
) -> None:
    """A deployment alias that points nowhere (removed from the alias table) stops the
    server with exit 3 and the promotion that would give it a holder."""
    with team.db.write() as conn:
        conn.execute(model_aliases.delete().where(model_aliases.c.alias == "production"))
    code, stderr = serve(cli, credit, MODEL)
    assert code == 3
    assert "credit-risk has no alias 'production'" in stderr
    assert "shipyard models promote credit-risk@N --to production" in stderr


@pytest.mark.parametrize("target", [f"{MODEL}@1", f"{MODEL}@latest"])
def test_serving_a_version_is_a_usage_error(cli: Cli, credit: CreditProject, target: str) -> None:
    """``serve credit-risk@1`` or ``@latest`` exits 2: a server serves a deployment or a
    protected alias, which it can follow."""
    code, stderr = serve(cli, credit, target)
    assert code == 2
    assert "not a version" in stderr


def test_serving_an_unknown_name_exits_1(cli: Cli, credit: CreditProject) -> None:
    """``serve churn`` (no deployment, no model) exits 1 naming it."""
    code, stderr = serve(cli, credit, "churn")
    assert code == 1
    assert "'churn'" in stderr
