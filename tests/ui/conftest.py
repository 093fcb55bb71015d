"""Fixtures for the web UI: the evaluated credit project (SQLite copy) with a user of every
role, an in-process client, and a way to log a client in through the login form; for the
browser tests, one headless Chromium per session and the folder their screenshots go to."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shipyard.project import Project
from shipyard.server.app import create_app
from tests.conftest import _service_unavailable
from tests.governance.test_governance_service import clone_credit_project
from tests.server.conftest import ROLE_USERS, Team, TestClient, team

__all__ = ["ROLE_USERS", "csrf_of", "log_in", "team"]

#: The Chromium the browser tests drive (Debian's, installed with apt; never `playwright install`).
CHROMIUM = os.environ.get("SHIPYARD_TEST_CHROMIUM", "/usr/bin/chromium")
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"|name="csrf-token" content="([^"]+)"')


@pytest.fixture
def project(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """The evaluated credit project (credit-risk@1 and @2 registered by alice, both evaluated
    on credit.test@1), a copy per test. The UI only calls services, whose behaviour on
    PostgreSQL their own tests pin, so these tests run on SQLite."""
    proj = clone_credit_project(tmp_path_factory, tmp_path / "proj", evaluated=True)
    try:
        yield proj
    finally:
        proj.close()


@pytest.fixture
def ui(project: Project, team: Team) -> Iterator[TestClient]:
    """An in-process client of the server (UI and API) over the credit project and team;
    not logged in."""
    del team  # requested for its users and tokens
    with TestClient(create_app(project), raise_server_exceptions=False) as client:
        yield client


def csrf_of(html: str) -> str:
    """The CSRF token of a page (of its first form, or the one htmx requests send)."""
    m = _CSRF.search(html)
    assert m is not None, "the page has no CSRF token"
    return m.group(1) or m.group(2)


def log_in(client: TestClient, token: str) -> None:
    """Log ``client`` in through the login form, as a browser would."""
    form = client.get("/login")
    response = client.post(
        "/login",
        data={"token": token, "csrf_token": csrf_of(form.text), "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the whole session (every browser test module shares it)."""
    if not Path(CHROMIUM).exists():
        _service_unavailable(
            "Chromium", f"{CHROMIUM} is missing: apt-get install chromium (see the Makefile)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the screenshots of this run go."""
    return tmp_path_factory.mktemp("ui-screenshots")
