"""A credit project with a week's worth of team activity: the governance suite's evaluated
credit project (datasets, a contract, two evaluated candidates), plus a contract with column
descriptions and an owner bound to ``credit``, a batch that failed it at ingestion and a
version that failed a later validation, tuning runs with metrics, two promotions and a
rollback of ``production``, a deployment, and a third candidate waiting for approval. Built
once per test session (no test changes it); ``before`` is a time between the governance
suite's setup and this activity."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

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
    project.contracts.bind("credit", "applicants-described")
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
    yield Busy(project, before, root)
    project.close()
