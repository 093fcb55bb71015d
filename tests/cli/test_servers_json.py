"""`shipyard server --json` and `shipyard ui --json`, like `serve --json`: one JSON line on
stdout once they answer (a script reads it and goes on), and a JSON error when they cannot
start."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.cli.conftest import Cli
from tests.serving.test_serve_json import _first_line


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def _started(root: Path, *args: str) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, str]]]:
    """``shipyard ARGS --json`` in ``root`` as a process, with the JSON line it printed."""
    env = {**os.environ, "SHIPYARD_USER": "alice"}
    process = subprocess.Popen(
        [sys.executable, "-m", "shipyard", *args, "--json"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        yield process, json.loads(_first_line(process))
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.slow  # a server process: about 5 s
def test_server_json_prints_one_line_once_it_answers(cli_project: Path) -> None:
    """The line names the address and port, and the server answers as soon as it is read;
    nothing else reaches stdout, not even the access log."""
    port = _free_port()
    with _started(cli_project, "server", "--port", str(port)) as (process, doc):
        assert doc["event"] == "listening"
        assert doc["url"] == f"http://127.0.0.1:{port}"
        assert (doc["host"], doc["port"]) == ("127.0.0.1", port)
        assert doc["project"] == str(cli_project) and doc["pid"] == process.pid
        assert httpx.get(f"{doc['url']}/health", timeout=10).status_code == 200
    assert process.stdout is not None and process.stdout.read() == b""


@pytest.mark.slow  # a server process: about 5 s
def test_ui_json_prints_one_line_with_the_login_address(cli_project: Path) -> None:
    """The line carries the address to open (with this launch's key), which logs the local
    user in at once."""
    port = _free_port()
    with _started(cli_project, "ui", "--port", str(port)) as (process, doc):
        assert doc["event"] == "listening" and doc["user"] == "alice"
        assert (doc["host"], doc["port"]) == ("127.0.0.1", port)
        assert doc["login_url"].startswith(f"http://127.0.0.1:{port}/local-login?key=")
        with httpx.Client(timeout=10, follow_redirects=True) as browser:
            page = browser.get(doc["login_url"])
        assert page.status_code == 200 and 'data-user="alice"' in page.text
    assert process.stdout is not None and process.stdout.read() == b""


@pytest.mark.parametrize("command", ["server", "ui"])
def test_a_server_that_cannot_listen_prints_a_json_error(
    cli: Cli, cli_project: Path, command: str
) -> None:
    """A busy port: exit 1, the error document on stdout, the message on stderr."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = cli(command, "--port", port, "--json")
    assert res.code == 1
    doc = res.json()
    assert doc["error"] and f"port {port} on 127.0.0.1 is in use" in doc["message"]
    assert "is in use" in res.stderr
