"""``shipyard serve --json``: one JSON line on stdout once the server answers, which a script
can wait for instead of polling; the logs stay on stderr."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.serving.test_app import MODEL, credit_copy
from tests.serving.test_server_process import START_SECONDS, STOP_SECONDS, free_port

pytestmark = pytest.mark.slow


def _first_line(process: subprocess.Popen[bytes]) -> bytes:
    """The first line of the process's stdout, waiting at most START_SECONDS."""
    assert process.stdout is not None
    chosen = selectors.DefaultSelector()
    chosen.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + START_SECONDS
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not chosen.select(left):
            pytest.fail(f"no line on stdout within {START_SECONDS:.0f} s")
        chunk = os.read(process.stdout.fileno(), 4096)
        if not chunk:
            pytest.fail(f"stdout closed (exit {process.wait(STOP_SECONDS)}) before a line")
        line += chunk
    return line


def test_serve_json_prints_one_line_once_it_answers(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    credit = credit_copy(tmp_path_factory, tmp_path / "proj")
    port = free_port()
    command = [sys.executable, "-m", "shipyard", "--project", str(credit.root), "serve"]
    command += [f"{MODEL}@production", "--port", str(port), "--json"]
    with open(tmp_path / "stderr.log", "wb") as err:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=err, start_new_session=True
        )
    try:
        line = _first_line(process)
        doc = json.loads(line)
        assert doc["event"] == "listening"
        assert doc["url"] == f"http://127.0.0.1:{port}"
        assert doc["pid"] == process.pid and doc["workers"] == 1
        assert doc["alias"] == "production"
        assert [r["version"].split("@")[0] for r in doc["routes"]] == [MODEL]
        # Printed once the app has started: it answers at once, no polling needed.
        assert httpx.get(f"{doc['url']}/v2/health/ready", timeout=10).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            out, _ = process.communicate(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, _ = process.communicate(timeout=STOP_SECONDS)
    assert out == b"", "nothing but the one JSON line goes to stdout"
    assert b"serving" not in (tmp_path / "stderr.log").read_bytes()
