"""The credit project of the governance tests, served to a team: the fixture the API tests of
models, governance, deployments and audit share (imported by those modules).

alice (admin) registered credit-risk@1 (full) and @2 (lean, regresses), both evaluated on
credit.test@1; the team fixture adds vic (viewer), carol (contributor) and abe (approver), each
with a token. It is built on the ``project`` fixture, so it runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest

from shipyard.project import Project
from tests.governance.test_governance_service import MODEL, TEST, V1, V2, populate
from tests.server.conftest import Team, TestClient

__all__ = ["MODEL", "TEST", "V1", "V2", "call", "credit", "token_id"]


@pytest.fixture
def credit(project: Project, team: Team) -> Project:
    """The evaluated credit project (alice registrant of both versions) with the team."""
    populate(project, evaluate=True)
    return project


def token_id(team: Team, role: str) -> str:
    """The id of a role's token (``shp_<id>_<secret>``), as audit events record it."""
    return team.tokens[role].split("_")[1]


def call(
    api: TestClient, team: Team, role: str | None, method: str, path: str, **kwargs: Any
) -> Any:
    """``method path`` on ``/api/v1`` as the user of ``role`` (None: without a token)."""
    headers = team.headers(role) if role else {}
    return api.request(method, f"/api/v1{path}", headers=headers, **kwargs)
