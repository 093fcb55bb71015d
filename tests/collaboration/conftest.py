"""Fixtures of the collaboration tests.

Docs site and digest: a credit project with a week's worth of team activity: the governance
suite's evaluated credit project (datasets, a contract, two evaluated candidates), plus a
contract with column descriptions and an owner bound to ``credit``, a batch that failed it at
ingestion and a version that failed a later validation, tuning runs with metrics, two
promotions and a rollback of ``production``, a deployment, and a third candidate waiting for
approval. Built once per test session (no test changes it); ``before`` is a time between the
governance suite's setup and this activity.

Comments and webhooks: a real HTTP receiver on 127.0.0.1 whose answers a test scripts, a clock
a test moves, and projects whose webhooks may reach 127.0.0.1 only, with a 1-second HTTP
timeout."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from shipyard.data.contracts import Contract
from shipyard.data.inference import infer_contract
from shipyard.project import Project
from tests.cli.conftest import cli  # noqa: F401  (the fixture, for the CLI tests here)
from tests.governance.test_governance_service import (
    LABEL,
    MODEL,
    V1,
    V2,
    applicants,
    candidate,
    clone_credit_project,
)

OWNER = "risk-data-team"
INCOME = "Yearly gross income of the applicant, in euros"
TUNING = {"c=0.1": (0.71, 0.61), "c=1": (0.74, 0.58), "c=10": (0.69, 0.66)}
LOSS_RUNS = {"small": 0.42, "large": 0.37}


@dataclass(frozen=True)
class Busy:
    """The project (as alice) and the time before its week of activity began."""

    project: Project
    before: datetime
    root: Path


def described_contract(frame: pl.DataFrame) -> Contract:
    doc = infer_contract(frame).to_dict()
    doc["description"] = "Loan applicants, as the bureau sends them"
    doc["owner"] = OWNER
    doc["columns"]["income"]["description"] = INCOME
    return Contract.from_dict(doc)


@pytest.fixture(scope="session")
def busy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Busy]:
    root = tmp_path_factory.mktemp("busy") / "proj"
    project = clone_credit_project(tmp_path_factory, root, evaluated=True)
    time.sleep(0.01)
    before = datetime.now(UTC)
    time.sleep(0.01)
    frame = applicants()
    project.contracts.add("applicants-described", described_contract(frame))
    project.contracts.bind("credit", "applicants-described", new=True)
    bad = frame.head(50).with_columns(pl.lit(-5).alias("age"))
    project.datasets.add("credit", bad, message="May batch", on_invalid="allow")
    tight = infer_contract(frame).to_dict()
    tight["columns"]["age"]["max"] = 20
    project.contracts.add("young-only", Contract.from_dict(tight))
    project.datasets.validate("credit.test@1", contract="young-only")
    for name, (auc, loss) in TUNING.items():
        with project.start_run("tuning", name=name) as run:
            run.log_metrics({"roc_auc": auc, "log_loss": loss})
    for name, loss in LOSS_RUNS.items():
        with project.start_run("sizing", name=name, tags={"primary_metric": "val_loss"}) as run:
            run.log_metrics({"val_loss": loss, "accuracy": 1 - loss})
    reviewer = project.as_actor("bob")
    for ref in (V1, V2):
        reviewer.approvals.approve(ref)
        reviewer.promotions.promote(ref, comment=f"release {ref}")
    reviewer.promotions.rollback(MODEL, comment="v2 hurts approvals")
    reviewer.deployments.set(MODEL, {"production": 100})
    train = project.datasets.get("credit.train@1").to_pandas()
    with project.start_run("tuning", name="refit") as run:
        run.log_metrics({"roc_auc": 0.7})
        run.log_model(candidate(), MODEL, input_example=train.drop(columns=[LABEL]).head(5))
    project.comments.add(f"model:{MODEL}@3", "Refit on the new batch; @bob can you review?")
    project.comments.add(f"model:{MODEL}@3", "No mention here.")
    yield Busy(project, before, root)
    project.close()


#: The longest a scripted "hang" keeps a request open (longer than the 1 s test timeout).
HANG_SECONDS = 3.0


@pytest.fixture(autouse=True)
def webhook_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Webhooks may reach 127.0.0.1 (and nothing else private), give up after 1 s, and read
    secret files from the test's temporary folder."""
    monkeypatch.setenv("SHIPYARD_WEBHOOKS_ALLOW", "127.0.0.1")
    monkeypatch.setenv("SHIPYARD_WEBHOOKS_TIMEOUT", "1")
    monkeypatch.setenv("SHIPYARD_WEBHOOKS_SECRET_DIRS", str(tmp_path))


@dataclass
class Received:
    """One request the receiver got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A local HTTP server: ``script`` holds the answers to give, in order, as
    ``(status, headers, body)`` or ``"hang"``; once it is used up, it answers 200."""

    url: str
    received: list[Received] = field(default_factory=list)
    script: list[Any] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def answer(self) -> Any:
        return self.script.pop(0) if self.script else (200, {}, b"ok")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A scripted receiver listening on a free port of 127.0.0.1."""
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            rec = state["r"]
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            rec.received.append(
                Received("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            answer = rec.answer()
            if answer == "hang":
                rec.release.wait(HANG_SECONDS)
                return
            status, headers, text = answer
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("content-length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state["r"] = Receiver(f"http://127.0.0.1:{server.server_address[1]}/hook")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["r"]
    finally:
        state["r"].release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


class FakeClock:
    """A clock a test moves forward (it starts at the real time)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
