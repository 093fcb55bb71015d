"""The credit project of the governance tests, served to a team: the fixtures the API tests
of models, governance, deployments and audit share (imported by those modules).

alice (admin) registered credit-risk@1 (full) and @2 (lean, regresses), both evaluated on
credit.test@1; the team fixture adds vic (viewer), carol (contributor) and abe (approver), each
with a token. ``project`` replaces the suite's empty project in the modules that import it, so
the team and the app of tests/server/conftest.py serve this one, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
    backend: str,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[Project]:
    """The evaluated credit project on ``backend``: a copy of one built once per process
    (building takes seconds, copying a fraction of one). On SQLite the copy is of the
    project folder; on PostgreSQL also of its database, made from the built one as a
    template."""
    if backend.startswith("sqlite"):
        proj = clone_credit_project(tmp_path_factory, tmp_path / "proj", evaluated=True)
        try:
            yield proj
        finally:
            proj.close()
        return
    template: CreditTemplate = request.getfixturevalue("pg_credit_template")
    with template.copy(tmp_path / "proj") as proj:
        yield proj


@dataclass(frozen=True)
class CreditTemplate:
    """The evaluated credit project built once on PostgreSQL: its folder and its database,
    which nothing stays connected to, so that ``CREATE DATABASE ... TEMPLATE`` can copy it."""

    admin: Any  # the suite's PostgreSQL admin engine
    folder: Path
    database: str

    @contextmanager
    def copy(self, dest: Path) -> Iterator[Project]:
        """A copy of the project at ``dest`` on a database of its own, dropped afterwards."""
        name = f"credit_{uuid.uuid4().hex}"
        _autocommit(self.admin, f'CREATE DATABASE "{name}" TEMPLATE "{self.database}"')
        try:
            shutil.copytree(self.folder, dest)
            config = dest / "shipyard.toml"
            text = config.read_text(encoding="utf-8")
            config.write_text(text.replace(self.url(), _url(self.admin, name)), encoding="utf-8")
            with shipyard.open_project(dest, actor="alice") as proj:
                yield proj
        finally:
            _autocommit(self.admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def url(self) -> str:
        return _url(self.admin, self.database)


def _url(admin: Any, database: str) -> str:
    return str(admin.url.set(database=database).render_as_string(hide_password=False))


def _autocommit(admin: Any, sql: str) -> None:
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(sql)


def build_pg_template(admin: Any, folder: Path) -> Iterator[CreditTemplate]:
    """The credit project populated on a new PostgreSQL database, dropped afterwards (the
    body of tests/server/conftest.py's session fixture ``pg_credit_template``)."""
    template = CreditTemplate(admin, folder, f"credit_template_{uuid.uuid4().hex}")
    _autocommit(admin, f'CREATE DATABASE "{template.database}"')
    try:
        with shipyard.init_project(folder, db_url=template.url(), actor="alice") as proj:
            populate(proj, evaluate=True)
        yield template
    finally:
        _autocommit(admin, f'DROP DATABASE IF EXISTS "{template.database}" WITH (FORCE)')


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
