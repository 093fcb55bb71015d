"""Fixtures for the team server: users of every role with a token each, an in-process client
of the app, and a real uvicorn server on a loopback port (for clients such as ``mlflow``)."""

from __future__ import annotations

import socket
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.exceptions import StarletteDeprecationWarning

from shipyard.project import Project
from shipyard.server.app import create_app

with warnings.catch_warnings():
    # Starlette asks for the httpx2 fork; the test client works the same on httpx.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

#: One user per role; alice (the project's creator) is the admin.
ROLE_USERS = {"viewer": "vic", "contributor": "carol", "approver": "abe", "admin": "alice"}


@dataclass(frozen=True)
class Team:
    """Users of every role and a bearer token for each (``tokens[role]``)."""

    tokens: dict[str, str]

    def headers(self, role: str = "admin") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@pytest.fixture
def team(project: Project) -> Team:
    """vic (viewer), carol (contributor), abe (approver) and alice (admin), each with a token."""
    tokens = {}
    for role, user in ROLE_USERS.items():
        if user != project.actor:
            project.users.add(user, role)
        tokens[role] = project.tokens.create(user, label=f"{role} test token").token
    return Team(tokens)


@pytest.fixture
def api(project: Project) -> Iterator[TestClient]:
    """An in-process client of the server over ``project`` (no token set: pass headers)."""
    with TestClient(create_app(project), raise_server_exceptions=False) as client:
        yield client


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(project: Project, *, background: bool = False) -> Iterator[str]:
    """A real uvicorn server over ``project`` on a free loopback port; yields its base URL.
    With ``background`` the app's lifespan runs, and with it the webhook delivery worker."""
    port = _free_port()
    config = uvicorn.Config(
        create_app(project),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on" if background else "off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.05)
    else:
        server.should_exit = True
        pytest.fail("the server did not start within 20 s")
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def live_server(project: Project) -> Iterator[str]:
    """A real uvicorn server over ``project`` on a free loopback port; yields its base URL."""
    with running_server(project) as url:
        yield url


@pytest.fixture(scope="session")
def pg_credit_template(
    _pg_admin_engine: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """The credit project of tests/server/credit_team.py built once per process on a
    PostgreSQL database of its own, which each test copies."""
    from tests.server.credit_team import build_pg_template

    yield from build_pg_template(_pg_admin_engine, tmp_path_factory.mktemp("credit-pg") / "proj")
