"""``shipyard ui`` as a real process: it prints its URL and serves the project's pages on
127.0.0.1 as the local user, without a login."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx

from shipyard.project import Project


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_shipyard_ui_serves_the_project_as_the_local_user(project: Project) -> None:
    """The printed URL (with this launch's key) answers with the home page, naming
    SHIPYARD_USER; without the key the UI answers nothing but the way in; Ctrl-C stops it."""
    port = _free_port()
    env = {**os.environ, "SHIPYARD_USER": "alice"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "shipyard", "ui", "--port", str(port)],
        cwd=project.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # printed once the port is bound
        prefix = (
            f"shipyard UI for {project.root} as alice: http://127.0.0.1:{port}/local-login?key="
        )
        assert line.startswith(prefix) and len(line.strip()) > len(prefix) + 20
        url = line.strip().rsplit(" ", 1)[1]
        deadline = time.monotonic() + 20
        while True:
            try:
                without_key = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the UI did not answer within 20 s"
                time.sleep(0.05)
        # Another user of the machine, who did not see the printed key, gets nothing.
        assert without_key.status_code == 303 and without_key.headers["location"].startswith(
            "/login"
        )
        with httpx.Client(timeout=5, follow_redirects=True) as browser:
            page = browser.get(url)
        assert page.status_code == 200
        assert 'id="current-user" data-user="alice"' in page.text
    finally:
        proc.send_signal(2)  # SIGINT, as Ctrl-C
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
