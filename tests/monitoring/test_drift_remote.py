"""Drift through the team server: ``/api/v1/drift`` and ``/datasets/{ref}/reference`` give
what the local service gives, the client rebuilds the same read models, and ``shipyard
monitor drift`` works against the server (exit 3 on drift as locally)."""

from __future__ import annotations

import httpx
import pytest

from shipyard.client import RemoteProject
from shipyard.errors import NotFoundError
from shipyard.project import Project
from tests.cli.conftest import Cli, cli
from tests.server.conftest import running_server

__all__ = ["cli"]  # the fixture, imported for this module's tests


def test_the_server_answers_drift_and_references_as_the_local_service(
    served: Project, cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over HTTP, a window's report and a stored reference equal the local ones; an unknown
    subject is 404 (NotFoundError in the client); `monitor drift` through the server prints
    the same JSON and exits 3."""
    token = served.tokens.create("alice", label="drift test").token
    local = served.drift.compare("m@production", window_seconds=3600)
    with running_server(served) as url, RemoteProject(url, token) as remote:
        assert remote.drift.compare("m@production", window_seconds=3600) == local
        assert remote.drift.reference("train@1") == served.drift.reference("train@1")
        with pytest.raises(NotFoundError, match="no model or dataset named 'nothing'"):
            remote.drift.compare("nothing@1", current="train@1")
        raw = httpx.get(
            f"{url}/api/v1/drift",
            params={"subject": "train@1", "current": "shifted@1"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert raw.status_code == 200 and raw.json()["drifted_columns"] == ["x1"]

        monkeypatch.setenv("SHIPYARD_SERVER", url)
        monkeypatch.setenv("SHIPYARD_TOKEN", token)
        res = cli("monitor", "drift", "m@production", "--window", "1h", "--json")
    assert res.code == 3, res.stderr
    assert res.json() == local.to_dict()
