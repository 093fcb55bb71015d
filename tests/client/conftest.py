"""Fixtures for the conformance suite: one test body, run against a local project and against
a :class:`~shipyard.client.RemoteProject` talking to a real server over the same project.

``service_project`` is the project as alice (its admin) in both modes; ``acting(role)`` is the
same kind of project acting as the team's user of that role (vic, carol, abe, alice).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from shipyard.client import RemoteProject
from shipyard.project import Project
from tests.server import conftest as server_fixtures
from tests.server.conftest import ROLE_USERS, Team

# The server's fixtures, shared with this folder: the team with a token per role, the live server.
team = server_fixtures.team
live_server = server_fixtures.live_server

Acting = Callable[[str], Any]


@pytest.fixture(params=["local", "remote"])
def mode(request: pytest.FixtureRequest) -> str:
    """Which implementation of the service interface a test runs against."""
    return str(request.param)


@pytest.fixture
def acting(mode: str, project: Project, request: pytest.FixtureRequest) -> Iterator[Acting]:
    """``acting(role)``: the project acting as the team's user of ``role``, local or remote."""
    crew: Team = request.getfixturevalue("team")
    opened: list[RemoteProject] = []
    url = request.getfixturevalue("live_server") if mode == "remote" else ""

    def open_as(role: str) -> Any:
        if mode == "local":
            return project if role == "admin" else project.as_actor(ROLE_USERS[role])
        remote = RemoteProject(url, crew.tokens[role])
        opened.append(remote)
        return remote

    try:
        yield open_as
    finally:
        for remote in opened:
            remote.close()


@pytest.fixture
def service_project(acting: Acting) -> Any:
    """The project as alice (admin): a local Project, or a RemoteProject over a live server."""
    return acting("admin")
