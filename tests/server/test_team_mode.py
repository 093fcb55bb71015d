"""Team mode on real servers: the server over PostgreSQL + S3 (moto), two servers over one
database serving the same data, several worker processes, and secrets kept out of logs."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import shipyard
from shipyard.project import Project
from tests.server.conftest import _free_port, running_server

pytestmark = [pytest.mark.postgres, pytest.mark.s3]


@pytest.fixture
def team_project(tmp_path: Path, pg_schema_url: str, s3_uri: str) -> Project:
    project = shipyard.init_project(tmp_path / "team", db_url=pg_schema_url, artifacts_uri=s3_uri)
    project.users.add("bob", "contributor")
    return project


def test_two_servers_over_one_postgres_database_serve_the_same_data(
    tmp_path: Path, team_project: Project, pg_schema_url: str, s3_uri: str
) -> None:
    # A second process-like view of the same stores: opened from the settings, not shared.
    other = shipyard.open_project(tmp_path / "team", db_url=pg_schema_url, artifacts_uri=s3_uri)
    admin = team_project.tokens.create(label="admin").token
    with running_server(team_project) as first, running_server(other) as second:
        made = httpx.post(
            f"{first}/api/v1/tokens",
            json={"user": "bob", "label": "made on the first server"},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert made.status_code == 200, made.text
        bob = {"Authorization": f"Bearer {made.json()['token']}"}
        me = httpx.get(f"{second}/api/v1/users/me", headers=bob)
        assert me.status_code == 200 and me.json()["name"] == "bob"
        revoked = httpx.delete(f"{second}/api/v1/tokens/{made.json()['id']}", headers=bob)
        assert revoked.status_code == 200
        assert httpx.get(f"{first}/api/v1/users/me", headers=bob).status_code == 401
    assert team_project.audit.verify().ok
    other.close()


def test_the_cli_server_runs_several_workers_and_never_logs_a_token(
    tmp_path: Path, team_project: Project
) -> None:
    token = team_project.tokens.create("bob").token
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shipyard",
                "--project",
                str(team_project.root),
                "server",
                "--port",
                str(port),
                "--workers",
                "2",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            else:
                pytest.fail(f"the server did not start: {log.read_text()}")
            good = {"Authorization": f"Bearer {token}"}
            names = {
                httpx.get(f"{url}/api/v1/users/me", headers=good).json()["name"] for _ in range(6)
            }
            assert names == {"bob"}
            forged = {"Authorization": f"Bearer {token[:-3]}xyz"}
            assert httpx.get(f"{url}/api/v1/users/me", headers=forged).status_code == 401
            assert json.loads(httpx.get(f"{url}/version").text)["api"] == "v1"
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
    text = log.read_text()
    assert "GET /api/v1/users/me" in text  # the access log is on
    secret = token.split("_", 2)[2]
    assert secret not in text and secret[:-3] not in text


def test_secrets_never_reach_the_log_of_an_in_process_server(
    team_project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    token = team_project.tokens.create("bob").token
    caplog.set_level(logging.DEBUG)
    with running_server(team_project) as url:
        for header in (f"Bearer {token}", f"Bearer {token}x", "Basic Ym9iOnNlY3JldA=="):
            httpx.get(f"{url}/api/v1/users/me", headers={"Authorization": header})
    assert token.split("_", 2)[2] not in caplog.text
