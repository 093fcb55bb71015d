"""The credit project of the governance tests, served to a team: the fixtures the API tests
of models, governance, deployments and audit share (imported by those modules).

alice (admin) registered credit-risk@1 (full) and @2 (lean, regresses), both evaluated on
credit.test@1; the team fixture adds vic (viewer), carol (contributor) and abe (approver), each
with a token. ``project`` replaces the suite's empty project in the modules that import it, so
the team and the app of tests/server/conftest.py serve this one, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import shipyard
from shipyard.project import Project
from tests.governance.test_governance_service import (
    MODEL,
    TEST,
    V1,
    V2,
    clone_credit_project,
    populate,
)
from tests.server.conftest import Team, TestClient

__all__ = ["MODEL", "TEST", "V1", "V2", "call", "credit", "project", "token_id"]


@pytest.fixture
def project(
    backend: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Project]:
    """The evaluated credit project on ``backend``: a copy of the one built once per process
    on SQLite (building takes seconds, copying milliseconds), built anew on PostgreSQL."""
    if backend.startswith("sqlite"):
        proj = clone_credit_project(tmp_path_factory, tmp_path / "proj", evaluated=True)
    else:
        proj = shipyard.init_project(tmp_path / "proj", db_url=backend)
        populate(proj, evaluate=True)
    try:
        yield proj
    finally:
        proj.close()


@pytest.fixture
def credit(project: Project, team: Team) -> Project:
    """The evaluated credit project (alice registrant of both versions) with the team."""
    del team  # requested for its users and tokens
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
