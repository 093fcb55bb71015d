"""``shipyard serve`` as an operator runs it: the real command line in a subprocess on a free
loopback port, with one worker and with two, stopped by a signal: answers, metrics that pass
``promtool check metrics``, a metrics folder of each server's own, a busy port.

The promtool tests need ``promtool`` (Debian's ``prometheus`` package); without it they are
skipped, unless ``SHIPYARD_REQUIRE_SERVICES=1`` (set by CI) turns the skip into a failure.
Every wait is bounded, and every server started here is stopped when the test ends, whatever
happened: with SIGTERM, so that it removes its metrics folder, else killed with its workers
(it runs in its own process group).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import shipyard
from tests.deploy.test_deploy import promtool as promtool
from tests.serving.test_app import MODEL, CreditProject, credit_copy, metric_samples

pytestmark = pytest.mark.slow

START_SECONDS = 60.0
STOP_SECONDS = 30.0


class ServerFailedToStart(Exception):
    """The server process exited before it was ready."""


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def scrape(self, name: str) -> float:
        """The sum of the samples of ``name`` in one scrape of /metrics."""
        response = httpx.get(f"{self.url}/metrics", timeout=10)
        assert response.status_code == 200
        return sum(v for _, v in metric_samples(response.text, name))

    def stop(self, sig: signal.Signals) -> int:
        """Send ``sig`` and wait (bounded) for the process to exit; its return code."""
        self.process.send_signal(sig)
        try:
            return self.process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the server did not exit within {STOP_SECONDS:.0f} s of {sig.name}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def shipyard_serve(root: Path, *args: str, target: str = MODEL) -> Iterator[Server]:
    """``python -m shipyard --project ROOT serve TARGET --port P ARGS`` (the deployment
    credit-risk unless ``target`` says otherwise), yielded once /v2/health/ready answers
    200; stopped with SIGTERM on the way out (killed with its workers if it does not stop).

    Raises:
        ServerFailedToStart: the process exited before it was ready (its output attached).
    """
    port = free_port()
    log = root.parent / f"serve-{port}.log"
    command = [sys.executable, "-m", "shipyard", "--project", str(root), "serve"]
    command += [target, "--port", str(port), *args]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            if process.poll() is not None:
                raise ServerFailedToStart(
                    f"exit code {process.returncode} before ready:\n{server.output()}"
                )
            try:
                if httpx.get(f"{server.url}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"not ready after {START_SECONDS:.0f} s:\n{server.output()}")
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            # As an operator stops it, so it removes its metrics folder; killed (with the
            # group this test created) if it does not stop in time.
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(STOP_SECONDS)


@pytest.fixture
def credit(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> CreditProject:
    """This test's own copy of the credit project."""
    return credit_copy(tmp_path_factory, tmp_path / "proj")


def logged_rows(credit: CreditProject) -> int:
    with credit.open() as project:
        return len(project.predictions.list(MODEL))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_served_model_answers_exports_metrics_and_flushes_its_log_on_a_signal(
    credit: CreditProject, sig: signal.Signals
) -> None:
    """The real server answers /predict and /metrics; on SIGTERM or SIGINT it shuts down
    cleanly within seconds (exit 0, or death by that same signal, which uvicorn re-raises
    after its graceful shutdown) and the rows still queued for the prediction log are
    written on the way out."""
    with shipyard_serve(credit.root, target=f"{MODEL}@production") as server:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for i in range(10):
                records = credit.records[i * 5 : i * 5 + 5]
                response = client.post("/predict", json={"records": records})
                assert response.status_code == 200, response.text
                assert response.json()["version"] == 1
            refused = client.post("/predict", json={"records": [{"age": 250}]})
            assert refused.status_code == 422
        assert server.scrape("shipyard_predictions_total") == 50
        assert server.scrape("shipyard_prediction_errors_total") == 1
        assert server.scrape("process_resident_memory_bytes") > 0
        code = server.stop(sig)
    output = server.output()
    assert code in (0, -sig), output
    assert "Traceback" not in output
    assert f"serving {MODEL} on {server.url} with 1 worker(s): production=100 ({MODEL}@1)" in output
    assert logged_rows(credit) == 50


def test_serving_an_alias_that_does_not_exist_fails_before_listening(
    credit: CreditProject,
) -> None:
    """``shipyard serve credit-risk@nope`` exits 1 with a message naming the reference,
    without starting a server."""
    command = [sys.executable, "-m", "shipyard", "--project", str(credit.root), "serve"]
    res = subprocess.run(
        [*command, f"{MODEL}@nope", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=START_SECONDS,
        check=False,
    )
    assert res.returncode == 1, res.stderr
    assert "nope" in res.stderr
    assert "Traceback" not in res.stderr
    assert "serving" not in res.stderr


# -- metrics: promtool, one folder per server -----------------------------------------------------


def send_traffic(server: Server, credit: CreditProject, n: int) -> None:
    """``n`` single-row predictions, one refused request, feedback and a negative KPI, so
    that every kind of metric has samples; each request on a new connection, so that with
    several workers any of them may answer it."""

    def post(path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{server.url}{path}", json=body, timeout=10)

    ids = []
    for i in range(n):
        response = post("/predict", {"records": [credit.records[i % 50]]})
        assert response.status_code == 200, response.text
        ids += response.json()["request_ids"]
    assert post("/predict", {"records": [{"age": 250}]}).status_code == 422
    assert post("/feedback", {"request_id": ids[0], "label": 1}).is_success
    assert post("/kpi", {"name": "refund", "value": -12.5}).is_success


@pytest.mark.parametrize("workers", ["1", "2"])
def test_metrics_add_up_across_workers_and_pass_promtool(
    credit: CreditProject, promtool: str, workers: str
) -> None:
    """With one worker and with two, after predictions on separate connections, a refusal,
    feedback and a negative KPI: each prediction is counted once in /metrics whichever worker
    answers the scrape, and so is each row in the live drift window (the gauges reflect the
    rows every worker scored) and each value refused; ``promtool check metrics`` accepts the
    page without a remark (CPU seconds are a counter in both modes, the KPI sums a summary's
    _sum), and every worker flushes its prediction log on SIGTERM."""
    with shipyard_serve(credit.root, "--workers", workers, "--drift-min-rows", "10") as server:
        send_traffic(server, credit, 20)
        for _ in range(4):
            assert server.scrape("shipyard_predictions_total") == 20
        # The refused {"age": 250} lacks every other column of the signature (the columns the
        # model reads: the record's others are ignored).
        with shipyard.open_project(credit.root) as project:
            signature = project.models.get(MODEL).signature or {}
        missing = len(signature["inputs"]["columns"]) - 1
        assert server.scrape("shipyard_contract_violations_total") == missing
        wait_for_drift_window(server, 20)
        for _ in range(4):
            text = httpx.get(f"{server.url}/metrics", timeout=10).text
            assert sum(v for _, v in metric_samples(text, "shipyard_drift_window_rows")) == 20
            features = metric_samples(text, "shipyard_feature_drift")
            assert {labels["feature"] for labels, _ in features} >= {"income", "purpose"}
            assert len(metric_samples(text, "shipyard_dataset_drift_share")) == 1
        code = server.stop(signal.SIGTERM)
    assert code in (0, -signal.SIGTERM), server.output()
    assert logged_rows(credit) == 20
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, ""), result
    types = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert types["process_cpu_seconds"] == "counter"
    assert types["shipyard_kpi_value"] == "summary"
    assert types["shipyard_shadow_dropped"] == "counter"


def wait_for_drift_window(server: Server, rows: int) -> None:
    """Wait (bounded) until the live drift window holds ``rows`` rows: the log writers count
    after each hand-over, about every second."""
    deadline = time.monotonic() + START_SECONDS
    while server.scrape("shipyard_drift_window_rows") != rows:
        if time.monotonic() > deadline:
            pytest.fail(f"the drift window never held {rows} rows:\n{server.output()}")
        time.sleep(0.1)


def metrics_folder(server: Server) -> Path:
    """The folder the server said its workers share their metrics through."""
    found = re.search(r"share their metrics through (\S+) \(removed on exit\)", server.output())
    assert found, server.output()
    return Path(found[1])


def test_two_multi_worker_servers_in_one_project_keep_their_own_metrics(
    credit: CreditProject,
) -> None:
    """Two servers with --workers 2 on one project each share their workers' metrics
    through a folder of their own: each counts only its own requests, and stopping one
    removes its folder and leaves the other's files and counts intact; the second's folder
    goes when it stops."""
    with (
        shipyard_serve(credit.root, "--workers", "2") as first,
        shipyard_serve(credit.root, "--workers", "2") as second,
    ):
        folders = metrics_folder(first), metrics_folder(second)
        assert folders[0] != folders[1]
        assert all(f.is_dir() for f in folders)
        send_traffic(first, credit, 10)
        send_traffic(second, credit, 20)
        for _ in range(4):  # whichever worker answers the scrape
            assert first.scrape("shipyard_predictions_total") == 10
            assert second.scrape("shipyard_predictions_total") == 20
        assert first.stop(signal.SIGTERM) in (0, -signal.SIGTERM), first.output()
        assert not folders[0].exists()
        assert any(folders[1].iterdir())
        send_traffic(second, credit, 1)
        for _ in range(4):
            assert second.scrape("shipyard_predictions_total") == 21
        assert second.stop(signal.SIGTERM) in (0, -signal.SIGTERM), second.output()
    assert not folders[1].exists()


def test_a_busy_port_exits_1_before_any_model_loads(credit: CreditProject) -> None:
    """``shipyard serve`` on a port another socket listens on exits 1 with a message
    naming the port and the fix, before it loads a model, without a traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [sys.executable, "-m", "shipyard", "--project", str(credit.root), "serve"]
        res = subprocess.run(
            [*command, MODEL, "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=START_SECONDS,
            check=False,
        )
    assert res.returncode == 1, res.stderr
    assert f"port {port} on 127.0.0.1 is in use" in res.stderr
    assert "--port" in res.stderr
    assert "shipyard serve: production is" not in res.stderr  # no model was loaded
    assert "Traceback" not in res.stderr


def test_two_workers_take_labels_right_after_their_answers_and_only_with_the_token(
    credit: CreditProject, tmp_path: Path
) -> None:
    """With --workers 2 and --ingest-token-file, a label sent right after its answer, on a
    new connection (so often to the worker that did not answer, whose log row is not
    written yet), is stored and counted once; /feedback without the token is 401 while
    /predict answers; the token never appears in the server's output."""
    token = tmp_path / "ingest.token"
    token.write_text("tok-4f1c9\n", encoding="utf-8")
    auth = {"Authorization": "Bearer tok-4f1c9"}
    with shipyard_serve(credit.root, "--workers", "2", "--ingest-token-file", str(token)) as server:
        for i in range(8):
            answer = httpx.post(
                f"{server.url}/predict", json={"records": [credit.records[i]]}, timeout=10
            )
            assert answer.status_code == 200, answer.text
            item = {"request_id": answer.json()["request_ids"][0], "label": credit.labels[i]}
            stored = httpx.post(f"{server.url}/feedback", json=item, headers=auth, timeout=30)
            assert stored.status_code == 200, stored.text
            assert stored.json()["results"][0]["status"] == "stored"
        refused = httpx.post(f"{server.url}/feedback", json=item, timeout=10)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert server.scrape("shipyard_feedback_total") == 8
        code = server.stop(signal.SIGTERM)
    assert code in (0, -signal.SIGTERM), server.output()
    assert "tok-4f1c9" not in server.output()
